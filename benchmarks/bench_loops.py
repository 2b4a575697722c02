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
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from closedloop.engine import Engine
from loops_claims import TIMING, WARMUP_CLAIMS, bench_claims, install_listener
from loops_harness import (
    PGURL_FILE,
    WORKERS,
    Fixture,
    console,
    database_version,
    installation,
    machine,
    make_fixture,
    small_input,
    summarize_runs,
)
from loops_http import MODE_LABELS, MODES, PY_MODES, bench_http

RESULTS = Path(__file__).parent / "results" / "loops.json"
TARGET_HTTP_PER_S = 500.0
TARGET_CLAIM_P99_MS = 20.0
FULL = {"loops": 5_000, "sizes": [100_000, 1_000_000], "claims": 2_000}
SMALL = {"loops": 2_000, "sizes": [10_000], "claims": 500}


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
