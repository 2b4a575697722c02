"""Group commit for StartHumanLoop: requests that arrive together share one transaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from fastapi.concurrency import run_in_threadpool

from closedloop.core.loops import StartResult
from closedloop.errors import ClosedloopError, ThrottlingError

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

    The queue is bounded by requests and by the bytes their bodies hold: past
    either bound a start is refused at once with
    ThrottlingException, which boto3 retries with backoff, instead of the
    server holding more than it can write.
    """

    def __init__(
        self,
        start_many: StartMany,
        *,
        max_batch: int = 128,
        max_queued: int = 4096,
        max_queued_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        for name, value in (
            ("max_batch", max_batch),
            ("max_queued", max_queued),
            ("max_queued_bytes", max_queued_bytes),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1; got {value!r}")
        self._start_many = start_many
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._max_queued_bytes = max_queued_bytes
        self._queue: list[
            tuple[Mapping[str, Any], asyncio.Future[StartResult], int]
        ] = []
        self._queued_bytes = 0
        self._drainer: asyncio.Task[None] | None = None

    async def start(
        self, request: Mapping[str, Any], *, size: int | None = None
    ) -> StartResult:
        """Start one loop; returns when the batch holding it has committed.

        ``size`` is the request body's length in bytes, where the caller read
        one; otherwise the request's size as JSON counts.
        """
        weight = len(orjson.dumps(request)) if size is None else size
        if (
            len(self._queue) >= self._max_queued
            or self._queued_bytes + weight > self._max_queued_bytes
        ):
            raise ThrottlingError(
                f"too many StartHumanLoop requests waiting ({len(self._queue)} "
                f"queued, {self._queued_bytes} bytes); retry later"
            )
        future: asyncio.Future[StartResult] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future, weight))
        self._queued_bytes += weight
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                self._queued_bytes -= sum(weight for _, _, weight in batch)
                await self._write(batch)
        finally:
            self._drainer = None

    async def _write(
        self, batch: list[tuple[Mapping[str, Any], asyncio.Future[StartResult], int]]
    ) -> None:
        try:
            outcomes = await self._outcomes([request for request, _, _ in batch])
            for (_, future, _), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the caller went away; its loop stands
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        except Exception as exc:  # never leave a caller waiting
            for _, future, _ in batch:
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
