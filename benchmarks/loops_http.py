"""StartHumanLoop over HTTP in each load mode: raw httpx, boto3 and wrk."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from closedloop.settings import Settings
from loops_harness import Fixture, console, summarize_runs
from loops_server import ServerOptions, serve
from loops_signing import make_signer, signed_request, start_request
from loops_wrk import wrk_run

PY_MODES = ("raw", "boto3")
MODES = ("raw", "boto3", "wrk", "wrk-plain")
MODE_LABELS = {
    "raw": "pre-signed raw httpx",
    "boto3": "boto3 client",
    "wrk": "wrk, pre-signed",
    "wrk-plain": "wrk, pre-signed, serve without uvloop/httptools",
}


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
