"""Fixtures for serving: the real registry, endpoints, a trained model, a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_helpers import Models, ServingServer

from closedloop.engine import Engine
from closedloop.registry import Registry
from closedloop.serving.endpoints import Endpoints


@pytest.fixture
def registry(engine: Engine) -> Registry:
    return engine.registry


@pytest.fixture
def endpoints(engine: Engine, registry: Registry) -> Endpoints:
    return engine.endpoints


@pytest.fixture
def models(engine: Engine, registry: Registry, tmp_path: Path) -> Models:
    return Models(engine, registry, tmp_path)


@pytest.fixture
def serving(engine: Engine, endpoints: Endpoints) -> Iterator[ServingServer]:
    with ServingServer(engine) as live:
        yield live
