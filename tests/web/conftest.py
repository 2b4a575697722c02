"""Fixtures for the web UI tests: workers, an operator, flows and loops, a live server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from argon2 import PasswordHasher
from web_helpers import PASSWORDS, Kit, WebServer, make_flow, sign_in

import closedloop.store.models_web  # noqa: F401  (tables known before Engine() runs)
from closedloop.engine import Engine
from closedloop.web.accounts import Accounts


@pytest.fixture
def kit(engine: Engine) -> Kit:
    """Team reviewers (alice, bob), team others (carol), operator olive, two flows."""
    # Cheap argon2 parameters keep the suite fast; verification reads them from the hash.
    accounts = Accounts(
        engine.ctx, PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    )
    for worker, team in (
        ("alice", "reviewers"),
        ("bob", "reviewers"),
        ("carol", "others"),
    ):
        engine.workforce.create_worker(worker, [team])
        accounts.set_worker_password(worker, PASSWORDS[worker])
    accounts.create_operator("olive", PASSWORDS["olive"])
    kit = Kit(engine)
    make_flow(engine, kit.flow, "reviewers", 2)
    make_flow(engine, kit.other_flow, "others", 1)
    kit.loops = kit.start_loops(kit.flow, 3, "loop")
    kit.other_loops = kit.start_loops(kit.other_flow, 1, "secret")
    return kit


@pytest.fixture
def web(engine: Engine, kit: Kit) -> Iterator[WebServer]:
    with WebServer(engine) as live:
        yield live


@pytest.fixture
def sign_in_as(web: WebServer) -> Iterator[Callable[[str, str], httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(realm: str, username: str) -> httpx.Client:
        client = sign_in(web.url, realm, username, PASSWORDS[username])
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
