"""The delivery worker: sends pending email and SMS notifications.

The notifications table is the durable queue. For each due `pending` row:

1. **claim** it in a short transaction: a conditional UPDATE sets a lease
   (`lease_until`) and counts the attempt; only one worker (of any instance)
   wins it, and no transaction stays open while a provider is called;
2. **send** it through the channel's sender (idempotency key = notification id);
3. **record** the outcome in a unit of work: `delivered` + NotificationSent, or
   a retry time with exponential backoff, or - after the last attempt or a
   permanent error - `failed` + NotificationFailed.

A process killed between 2 and 3 leaves the row `pending` with a lease; once
the lease expires the row is sent again with the same idempotency key
(at-least-once; no row is added, none is lost). Each channel has its own loop
and its own concurrency, so a slow or failing SMTP server never holds up SMS,
and in-app notifications never wait for either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.events.enums import Channel
from kap_shared.events.envelope import utc_now
from kap_shared.logging import get_logger
from kap_shared.messaging.unit_of_work import OnCommit, UnitOfWork, nothing_to_notify
from kap_shared.tasks import cancel_and_wait, run_when_woken

from ..adapters.channels import DeliveryError, Outgoing, Sender
from ..adapters.metrics import NotificationMetrics
from ..adapters.tables import DELIVERED, FAILED, PENDING, Notification, Recipient, select
from ..domain.delivery import RetryPolicy
from .outcomes import notification_failed, notification_sent

log = get_logger(__name__)

EXTERNAL = (Channel.SMS, Channel.EMAIL)


@dataclass(frozen=True)
class Claimed:
    notification_id: str
    channel: Channel
    attempt: int
    message: Outgoing | None  # None: the recipient has no contact point any more


class DeliveryWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[Channel, Sender],
        policy: RetryPolicy,
        *,
        on_commit: OnCommit = nothing_to_notify,
        clock: Callable[[], datetime] = utc_now,
        poll_seconds: float = 1.0,
        lease_seconds: float = 30.0,
        concurrency: int = 8,
        metrics: NotificationMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self.senders = dict(senders)
        self.policy = policy
        self._on_commit = on_commit
        self.clock = clock
        self._poll_seconds = poll_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._send_timeout = lease_seconds / 2
        self._limits = {c: asyncio.Semaphore(concurrency) for c in EXTERNAL}
        self._wake = {c: asyncio.Event() for c in EXTERNAL}
        self._tasks: list[asyncio.Task[None]] = []
        self._metrics = metrics

    def notify(self) -> None:
        """Something became due (called after a commit that wrote pending rows)."""
        for wake in self._wake.values():
            wake.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(channel), name=f"delivery-{channel}")
            for channel in EXTERNAL
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        for sender in self.senders.values():
            await sender.close()

    async def _run(self, channel: Channel) -> None:
        await run_when_woken(
            lambda: self.deliver_due(channel),
            self._wake[channel],
            poll_seconds=self._poll_seconds,
            failed="delivery.loop_failed",
            channel=channel.value,
        )

    async def deliver_due(self, channel: Channel | None = None, limit: int = 100) -> int:
        """Deliver what is due now on `channel` (or both); returns how many were attempted."""
        channels = [channel] if channel else list(EXTERNAL)
        results = await asyncio.gather(*(self._deliver_batch(c, limit) for c in channels))
        return sum(results)

    async def _deliver_batch(self, channel: Channel, limit: int) -> int:
        now = self.clock()
        async with self._sessions() as session:
            due = list(
                await session.exec(
                    select(Notification.notification_id)
                    .where(Notification.status == PENDING)
                    .where(Notification.channel == channel.value)
                    .where(col(Notification.next_attempt_at) <= now)
                    .where(
                        or_(
                            col(Notification.lease_until).is_(None),
                            col(Notification.lease_until) <= now,
                        )
                    )
                    .order_by(col(Notification.next_attempt_at))
                    .limit(limit)
                )
            )
        attempted = await asyncio.gather(*(self._deliver(nid, channel) for nid in due))
        return sum(attempted)

    async def _deliver(self, notification_id: str, channel: Channel) -> bool:
        async with self._limits[channel]:
            claimed = await self._claim(notification_id, channel)
            if claimed is None:
                return False
            error: DeliveryError | None = None
            if claimed.message is None:
                error = DeliveryError("no_contact_point", permanent=True)
            elif claimed.attempt > self.policy.max_attempts:
                # Earlier attempts died mid-send (the process crashed each time): stop.
                error = DeliveryError("attempts_exhausted", permanent=True)
            else:
                error = await self._send(channel, claimed.message)
            await self._record(claimed, error)
            return True

    async def _claim(self, notification_id: str, channel: Channel) -> Claimed | None:
        now = self.clock()
        async with self._sessions() as session, session.begin():
            result = await session.exec(
                update(Notification)
                .where(col(Notification.notification_id) == notification_id)
                .where(col(Notification.status) == PENDING)
                .where(col(Notification.next_attempt_at) <= now)
                .where(
                    or_(
                        col(Notification.lease_until).is_(None),
                        col(Notification.lease_until) <= now,
                    )
                )
                .values(lease_until=now + self._lease, attempts=col(Notification.attempts) + 1)
            )
            if result.rowcount != 1:
                return None  # another worker has it, or it is no longer due
            row = await session.get(Notification, notification_id)
            assert row is not None
            recipient = await session.get(Recipient, row.recipient_id)
            to = None
            if recipient is not None:
                to = recipient.phone if channel is Channel.SMS else recipient.email
            message = None
            if to:
                message = Outgoing(
                    notification_id=row.notification_id,
                    to=to,
                    subject=row.title,
                    text=row.body,
                    priority=row.priority,
                )
            return Claimed(row.notification_id, channel, row.attempts, message)

    async def _send(self, channel: Channel, message: Outgoing) -> DeliveryError | None:
        try:
            await asyncio.wait_for(self.senders[channel].send(message), self._send_timeout)
        except DeliveryError as exc:
            return exc
        except TimeoutError:
            return DeliveryError(f"{channel.value}_timeout")
        except Exception as exc:  # a bug in a sender: retry, and say what kind
            log.warning(
                "delivery.sender_error", channel=channel.value, error_type=type(exc).__name__
            )
            return DeliveryError(f"{channel.value}_error_{type(exc).__name__}")
        return None

    async def _record(self, claimed: Claimed, error: DeliveryError | None) -> None:
        async with UnitOfWork(self._sessions, self._on_commit) as uow:
            row = await uow.session.get(Notification, claimed.notification_id)
            if row is None or row.status != PENDING:
                return  # another worker recorded it (after our lease ran out)
            now = self.clock()
            row.lease_until = None
            if error is None:
                row.status, row.delivered_at, row.last_error = DELIVERED, now, None
                uow.publish(notification_sent(row))
                outcome = "delivered"
            elif error.permanent or self.policy.exhausted(row.attempts):
                row.status, row.last_error = FAILED, error.code
                uow.publish(notification_failed(row, error.code))
                outcome = "failed"
            else:
                row.next_attempt_at = now + self.policy.backoff(row.attempts)
                row.last_error = error.code
                outcome = "retry"
            uow.session.add(row)
            await uow.commit()
        if self._metrics:
            self._metrics.deliveries.labels(
                claimed.channel.value, outcome, error.code if error else ""
            ).inc()
        log.info(
            "delivery." + outcome,
            notification_id=claimed.notification_id,
            channel=claimed.channel.value,
            attempt=claimed.attempt,
            error=error.code if error else None,
        )
