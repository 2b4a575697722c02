"""The worker API: claiming under a lease, answering, releasing, and who may do it."""

from __future__ import annotations

from typing import Any

import pytest

from closedloop.engine import Engine


@pytest.fixture
def engine(clocked_engine: Engine) -> Engine:
    return clocked_engine


def test_claim_returns_the_oldest_task_first_and_204_when_none_is_left(
    kit: Any, clock: Any
) -> None:
    tokens = kit.workers("reviewers", "alice")
    flow_arn = kit.flow()
    for name in ("first", "second", "third"):
        kit.start(name, flow_arn)
        clock.advance(1)

    claimed = [kit.claim(tokens["alice"]) for _ in range(3)]

    assert [r.json()["humanLoopName"] for r in claimed] == ["first", "second", "third"]
    task = claimed[0].json()
    assert task["title"] == "Is this fraud?"
    assert task["description"] == "Look at the transaction"
    assert task["flowDefinitionName"] == "fraud-review"
    assert task["inputContent"] == {"n": 1}
    empty = kit.claim(tokens["alice"])
    assert empty.status_code == 204
    assert empty.content == b""


def test_a_worker_never_gets_two_tasks_of_one_loop(kit: Any) -> None:
    tokens = kit.workers("reviewers", "alice", "bob")
    flow_arn = kit.flow(TaskCount=3)
    kit.start("txn-1", flow_arn)

    first = kit.claim(tokens["alice"]).json()
    assert kit.claim(tokens["alice"]).status_code == 204
    assert kit.answer(tokens["alice"], first["taskId"]).status_code == 200
    assert kit.claim(tokens["alice"]).status_code == 204

    other = kit.claim(tokens["bob"]).json()
    assert other["humanLoopName"] == "txn-1"
    assert other["taskId"] != first["taskId"]


def test_answer_after_the_lease_expired_is_refused_with_409(
    kit: Any, clock: Any
) -> None:
    tokens = kit.workers("reviewers", "alice", "bob")
    flow_arn = kit.flow(TaskTimeLimitInSeconds=30)
    kit.start("txn-1", flow_arn)
    task = kit.claim(tokens["alice"]).json()
    clock.advance(30)

    late = kit.answer(tokens["alice"], task["taskId"])

    assert late.status_code == 409
    assert late.json()["error"]["code"] == "ConflictException"
    assert "expired" in late.json()["error"]["message"]
    assert kit.status("txn-1") == "InProgress"
    again = kit.claim(tokens["bob"]).json()
    assert again["taskId"] == task["taskId"]
    assert kit.answer(tokens["bob"], again["taskId"]).status_code == 200
    assert kit.status("txn-1") == "Completed"


def test_answer_again_with_the_same_content_is_idempotent_and_other_is_409(
    kit: Any,
) -> None:
    tokens = kit.workers("reviewers", "alice")
    kit.start("txn-1", kit.flow(TaskCount=2))
    task = kit.claim(tokens["alice"]).json()
    assert kit.answer(tokens["alice"], task["taskId"], "fraud").status_code == 200

    again = kit.answer(tokens["alice"], task["taskId"], "fraud")
    other = kit.answer(tokens["alice"], task["taskId"], "legit")

    assert again.status_code == 200
    assert again.json()["answersReceived"] == 1
    assert other.status_code == 409


def test_release_returns_the_task_to_the_queue(kit: Any) -> None:
    tokens = kit.workers("reviewers", "alice", "bob")
    kit.start("txn-1", kit.flow())
    task = kit.claim(tokens["alice"]).json()
    assert kit.release(tokens["bob"], task["taskId"]).status_code == 409

    released = kit.release(tokens["alice"], task["taskId"])

    assert released.status_code == 200
    assert kit.answer(tokens["alice"], task["taskId"]).status_code == 409
    taken = kit.claim(tokens["bob"]).json()
    assert taken["taskId"] == task["taskId"]
    assert kit.answer(tokens["bob"], taken["taskId"]).status_code == 200


def test_releasing_the_last_lease_of_a_stopping_loop_lets_it_stop(kit: Any) -> None:
    tokens = kit.workers("reviewers", "alice", "bob")
    kit.start("txn-1", kit.flow())
    task = kit.claim(tokens["alice"]).json()
    kit.a2i.stop_human_loop(HumanLoopName="txn-1")
    assert kit.status("txn-1") == "Stopping"

    assert kit.release(tokens["alice"], task["taskId"]).status_code == 200
    kit.engine.loops.sweep()

    assert kit.status("txn-1") == "Stopped"
    assert kit.claim(tokens["bob"]).status_code == 204


def test_a_worker_of_another_team_never_sees_the_task(kit: Any) -> None:
    tokens = kit.workers("reviewers", "alice")
    outsider = kit.workers("auditors", "eve")["eve"]
    kit.start("txn-1", kit.flow())

    assert kit.claim(outsider).status_code == 204

    assert kit.claim(tokens["alice"]).json()["humanLoopName"] == "txn-1"
    assert kit.claim(outsider).status_code == 204


@pytest.mark.parametrize(
    "token", [None, "clw_not-a-real-token", "wrong-prefix", "revoked"]
)
def test_wrong_or_missing_token_is_refused_with_403_and_changes_nothing(
    kit: Any, token: str | None
) -> None:
    tokens = kit.workers("reviewers", "alice")
    if token == "revoked":
        token = tokens["alice"]
        tokens["alice"] = kit.engine.workforce.issue_token("alice")
    kit.start("txn-1", kit.flow())
    task_id = kit.claim(tokens["alice"]).json()["taskId"]
    answer = {"answerContent": {"category": {"label": "fraud"}}}

    replies = [
        kit.worker_post(token, "/tasks/next"),
        kit.worker_post(token, f"/tasks/{task_id}/answer", json=answer),
        kit.worker_post(token, f"/tasks/{task_id}/release"),
    ]

    assert [r.status_code for r in replies] == [403, 403, 403]
    assert all(r.json()["error"]["message"] for r in replies)
    assert kit.status("txn-1") == "InProgress"
    assert kit.answer(tokens["alice"], task_id).status_code == 200


MALFORMED = [
    (b'{"answerContent": ', "body"),
    (b"[1, 2]", "body"),
    (b"{}", "answerContent"),
    (b'{"answerContent": "fraud"}', "answerContent"),
    (b'{"answerContent": {}, "comment": "x"}', "comment"),
]


def test_malformed_answer_is_refused_with_400_naming_the_field(kit: Any) -> None:
    tokens = kit.workers("reviewers", "alice")
    kit.start("txn-1", kit.flow())
    task_id = kit.claim(tokens["alice"]).json()["taskId"]

    for body, field in MALFORMED:
        path = f"/tasks/{task_id}/answer"
        reply = kit.worker_post(tokens["alice"], path, content=body)

        assert reply.status_code == 400
        assert reply.json()["error"]["field"] == field
        assert field in reply.json()["error"]["message"]
    assert kit.status("txn-1") == "InProgress"
    assert kit.answer(tokens["alice"], task_id).status_code == 200


def test_answer_without_a_valid_token_is_refused_before_the_body_is_read(
    kit: Any,
) -> None:
    reply = kit.worker_post("clw_wrong", "/tasks/1/answer", content=b"{not json")

    assert reply.status_code == 403
