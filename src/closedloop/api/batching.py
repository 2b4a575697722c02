"""Group commit for StartHumanLoop: requests that arrive together share one transaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi.concurrency import run_in_threadpool

from closedloop.core.loops import StartResult
from closedloop.errors import ClosedloopError

__all__ = ["StartBatcher"]

logger = logging.getLogger(__name__)

StartMany = Callable[
    [Sequence[Mapping[str, Any]]], Sequence[StartResult | ClosedloopError]
]


class StartBatcher:
    """Queues StartHumanLoop requests and writes them in batches.

    While one batch is being written (in a worker thread), the requests that
    arrive queue up and go together into the next transaction. A lone request
    is written at once, so this adds no waiting; under load, the cost of a
    transaction and of its commit is shared by up to ``max_batch`` loops.
    Every caller gets its own outcome: its loop, or the error for its request.
    """

    def __init__(self, start_many: StartMany, *, max_batch: int = 128) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1; got {max_batch!r}")
        self._start_many = start_many
        self._max_batch = max_batch
        self._queue: list[tuple[Mapping[str, Any], asyncio.Future[StartResult]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def start(self, request: Mapping[str, Any]) -> StartResult:
        """Start one loop; returns when the batch holding it has committed."""
        future: asyncio.Future[StartResult] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._write(batch)
        finally:
            self._drainer = None

    async def _write(
        self, batch: list[tuple[Mapping[str, Any], asyncio.Future[StartResult]]]
    ) -> None:
        outcomes: Sequence[StartResult | BaseException]
        try:
            outcomes = await run_in_threadpool(
                self._start_many, [request for request, _ in batch]
            )
        except Exception as exc:  # the whole transaction failed: every caller hears
            logger.warning("a batch of %d loop starts failed", len(batch))
            outcomes = [exc] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller went away; its loop stands
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
