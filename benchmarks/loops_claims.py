"""Claim-next latency with many pending loops, and a per-statement claim profile."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine as SqlEngine

from closedloop.engine import Engine
from loops_bulk import analyze, bulk_load, load_history, pending
from loops_harness import Fixture, console, percentiles

WARMUP_CLAIMS = 50
PROFILED_CLAIMS = 200


@dataclass
class Timing:
    """Statement timings gathered by a cursor listener while profiling."""

    active: bool = False
    started: dict[int, float] = field(default_factory=dict)
    totals: dict[str, list[float]] = field(default_factory=dict)
    captured: list[tuple[str, Any]] = field(default_factory=list)


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
