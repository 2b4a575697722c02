"""Webhook delivery of loop status changes: signed, retried with backoff, never lost."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from a2i_samples import SAMPLES
from closedloop.core.events import MAX_BACKOFF_SECONDS, DeliveryReport, sign
from closedloop.engine import Engine
from closedloop.errors import ValidationError
from closedloop.settings import Settings

SAMPLE = SAMPLES / "docs-status-change-event.json"


class Clock:
    """A frozen UTC clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Receiver:
    """A webhook receiver on loopback that records requests and answers ``status``."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.status = 200
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def event_ids(self) -> list[str]:
        return [headers["X-Closedloop-Event-Id"] for headers, _ in self.received]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(settings: Settings, clock: Clock) -> Iterator[Engine]:
    engine = Engine(settings, clock=clock)
    yield engine
    engine.close()


@pytest.fixture
def deliver(engine: Engine) -> Iterator[Callable[[], DeliveryReport]]:
    """``engine.events.deliver_due`` over one kept-open HTTP client."""
    with httpx.Client(timeout=10) as http:
        yield lambda: engine.events.deliver_due(client=http)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


def _flow(engine: Engine) -> str:
    engine.workforce.create_team("reviewers")
    ui = engine.task_uis.create("ui", "<crowd-form></crowd-form>")
    return engine.flows.create(
        {
            "FlowDefinitionName": "review",
            "RoleArn": "arn:aws:iam::000000000000:role/closedloop",
            "OutputConfig": {"S3OutputPath": "s3://reviews/out"},
            "HumanLoopConfig": {
                "WorkteamArn": engine.workforce.team_arn("reviewers"),
                "HumanTaskUiArn": ui.arn,
                "TaskTitle": "Review",
                "TaskDescription": "Review the item",
                "TaskCount": 1,
            },
        }
    ).arn


def _end_loops(engine: Engine, *names: str) -> None:
    flow = _flow(engine)
    for name in names:
        engine.loops.start(name, flow, json.dumps({"name": name}))
        engine.loops.stop(name)


def test_delivery_carries_the_a2i_event_signed_with_the_webhook_secret(
    engine: Engine, receiver: Receiver
) -> None:
    receiver.start()
    hook = engine.events.add_webhook(receiver.url)
    _end_loops(engine, "item-1")

    report = engine.events.deliver_due()

    assert (report.delivered, report.failed) == (1, 0)
    [(headers, body)] = receiver.received
    assert headers["X-Closedloop-Signature"] == sign(
        hook.secret, headers["X-Closedloop-Timestamp"], body
    )
    assert headers["X-Closedloop-Signature"] != sign(
        "another-secret", headers["X-Closedloop-Timestamp"], body
    )
    event, sample = json.loads(body), json.loads(SAMPLE.read_text())
    assert event.keys() == sample.keys()
    assert event["detail"].keys() == sample["detail"].keys()
    assert event["detail"]["humanLoopName"] == "item-1"
    assert event["detail"]["humanLoopStatus"] == "Stopped"
    assert event["detail-type"] == "SageMaker A2I HumanLoop Status Change"
    assert engine.events.deliver_due().delivered == 0
    assert len(receiver.received) == 1


def test_failed_delivery_is_retried_with_doubling_backoff_until_it_succeeds(
    engine: Engine,
    clock: Clock,
    receiver: Receiver,
    deliver: Callable[[], DeliveryReport],
) -> None:
    receiver.status = 500
    receiver.start()
    engine.events.add_webhook(receiver.url)
    _end_loops(engine, "item-1")
    assert deliver().failed == 1

    for backoff in (2, 4, 8):
        clock.advance(backoff - 1)
        assert deliver().failed == 0  # not due yet
        clock.advance(1)
        assert deliver().failed == 1
    assert len(receiver.received) == 4
    assert engine.events.list_webhooks()[0].pending == 1

    receiver.status = 204
    clock.advance(16)
    assert deliver().delivered == 1

    clock.advance(MAX_BACKOFF_SECONDS)
    assert deliver().delivered == 0
    assert len(set(receiver.event_ids())) == 1
    assert len(receiver.received) == 5
    assert engine.events.list_webhooks()[0].pending == 0


def test_events_wait_while_the_receiver_is_down_and_all_arrive_when_it_is_back(
    engine: Engine,
    clock: Clock,
    receiver: Receiver,
    deliver: Callable[[], DeliveryReport],
) -> None:
    engine.events.add_webhook(receiver.url)
    _end_loops(engine, "item-1", "item-2", "item-3")

    assert deliver().failed == 3
    clock.advance(2)
    assert deliver().failed == 3
    assert engine.events.list_webhooks()[0].pending == 3

    receiver.start()
    clock.advance(4)
    assert deliver().delivered == 3

    names = sorted(
        json.loads(body)["detail"]["humanLoopName"] for _, body in receiver.received
    )
    assert names == ["item-1", "item-2", "item-3"]
    assert len(set(receiver.event_ids())) == 3
    clock.advance(3600)
    assert deliver().delivered == 0


def test_backoff_stops_growing_at_one_hour(
    engine: Engine,
    clock: Clock,
    receiver: Receiver,
    deliver: Callable[[], DeliveryReport],
) -> None:
    engine.events.add_webhook(receiver.url)
    _end_loops(engine, "item-1")
    deliver()
    for attempt in range(1, 14):
        clock.advance(min(2**attempt, MAX_BACKOFF_SECONDS))
        assert deliver().failed == 1

    clock.advance(MAX_BACKOFF_SECONDS - 1)
    assert deliver().failed == 0
    clock.advance(1)
    receiver.start()
    assert deliver().delivered == 1


def test_each_webhook_gets_its_own_copy_and_a_failing_one_does_not_block_others(
    engine: Engine,
    clock: Clock,
    receiver: Receiver,
    deliver: Callable[[], DeliveryReport],
) -> None:
    receiver.start()
    down = Receiver()
    engine.events.add_webhook(receiver.url)
    engine.events.add_webhook(down.url)
    _end_loops(engine, "item-1")

    report = deliver()

    assert (report.delivered, report.failed) == (1, 1)
    assert [h.pending for h in engine.events.list_webhooks()] == [0, 1]
    down.start()
    try:
        clock.advance(2)
        assert deliver().delivered == 1
        assert len(down.received) == 1
    finally:
        down.stop()
    assert len(receiver.received) == 1


def test_removed_webhook_gets_no_more_attempts(
    engine: Engine,
    clock: Clock,
    receiver: Receiver,
    deliver: Callable[[], DeliveryReport],
) -> None:
    hook = engine.events.add_webhook(receiver.url)
    _end_loops(engine, "item-1")
    deliver()

    engine.events.remove_webhook(hook.id)
    receiver.start()
    clock.advance(3600)

    assert deliver().delivered == 0
    assert receiver.received == []
    assert engine.events.list_webhooks() == []


def test_webhook_url_must_be_http(engine: Engine) -> None:
    with pytest.raises(ValidationError) as caught:
        engine.events.add_webhook("ftp://example.com/hook")

    assert caught.value.field == "url"
    assert "ftp://example.com/hook" in caught.value.message
    assert engine.events.list_webhooks() == []
