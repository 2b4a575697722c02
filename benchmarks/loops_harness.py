"""Shared benchmark set-up: fresh installations, bench flow, machine, percentiles."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from closedloop.core.workforce import WorkerInfo
from closedloop.engine import Engine
from closedloop.settings import Settings

PGURL_FILE = Path("/tmp/pgurl")
TEAM = "bench-team"
FLOW = "bench-flow"
WORKERS = 4


console = Console()


@dataclass(frozen=True)
class Fixture:
    """What every measurement needs: a flow, its ARN, an access key, workers."""

    flow_arn: str
    access_key_id: str
    secret_access_key: str
    workers: tuple[WorkerInfo, ...]


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


def summarize_runs(results: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "runs": results,
        "median_loops_per_s": statistics.median(r["loops_per_s"] for r in results),
        "errors": sum(int(r["errors"]) for r in results),
    }
