"""Shared fixtures: a fresh home (SQLite, and PostgreSQL when configured), engine, server, boto3 clients, S3."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from closedloop.engine import Engine
from closedloop.settings import Settings
from closedloop.simulation.server import BackgroundServer

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
    """Drop a test database, its connections and all.

    FORCE may meet an autovacuum worker on the database, which a role without
    superuser rights cannot end (PostgreSQL 15); such a worker soon ends or
    gives way, so the drop is tried again for a few seconds.
    """
    import psycopg

    with psycopg.connect(
        POSTGRES_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True
    ) as conn:
        for attempt in range(40):
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except psycopg.errors.InsufficientPrivilege:
                if attempt == 39:
                    raise
                time.sleep(0.25)


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


class LiveServer(BackgroundServer):
    """``closedloop serve``'s app on a real loopback port, without the background sweeper."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, sweep=False)


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


@pytest.fixture
def clock_engine(engine: Engine) -> Engine:
    """The engine with a fixed clock, so merged human rows get a known label time."""
    engine.ctx.clock = lambda: datetime(2026, 3, 1, tzinfo=UTC)
    return engine


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto) on a loopback port for the whole run."""
    pytest.importorskip("s3fs", reason="s3:// needs s3fs: pip install -e '.[dev]'")
    moto_server = pytest.importorskip(
        "moto.server", reason="the S3 tests need moto[server]: pip install -e '.[dev]'"
    )
    server = moto_server.ThreadedMotoServer(
        ip_address="127.0.0.1", port=0, verbose=False
    )
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A boto3 S3 client on the test server, with the environment a user sets to reach it.

    Only the documented variables point s3fs there; ``~/.aws`` and instance
    roles are shut out so that no test can reach real AWS.
    """
    import s3fs

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA" + secrets.token_hex(8).upper())
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secrets.token_urlsafe(30))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3fs.S3FileSystem.clear_instance_cache()
    yield boto3.client("s3", endpoint_url=s3_server)
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3_bucket(s3: Any) -> str:
    """A new, empty bucket on the test server; the server outlives every test."""
    name = "closedloop-test-" + secrets.token_hex(6)
    s3.create_bucket(Bucket=name)
    return name
