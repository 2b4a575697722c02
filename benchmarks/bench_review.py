"""Benchmark the reviewer page: time from Submit to the next task shown, in Chromium.

``closedloop serve`` runs as a separate process on a fresh home folder (and, with
``--postgres-url`` or ``/tmp/pgurl``, on a fresh PostgreSQL database) holding
``--pending`` pending loops, bulk-loaded with ``loops_bulk.bulk_load``. A reviewer
account is made with the CLI (``workers create``, ``workers passwd`` with a random
password), signs in to ``/review`` in headless Chromium, presses Start working and
answers by keyboard: a number key picks the label, Enter submits.

A script injected into every document times each submit inside the page: from
the Enter keydown to the moment the next task's frame has painted its content
(two animation frames after its crowd elements are ready), both stamped with the
host page's ``performance.now()``. Resource Timing splits that into the answer
and next-task calls, the frame's HTML and its static files. Results are printed
and written to ``benchmarks/results/review.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from playwright.sync_api import Browser, Page, Response, sync_playwright
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from closedloop.engine import Engine
from closedloop.settings import Settings
from closedloop.store.models import Answer, HumanLoop, Task
from closedloop.templates.builtin import builtin_template
from loops_bulk import analyze, bulk_load
from loops_harness import FLOW, PGURL_FILE, TEAM, installation, machine, percentiles
from loops_server import serve

RESULTS = Path(__file__).parent / "results" / "review.json"
TARGET_P95_MS = 150.0
FULL = {"pending": 100_000, "submits": 300}
SMALL = {"pending": 2_000, "submits": 60}
WARMUP = 20
REVIEWER = "bench-reviewer"
LABELS = ("ok", "bad")
LABEL_KEY = "1"
ANSWER = {"category": {"label": LABELS[0]}}
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [  # as tests/headless.py starts it
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

PROBE = r"""// Injected by bench_review.py into every document: times Submit -> next task shown.
(() => {
  const KEY = "closedloop-bench:key";
  const SHOWN = "closedloop-bench:shown";
  if (window.top !== window) {
    addEventListener("keydown", (event) => {
      if (event.key === "Enter") parent.postMessage({ type: KEY }, "*");
    }, true);
    document.addEventListener("all-crowd-elements-ready", () => {
      const ready = performance.now();
      requestAnimationFrame(() => requestAnimationFrame(() => {
        const nav = performance.getEntriesByType("navigation")[0];
        const target = document.querySelector(".cl-target-text");
        parent.postMessage({
          type: SHOWN,
          path: location.pathname,
          text: target ? target.textContent.trim() : "",
          visible: !!target && target.getBoundingClientRect().height > 0,
          readyMs: ready,
          paintedMs: performance.now(),
          origin: performance.timeOrigin,
          htmlTtfbMs: nav ? nav.responseStart - nav.requestStart : -1,
          nav: nav ? {
            fetchStart: nav.fetchStart, requestStart: nav.requestStart,
            responseStart: nav.responseStart, responseEnd: nav.responseEnd,
            domInteractive: nav.domInteractive,
            domContentLoaded: nav.domContentLoadedEventEnd,
          } : null,
          statics: performance.getEntriesByType("resource").map((r) => ({
            name: r.name.split("/").pop(), ms: r.duration,
          })),
        }, "*");
      }));
    });
    return;
  }
  const bench = { samples: [], shown: [], key: null, waiters: [] };
  window.__bench = bench;
  performance.setResourceTimingBufferSize(100000);
  const mark = () => { if (bench.key === null) bench.key = performance.now(); };
  const calls = (since) => performance.getEntriesByType("resource")
    .filter((r) => r.startTime >= since)
    .map((r) => ({
      path: new URL(r.name).pathname, initiator: r.initiatorType,
      start: r.startTime, end: r.responseEnd,
      ttfb: r.responseStart - r.requestStart, ms: r.duration,
    }));
  addEventListener("keydown", (event) => { if (event.key === "Enter") mark(); }, true);
  addEventListener("message", (event) => {
    const data = event.data;
    if (!data || typeof data !== "object") return;
    if (data.type === KEY) return mark();
    if (data.type !== SHOWN) return;
    const now = performance.now();
    if (bench.key !== null) {
      bench.samples.push({
        totalMs: now - bench.key, key: bench.key, shownAt: now,
        origin: performance.timeOrigin,
        calls: calls(bench.key), frame: data,
      });
      bench.key = null;
      performance.clearResourceTimings();
    }
    bench.shown.push(data.path);
    bench.waiters = bench.waiters.filter((check) => !check());
  }, true);
  bench.waitShown = (n) => new Promise((resolve) => {
    const check = () => bench.shown.length >= n && (resolve(bench.shown.at(-1)), true);
    if (!check()) bench.waiters.push(check);
  });
})();
"""

console = Console()


# ---------------------------------------------------------------- set-up


def cli(settings: Settings, *args: str, stdin: str | None = None) -> None:
    """Run ``closedloop --home HOME ARGS`` as a user would; fail loudly on an error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSEDLOOP_")}
    if settings.database_url:
        env["CLOSEDLOOP_DATABASE_URL"] = settings.database_url
    command = [str(Path(sys.executable).with_name("closedloop"))]
    command += ["--home", str(settings.home), *args]
    done = subprocess.run(
        command, input=stdin, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"closedloop {args[:2]} failed: {done.stderr.strip()}")


def prepare(settings: Settings, pending: int) -> tuple[str, float]:
    """A reviewer with a random password, the flow, ``pending`` loops; returns password, load seconds."""
    password = secrets.token_urlsafe(18)
    cli(settings, "workers", "create", REVIEWER, "--team", TEAM)
    cli(settings, "workers", "passwd", REVIEWER, "--password-stdin", stdin=password)
    engine = Engine(settings)
    try:
        engine.task_uis.create(
            "bench-review-ui", builtin_template("single-label", LABELS)
        )
        engine.flows.create(
            {
                "FlowDefinitionName": FLOW,
                "RoleArn": "arn:aws:iam::000000000000:role/closedloop-bench",
                "OutputConfig": {"S3OutputPath": "s3://closedloop-bench/reviews"},
                "HumanLoopConfig": {
                    "WorkteamArn": engine.workforce.team_arn(TEAM),
                    "HumanTaskUiArn": engine.task_uis.arn("bench-review-ui"),
                    "TaskTitle": "Label the item",
                    "TaskDescription": "Pick a label",
                    "TaskCount": 1,
                },
            }
        )
        seconds = bulk_load(engine, pending)
        analyze(engine, settings.resolved_database_url)
    finally:
        engine.close()
    return password, seconds


def stored(settings: Settings) -> dict[str, int]:
    """What the database holds after the run: completed loops, answers, pending tasks."""
    engine = Engine(settings)
    try:
        with engine.ctx.db.read() as session:
            contents = session.scalars(select(Answer.answer_content)).all()
            completed = session.scalar(
                select(func.count()).where(HumanLoop.status == "Completed")
            )
            available = session.scalar(
                select(func.count()).where(Task.status == "available")
            )
    finally:
        engine.close()
    return {
        "completed_loops": int(completed or 0),
        "answers": len(contents),
        "answers_with_label": sum(orjson.loads(c) == ANSWER for c in contents),
        "available_tasks": int(available or 0),
    }


# ---------------------------------------------------------------- the browser


def sign_in(page: Page, url: str, password: str) -> float:
    """Sign in and press Start working; returns the queues page's server time in ms."""
    page.goto(f"{url}/review/login")
    page.fill("input[name=username]", REVIEWER)
    page.fill("input[name=password]", password)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{url}/review/")
    queues_ms = float(
        page.evaluate(
            "(() => { const n = performance.getEntriesByType('navigation')[0];"
            " return n.responseStart - n.requestStart; })()"
        )
    )
    page.wait_for_selector("#start:focus")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/review/work\??$"))  # a GET form adds "?"
    return queues_ms


def submit(page: Page, shown: int) -> str:
    """Pick the first label and press Enter in the task frame; wait for the next task."""
    path = str(page.evaluate("window.__bench.shown.at(-1)"))
    frame = next(f for f in page.frames if f != page.main_frame)
    frame.wait_for_function(
        "p => location.pathname === p && document.hasFocus()", arg=path
    )
    page.keyboard.press(LABEL_KEY)
    page.keyboard.press("Enter")
    return str(page.evaluate("n => window.__bench.waitShown(n)", shown + 1))


def drive(browser: Browser, url: str, password: str, total: int) -> dict[str, Any]:
    """Answer ``total`` tasks in one page; returns the page's samples and counters."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(30_000)
    context.add_init_script(PROBE)
    page = context.new_page()
    try:
        queues_ms = sign_in(page, url, password)
        paths = [str(page.evaluate("window.__bench.waitShown(1)"))]
        requests: Counter[str] = Counter()
        context.on("response", lambda r: requests.update([_request_kind(r)]))
        for index in range(total):
            paths.append(submit(page, index + 1))
        return {
            "requests": dict(sorted(requests.items())),
            "queues_page_server_ms": queues_ms,
            "samples": page.evaluate("window.__bench.samples"),
            "paths": paths,
            "done_count": int(page.inner_text("#done-count")),
        }
    finally:
        context.close()


def _request_kind(response: Response) -> str:
    """``METHOD path status`` with task ids left out, e.g. ``GET /review/tasks/N/frame 200``."""
    path = re.sub(r"/\d+/", "/N/", urlsplit(response.url).path)
    return f"{response.request.method} {path} {response.status}"


# ---------------------------------------------------------------- analysis


def phases(sample: dict[str, Any]) -> dict[str, float]:
    """One submit split into consecutive steps that add up to the total, in ms.

    Host-page times come from its Resource Timing; the frame's own times are
    moved onto the host's clock through the two documents' ``timeOrigin``.
    """
    calls = {c["path"].rsplit("/", 1)[-1]: c for c in sample["calls"]}
    answer, claim = calls["answer"], calls["next"]
    frame = sample["frame"]
    nav_start = frame["origin"] - sample["origin"]
    html_end = frame["nav"]["responseEnd"]
    return {
        "total": sample["totalMs"],
        "1 key -> answer call": answer["start"] - sample["key"],
        "2 answer call": answer["ms"],
        "3 -> next call": claim["start"] - answer["end"],
        "4 next call": claim["ms"],
        "5 -> frame navigation": nav_start - claim["end"],
        "6 frame HTML": html_end,
        "7 HTML -> crowd elements ready": frame["readyMs"] - html_end,
        "8 ready -> painted": frame["paintedMs"] - frame["readyMs"],
        "9 painted -> host told": sample["shownAt"] - nav_start - frame["paintedMs"],
        "server time (3 TTFBs)": answer["ttfb"] + claim["ttfb"] + frame["htmlTtfbMs"],
        "frame static files": max((f["ms"] for f in frame["statics"]), default=0.0),
    }


def summarize(run: dict[str, Any], warmup: int) -> dict[str, Any]:
    """Percentiles of the measured submits and of each part, and what the frame fetched."""
    samples = run["samples"][warmup:]
    parts = [phases(s) for s in samples]
    split = {
        name: {
            "p50_ms": statistics.median(p[name] for p in parts),
            "p95_ms": percentiles([p[name] for p in parts])["p95_ms"],
        }
        for name in parts[0]
        if name != "total"
    }
    return {
        "n": len(samples),
        **percentiles([p["total"] for p in parts]),
        "parts": split,
        "requests_during_submits": run["requests"],
        "empty_frames": sum(not s["frame"]["visible"] for s in samples),
        "queues_page_server_ms": run["queues_page_server_ms"],
    }


def check(run: dict[str, Any], db: dict[str, int], total: int, pending: int) -> None:
    """Every submit was timed, showed a new task with content, and was stored."""
    problems = []
    if len(run["samples"]) != total:
        problems.append(f"{len(run['samples'])} timed submits, expected {total}")
    if len(set(run["paths"])) != total + 1:
        problems.append(f"{len(set(run['paths']))} distinct tasks shown for {total}")
    if run["done_count"] != total:
        problems.append(f"the page counted {run['done_count']} answers")
    if any(not s["frame"]["text"] for s in run["samples"]):
        problems.append("a shown task had no item text")
    wanted = {"completed_loops": total, "answers_with_label": total}
    for key, value in wanted.items():
        if db[key] != value:
            problems.append(f"{key} is {db[key]}, expected {value}")
    if db["available_tasks"] != pending - total - 1:
        problems.append(f"{db['available_tasks']} tasks still available")
    if problems:
        raise RuntimeError(
            "the run did not measure what it claims: " + "; ".join(problems)
        )


# ---------------------------------------------------------------- driver


def run_backend(
    backend: str, root: Path, args: argparse.Namespace, browser: Browser
) -> dict[str, Any]:
    console.rule(f"[bold]{backend}")
    result: dict[str, Any] = {"loadavg_at_start": os.getloadavg()}
    total = WARMUP + args.submits
    with installation(backend, "review", root, args.postgres_url) as settings:
        password, load_s = prepare(settings, args.pending)
        console.print(f"  loaded {args.pending:,} pending loops in {load_s:.0f} s")
        result["loadavg_before_run"] = os.getloadavg()
        with serve(settings) as (url, stack):
            run = drive(browser, url, password, total)
        result["server"] = stack
        result["stored"] = stored(settings)
    check(run, result["stored"], total, args.pending)
    result.update(
        pending=args.pending,
        load_seconds=round(load_s, 1),
        loadavg_at_end=os.getloadavg(),
        submit_to_next_shown=summarize(run, WARMUP),
        samples_ms=[round(s["totalMs"], 2) for s in run["samples"][WARMUP:]],
    )
    stats = result["submit_to_next_shown"]
    console.print(
        f"  submit -> next shown: p50 {stats['p50_ms']:.1f} ms, p95 {stats['p95_ms']:.1f} ms"
        f" (n {stats['n']}, load average {result['loadavg_at_end'][0]:.2f})"
    )
    return result


def print_table(results: dict[str, Any]) -> None:
    table = Table(title="closedloop reviewer page: Submit -> next task shown")
    for column in ("backend", "pending", "n", "p50", "p95", "p99", "max", "target"):
        table.add_column(column)
    for backend, res in results.items():
        s = res["submit_to_next_shown"]
        ok = s["p95_ms"] <= TARGET_P95_MS
        verdict = "[green]pass[/]" if ok else "[red]FAIL[/]"
        table.add_row(
            backend,
            f"{res['pending']:,}",
            str(s["n"]),
            *(f"{s[k]:.1f} ms" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
            f"p95 <= {TARGET_P95_MS:.0f} ms {verdict}",
        )
    console.print(table)
    parts = Table(title="where the time goes (ms, p50 / p95)")
    parts.add_column("part")
    for backend in results:
        parts.add_column(backend)
    names = next(iter(results.values()))["submit_to_next_shown"]["parts"]
    for name in names:
        cells = [results[b]["submit_to_next_shown"]["parts"][name] for b in results]
        parts.add_row(name, *(f"{c['p50_ms']:.1f} / {c['p95_ms']:.1f}" for c in cells))
    console.print(parts)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="quick run: 2,000 pending, 60 submits"
    )
    parser.add_argument("--pending", type=int, help="pending loops (default 100,000)")
    parser.add_argument("--submits", type=int, help="timed submits (default 300)")
    parser.add_argument(
        "--backends", help="comma-separated: sqlite,postgres (postgres needs a URL)"
    )
    parser.add_argument(
        "--postgres-url",
        help="URL of a role that may CREATE DATABASE (default: /tmp/pgurl if present)",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="where to write the JSON results"
    )
    args = parser.parse_args(argv)
    defaults = SMALL if args.small else FULL
    args.pending = args.pending or defaults["pending"]
    args.submits = args.submits or defaults["submits"]
    if args.pending < WARMUP + args.submits + 1:
        parser.error(f"--pending must exceed {WARMUP} + --submits; got {args.pending}")
    if not args.postgres_url and PGURL_FILE.exists():
        args.postgres_url = PGURL_FILE.read_text().strip()
    backends = args.backends or ("sqlite,postgres" if args.postgres_url else "sqlite")
    args.backends = [b.strip() for b in backends.split(",") if b.strip()]
    if set(args.backends) - {"sqlite", "postgres"}:
        parser.error(f"--backends must name sqlite and/or postgres; got {backends!r}")
    if "postgres" in args.backends and not args.postgres_url:
        parser.error("--backends postgres needs --postgres-url or /tmp/pgurl")
    return args


def write_results(
    path: Path, args: argparse.Namespace, browser: str, results: dict[str, Any]
) -> None:
    document = {
        "machine": {**machine(), "chromium": browser},
        "parameters": {
            "pending": args.pending,
            "warmup_submits": WARMUP,
            "submits": args.submits,
            "template": "built-in single-label, labels ok,bad",
            "task_count": 1,
        },
        "target": {"submit_to_next_shown_p95_ms": TARGET_P95_MS},
        "results": results,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="closedloop-bench-review-"))
    results: dict[str, Any] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                for backend in args.backends:
                    results[backend] = run_backend(backend, root, args, browser)
                    write_results(args.output, args, browser.version, results)
            finally:
                browser.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(results)
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
