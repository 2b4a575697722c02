"""The wrk load mode: pre-signed StartHumanLoop requests replayed once by wrk."""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from closedloop.settings import Settings
from loops_harness import Fixture
from loops_signing import make_signer, signed_request

WRK = shutil.which("wrk") or "wrk"


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
