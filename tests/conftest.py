"""Shared fixtures: a fresh home (SQLite, and PostgreSQL when configured), engine, server, boto3 clients."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from botocore.config import Config

from closedloop.api.app import create_app
from closedloop.engine import Engine
from closedloop.settings import Settings

POSTGRES_URL = os.environ.get("CLOSEDLOOP_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


def _fresh_postgres_database() -> tuple[str, str]:
    """Create an empty database on the test server; returns (url, name)."""
    import psycopg

    name = "closedloop_test_" + secrets.token_hex(6)
    with psycopg.connect(
        POSTGRES_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    return f"{base}/{name}", name


def _drop_postgres_database(name: str) -> None:
    import psycopg

    with psycopg.connect(
        POSTGRES_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh installation on each configured metadata backend."""
    if request.param == "sqlite":
        yield Settings.from_env({}, home=tmp_path / "home")
        return
    url, name = _fresh_postgres_database()
    try:
        yield Settings.from_env({}, home=tmp_path / "home", database_url=url)
    finally:
        _drop_postgres_database(name)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = Engine(settings)
    yield engine
    engine.close()


class LiveServer:
    """``closedloop serve``'s app on a real loopback port, in a thread."""

    def __init__(self, engine: Engine, *, sweep: bool = False) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(engine, sweep=sweep),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)


@pytest.fixture
def server(engine: Engine) -> Iterator[LiveServer]:
    with LiveServer(engine) as live:
        yield live


@pytest.fixture
def credentials(engine: Engine) -> dict[str, str]:
    key = engine.keys.create("tests")
    return {
        "aws_access_key_id": key.access_key_id,
        "aws_secret_access_key": key.secret_access_key,
    }


def boto_client(service: str, url: str, credentials: dict[str, str]) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        **credentials,
    )


@pytest.fixture
def a2i(server: LiveServer, credentials: dict[str, str]) -> Any:
    """A boto3 ``sagemaker-a2i-runtime`` client pointed at the live server."""
    return boto_client("sagemaker-a2i-runtime", server.url + "/a2i", credentials)


@pytest.fixture
def sagemaker(server: LiveServer, credentials: dict[str, str]) -> Any:
    """A boto3 ``sagemaker`` client pointed at the live server."""
    return boto_client("sagemaker", server.url + "/sagemaker", credentials)
