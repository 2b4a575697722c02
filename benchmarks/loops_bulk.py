"""Bulk loader of pending and answered human loops, as ``Loops.start`` writes them."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text

from closedloop.core.output import output_uri
from closedloop.engine import Engine
from closedloop.store.models import Base, FlowDefinition, HumanLoop, Task
from loops_harness import FLOW, Fixture, small_input

BATCH = 20_000


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
