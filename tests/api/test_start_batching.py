"""Group commit of StartHumanLoop: one request that breaks a batch fails alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest

from closedloop.api.batching import StartBatcher
from closedloop.core.loops import StartResult
from closedloop.engine import Engine
from closedloop.errors import ClosedloopError, StoreError, ThrottlingError

TEMPLATE = '<crowd-form><crowd-checkbox name="ok"></crowd-checkbox></crowd-form>'


def _flow(engine: Engine) -> str:
    engine.workforce.create_team("reviewers")
    engine.task_uis.create("ui", TEMPLATE)
    return engine.flows.create(
        {
            "FlowDefinitionName": "review",
            "RoleArn": "arn:aws:iam::000000000000:role/closedloop",
            "OutputConfig": {"S3OutputPath": "s3://reviews/out"},
            "HumanLoopConfig": {
                "WorkteamArn": engine.workforce.team_arn("reviewers"),
                "HumanTaskUiArn": engine.task_uis.arn("ui"),
                "TaskTitle": "Review",
                "TaskDescription": "Review the item",
                "TaskCount": 1,
            },
        }
    ).arn


def test_a_start_that_fails_its_batch_fails_alone_and_the_others_start(
    engine: Engine,
) -> None:
    flow = _flow(engine)
    batches: list[list[str]] = []

    def start_many(
        requests: Sequence[Mapping[str, Any]],
    ) -> Sequence[StartResult | ClosedloopError]:
        names = [r["HumanLoopName"] for r in requests]
        batches.append(names)
        if "breaks-batches" in names:  # as a database error would, for the whole write
            raise StoreError("the metadata database failed: OperationalError")
        return engine.loops.start_many(requests)

    async def start_all(names: list[str]) -> list[StartResult | BaseException]:
        batcher = StartBatcher(start_many)
        starts = [
            batcher.start(
                {
                    "HumanLoopName": name,
                    "FlowDefinitionArn": flow,
                    "HumanLoopInput": {"InputContent": f'{{"n": "{name}"}}'},
                }
            )
            for name in names
        ]
        return await asyncio.gather(*starts, return_exceptions=True)

    names = ["one", "breaks-batches", "two", "three"]
    outcomes = asyncio.run(start_all(names))

    assert batches[0] == names  # they did arrive together
    assert isinstance(outcomes[1], StoreError)
    started = [o for o in outcomes if isinstance(o, StartResult)]
    assert [o.loop.name for o in started] == ["one", "two", "three"]
    for name in ("one", "two", "three"):
        assert engine.loops.describe(name).status == "InProgress"
    with pytest.raises(ClosedloopError):
        engine.loops.describe("breaks-batches")


def _request(flow: str, name: str, content: str = "{}") -> dict[str, Any]:
    return {
        "HumanLoopName": name,
        "FlowDefinitionArn": flow,
        "HumanLoopInput": {"InputContent": content},
    }


def test_a_full_queue_refuses_at_once_and_what_it_held_still_starts(
    engine: Engine,
) -> None:
    """Past its bounds the queue says ThrottlingException instead of growing."""
    flow = _flow(engine)
    writing = threading.Event()
    release = threading.Event()

    def start_many(
        requests: Sequence[Mapping[str, Any]],
    ) -> Sequence[StartResult | ClosedloopError]:
        writing.set()
        release.wait(30)  # a slow commit: everything after this queues
        return engine.loops.start_many(requests)

    async def scenario() -> tuple[list[Any], list[ThrottlingError]]:
        batcher = StartBatcher(start_many, max_queued=2, max_queued_bytes=400)
        first = asyncio.ensure_future(batcher.start(_request(flow, "first")))
        await asyncio.get_running_loop().run_in_executor(None, writing.wait, 30)
        refused: list[ThrottlingError] = []

        async def try_start(request: dict[str, Any], size: int | None = None) -> None:
            try:
                await batcher.start(request, size=size)
            except ThrottlingError as exc:
                refused.append(exc)

        second = asyncio.ensure_future(batcher.start(_request(flow, "second")))
        await asyncio.sleep(0)
        big = '{"text": "' + "x" * 40 + '"}'
        await try_start(_request(flow, "big", big), size=300)  # over the bytes' bound
        third = asyncio.ensure_future(batcher.start(_request(flow, "third")))
        await asyncio.sleep(0)
        await try_start(_request(flow, "fourth"))  # over the requests' bound
        release.set()
        return list(await asyncio.gather(first, second, third)), refused

    started, refused = asyncio.run(scenario())

    assert [r.loop.name for r in started] == ["first", "second", "third"]
    assert len(refused) == 2
    assert all(e.aws_code == "ThrottlingException" for e in refused)
    second = len(orjson.dumps(_request(flow, "second")))
    assert f"1 queued, {second} bytes" in refused[0].message
    assert "2 queued" in refused[1].message
    for name in ("fourth", "big"):
        with pytest.raises(ClosedloopError):
            engine.loops.describe(name)
