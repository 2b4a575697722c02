"""Many workers claiming and answering at once: no double lease, no lost or doubled answer."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest

from closedloop.core.tasks import AnswerResult, ClaimedTask, Tasks
from closedloop.core.workforce import WorkerInfo
from closedloop.engine import Engine
from closedloop.settings import Settings

TEAM = "crowd"
TEMPLATE = (
    '<crowd-form><crowd-classifier name="label" '
    "categories=\"['cat', 'dog']\"></crowd-classifier>"
    '<crowd-input name="by"></crowd-input></crowd-form>'
)
WORKERS = 16
LOOPS_PER_TASK_COUNT = {2: 110, 3: 90}
RELEASE_SHARE = 0.1
HANG_GUARD_SECONDS = 240


def make_flow(engine: Engine, name: str, task_count: int) -> str:
    """A flow definition for team ``TEAM`` with ``task_count`` answers per loop."""
    engine.workforce.create_team(TEAM)
    engine.task_uis.create(f"{name}-ui", TEMPLATE)
    return engine.flows.create(
        {
            "FlowDefinitionName": name,
            "RoleArn": "arn:aws:iam::000000000000:role/closedloop",
            "OutputConfig": {"S3OutputPath": "s3://reviews/out"},
            "HumanLoopConfig": {
                "WorkteamArn": engine.workforce.team_arn(TEAM),
                "HumanTaskUiArn": engine.task_uis.arn(f"{name}-ui"),
                "TaskTitle": "Cat or dog?",
                "TaskDescription": "Look at the picture",
                "TaskCount": task_count,
            },
        }
    ).arn


def start_loops(engine: Engine, counts: dict[int, int]) -> dict[str, int]:
    """Start ``counts[task_count]`` loops per TaskCount; returns TaskCount by loop name."""
    loops: dict[str, int] = {}
    for task_count, how_many in counts.items():
        flow_arn = make_flow(engine, f"flow-tc{task_count}", task_count)
        for i in range(how_many):
            name = f"item-tc{task_count}-{i:04d}"
            engine.loops.start(name, flow_arn, json.dumps({"item": name}))
            loops[name] = task_count
    return loops


def make_workers(engine: Engine, count: int) -> list[WorkerInfo]:
    return [
        engine.workforce.create_worker(f"worker-{i:02d}", [TEAM]) for i in range(count)
    ]


@dataclass
class Ledger:
    """What the workers saw, kept under one lock, and every rule they saw broken."""

    loops: dict[str, int]
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: dict[int, str] = field(default_factory=dict)
    touched: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    claims: Counter[int] = field(default_factory=Counter)
    answers: dict[str, list[tuple[str, dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    completions: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def claimed(self, worker: str, task: ClaimedTask) -> None:
        with self.lock:
            self.claims[task.task_id] += 1
            holder = self.held.get(task.task_id)
            if holder is not None:
                self.violations.append(
                    f"task {task.task_id} leased to {worker} while {holder} held it"
                )
            if task.human_loop_name in self.touched[worker]:
                self.violations.append(
                    f"{worker} got a second task of loop {task.human_loop_name}"
                )
            self.held[task.task_id] = worker
            self.touched[worker].add(task.human_loop_name)

    def letting_go(self, worker: str, task: ClaimedTask, *, answering: bool) -> None:
        """Called before answer or release: the database still holds the lease."""
        with self.lock:
            self.held.pop(task.task_id, None)
            if not answering:
                self.touched[worker].discard(task.human_loop_name)

    def answered(
        self, worker: WorkerInfo, content: dict[str, Any], result: AnswerResult
    ) -> None:
        with self.lock:
            self.answers[result.human_loop_name].append((worker.worker_id, content))
            if result.loop_status == "Completed":
                self.completions[result.human_loop_name] += 1
                needed = self.loops[result.human_loop_name]
                if result.answers_received != needed:
                    self.violations.append(
                        f"{result.human_loop_name} completed with "
                        f"{result.answers_received} of {needed} answers"
                    )
            if len(self.completions) == len(self.loops):
                self.stop.set()

    def failed(self, worker: str, action: str, exc: BaseException) -> None:
        with self.lock:
            self.errors.append(f"{worker} {action}: {type(exc).__name__}: {exc}")


def review(tasks: Tasks, worker: WorkerInfo, ledger: Ledger, seed: int) -> None:
    """One worker: claim, then answer (or now and then release), until every loop is done."""
    rng = random.Random(seed)
    while not ledger.stop.is_set():
        try:
            task = tasks.claim_next(worker)
        except Exception as exc:  # every failure is a finding; keep the worker going
            ledger.failed(worker.name, "claim", exc)
            continue
        if task is None:
            time.sleep(0.002)
            continue
        ledger.claimed(worker.name, task)
        _settle(tasks, worker, task, ledger, rng)


def _settle(
    tasks: Tasks,
    worker: WorkerInfo,
    task: ClaimedTask,
    ledger: Ledger,
    rng: random.Random,
) -> None:
    releasing = rng.random() < RELEASE_SHARE
    ledger.letting_go(worker.name, task, answering=not releasing)
    try:
        if releasing:
            tasks.release(worker, task.task_id)
            return
        content = {"label": {"label": rng.choice(["cat", "dog"])}, "by": worker.name}
        ledger.answered(worker, content, tasks.answer(worker, task.task_id, content))
    except Exception as exc:
        ledger.failed(worker.name, "release" if releasing else "answer", exc)


def run_threads(targets: list[Callable[[], None]], stop: threading.Event) -> None:
    """Run every target on its own thread; a hang sets ``stop`` instead of blocking pytest."""
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    stop.wait(HANG_GUARD_SECONDS)
    stop.set()
    for thread in threads:
        thread.join()


def assert_every_loop_completed_once(engine: Engine, ledger: Ledger) -> None:
    """The store, the output files and the events agree with what the workers saw."""
    assert ledger.errors == []
    assert ledger.violations == []
    assert {n for n, c in ledger.completions.items() if c == 1} == set(ledger.loops)

    completed_events = Counter(
        e["detail"]["humanLoopName"]
        for e in engine.events.list_events(limit=100_000)
        if e["detail"]["humanLoopStatus"] == "Completed"
    )
    assert completed_events == Counter(set(ledger.loops))

    for name, task_count in ledger.loops.items():
        info = engine.loops.describe(name)
        assert (info.status, info.answer_count) == ("Completed", task_count)
        output = json.loads(engine.ctx.objects.read(info.output_uri))
        assert output["humanLoopName"] == name
        assert output["inputContent"] == {"item": name}
        answers = [(a["workerId"], a["answerContent"]) for a in output["humanAnswers"]]
        assert len(answers) == task_count
        assert len({worker for worker, _ in answers}) == task_count
        assert sorted(answers, key=str) == sorted(ledger.answers[name], key=str)


@pytest.fixture
def engines(settings: Settings) -> Iterator[list[Engine]]:
    """One Engine per worker on the same installation, as separate processes would open it."""
    opened = [Engine(settings) for _ in range(WORKERS)]
    yield opened
    for engine in opened:
        engine.close()


def test_workers_with_their_own_engines_complete_every_loop_exactly_once(
    engines: list[Engine],
) -> None:
    setup = engines[0]
    ledger = Ledger(start_loops(setup, LOOPS_PER_TASK_COUNT))
    workers = make_workers(setup, WORKERS)

    run_threads(
        [
            partial(review, e.tasks, w, ledger, i)
            for i, (e, w) in enumerate(zip(engines, workers, strict=True))
        ],
        ledger.stop,
    )

    assert_every_loop_completed_once(setup, ledger)


def test_workers_sharing_one_engine_complete_every_loop_exactly_once(
    engine: Engine,
) -> None:
    ledger = Ledger(start_loops(engine, LOOPS_PER_TASK_COUNT))
    workers = make_workers(engine, WORKERS)

    run_threads(
        [
            partial(review, engine.tasks, w, ledger, 100 + i)
            for i, w in enumerate(workers)
        ],
        ledger.stop,
    )

    assert_every_loop_completed_once(engine, ledger)


def answer_at_once(
    pairs: list[tuple[Engine, WorkerInfo, ClaimedTask]],
) -> list[AnswerResult | BaseException]:
    """Answer each claimed task on its own thread, all released by one barrier."""
    barrier = threading.Barrier(len(pairs))
    results: list[AnswerResult | BaseException] = [RuntimeError("not run")] * len(pairs)

    def answer(index: int) -> None:
        engine, worker, task = pairs[index]
        barrier.wait()
        try:
            results[index] = engine.tasks.answer(
                worker, task.task_id, {"label": {"label": "cat"}, "by": worker.name}
            )
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(len(pairs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_last_answers_at_the_same_moment_complete_the_loop_once(
    engines: list[Engine],
) -> None:
    alice_engine, bob_engine = engines[0], engines[1]
    loops = start_loops(alice_engine, {2: 25})
    alice, bob = make_workers(alice_engine, 2)

    for name in loops:
        alice_task = alice_engine.tasks.claim_next(alice)
        bob_task = bob_engine.tasks.claim_next(bob)
        assert alice_task is not None and bob_task is not None
        assert alice_task.human_loop_name == bob_task.human_loop_name == name

        results = answer_at_once(
            [(alice_engine, alice, alice_task), (bob_engine, bob, bob_task)]
        )

        assert all(isinstance(r, AnswerResult) for r in results), results
        statuses = sorted(r.loop_status for r in results if isinstance(r, AnswerResult))
        assert statuses == ["Completed", "InProgress"]
        info = bob_engine.loops.describe(name)
        assert (info.status, info.answer_count) == ("Completed", 2)
        output = json.loads(bob_engine.ctx.objects.read(info.output_uri))
        assert {a["workerId"] for a in output["humanAnswers"]} == {
            alice.worker_id,
            bob.worker_id,
        }


def claim_at_once(
    engines: list[Engine], worker: WorkerInfo
) -> list[ClaimedTask | BaseException | None]:
    """The same worker claims from every engine at once (e.g. two open browser tabs)."""
    barrier = threading.Barrier(len(engines))
    results: list[ClaimedTask | BaseException | None] = [None] * len(engines)

    def claim(index: int) -> None:
        barrier.wait()
        try:
            results[index] = engines[index].tasks.claim_next(worker)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_one_worker_claiming_from_two_places_at_once_never_gets_one_loop_twice(
    engines: list[Engine],
) -> None:
    setup = engines[0]
    start_loops(setup, {2: 20})
    (worker,) = make_workers(setup, 1)
    held: list[ClaimedTask] = []

    for _ in range(20):
        results = claim_at_once(engines[:2], worker)
        assert not [r for r in results if isinstance(r, BaseException)], results
        held.extend(r for r in results if isinstance(r, ClaimedTask))

    per_loop = Counter(task.human_loop_name for task in held)
    assert [name for name, n in per_loop.items() if n > 1] == []
    assert len(held) == 20


def test_batches_of_the_same_names_from_two_engines_each_start_every_loop_once(
    settings: Settings,
) -> None:
    """Two servers writing batches that share names, in opposite orders."""
    if settings.resolved_database_url.startswith("sqlite"):
        pytest.skip(
            "only PostgreSQL can deadlock here: SQLite's BEGIN IMMEDIATE runs "
            "one writer at a time, so the opposite orders never interleave"
        )
    first, second = Engine(settings), Engine(settings)
    try:
        flow_arn = make_flow(first, "batches", 1)
        names = [f"item-{i:04d}" for i in range(2000)]
        batch = [
            {
                "HumanLoopName": name,
                "FlowDefinitionArn": flow_arn,
                "HumanLoopInput": {"InputContent": json.dumps({"n": name})},
            }
            for name in names
        ]
        outcomes: dict[int, list[Any]] = {}
        gate = threading.Barrier(2)

        def start(index: int, engine: Engine, requests: list[dict[str, Any]]) -> None:
            gate.wait()
            outcomes[index] = engine.loops.start_many(requests)

        threads = [
            threading.Thread(target=start, args=(0, first, batch)),
            threading.Thread(target=start, args=(1, second, batch[::-1])),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(HANG_GUARD_SECONDS)

        results = [*outcomes[0], *outcomes[1][::-1]]
        assert [r for r in results if isinstance(r, Exception)] == []
        created = Counter(r.loop.name for r in results if r.created)
        assert created == Counter(names)
        assert all(
            a.loop.arn == b.loop.arn
            for a, b in zip(outcomes[0], outcomes[1][::-1], strict=True)
        )
    finally:
        first.close()
        second.close()
