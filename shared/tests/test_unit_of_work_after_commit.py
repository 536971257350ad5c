"""UnitOfWork.after_commit: work that must only follow a durable transaction (e.g. a live
stream fed with what was stored) runs after commit, never after a rollback."""

from __future__ import annotations

from kap_shared.messaging.unit_of_work import UnitOfWork

from .dbsupport import CareTask, Sessions, care_tasks


async def test_after_commit_runs_once_committed_and_never_on_rollback(sessions: Sessions) -> None:
    calls: list[str] = []

    async with UnitOfWork(sessions) as uow:
        uow.session.add(CareTask(patient_id="pt-1", kind="rolled-back"))
        uow.after_commit(lambda: calls.append("rolled back"))
        # no commit: rolled back on exit
    assert calls == []

    async with UnitOfWork(sessions) as uow:
        uow.session.add(CareTask(patient_id="pt-1", kind="kept"))
        uow.after_commit(lambda: calls.append("committed"))
        assert calls == []  # not before the commit
        await uow.commit()
    assert calls == ["committed"]
    assert [t.kind for t in await care_tasks(sessions)] == ["kept"]


async def test_a_failing_after_commit_callback_does_not_undo_the_commit(sessions: Sessions) -> None:
    def broken() -> None:
        raise RuntimeError("subscriber gone")

    async with UnitOfWork(sessions) as uow:
        uow.session.add(CareTask(patient_id="pt-1", kind="durable"))
        uow.after_commit(broken)
        await uow.commit()  # the callback's error is logged, not raised
    assert [t.kind for t in await care_tasks(sessions)] == ["durable"]
