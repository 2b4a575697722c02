"""Group commit of StartHumanLoop: one request that breaks a batch fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from closedloop.api.batching import StartBatcher
from closedloop.core.loops import StartResult
from closedloop.engine import Engine
from closedloop.errors import ClosedloopError, StoreError

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
