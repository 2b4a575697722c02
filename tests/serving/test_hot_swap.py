"""Promotion and rollback swap a live endpoint's model without failing a request."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from serving_helpers import CONFIDENT, MODEL, Models, ServingServer, boto_client

from closedloop.serving.endpoints import Endpoints

CLIENTS = 4


def version_of(client: Any, endpoint: str = "fraud-live") -> int:
    response = client.invoke_endpoint(
        EndpointName=endpoint,
        Body=json.dumps(CONFIDENT),
        ContentType="application/json",
    )
    return int(json.loads(response["Body"].read())["model_version"])


def wait_for_version(client: Any, wanted: int) -> None:
    deadline = time.monotonic() + 60
    while version_of(client) != wanted:
        assert time.monotonic() < deadline, (
            f"the endpoint never served version {wanted}"
        )
        time.sleep(0.05)


class Hammer:
    """Threads invoking the endpoint until stopped; keeps every version and error."""

    def __init__(self, url: str, credentials: dict[str, str]) -> None:
        self.seen: list[list[int]] = [[] for _ in range(CLIENTS)]
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._clients = [
            boto_client("sagemaker-runtime", url, credentials) for _ in range(CLIENTS)
        ]
        self._threads = [
            threading.Thread(target=self._run, args=(i,)) for i in range(CLIENTS)
        ]

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                self.seen[index].append(version_of(self._clients[index]))
            except Exception as exc:  # every failure is a finding
                self.errors.append(exc)

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        while min(len(s) for s in self.seen) < 5 and not self.errors:
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_promotion_swaps_the_model_under_load_without_a_failed_request(
    models: Models,
    endpoints: Endpoints,
    serving: ServingServer,
    credentials: dict[str, str],
) -> None:
    first, second = models.register(c=1.0), models.register(c=0.05)
    models.registry.promote(MODEL, first)
    endpoints.deploy("fraud-live", MODEL, "@production")
    watcher = boto_client("sagemaker-runtime", serving.url, credentials)

    with Hammer(serving.url, credentials) as hammer:
        models.registry.promote(MODEL, second)
        wait_for_version(watcher, second)
        counts = [len(s) for s in hammer.seen]
        while any(len(s) < n + 5 for s, n in zip(hammer.seen, counts, strict=True)):
            time.sleep(0.01)

    assert hammer.errors == []
    for seen in hammer.seen:
        swapped = seen.index(second)
        assert set(seen[:swapped]) == {first} and set(seen[swapped:]) == {second}


def test_rollback_restores_the_previous_version(
    models: Models,
    endpoints: Endpoints,
    serving: ServingServer,
    credentials: dict[str, str],
) -> None:
    first, second = models.register(c=1.0), models.register(c=0.05)
    models.registry.promote(MODEL, first)
    endpoints.deploy("fraud-live", MODEL, "@production")
    client = boto_client("sagemaker-runtime", serving.url, credentials)
    models.registry.promote(MODEL, second)
    wait_for_version(client, second)

    models.registry.rollback(MODEL)

    wait_for_version(client, first)
    assert version_of(client) == first


def test_an_endpoint_pinned_to_a_version_ignores_promotion(
    models: Models,
    endpoints: Endpoints,
    serving: ServingServer,
    credentials: dict[str, str],
) -> None:
    first, second = models.register(c=1.0), models.register(c=0.05)
    models.registry.promote(MODEL, first)
    endpoints.deploy("fraud-pinned", MODEL, str(first))
    endpoints.deploy("fraud-live", MODEL, "@production")
    client = boto_client("sagemaker-runtime", serving.url, credentials)
    pinned: list[int] = [version_of(client, "fraud-pinned")]
    version_of(client)

    models.registry.promote(MODEL, second)
    while version_of(client) != second:
        pinned.append(version_of(client, "fraud-pinned"))
    pinned += [version_of(client, "fraud-pinned") for _ in range(5)]

    assert set(pinned) == {first}
