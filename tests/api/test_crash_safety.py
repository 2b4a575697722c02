"""Real ``closedloop serve`` processes: SIGKILL mid-answer loses nothing, two share a home."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fsspec.implementations.local import LocalFileSystem
from sqlalchemy import select, text

from closedloop.engine import Engine
from closedloop.errors import StoreError
from closedloop.feedback.reader import find_output_files
from closedloop.settings import Settings
from closedloop.store.models import Answer, HumanLoop, Worker

TEAM = "crowd"
TEMPLATE = (
    '<crowd-form><crowd-classifier name="label" '
    "categories=\"['cat', 'dog']\"></crowd-classifier>"
    '<crowd-input name="task"></crowd-input></crowd-form>'
)
LOOPS_PER_TASK_COUNT = {2: 24, 3: 16}
WORKERS = 8
KILLS = 2
HANG_GUARD_SECONDS = 240
SERVE = [sys.executable, "-c", "from closedloop.cli.main import main; main()"]
TEMP_OUTPUT_GLOB = "**/.output.json.*.tmp"


class ServeProcess:
    """``closedloop --home H serve`` as a child process on a free loopback port."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self._home = settings.home
        self._env = {
            **os.environ,
            "CLOSEDLOOP_DATABASE_URL": settings.database_url,
            "CLOSEDLOOP_SWEEP_SECONDS": "0.5",
        }
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        """Launch the process and wait until it answers ``/healthz``; returns its URL."""
        self.launch()
        return self.wait_healthy()

    def launch(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        command = [*SERVE, "--home", str(self._home), "serve", "--port", str(port)]
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [*command, "--log-level", "warning"],
                env=self._env,
                stdout=log,
                stderr=log,
            )
        self.url = f"http://127.0.0.1:{port}"

    def wait_healthy(self) -> str:
        assert self._process is not None
        while self._process.poll() is None:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self.url
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"closedloop serve exited early; see {self._log}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, as when the machine loses the process."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def serve(settings: Settings, tmp_path: Path) -> Iterator[list[ServeProcess]]:
    """Two (not yet started) serve processes on the test installation's home."""
    processes = [ServeProcess(settings, tmp_path / f"serve-{i}.log") for i in range(2)]
    yield processes
    for process in processes:
        process.stop()


def make_flow(engine: Engine, name: str, task_count: int) -> str:
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
                # The API's smallest lease: a claim whose reply died with the server
                # returns to the queue after this long.
                "TaskTimeLimitInSeconds": 30,
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


def worker_tokens(engine: Engine, count: int) -> dict[str, str]:
    """Bearer token by worker id, for ``count`` workers in ``TEAM``."""
    tokens: dict[str, str] = {}
    for i in range(count):
        worker = engine.workforce.create_worker(f"worker-{i:02d}", [TEAM])
        tokens[worker.worker_id] = engine.workforce.issue_token(worker.name)
    return tokens


@dataclass
class Acked:
    """An answer the server acknowledged with a 2xx."""

    worker_id: str
    loop: str
    content: dict[str, Any]


@dataclass
class Ledger:
    """What the HTTP workers saw: acknowledged answers, completions, broken rules."""

    loops: dict[str, int]
    urls: list[str]
    up: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: dict[int, tuple[str, datetime]] = field(default_factory=dict)
    acked: dict[int, Acked] = field(default_factory=dict)
    completed: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def claimed(self, worker_id: str, task: dict[str, Any]) -> None:
        """Record a lease; a task leased again before the last lease ran out is a violation."""
        leased_at = datetime.fromisoformat(task["leasedAt"])
        expires = datetime.fromisoformat(task["leaseExpiresAt"])
        with self.lock:
            holder, until = self.held.get(task["taskId"], ("", leased_at))
            if until > leased_at:
                self.violations.append(
                    f"task {task['taskId']} leased to {worker_id} while {holder} held it"
                )
            self.held[task["taskId"]] = (worker_id, expires)

    def settled(
        self, worker_id: str, task_id: int, acked: Acked | None, status: str = ""
    ) -> None:
        with self.lock:
            if self.held.get(task_id, ("",))[0] == worker_id:
                del self.held[task_id]
            if acked is not None:
                self.acked[task_id] = acked
            if status == "Completed" and acked is not None:
                self.completed.add(acked.loop)
            if len(self.completed) == len(self.loops):
                self.stop.set()

    def failed(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)


@dataclass
class HttpWorker:
    """A reviewer on the worker API who retries an answer until the server settles it."""

    worker_id: str
    token: str
    ledger: Ledger
    seed: int
    pending: tuple[int, dict[str, Any]] | None = None
    requests: int = 0

    def run(self) -> None:
        rng = random.Random(self.seed)
        with httpx.Client(
            headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        ) as client:
            while not self.ledger.stop.is_set():
                if not self.ledger.up.wait(timeout=0.5):
                    continue
                urls = self.ledger.urls
                self.requests += 1
                try:
                    self._step(client, urls[self.requests % len(urls)], rng)
                except httpx.TransportError:
                    time.sleep(0.05)  # the server died; wait for the restart

    def _step(self, client: httpx.Client, url: str, rng: random.Random) -> None:
        if self.pending is None:
            self._claim(client, url, rng)
            return
        task_id, content = self.pending
        reply = client.post(
            f"{url}/api/v1/worker/tasks/{task_id}/answer",
            json={"answerContent": content},
        )
        if reply.status_code == 409:
            # The lease lapsed while the server was down; the answer was never taken.
            self.ledger.settled(self.worker_id, task_id, None)
        elif reply.status_code == 200:
            body = reply.json()
            acked = Acked(self.worker_id, body["humanLoopName"], content)
            self.ledger.settled(self.worker_id, task_id, acked, body["humanLoopStatus"])
        else:
            self.ledger.failed(f"answer {task_id}: {reply.status_code} {reply.text}")
            self.ledger.settled(self.worker_id, task_id, None)
        self.pending = None

    def _claim(self, client: httpx.Client, url: str, rng: random.Random) -> None:
        reply = client.post(f"{url}/api/v1/worker/tasks/next")
        if reply.status_code == 204:
            time.sleep(0.02)
            return
        if reply.status_code != 200:
            self.ledger.failed(f"claim: {reply.status_code} {reply.text}")
            return
        task = reply.json()
        task_id = task["taskId"]
        self.ledger.claimed(self.worker_id, task)
        label = rng.choice(["cat", "dog"])
        self.pending = (task_id, {"label": {"label": label}, "task": str(task_id)})


def start_workers(tokens: dict[str, str], ledger: Ledger) -> list[threading.Thread]:
    threads = [
        threading.Thread(
            target=HttpWorker(worker_id, token, ledger, seed=i).run, daemon=True
        )
        for i, (worker_id, token) in enumerate(sorted(tokens.items()))
    ]
    for thread in threads:
        thread.start()
    return threads


def finish_workers(threads: list[threading.Thread], ledger: Ledger) -> None:
    """Wait until every loop completed (or the hang guard fires), then stop the workers."""
    ledger.stop.wait(HANG_GUARD_SECONDS)
    ledger.stop.set()
    for thread in threads:
        thread.join()


def stored_answers(engine: Engine) -> dict[int, Acked]:
    """Every answer in the metadata database, by task id."""
    with engine.ctx.db.read() as session:
        rows = session.execute(
            select(
                Answer.task_id, Worker.worker_id, HumanLoop.name, Answer.answer_content
            )
            .join(Worker, Worker.id == Answer.worker_pk)
            .join(HumanLoop, HumanLoop.id == Answer.loop_id)
        ).all()
    return {
        task: Acked(worker, loop, json.loads(content))
        for task, worker, loop, content in rows
    }


def output_files(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every file a reader of the output bucket takes for output, parsed, by loop name."""
    documents: dict[str, dict[str, Any]] = {}
    for path in find_output_files(LocalFileSystem(), settings.resolved_storage_url):
        document = json.loads(Path(path).read_bytes())
        documents[document["humanLoopName"]] = document
    return documents


def assert_store_holds_every_acknowledged_answer(
    engine: Engine, ledger: Ledger
) -> None:
    stored = stored_answers(engine)
    with ledger.lock:
        acked = dict(ledger.acked)
    missing = [t for t, a in acked.items() if stored.get(t) != a]
    assert missing == [], f"acknowledged answers lost: {missing}"


def assert_outputs_are_whole(engine: Engine, ledger: Ledger) -> None:
    """Every output file parses and holds TaskCount answers from distinct workers."""
    for name, document in output_files(engine.settings).items():
        workers = [a["workerId"] for a in document["humanAnswers"]]
        assert len(workers) == len(set(workers)) == ledger.loops[name], document


def assert_every_loop_completed_as_stored(engine: Engine, ledger: Ledger) -> None:
    """Each loop is Completed and its output.json holds exactly the stored answers."""
    in_store: dict[str, list[str]] = {name: [] for name in ledger.loops}
    for answer in stored_answers(engine).values():
        in_store[answer.loop].append(_key(answer.worker_id, answer.content))
    documents = output_files(engine.settings)
    assert set(documents) == set(ledger.loops)

    for name, task_count in ledger.loops.items():
        info = engine.loops.describe(name)
        assert (info.status, info.answer_count) == ("Completed", task_count)
        in_output = [
            _key(a["workerId"], a["answerContent"])
            for a in documents[name]["humanAnswers"]
        ]
        assert sorted(in_output) == sorted(in_store[name])


def _key(worker_id: str, content: dict[str, Any]) -> str:
    return json.dumps([worker_id, content], sort_keys=True)


def leftover_temp_files(settings: Settings) -> list[Path]:
    return sorted(Path(settings.resolved_storage_url).glob(TEMP_OUTPUT_GLOB))


def test_sigkilled_server_loses_no_acknowledged_answer_and_loops_complete_after_restart(
    engine: Engine, serve: list[ServeProcess]
) -> None:
    rng = random.Random(20240611)
    loops = start_loops(engine, LOOPS_PER_TASK_COUNT)
    tokens = worker_tokens(engine, WORKERS)
    server = serve[0]
    ledger = Ledger(loops, [server.start()])
    tasks = sum(loops.values())
    kill_points = sorted(rng.sample(range(tasks // 10, tasks * 6 // 10), KILLS))

    ledger.up.set()
    threads = start_workers(tokens, ledger)
    for point in kill_points:
        while ledger.acked_count() < point and not ledger.stop.wait(0.005):
            pass
        ledger.up.clear()
        server.kill()

        assert_store_holds_every_acknowledged_answer(engine, ledger)
        assert_outputs_are_whole(engine, ledger)

        ledger.urls = [server.start()]
        ledger.up.set()
    finish_workers(threads, ledger)

    assert ledger.errors == []
    assert ledger.violations == []
    assert ledger.completed == set(loops)
    assert_store_holds_every_acknowledged_answer(engine, ledger)
    assert_outputs_are_whole(engine, ledger)
    assert_every_loop_completed_as_stored(engine, ledger)
    for leftover in leftover_temp_files(engine.settings):
        assert leftover.name.startswith(".output.json.")
        assert str(leftover) not in set(
            find_output_files(LocalFileSystem(), engine.settings.resolved_storage_url)
        )


def test_two_serve_processes_on_one_home_complete_every_loop_exactly_once(
    engine: Engine, serve: list[ServeProcess]
) -> None:
    loops = start_loops(engine, LOOPS_PER_TASK_COUNT)
    tokens = worker_tokens(engine, WORKERS)
    for process in serve:
        process.launch()
    ledger = Ledger(loops, [process.wait_healthy() for process in serve])

    ledger.up.set()
    finish_workers(start_workers(tokens, ledger), ledger)

    assert ledger.errors == []
    assert ledger.violations == []
    assert ledger.completed == set(loops)
    completed_events = Counter(
        e["detail"]["humanLoopName"]
        for e in engine.events.list_events(limit=100_000)
        if e["detail"]["humanLoopStatus"] == "Completed"
    )
    assert completed_events == Counter(set(loops))
    assert_store_holds_every_acknowledged_answer(engine, ledger)
    assert_outputs_are_whole(engine, ledger)
    assert_every_loop_completed_as_stored(engine, ledger)


def _fail_completion_on_commit(engine: Engine) -> None:
    """A database trigger that refuses to mark a loop Completed, as a crash before commit would."""
    statements = (
        [
            "CREATE TRIGGER fail_completion BEFORE UPDATE OF status ON human_loops "
            "WHEN NEW.status = 'Completed' "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ]
        if engine.ctx.db.is_sqlite
        else [
            "CREATE FUNCTION fail_completion() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
            "CREATE TRIGGER fail_completion BEFORE UPDATE ON human_loops FOR EACH ROW "
            "WHEN (NEW.status = 'Completed') EXECUTE FUNCTION fail_completion()",
        ]
    )
    with engine.ctx.db.write() as session:
        for statement in statements:
            session.execute(text(statement))


def test_no_output_json_appears_when_the_completing_answer_is_not_committed(
    engine: Engine,
) -> None:
    (name,) = start_loops(engine, {1: 1})
    worker = engine.workforce.create_worker("alice", [TEAM])
    task = engine.tasks.claim_next(worker)
    assert task is not None
    _fail_completion_on_commit(engine)

    with pytest.raises(StoreError):
        engine.tasks.answer(worker, task.task_id, {"label": {"label": "cat"}})

    info = engine.loops.describe(name)
    assert (info.status, info.answer_count) == ("InProgress", 0)
    assert not engine.ctx.objects.exists(info.output_uri)
