"""FastAPI dependencies every service's routes share (the app's ServiceRuntime lives
on `app.state.runtime`, set by kap_shared.service.runtime)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..messaging.unit_of_work import UnitOfWork
from ..service.runtime import ServiceRuntime


def runtime_of(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def unit_of_work(request: Request) -> UnitOfWork:
    """A unit of work per request: the route's state changes and outbox events commit
    together. (`async`: FastAPI would run a plain function in a worker thread.)"""
    return runtime_of(request).unit_of_work()


Uow = Annotated[UnitOfWork, Depends(unit_of_work)]
