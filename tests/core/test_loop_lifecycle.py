"""A loop's lifecycle through the Python API, with a clock the test moves: expiry, leases, stop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from closedloop.core.paging import PageRequest
from closedloop.core.workforce import WorkerInfo
from closedloop.engine import Engine
from closedloop.errors import ConflictError, LeaseLostError, ValidationError
from closedloop.settings import Settings
from closedloop.store.models import Event, HumanLoop

START = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


class Clock:
    """A frozen UTC clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(settings: Settings, clock: Clock) -> Iterator[Engine]:
    engine = Engine(settings, clock=clock)
    yield engine
    engine.close()


CHECKBOX_UI = '<crowd-form><crowd-checkbox name="ok"></crowd-checkbox></crowd-form>'


def _flow(
    engine: Engine, task_count: int = 1, *, template: str = CHECKBOX_UI, **config: int
) -> str:
    engine.workforce.create_team("reviewers")
    ui = engine.task_uis.create("ui", template)
    request = {
        "FlowDefinitionName": "review",
        "RoleArn": "arn:aws:iam::000000000000:role/closedloop",
        "OutputConfig": {"S3OutputPath": "s3://reviews/out"},
        "HumanLoopConfig": {
            "WorkteamArn": engine.workforce.team_arn("reviewers"),
            "HumanTaskUiArn": ui.arn,
            "TaskTitle": "Review",
            "TaskDescription": "Review the item",
            "TaskCount": task_count,
            **config,
        },
    }
    return engine.flows.create(request).arn


def _worker(engine: Engine, name: str) -> WorkerInfo:
    return engine.workforce.create_worker(name, ["reviewers"])


def _statuses(engine: Engine) -> list[str]:
    return [e["detail"]["humanLoopStatus"] for e in engine.events.list_events()]


def test_loop_expires_exactly_when_its_availability_lifetime_passes(
    engine: Engine, clock: Clock
) -> None:
    flow = _flow(engine, TaskAvailabilityLifetimeInSeconds=3600)
    alice = _worker(engine, "alice")
    engine.loops.start("item-1", flow, '{"x": 1}')
    clock.advance(3599)
    assert engine.loops.sweep().expired == 0

    clock.advance(1)
    assert engine.tasks.claim_next(alice) is None  # unclaimable before the sweep too
    report = engine.loops.sweep()

    loop = engine.loops.describe("item-1")
    assert report.expired == 1
    assert (loop.status, loop.failure_code) == ("Failed", "Expired")
    assert _statuses(engine) == ["Failed"]
    assert engine.loops.sweep().expired == 0


def test_lapsed_lease_returns_the_task_to_another_worker(
    engine: Engine, clock: Clock
) -> None:
    flow = _flow(engine, TaskTimeLimitInSeconds=120)
    alice, bob = _worker(engine, "alice"), _worker(engine, "bob")
    engine.loops.start("item-1", flow, '{"x": 1}')
    task = engine.tasks.claim_next(alice)
    assert task is not None
    assert task.lease_expires_at == START + timedelta(seconds=120)
    clock.advance(119)
    assert engine.tasks.claim_next(bob) is None

    clock.advance(1)
    assert engine.loops.sweep().leases_returned == 1

    again = engine.tasks.claim_next(bob)
    assert again is not None and again.task_id == task.task_id
    with pytest.raises(LeaseLostError):
        engine.tasks.answer(alice, task.task_id, {"ok": {"on": True}})
    assert engine.tasks.answer(bob, task.task_id, {"ok": {"on": True}}).loop_status == (
        "Completed"
    )


def test_stop_with_a_held_lease_is_stopping_until_the_lease_lapses(
    engine: Engine, clock: Clock
) -> None:
    flow = _flow(engine, task_count=2, TaskTimeLimitInSeconds=60)
    alice, bob = _worker(engine, "alice"), _worker(engine, "bob")
    engine.loops.start("item-1", flow, '{"x": 1}')
    task = engine.tasks.claim_next(alice)
    assert task is not None

    assert engine.loops.stop("item-1").status == "Stopping"

    assert engine.tasks.claim_next(bob) is None
    assert engine.loops.stop("item-1").status == "Stopping"
    with pytest.raises(ValidationError):
        engine.loops.delete("item-1")
    with pytest.raises(LeaseLostError):
        engine.tasks.answer(alice, task.task_id, {"ok": {"on": True}})
    assert engine.loops.sweep().stopped == 0
    clock.advance(60)
    assert engine.loops.sweep().stopped == 1
    assert engine.loops.describe("item-1").status == "Stopped"
    assert _statuses(engine) == ["Stopped"]
    engine.loops.delete("item-1")


def test_stop_without_leases_is_stopped_at_once(engine: Engine) -> None:
    flow = _flow(engine)
    alice = _worker(engine, "alice")
    engine.loops.start("item-1", flow, '{"x": 1}')

    assert engine.loops.stop("item-1").status == "Stopped"

    assert engine.tasks.claim_next(alice) is None
    assert _statuses(engine) == ["Stopped"]


def test_only_finished_loops_can_be_deleted(engine: Engine) -> None:
    flow = _flow(engine)
    alice = _worker(engine, "alice")
    for name in ("done", "failed", "open"):
        engine.loops.start(name, flow, json.dumps({"name": name}))
    task = engine.tasks.claim_next(alice)
    assert task is not None and task.human_loop_name == "done"
    engine.tasks.answer(alice, task.task_id, {"ok": {"on": True}})
    engine.loops.fail("failed", "ValidationError", "the task UI did not render")

    with pytest.raises(ValidationError, match="only Completed, Failed and Stopped"):
        engine.loops.delete("open")
    with pytest.raises(ConflictError):
        engine.loops.fail("failed", "Again", "twice")
    engine.loops.delete("done")
    engine.loops.delete("failed")

    assert [loop.name for loop in engine.loops.list(flow, PageRequest()).rows] == [
        "open"
    ]


def test_start_is_idempotent_and_a_deleted_name_can_be_reused(engine: Engine) -> None:
    flow = _flow(engine)
    first = engine.loops.start("item-1", flow, '{"x": 1}')
    again = engine.loops.start("item-1", flow, '{"x": 1}')
    assert (first.created, again.created) == (True, False)
    with pytest.raises(ConflictError):
        engine.loops.start("item-1", flow, '{"x": 2}')
    engine.loops.stop("item-1")
    engine.loops.delete("item-1")

    reused = engine.loops.start("item-1", flow, '{"x": 2}')

    assert reused.created
    assert reused.loop.input_content == '{"x": 2}'


def test_loop_of_a_deleted_flow_stays_readable(engine: Engine) -> None:
    flow = _flow(engine)
    engine.loops.start("item-1", flow, '{"x": 1}')
    engine.loops.stop("item-1")

    engine.flows.delete("review")

    loop = engine.loops.describe("item-1")
    assert (loop.status, loop.flow_arn) == ("Stopped", flow)
    with pytest.raises(ValidationError, match="FlowDefinitionArn"):
        engine.loops.start("item-2", flow, '{"x": 1}')


def _start(name: str, flow: str, content: str) -> dict[str, object]:
    return {
        "HumanLoopName": name,
        "FlowDefinitionArn": flow,
        "HumanLoopInput": {"InputContent": content},
    }


def test_starts_written_together_each_get_their_own_outcome(engine: Engine) -> None:
    flow = _flow(engine, task_count=2)
    engine.loops.start("taken", flow, '{"x": 0}')

    outcomes = engine.loops.start_many(
        [
            _start("new-1", flow, '{"x": 1}'),
            _start("Bad Name", flow, '{"x": 2}'),
            _start("taken", flow, '{"x": 0}'),
            _start("taken", flow, '{"x": 9}'),
            _start("new-2", flow, '{"x": 3}'),
            _start("new-2", flow, '{"x": 3}'),
            _start("new-1", flow, '{"x": 4}'),
        ]
    )

    kinds = [
        type(o).__name__ if isinstance(o, Exception) else o.created for o in outcomes
    ]
    assert kinds == [
        True,
        "ValidationError",
        False,
        "ConflictError",
        True,
        False,
        "ConflictError",
    ]
    assert "HumanLoopName" in str(outcomes[1])
    listed = engine.loops.list(flow, PageRequest(max_results=10))
    assert sorted(i.name for i in listed.rows) == ["new-1", "new-2", "taken"]
    assert engine.loops.describe("new-1").input_content == '{"x": 1}'
    workers = [_worker(engine, f"w{i}") for i in range(2)]
    claims = [(w.name, engine.tasks.claim_next(w)) for w in workers for _ in range(4)]
    claimed = {(name, c.human_loop_name) for name, c in claims if c is not None}
    assert sum(c is None for _, c in claims) == 2  # two tasks per loop, no more
    assert claimed == {
        (w.name, n) for w in workers for n in ("taken", "new-1", "new-2")
    }


def test_a_worker_who_has_worked_the_oldest_loops_still_gets_the_next_one(
    engine: Engine,
) -> None:
    """The oldest available tasks all belong to loops alice already answered."""
    flow = _flow(engine, task_count=2)
    for i in range(45):
        engine.loops.start(f"item-{i:02d}", flow, json.dumps({"i": i}))
    alice, bob = _worker(engine, "alice"), _worker(engine, "bob")

    alice_got = []
    while (task := engine.tasks.claim_next(alice)) is not None:
        alice_got.append(task.human_loop_name)
        engine.tasks.answer(alice, task.task_id, {"ok": {"on": True}})
    bob_got = []
    while (task := engine.tasks.claim_next(bob)) is not None:
        bob_got.append(task.human_loop_name)
        engine.tasks.answer(bob, task.task_id, {"ok": {"on": True}})

    every = [f"item-{i:02d}" for i in range(45)]
    assert alice_got == every and bob_got == every
    assert set(_statuses(engine)) == {"Completed"}


def test_a_retried_last_answer_writes_the_output_a_dead_server_left_unwritten(
    engine: Engine,
) -> None:
    flow = _flow(engine)
    alice = _worker(engine, "alice")
    engine.loops.start("item-1", flow, '{"x": 1}')
    task = engine.tasks.claim_next(alice)
    assert task is not None
    engine.tasks.answer(alice, task.task_id, {"ok": {"on": True}})
    uri = engine.loops.describe("item-1").output_uri
    # The state a server leaves when it dies between the commit and the file.
    Path(engine.ctx.objects.locate(uri)).unlink()
    with engine.ctx.db.write() as session:
        session.execute(update(HumanLoop).values(output_written=False))
        session.execute(delete(Event))

    retried = engine.tasks.answer(alice, task.task_id, {"ok": {"on": True}})

    assert retried.loop_status == "Completed"
    document = json.loads(engine.ctx.objects.read(uri))
    assert [a["answerContent"] for a in document["humanAnswers"]] == [
        {"ok": {"on": True}}
    ]
    assert _statuses(engine) == ["Completed"]


def test_an_input_too_deep_to_render_fails_its_own_loop_and_no_other(
    engine: Engine,
) -> None:
    flow = _flow(engine)
    engine.task_uis.create("echo", "<crowd-form><p>{{ task.input.x }}</p></crowd-form>")
    echo = engine.flows.create(
        {
            "FlowDefinitionName": "echo",
            "RoleArn": "arn:aws:iam::000000000000:role/closedloop",
            "OutputConfig": {"S3OutputPath": "s3://reviews/out"},
            "HumanLoopConfig": {
                "WorkteamArn": engine.workforce.team_arn("reviewers"),
                "HumanTaskUiArn": engine.task_uis.arn("echo"),
                "TaskTitle": "Echo",
                "TaskDescription": "Echo the input",
                "TaskCount": 1,
            },
        }
    ).arn
    deep = '{"x": ' + "[" * 1000 + "]" * 1000 + "}"

    outcomes = engine.loops.start_many(
        [
            _start("zeta", flow, '{"x": 1}'),
            _start("deep", echo, deep),
            _start("alpha", flow, '{"x": 2}'),
        ]
    )

    assert [getattr(o, "created", None) for o in outcomes] == [True, True, True]
    failed = engine.loops.describe("deep")
    assert (failed.status, failed.failure_code) == ("Failed", "ValidationError")
    assert "nested too deeply" in (failed.failure_reason or "")
    alice = _worker(engine, "alice")
    first, second = engine.tasks.claim_next(alice), engine.tasks.claim_next(alice)
    assert first is not None and second is not None
    assert [first.human_loop_name, second.human_loop_name] == ["zeta", "alpha"]


SCRIPTED_UI = """<crowd-form>
  <crowd-keypoint name="spots" src="{{ task.input.photo | grant_read_access }}"
    labels="['placeholder']"></crowd-keypoint>
</crowd-form>
<script>document.querySelector("crowd-keypoint").labels = ["pole", "sign"];</script>"""


@pytest.mark.parametrize("scripts", ["off", "inline"])
def test_labels_a_template_script_sets_are_accepted_only_where_scripts_run(
    settings: Settings, clock: Clock, scripts: str
) -> None:
    engine = Engine(replace(settings, template_scripts=_scripts(scripts)), clock=clock)
    try:
        flow = _flow(engine, template=SCRIPTED_UI)
        engine.loops.start("spot-1", flow, json.dumps({"photo": "s3://p/1.png"}))
        alice = _worker(engine, "alice")
        task = engine.tasks.claim_next(alice)
        assert task is not None
        answer = {"spots": {"keypoints": [{"label": "pole", "x": 3, "y": 4}]}}

        if scripts == "off":
            with pytest.raises(ValidationError, match="has label 'pole'"):
                engine.tasks.answer(alice, task.task_id, answer)
            assert engine.loops.describe("spot-1").status == "InProgress"
        else:
            result = engine.tasks.answer(alice, task.task_id, answer)
            assert result.loop_status == "Completed"
    finally:
        engine.close()


def _scripts(value: str) -> tuple[str, ...]:
    return Settings.from_env({"CLOSEDLOOP_TEMPLATE_SCRIPTS": value}).template_scripts
