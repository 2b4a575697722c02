"""The operator's monitoring page: audited accuracy apart from hard cases, and pipeline events."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from web_helpers import Kit, WebServer

from closedloop.engine import Engine

SignInAs = Callable[[str, str], httpx.Client]


def _review(engine: Engine, kit: Kit, name: str, *, human: str, audit: bool) -> None:
    """A loop of the kit's flow (TaskCount 2) that alice and bob both answer."""
    content = {
        "item": name,
        "prediction": {"label": "fraud", "confidence": 0.7},
        "audit": audit,
    }
    engine.loops.start(name, engine.flows.arn(kit.flow), json.dumps(content))
    for reviewer in ("alice", "bob"):
        worker = engine.workforce.describe_worker(reviewer)
        task = engine.tasks.claim_next(worker)
        assert task is not None and task.human_loop_name == name
        engine.tasks.answer(worker, task.task_id, {"category": {"label": human}})


def test_monitoring_shows_audited_accuracy_with_its_interval_and_events_show_pipeline_runs(
    web: WebServer, sign_in_as: SignInAs, kit: Kit, engine: Engine
) -> None:
    for name in kit.loops:
        engine.loops.stop(name)
    for i in range(4):
        _review(engine, kit, f"audit-{i}", human="fraud" if i else "legit", audit=True)
    _review(engine, kit, "hard-0", human="legit", audit=False)
    engine.events.record_pipeline_event(
        "Promoted", "cards", 7, {"model": "m", "version": 2, "reasons": ["f1 up"]}
    )

    olive = sign_in_as("admin", "olive")
    page = olive.get("/admin/monitoring").text
    events = olive.get("/admin/events").text

    assert (
        "75.0% (30.1\N{EN DASH}95.4%)" in page
    )  # 3 of 4 audited loops; Wilson 95% interval
    assert "60.0%" in page  # agreement over all five reviews, the hard case included
    assert "<polyline" in page
    assert (
        "pipeline cards, run 7" in events and "Promoted" in events and "f1 up" in events
    )
