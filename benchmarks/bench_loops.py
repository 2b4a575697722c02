"""Benchmark the human-loop engine: StartHumanLoop throughput and claim-next latency.

Run ``python benchmarks/bench_loops.py`` for the full run or add ``--small`` for a
quick one. Measured on SQLite (a fresh home folder) and on PostgreSQL (a fresh
database made from ``--postgres-url`` or the URL in ``/tmp/pgurl``, dropped at
the end):

(a) StartHumanLoop over SigV4-signed HTTP against ``closedloop serve`` running
    as a separate process, from client processes that either pre-sign raw
    requests with botocore's ``SigV4Auth`` and send them over keep-alive httpx
    connections ("raw"), or call boto3's ``sagemaker-a2i-runtime`` client
    ("boto3"); median loops/s of several runs;
(b) ``engine.loops.start`` in-process, from 1 and from 4 threads;
(c) ``engine.tasks.claim_next`` latency with 100,000 and 1,000,000 pending
    loops, bulk-loaded with SQLAlchemy Core executemany in the shape that
    ``Loops.start`` writes; each claim is followed by an answer or a release.
    ``--history N`` first loads N loops the bench workers already answered,
    ahead of the pending ones in id order, as a long-running installation has.

Results are printed and written to ``benchmarks/results/loops.json``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, event, func, insert, select, text
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.engine import make_url

from closedloop.core.output import output_uri
from closedloop.core.workforce import WorkerInfo
from closedloop.engine import Engine
from closedloop.settings import Settings
from closedloop.store.models import Base, FlowDefinition, HumanLoop, Task

RESULTS = Path(__file__).parent / "results" / "loops.json"
PGURL_FILE = Path("/tmp/pgurl")
TARGET_HTTP_PER_S = 500.0
TARGET_CLAIM_P99_MS = 20.0
TEAM = "bench-team"
FLOW = "bench-flow"
FULL = {"loops": 5_000, "sizes": [100_000, 1_000_000], "claims": 2_000}
SMALL = {"loops": 2_000, "sizes": [10_000], "claims": 500}
BATCH = 20_000
WARMUP_CLAIMS = 50
PROFILED_CLAIMS = 200
WORKERS = 4
WRK = shutil.which("wrk") or "wrk"
PY_MODES = ("raw", "boto3")
MODES = ("raw", "boto3", "wrk", "wrk-plain")
MODE_LABELS = {
    "raw": "pre-signed raw httpx",
    "boto3": "boto3 client",
    "wrk": "wrk, pre-signed",
    "wrk-plain": "wrk, pre-signed, serve without uvloop/httptools",
}

WRK_SCRIPT = r"""-- Written by bench_loops.py: send each pre-signed StartHumanLoop request once.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local nthreads, k = tonumber(args[2]), 0
  donefile = args[3] .. "/done-" .. id
  reqs = {}
  local f = assert(io.open(args[1], "rb"))
  while true do
    local size = f:read("*n")
    if size == nil then break end
    f:read(1)
    local raw = f:read(size)
    if k % nthreads == id - 1 then table.insert(reqs, raw) end
    k = k + 1
  end
  f:close()
  assigned = #reqs
  drain = wrk.format("GET", "/healthz")
  -- wrk calls request() once on the first thread to check it; that one is not sent.
  verifying = id == 1
  sent, answered, ok, errors, drained = 0, 0, 0, 0, 0
  first, last, statuses = 0, 0, ""
end

function request()
  if verifying then
    verifying = false
    return reqs[1] or drain
  end
  if sent < assigned then
    if sent == 0 then first = now() end
    sent = sent + 1
    return reqs[sent]
  end
  return drain
end

function delay()
  if sent >= assigned then return 600000 end
  return 0
end

local function finish()
  local f = io.open(donefile, "w")
  f:write("done")
  f:close()
  wrk.thread:stop()
end

function response(status, headers, body)
  if status == 200 and string.find(body, "HumanLoopArn", 1, true) then
    ok = ok + 1
  elseif status == 200 then
    drained = drained + 1
    return
  else
    errors = errors + 1
    if #statuses < 200 then statuses = statuses .. " " .. status end
  end
  answered = answered + 1
  last = now()
  if answered >= assigned then finish() end
end

function done(summary, latency, requests)
  local parts = {}
  for _, t in ipairs(threads) do
    table.insert(parts, string.format(
      '{"assigned":%d,"ok":%d,"errors":%d,"drained":%d,'
        .. '"first":%.6f,"last":%.6f,"statuses":"%s"}',
      t:get("assigned"), t:get("ok"), t:get("errors"), t:get("drained"),
      t:get("first"), t:get("last"), t:get("statuses")))
  end
  io.write("BENCH-THREADS [" .. table.concat(parts, ",") .. "]\n")
  io.write(string.format(
    'BENCH-LATENCY {"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""

console = Console()


@dataclass(frozen=True)
class Fixture:
    """What every measurement needs: a flow, its ARN, an access key, workers."""

    flow_arn: str
    access_key_id: str
    secret_access_key: str
    workers: tuple[WorkerInfo, ...]


@dataclass(frozen=True)
class ClientJob:
    """One client process's share of a StartHumanLoop run."""

    mode: str
    base_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    flow_arn: str
    names: tuple[str, ...]


@dataclass
class Timing:
    """Statement timings gathered by a cursor listener while profiling."""

    active: bool = False
    started: dict[int, float] = field(default_factory=dict)
    totals: dict[str, list[float]] = field(default_factory=dict)
    captured: list[tuple[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------- set-up


def small_input(index: int) -> str:
    return orjson.dumps({"text": f"item {index}", "score": 0.42}).decode()


def make_fixture(engine: Engine) -> Fixture:
    """A team of workers, a task UI, a TaskCount-1 flow and an access key."""
    workers = tuple(
        engine.workforce.create_worker(f"bench-w{i}", [TEAM]) for i in range(WORKERS)
    )
    engine.task_uis.create(
        "bench-ui",
        "<crowd-form>{{ task.input.text }}"
        "<crowd-classifier name='label' categories=\"['ok', 'bad']\"></crowd-classifier>"
        "</crowd-form>",
    )
    engine.flows.create(
        {
            "FlowDefinitionName": FLOW,
            "RoleArn": "arn:aws:iam::000000000000:role/closedloop-bench",
            "OutputConfig": {"S3OutputPath": "s3://closedloop-bench/reviews"},
            "HumanLoopConfig": {
                "WorkteamArn": engine.workforce.team_arn(TEAM),
                "HumanTaskUiArn": engine.task_uis.arn("bench-ui"),
                "TaskTitle": "Label the item",
                "TaskDescription": "Pick a label",
                "TaskCount": 1,
            },
        }
    )
    key = engine.keys.create("bench-key")
    return Fixture(
        engine.flows.arn(FLOW), key.access_key_id, key.secret_access_key, workers
    )


@contextmanager
def installation(
    backend: str, label: str, root: Path, pg_admin: str
) -> Iterator[Settings]:
    """Settings for a fresh home folder and, on PostgreSQL, a fresh database."""
    home = root / f"{backend}-{label}"
    if backend == "sqlite":
        yield Settings.from_env({}, home=home)
        return
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    name = f"closedloop_bench_{os.getpid()}_{label}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(pg_admin).set(database=name).render_as_string(hide_password=False)
    try:
        yield Settings.from_env({}, home=home, database_url=url)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# ---------------------------------------------------------------- (a) HTTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ServerOptions:
    """How ``closedloop serve`` is started: event loop and parser, worker count.

    ``plain`` hides uvloop and httptools from the server process (stub modules
    that raise ImportError go first on PYTHONPATH), so uvicorn's "auto" choice
    falls back to asyncio and h11. ``workers`` is passed as ``--workers N`` for
    a serve that grows that option; today's serve has none, so leave it unset.
    """

    plain: bool = False
    workers: int | None = None


HIDDEN_MODULES = ("uvloop", "httptools")


@contextmanager
def serve(
    settings: Settings, options: ServerOptions = ServerOptions()
) -> Iterator[tuple[str, str]]:
    """``closedloop serve`` on the home of ``settings``; yields its URL and stack."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSEDLOOP_")}
    if settings.database_url:
        env["CLOSEDLOOP_DATABASE_URL"] = settings.database_url
    command = [
        str(Path(sys.executable).with_name("closedloop")),
        "--home",
        str(settings.home),
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    if options.workers is not None:
        command += ["--workers", str(options.workers)]
    with tempfile.TemporaryDirectory(prefix="closedloop-bench-stubs-") as stubs:
        if options.plain:
            for module in HIDDEN_MODULES:
                (Path(stubs) / f"{module}.py").write_text(
                    f"raise ImportError('{module} hidden by bench_loops.py')\n"
                )
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (stubs, env.get("PYTHONPATH", "")) if p
            )
        log = (settings.home / "serve.log").open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process)
            yield url, server_stack(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()


def server_stack(pid: int) -> str:
    """Which of uvloop and httptools the server process has loaded (Linux only)."""
    maps = Path(f"/proc/{pid}/maps")
    if not maps.exists():
        return "unknown"
    loaded = maps.read_text()
    loop = "uvloop" if "uvloop" in loaded else "asyncio"
    parser = "httptools" if "httptools" in loaded else "h11"
    return f"{loop}+{parser}"


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"closedloop serve exited with code {process.returncode}"
            )
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"closedloop serve on {url} did not answer /healthz in 60 s")


def signed_request(
    signer: Any, url: str, name: str, flow_arn: str
) -> tuple[bytes, dict[str, str]]:
    """A StartHumanLoop request signed as boto3 signs it; returns body and headers.

    The body is serialized like botocore's rest-json serializer, and the Host
    header (which the signature covers) is set to what is sent on the wire.
    """
    from botocore.awsrequest import AWSRequest

    body = json.dumps(start_request(name, flow_arn)).encode()
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "Host": urlsplit(url).netloc,
            "User-Agent": boto_user_agent(),
        },
    )
    signer.add_auth(request)
    headers = {
        k: v.decode() if isinstance(v, bytes) else str(v)
        for k, v in request.headers.items()
    }
    headers["Content-Length"] = str(len(body))
    return body, headers


@functools.cache
def boto_user_agent() -> str:
    """The product tokens of boto3's own User-Agent header."""
    import boto3
    import botocore

    return f"Boto3/{boto3.__version__} Botocore/{botocore.__version__}"


def make_signer(access_key_id: str, secret_access_key: str, region: str) -> Any:
    from botocore.auth import SigV4Auth
    from botocore.credentials import Credentials

    return SigV4Auth(Credentials(access_key_id, secret_access_key), "sagemaker", region)


def raw_sender(job: ClientJob) -> Callable[[int], bool]:
    """Pre-sign every request now, so the timed part only sends them."""
    signer = make_signer(job.access_key_id, job.secret_access_key, job.region)
    url = job.base_url + "/a2i/human-loops"
    prepared = [signed_request(signer, url, name, job.flow_arn) for name in job.names]
    client = httpx.Client(timeout=60)

    def send(index: int) -> bool:
        body, headers = prepared[index]
        return client.post(url, content=body, headers=headers).status_code == 200

    return send


def boto3_sender(job: ClientJob) -> Callable[[int], bool]:
    import boto3
    from botocore.config import Config

    client = boto3.session.Session(
        aws_access_key_id=job.access_key_id,
        aws_secret_access_key=job.secret_access_key,
        region_name=job.region,
    ).client(
        "sagemaker-a2i-runtime",
        endpoint_url=job.base_url + "/a2i",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60),
    )

    def send(index: int) -> bool:
        request = start_request(job.names[index], job.flow_arn)
        reply = client.start_human_loop(**request)
        return bool(reply["HumanLoopArn"])

    return send


def start_request(name: str, flow_arn: str) -> dict[str, Any]:
    return {
        "HumanLoopName": name,
        "FlowDefinitionArn": flow_arn,
        "HumanLoopInput": {"InputContent": small_input(len(name))},
    }


def client_main(job: ClientJob, barrier: Any, results: Any) -> None:
    """A client process: prepare, wait for the others, send, report times."""
    send = raw_sender(job) if job.mode == "raw" else boto3_sender(job)
    barrier.wait()
    started = time.monotonic()
    errors = 0
    for index in range(len(job.names)):
        try:
            errors += not send(index)
        except Exception:  # a failed call is counted, not fatal
            errors += 1
    results.put((started, time.monotonic(), len(job.names), errors))


def http_run(
    url: str, settings: Settings, fx: Fixture, mode: str, names: list[str], clients: int
) -> dict[str, float]:
    """One run: ``clients`` processes share ``names``; returns loops/s and errors."""
    spawn = mp.get_context("spawn")
    barrier = spawn.Barrier(clients)
    results = spawn.Queue()
    jobs = [
        ClientJob(
            mode,
            url,
            settings.region,
            fx.access_key_id,
            fx.secret_access_key,
            fx.flow_arn,
            tuple(names[i::clients]),
        )
        for i in range(clients)
    ]
    procs = [
        spawn.Process(target=client_main, args=(j, barrier, results)) for j in jobs
    ]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=3600) for _ in procs]
    for proc in procs:
        proc.join()
    wall = max(r[1] for r in reports) - min(r[0] for r in reports)
    sent = sum(r[2] for r in reports)
    return {
        "loops_per_s": sent / wall,
        "seconds": wall,
        "errors": sum(r[3] for r in reports),
    }


def presign_file(url: str, settings: Settings, fx: Fixture, names: list[str]) -> bytes:
    """Every request as raw HTTP/1.1 bytes, each preceded by its length and a newline."""
    signer = make_signer(fx.access_key_id, fx.secret_access_key, settings.region)
    target = url + "/a2i/human-loops"
    path = urlsplit(target).path
    chunks = []
    for name in names:
        body, headers = signed_request(signer, target, name, fx.flow_arn)
        head = f"POST {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        raw = head.encode() + b"\r\n" + body
        chunks.append(f"{len(raw)}\n".encode() + raw)
    return b"".join(chunks)


def wrk_run(
    url: str,
    settings: Settings,
    fx: Fixture,
    names: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One wrk run that sends each of ``names`` once; returns loops/s and errors.

    Requests are signed just before wrk starts (the server refuses signatures
    older than five minutes). wrk's main thread sleeps for the whole
    ``--duration``, so it is interrupted once every thread reports it is done;
    the rate is timed inside the Lua script, from the first request sent to
    the last StartHumanLoop response received.
    """
    with tempfile.TemporaryDirectory(prefix="closedloop-bench-wrk-") as folder:
        work = Path(folder)
        (work / "requests.bin").write_bytes(presign_file(url, settings, fx, names))
        (work / "replay.lua").write_text(WRK_SCRIPT)
        command = [
            WRK,
            f"--threads={args.wrk_threads}",
            f"--connections={args.wrk_connections}",
            f"--duration={args.wrk_duration}s",
            f"--timeout={args.wrk_duration}s",
            f"--script={work / 'replay.lua'}",
            url,
            "--",
            str(work / "requests.bin"),
            str(args.wrk_threads),
            str(work),
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        wait_for_wrk(process, work, args.wrk_threads)
        output = process.communicate(timeout=60)[0].decode()
    return parse_wrk(output, len(names))


def wait_for_wrk(process: subprocess.Popen[bytes], work: Path, threads: int) -> None:
    """Interrupt wrk (SIGINT makes it report) once every thread wrote its done file."""
    while process.poll() is None:
        if len(list(work.glob("done-*"))) >= threads:
            process.send_signal(signal.SIGINT)
            return
        time.sleep(0.05)


def parse_wrk(output: str, expected: int) -> dict[str, Any]:
    lines = {
        line.split(" ", 1)[0]: line.split(" ", 1)[1]
        for line in output.splitlines()
        if line.startswith("BENCH-")
    }
    if "BENCH-THREADS" not in lines:
        raise RuntimeError(f"wrk printed no results:\n{output}")
    threads = orjson.loads(lines["BENCH-THREADS"])
    ok = sum(t["ok"] for t in threads)
    wall = max(t["last"] for t in threads) - min(t["first"] for t in threads)
    statuses = " ".join(t["statuses"] for t in threads).split()
    return {
        "loops_per_s": ok / wall if wall > 0 else 0.0,
        "seconds": wall,
        "ok": ok,
        "errors": sum(t["errors"] for t in threads),
        "unsent": expected - ok - sum(t["errors"] for t in threads),
        "non_2xx": dict(sorted(Counter(statuses).items())),
        "latency": orjson.loads(lines.get("BENCH-LATENCY", "{}")),
    }


def bench_http(
    settings: Settings, fx: Fixture, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Each of ``args.modes`` against a served home; wrk modes need the wrk binary."""
    out: dict[str, Any] = {}
    groups = [
        (
            ServerOptions(workers=args.serve_workers),
            [m for m in args.modes if m in PY_MODES or m == "wrk"],
        ),
        (
            ServerOptions(plain=True, workers=args.serve_workers),
            [m for m in args.modes if m == "wrk-plain"],
        ),
    ]
    for options, modes in groups:
        if not modes:
            continue
        with serve(settings, options) as (url, stack):
            for mode in modes:
                out[mode] = http_mode(url, settings, fx, mode, n, args)
                out[mode]["server"] = stack
                console.print(
                    f"  HTTP {mode} ({stack}): "
                    f"{out[mode]['median_loops_per_s']:.0f} loops/s, "
                    f"load average {os.getloadavg()[0]:.2f}"
                )
    return out


def http_mode(
    url: str,
    settings: Settings,
    fx: Fixture,
    mode: str,
    n: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    results = []
    for r in range(args.runs):
        names = [f"http-{mode}-{r}-{i}" for i in range(n)]
        if mode in PY_MODES:
            results.append(http_run(url, settings, fx, mode, names, args.clients))
        else:
            results.append(wrk_run(url, settings, fx, names, args))
    summary = summarize_runs(results)
    summary["loadavg_after"] = os.getloadavg()
    return summary


def summarize_runs(results: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "runs": results,
        "median_loops_per_s": statistics.median(r["loops_per_s"] for r in results),
        "errors": sum(int(r["errors"]) for r in results),
    }


# ---------------------------------------------------------------- (b) Python API


def api_run(
    engine: Engine, fx: Fixture, names: list[str], threads: int
) -> dict[str, float]:
    def work(chunk: Sequence[str]) -> None:
        for name in chunk:
            engine.loops.start(name, fx.flow_arn, small_input(len(name)))

    chunks = [names[i::threads] for i in range(threads)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, chunks))
    wall = time.perf_counter() - started
    return {"loops_per_s": len(names) / wall, "seconds": wall, "errors": 0}


def bench_api(engine: Engine, fx: Fixture, n: int, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for threads in (1, 4):
        results = [
            api_run(engine, fx, [f"api-{threads}-{r}-{i}" for i in range(n)], threads)
            for r in range(runs)
        ]
        out[f"threads_{threads}"] = summarize_runs(results)
        console.print(
            f"  API {threads} thread(s): {out[f'threads_{threads}']['median_loops_per_s']:.0f} loops/s"
        )
    return out


# ---------------------------------------------------------------- (c) claim-next


def bulk_load(engine: Engine, count: int) -> float:
    """Insert ``count`` InProgress loops with their available tasks; returns seconds."""
    started = time.perf_counter()
    with engine.ctx.db.read() as session:
        flow = session.get_one(FlowDefinition, FLOW)
        first_loop = (session.scalar(select(func.max(HumanLoop.id))) or 0) + 1
        first_task = (session.scalar(select(func.max(Task.id))) or 0) + 1
    now = datetime.now(UTC)
    for offset in range(0, count, BATCH):
        size = min(BATCH, count - offset)
        loops, tasks = loop_rows(
            flow, first_loop + offset, first_task + offset, size, now
        )
        with engine.ctx.db.write() as session:
            session.execute(insert(Base.metadata.tables["human_loops"]), loops)
            session.execute(insert(Base.metadata.tables["tasks"]), tasks)
    if not engine.ctx.db.is_sqlite:
        with engine.ctx.db.write() as session:
            for table in ("human_loops", "tasks"):
                session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                    )
                )
    return time.perf_counter() - started


def loop_rows(
    flow: FlowDefinition, loop_id: int, task_id: int, size: int, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows as ``Loops.start`` writes them for a TaskCount-1 flow."""
    loops, tasks = [], []
    expires = now + timedelta(seconds=flow.availability_seconds)
    for i in range(size):
        name = f"bulk-{loop_id + i}"
        content = small_input(loop_id + i)
        digest = hashlib.sha256(flow.name.encode() + b"\0" + content.encode())
        loops.append(
            {
                "id": loop_id + i,
                "name": name,
                "flow_name": flow.name,
                "status": "InProgress",
                "failure_code": None,
                "failure_reason": None,
                "input_content": content,
                "input_sha256": digest.hexdigest(),
                "data_attributes": None,
                "task_count": flow.task_count,
                "answer_count": 0,
                "created_at": now,
                "expires_at": expires,
                "ended_at": None,
                "output_uri": output_uri(flow.output_path, flow.name, name, now),
            }
        )
        tasks.append(
            {
                "id": task_id + i,
                "loop_id": loop_id + i,
                "team_name": flow.team_name,
                "status": "available",
                "worker_pk": None,
                "leased_at": None,
                "lease_expires_at": None,
            }
        )
    return loops, tasks


def load_history(engine: Engine, fx: Fixture, count: int) -> float:
    """``count`` Completed loops whose task the bench workers answered, round-robin.

    They come before the pending loops in id order, as a long-running
    installation's answered work does.
    """
    started = time.perf_counter()
    bulk_load(engine, count)
    pks = [w.pk for w in fx.workers]
    owner = " ".join(f"WHEN {i} THEN {pk}" for i, pk in enumerate(pks))
    with engine.ctx.db.write() as session:
        session.execute(
            text(
                "UPDATE human_loops SET status = 'Completed', answer_count = 1 "
                "WHERE status = 'InProgress'"
            )
        )
        session.execute(
            text(
                f"UPDATE tasks SET status = 'answered', "
                f"worker_pk = CASE (id % {len(pks)}) {owner} END "
                "WHERE status = 'available'"
            )
        )
    return time.perf_counter() - started


def pending(engine: Engine) -> int:
    with engine.ctx.db.read() as session:
        return int(
            session.scalar(select(func.count()).where(Task.status == "available")) or 0
        )


def time_claims(engine: Engine, fx: Fixture, claims: int) -> list[float]:
    """Claim ``claims`` tasks round-robin over the workers; even ones are answered, odd released."""
    timings = []
    for index in range(claims):
        worker = fx.workers[index % len(fx.workers)]
        started = time.perf_counter()
        task = engine.tasks.claim_next(worker)
        timings.append((time.perf_counter() - started) * 1000)
        if task is None:
            raise RuntimeError("claim_next returned None with tasks pending")
        if index % 2:
            engine.tasks.release(worker, task.task_id)
        else:
            engine.tasks.answer(worker, task.task_id, {"label": {"label": "ok"}})
    return timings


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": cut[49],
        "p95_ms": cut[94],
        "p99_ms": cut[98],
        "max_ms": ordered[-1],
        "mean_ms": statistics.fmean(ordered),
    }


def bench_claims(
    engine: Engine,
    fx: Fixture,
    sizes: list[int],
    claims: int,
    url: str,
    history: int = 0,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if history:
        seconds = load_history(engine, fx, history)
        console.print(f"  loaded {history:,} answered tasks in {seconds:.0f} s")
    for size in sizes:
        missing = size - pending(engine)
        load_s = bulk_load(engine, missing) if missing > 0 else 0.0
        analyzed = analyze(engine, url)
        time_claims(engine, fx, WARMUP_CLAIMS)
        stats = percentiles(time_claims(engine, fx, claims))
        profile = profile_claims(engine, fx, url)
        out[str(size)] = {
            "pending": size,
            "loaded": max(missing, 0),
            "load_seconds": round(load_s, 1),
            "analyze": analyzed,
            "claims": claims,
            **stats,
            **profile,
        }
        console.print(
            f"  claim-next with {size:,} pending: p50 {stats['p50_ms']:.2f} ms, "
            f"p99 {stats['p99_ms']:.2f} ms (loaded {max(missing, 0):,} in {load_s:.0f} s)"
        )
    return out


def analyze(engine: Engine, url: str) -> str:
    """PostgreSQL: ANALYZE, as autovacuum would soon after a bulk load. SQLite: nothing.

    closedloop never runs ANALYZE on SQLite, so the SQLite numbers are what a
    user gets; the plans recorded below show what the planner chose.
    """
    if engine.ctx.db.is_sqlite:
        return "none (closedloop does not run ANALYZE on SQLite)"
    bench = create_engine(url, isolation_level="AUTOCOMMIT")
    with bench.connect() as conn:
        conn.exec_driver_sql("ANALYZE human_loops")
        conn.exec_driver_sql("ANALYZE tasks")
    bench.dispose()
    return "ANALYZE human_loops, tasks after loading"


# ---------------------------------------------------------------- profiling of claims


def install_listener(timing: Timing) -> None:
    @event.listens_for(SqlEngine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if timing.active:
            timing.started[id(cursor)] = time.perf_counter()
            timing.captured.append((statement, params))

    @event.listens_for(SqlEngine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        began = timing.started.pop(id(cursor), None)
        if timing.active and began is not None:
            key = " ".join(statement.split())
            timing.totals.setdefault(key, []).append(
                (time.perf_counter() - began) * 1000
            )


TIMING = Timing()


def profile_claims(engine: Engine, fx: Fixture, url: str) -> dict[str, Any]:
    """Per-statement time over a few claims, and the plan of each claim statement."""
    TIMING.totals.clear()
    TIMING.captured.clear()
    TIMING.active = True
    try:
        for index in range(PROFILED_CLAIMS):
            worker = fx.workers[index % len(fx.workers)]
            task = engine.tasks.claim_next(worker)
            if task is None:
                raise RuntimeError("claim_next returned None with tasks pending")
            TIMING.active = False
            engine.tasks.release(worker, task.task_id)
            if index == 0:
                first = list(TIMING.captured)
            TIMING.active = True
    finally:
        TIMING.active = False
    statements = [
        {
            "sql": sql[:300],
            "calls": len(times),
            "mean_ms": round(statistics.fmean(times), 3),
            "p99_ms": round(percentiles(times)["p99_ms"], 3)
            if len(times) > 1
            else times[0],
        }
        for sql, times in TIMING.totals.items()
        if sql not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT")
    ]
    return {"claim_statements": statements, "claim_plans": explain(first, url)}


def explain(captured: list[tuple[str, Any]], url: str) -> list[dict[str, Any]]:
    """EXPLAIN QUERY PLAN (SQLite) or EXPLAIN ANALYZE (PostgreSQL, rolled back)."""
    plans = []
    bench = create_engine(url)
    with bench.connect() as conn:
        for sql, params in captured:
            if sql.split()[0].upper() not in ("SELECT", "UPDATE", "DELETE", "INSERT"):
                continue
            prefix = (
                "EXPLAIN QUERY PLAN "
                if bench.dialect.name == "sqlite"
                else "EXPLAIN (ANALYZE, BUFFERS) "
            )
            rows = conn.exec_driver_sql(prefix + sql, params).all()
            plan = [" | ".join(str(c) for c in row) for row in rows]
            plans.append({"sql": " ".join(sql.split())[:300], "plan": plan})
        conn.rollback()
    bench.dispose()
    return plans


# ---------------------------------------------------------------- driver


def run_backend(
    backend: str, root: Path, args: argparse.Namespace, params: dict[str, Any]
) -> dict[str, Any]:
    console.rule(f"[bold]{backend}")
    result: dict[str, Any] = {"loadavg_at_start": os.getloadavg()}
    with installation(backend, "throughput", root, args.postgres_url) as settings:
        engine = Engine(settings)
        try:
            fx = make_fixture(engine)
            result["version"] = database_version(engine)
            result["http"] = bench_http(settings, fx, params["loops"], args)
            result["api"] = bench_api(engine, fx, params["loops"], args.runs)
        finally:
            engine.close()
    with installation(backend, "claims", root, args.postgres_url) as settings:
        engine = Engine(settings)
        try:
            fx = make_fixture(engine)
            result["claims"] = bench_claims(
                engine,
                fx,
                params["sizes"],
                params["claims"],
                settings.resolved_database_url,
                params["history"],
            )
        finally:
            engine.close()
    result["loadavg_at_end"] = os.getloadavg()
    return result


def database_version(engine: Engine) -> str:
    with engine.ctx.db.read() as session:
        query = (
            "SELECT sqlite_version()" if engine.ctx.db.is_sqlite else "SELECT version()"
        )
        return str(session.execute(text(query)).scalar())


def machine() -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "[green]pass[/]" if ok else "[red]FAIL[/]"


def print_table(results: dict[str, Any]) -> None:
    table = Table(title="closedloop loop engine")
    for column in ("backend", "measurement", "result", "target"):
        table.add_column(column)
    for backend, res in results.items():
        for mode, http in res["http"].items():
            value = http["median_loops_per_s"]
            errors = http["errors"]
            note = f" ({errors} errors)" if errors else ""
            label = f"{MODE_LABELS[mode]}; {http['server']}"
            target = f">= {TARGET_HTTP_PER_S:.0f}/s {verdict(value, TARGET_HTTP_PER_S, True)}"
            table.add_row(
                backend,
                f"StartHumanLoop HTTP, {label}",
                f"{value:,.0f} loops/s{note}",
                target,
            )
        for key, label in (("threads_1", "1 thread"), ("threads_4", "4 threads")):
            value = res["api"][key]["median_loops_per_s"]
            table.add_row(
                backend, f"loops.start API, {label}", f"{value:,.0f} loops/s", ""
            )
        for size, stats in res["claims"].items():
            measured = (
                f"p50 {stats['p50_ms']:.2f} / p95 {stats['p95_ms']:.2f} / "
                f"p99 {stats['p99_ms']:.2f} / max {stats['max_ms']:.2f} ms"
            )
            target = ""
            if int(size) >= 1_000_000:
                target = f"p99 <= {TARGET_CLAIM_P99_MS:.0f} ms {verdict(stats['p99_ms'], TARGET_CLAIM_P99_MS, False)}"
            table.add_row(
                backend, f"claim-next, {int(size):,} pending", measured, target
            )
    console.print(table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="quick run: 2,000 loops, 10,000 pending"
    )
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres"
    )
    parser.add_argument(
        "--sizes", help="pending-loop counts for claim-next, e.g. 100000,1000000"
    )
    parser.add_argument("--loops", type=int, help="loops started per throughput run")
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="answered tasks (by the claiming workers) loaded before the pending ones",
    )
    parser.add_argument("--claims", type=int, help="timed claims per size")
    parser.add_argument(
        "--runs", type=int, default=3, help="throughput runs; the median is reported"
    )
    parser.add_argument("--clients", type=int, default=8, help="HTTP client processes")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help="HTTP modes, comma-separated: " + ",".join(MODES),
    )
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--wrk-connections", type=int, default=16, help="wrk keep-alive connections"
    )
    parser.add_argument(
        "--wrk-duration", type=int, default=120, help="wrk cap on one run, seconds"
    )
    parser.add_argument(
        "--serve-workers",
        type=int,
        help="pass --workers N to closedloop serve (for a serve that has it)",
    )
    parser.add_argument(
        "--postgres-url",
        help="URL of a role that may CREATE DATABASE (default: /tmp/pgurl)",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="where to write the JSON results"
    )
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"sqlite", "postgres"}
    if unknown:
        parser.error(
            f"--backends must name sqlite and/or postgres; got {sorted(unknown)!r}"
        )
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(args.modes) - set(MODES):
        parser.error(f"--modes must name some of {MODES!r}; got {args.modes!r}")
    if {"wrk", "wrk-plain"} & set(args.modes) and shutil.which("wrk") is None:
        console.print("[yellow]wrk is not installed; skipping the wrk modes")
        args.modes = [m for m in args.modes if m in PY_MODES]
    if "postgres" in args.backends and not args.postgres_url:
        if not PGURL_FILE.exists():
            parser.error("--postgres-url is required when /tmp/pgurl does not exist")
        args.postgres_url = PGURL_FILE.read_text().strip()
    return args


def parameters(args: argparse.Namespace) -> dict[str, Any]:
    params = dict(SMALL if args.small else FULL)
    if args.sizes:
        params["sizes"] = [int(s) for s in args.sizes.split(",")]
    if args.loops:
        params["loops"] = args.loops
    if args.claims:
        params["claims"] = args.claims
    params["history"] = args.history
    params.update(
        runs=args.runs,
        http_client_processes=args.clients,
        http_modes=args.modes,
        wrk_threads=args.wrk_threads,
        wrk_connections=args.wrk_connections,
        wrk_duration_cap_s=args.wrk_duration,
        serve_workers=args.serve_workers,
        task_count=1,
        workers=WORKERS,
        warmup_claims=WARMUP_CLAIMS,
        claim_follow_up="even claims answered, odd claims released",
    )
    return params


def write_results(path: Path, params: dict[str, Any], results: dict[str, Any]) -> None:
    document = {
        "machine": machine(),
        "parameters": params,
        "targets": {
            "http_loops_per_s": TARGET_HTTP_PER_S,
            "claim_p99_ms_at_1m": TARGET_CLAIM_P99_MS,
        },
        "results": results,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    params = parameters(args)
    install_listener(TIMING)
    root = Path(tempfile.mkdtemp(prefix="closedloop-bench-"))
    results: dict[str, Any] = {}
    try:
        for backend in args.backends:
            results[backend] = run_backend(backend, root, args, params)
            write_results(
                args.output, params, results
            )  # keep what a later failure would lose
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(results)
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
