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
        try:
            outcomes = await self._outcomes([request for request, _ in batch])
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the caller went away; its loop stands
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        except Exception as exc:  # never leave a caller waiting
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)

    async def _outcomes(
        self, requests: list[Mapping[str, Any]]
    ) -> Sequence[StartResult | BaseException]:
        """The batch's outcomes; when its transaction fails, each request alone.

        Alone, a request that broke the batch fails by itself, and the others
        (or a retry of one the batch had committed) succeed: a start is
        idempotent for the same name and input.
        """
        try:
            return await run_in_threadpool(self._start_many, requests)
        except Exception as exc:
            if len(requests) == 1:
                return [exc]
            logger.warning(
                "a batch of %d loop starts failed; writing each alone", len(requests)
            )
        outcomes: list[StartResult | BaseException] = []
        for request in requests:
            outcomes.extend(await self._outcomes([request]))
        return outcomes
