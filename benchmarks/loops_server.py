"""``closedloop serve`` started as a separate process on a benchmark's home folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from closedloop.settings import Settings


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
