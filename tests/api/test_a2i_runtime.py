"""The A2I runtime API through boto3: every operation, its errors and every loop status."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from a2i_samples import SAMPLES
from closedloop.engine import Engine

SAMPLE = SAMPLES / "fraud-detector-classifier-1.json"
MAX_INPUT = 3_145_728


@pytest.fixture
def engine(clocked_engine: Engine) -> Engine:
    return clocked_engine


def _content_of_length(length: int) -> str:
    text = json.dumps({"pad": ""})
    return json.dumps({"pad": "x" * (length - len(text))})


def test_started_loop_is_described_and_listed_as_in_progress(
    kit: Any, clock: Any
) -> None:
    flow_arn = kit.flow()

    loop_arn = kit.start("txn-1", flow_arn, amount=12)

    described = kit.a2i.describe_human_loop(HumanLoopName="txn-1")
    assert loop_arn == "arn:aws:sagemaker:us-east-1:000000000000:human-loop/txn-1"
    assert described["HumanLoopArn"] == loop_arn
    assert described["HumanLoopStatus"] == "InProgress"
    assert described["FlowDefinitionArn"] == flow_arn
    assert described["CreationTime"] == clock.now
    assert "FailureCode" not in described
    summaries = kit.a2i.list_human_loops(FlowDefinitionArn=flow_arn)
    assert [
        (s["HumanLoopName"], s["HumanLoopStatus"])
        for s in summaries["HumanLoopSummaries"]
    ] == [("txn-1", "InProgress")]


def test_completed_loop_writes_output_json_in_a2i_layout_and_schema(
    kit: Any, clock: Any
) -> None:
    tokens = kit.workers("reviewers", "alice", "bob")
    flow_arn = kit.flow(TaskCount=2)
    kit.start("txn-1", flow_arn, amount=12)
    clock.advance(5)

    for name, label in (("alice", "fraud"), ("bob", "legit")):
        task = kit.claim(tokens[name]).json()
        clock.advance(3.25)
        assert kit.answer(tokens[name], task["taskId"], label).status_code == 200
        assert kit.status("txn-1") == ("InProgress" if name == "alice" else "Completed")

    uri = kit.a2i.describe_human_loop(HumanLoopName="txn-1")["HumanLoopOutput"][
        "OutputS3Uri"
    ]
    # Created 2024-02-29T23:59:58.5Z: the key carries the creation second, in UTC.
    assert uri == "s3://reviews/out/fraud-review/2024/02/29/23/59/58/txn-1/output.json"
    output = json.loads(kit.engine.ctx.objects.read(uri))
    sample = json.loads(SAMPLE.read_text())
    assert output.keys() == sample.keys()
    answer, sample_answer = output["humanAnswers"][0], sample["humanAnswers"][0]
    assert answer.keys() == sample_answer.keys()
    assert (
        answer["workerMetadata"]["identityData"].keys()
        == sample_answer["workerMetadata"]["identityData"].keys()
    )
    assert output["flowDefinitionArn"] == flow_arn
    assert output["humanLoopName"] == "txn-1"
    assert output["inputContent"] == {"amount": 12}
    assert answer["acceptanceTime"] == "2024-03-01T00:00:03.500Z"
    assert answer["submissionTime"] == "2024-03-01T00:00:06.750Z"
    assert answer["timeSpentInSeconds"] == 3.25
    assert answer["workerId"] == kit.engine.workforce.describe_worker("alice").worker_id
    assert [
        a["answerContent"]["category"]["label"] for a in output["humanAnswers"]
    ] == [
        "fraud",
        "legit",
    ]


def test_loop_with_ten_tasks_completes_only_after_ten_distinct_workers(
    kit: Any,
) -> None:
    names = [f"w{i}" for i in range(10)]
    tokens = kit.workers("reviewers", *names)
    flow_arn = kit.flow(TaskCount=10)
    kit.start("txn-1", flow_arn)

    for name in names:
        assert kit.status("txn-1") == "InProgress"
        task = kit.claim(tokens[name]).json()
        assert kit.answer(tokens[name], task["taskId"]).status_code == 200

    assert kit.status("txn-1") == "Completed"
    uri = kit.a2i.describe_human_loop(HumanLoopName="txn-1")["HumanLoopOutput"][
        "OutputS3Uri"
    ]
    output = json.loads(kit.engine.ctx.objects.read(uri))
    assert len({a["workerId"] for a in output["humanAnswers"]}) == 10


def test_start_again_with_same_name_and_input_returns_the_same_loop(kit: Any) -> None:
    flow_arn = kit.flow()
    first = kit.start("txn-1", flow_arn, amount=12)

    again = kit.start("txn-1", flow_arn, amount=12)

    assert again == first
    assert kit.loop_names(flow_arn) == ["txn-1"]
    assert kit.claim(kit.workers("reviewers", "alice")["alice"]).status_code == 200


def test_start_with_same_name_and_other_input_is_a_conflict(kit: Any) -> None:
    flow_arn = kit.flow()
    kit.start("txn-1", flow_arn, amount=12)

    with pytest.raises(kit.a2i.exceptions.ConflictException) as caught:
        kit.start("txn-1", flow_arn, amount=13)

    assert "txn-1" in caught.value.response["Error"]["Message"]
    assert kit.loop_names(flow_arn) == ["txn-1"]
    token = kit.workers("reviewers", "alice")["alice"]
    assert kit.claim(token).json()["inputContent"] == {"amount": 12}


def test_input_content_of_the_maximum_length_is_accepted_one_more_is_refused(
    kit: Any,
) -> None:
    flow_arn = kit.flow()
    longest = _content_of_length(MAX_INPUT)
    assert len(longest) == MAX_INPUT

    kit.a2i.start_human_loop(
        HumanLoopName="longest",
        FlowDefinitionArn=flow_arn,
        HumanLoopInput={"InputContent": longest},
    )
    with pytest.raises(kit.a2i.exceptions.ValidationException) as caught:
        kit.a2i.start_human_loop(
            HumanLoopName="too-long",
            FlowDefinitionArn=flow_arn,
            HumanLoopInput={"InputContent": _content_of_length(MAX_INPUT + 1)},
        )

    assert "HumanLoopInput.InputContent" in caught.value.response["Error"]["Message"]
    assert kit.loop_names(flow_arn) == ["longest"]
    token = kit.workers("reviewers", "alice")["alice"]
    assert len(json.dumps(kit.claim(token).json()["inputContent"])) == MAX_INPUT


BAD_STARTS = [
    ("Bad_Name", '{"n": 1}', "HumanLoopName"),
    ("x" * 64, '{"n": 1}', "HumanLoopName"),
    ("txn-1", "[1, 2]", "HumanLoopInput.InputContent"),
    ("txn-1", "{not json", "HumanLoopInput.InputContent"),
]


def test_start_with_bad_input_is_refused_naming_the_field(kit: Any) -> None:
    flow_arn = kit.flow()

    for name, content, field in BAD_STARTS:
        with pytest.raises(kit.a2i.exceptions.ValidationException) as caught:
            kit.a2i.start_human_loop(
                HumanLoopName=name,
                FlowDefinitionArn=flow_arn,
                HumanLoopInput={"InputContent": content},
            )
        assert field in caught.value.response["Error"]["Message"]

    assert kit.loop_names(flow_arn) == []


def test_start_on_unknown_or_foreign_flow_is_refused_naming_the_flow(
    kit: Any,
) -> None:
    flow_arn = kit.flow()
    unknown = flow_arn.replace("fraud-review", "no-such-flow")
    foreign = flow_arn.replace("000000000000", "111111111111")

    for arn in (unknown, foreign, "not-an-arn"):
        with pytest.raises(kit.a2i.exceptions.ValidationException) as caught:
            kit.start("txn-1", arn)
        assert "FlowDefinitionArn" in caught.value.response["Error"]["Message"]

    assert kit.loop_names(flow_arn) == []
    with pytest.raises(kit.a2i.exceptions.ResourceNotFoundException):
        kit.a2i.describe_human_loop(HumanLoopName="txn-1")


def test_unknown_loop_is_not_found_for_describe_stop_and_delete(kit: Any) -> None:
    a2i = kit.a2i
    with pytest.raises(a2i.exceptions.ResourceNotFoundException):
        a2i.describe_human_loop(HumanLoopName="ghost")
    with pytest.raises(a2i.exceptions.ResourceNotFoundException):
        a2i.stop_human_loop(HumanLoopName="ghost")
    with pytest.raises(a2i.exceptions.ResourceNotFoundException):
        a2i.delete_human_loop(HumanLoopName="ghost")
    with pytest.raises(a2i.exceptions.ValidationException) as caught:
        a2i.describe_human_loop(HumanLoopName="Bad_Name")
    assert "HumanLoopName" in caught.value.response["Error"]["Message"]


def test_in_progress_loop_is_stopped_directly_then_deleted(kit: Any) -> None:
    tokens = kit.workers("reviewers", "alice")
    flow_arn = kit.flow()
    kit.start("txn-1", flow_arn)
    with pytest.raises(kit.a2i.exceptions.ValidationException):
        kit.a2i.delete_human_loop(HumanLoopName="txn-1")
    assert kit.status("txn-1") == "InProgress"

    kit.a2i.stop_human_loop(HumanLoopName="txn-1")

    assert kit.status("txn-1") == "Stopped"
    assert kit.claim(tokens["alice"]).status_code == 204
    with pytest.raises(kit.a2i.exceptions.ValidationException):
        kit.a2i.stop_human_loop(HumanLoopName="txn-1")
    kit.a2i.delete_human_loop(HumanLoopName="txn-1")
    with pytest.raises(kit.a2i.exceptions.ResourceNotFoundException):
        kit.a2i.describe_human_loop(HumanLoopName="txn-1")
    assert kit.loop_names(flow_arn) == []


def test_stop_while_a_worker_holds_a_lease_is_stopping_until_the_lease_ends(
    kit: Any, clock: Any
) -> None:
    tokens = kit.workers("reviewers", "alice")
    flow_arn = kit.flow(TaskTimeLimitInSeconds=60)
    kit.start("txn-1", flow_arn)
    task = kit.claim(tokens["alice"]).json()

    kit.a2i.stop_human_loop(HumanLoopName="txn-1")

    assert kit.status("txn-1") == "Stopping"
    with pytest.raises(kit.a2i.exceptions.ValidationException):
        kit.a2i.delete_human_loop(HumanLoopName="txn-1")
    assert kit.answer(tokens["alice"], task["taskId"]).status_code == 409
    kit.engine.loops.sweep()
    assert kit.status("txn-1") == "Stopping"
    clock.advance(60)
    kit.engine.loops.sweep()
    assert kit.status("txn-1") == "Stopped"
    kit.a2i.delete_human_loop(HumanLoopName="txn-1")
    assert kit.loop_names(flow_arn) == []


def test_loop_fails_as_expired_when_its_availability_lifetime_passes(
    kit: Any, clock: Any
) -> None:
    tokens = kit.workers("reviewers", "alice")
    flow_arn = kit.flow(TaskAvailabilityLifetimeInSeconds=600)
    kit.start("txn-1", flow_arn)
    clock.advance(599)
    kit.engine.loops.sweep()
    assert kit.status("txn-1") == "InProgress"

    clock.advance(1)
    kit.engine.loops.sweep()

    described = kit.a2i.describe_human_loop(HumanLoopName="txn-1")
    assert described["HumanLoopStatus"] == "Failed"
    assert described["FailureCode"] == "Expired"
    assert "TaskAvailabilityLifetimeInSeconds" in described["FailureReason"]
    assert kit.claim(tokens["alice"]).status_code == 204
    kit.a2i.delete_human_loop(HumanLoopName="txn-1")


def test_list_filters_by_creation_time_and_sorts_both_ways(
    kit: Any, clock: Any
) -> None:
    flow_arn = kit.flow()
    times = []
    for index in range(5):
        times.append(clock.now)
        kit.start(f"loop-{index}", flow_arn, n=index)
        clock.advance(10)

    def names(**params: Any) -> list[str]:
        page = kit.a2i.list_human_loops(FlowDefinitionArn=flow_arn, **params)
        return [s["HumanLoopName"] for s in page["HumanLoopSummaries"]]

    assert names() == ["loop-4", "loop-3", "loop-2", "loop-1", "loop-0"]
    assert names(SortOrder="Ascending") == [f"loop-{i}" for i in range(5)]
    window = {
        "CreationTimeAfter": times[1] + timedelta(seconds=5),
        "CreationTimeBefore": times[3] + timedelta(seconds=5),
    }
    assert names(**window) == ["loop-3", "loop-2"]
    assert names(SortOrder="Ascending", **window) == ["loop-2", "loop-3"]
    assert names(CreationTimeAfter=datetime(2030, 1, 1, tzinfo=UTC)) == []


def test_list_pages_through_many_loops_with_next_token(kit: Any, clock: Any) -> None:
    flow_arn = kit.flow()
    other_arn = kit.flow("other-review")
    for index in range(23):
        kit.engine.loops.start(f"loop-{index:02d}", flow_arn, json.dumps({"n": index}))
        if index % 3 == 0:  # some loops share a creation time
            clock.advance(1)
    expected = [f"loop-{i:02d}" for i in range(23)]

    for order, want in (("Ascending", expected), ("Descending", expected[::-1])):
        seen: list[str] = []
        params: dict[str, Any] = {"SortOrder": order, "MaxResults": 5}
        while True:
            page = kit.a2i.list_human_loops(FlowDefinitionArn=flow_arn, **params)
            assert len(page["HumanLoopSummaries"]) <= 5
            seen += [s["HumanLoopName"] for s in page["HumanLoopSummaries"]]
            if "NextToken" not in page:
                break
            params["NextToken"] = page["NextToken"]
        assert seen == want

    token = kit.a2i.list_human_loops(FlowDefinitionArn=flow_arn, MaxResults=5)[
        "NextToken"
    ]
    with pytest.raises(kit.a2i.exceptions.ValidationException) as caught:
        kit.a2i.list_human_loops(FlowDefinitionArn=other_arn, NextToken=token)
    assert "NextToken" in caught.value.response["Error"]["Message"]


def test_list_refuses_bad_paging_and_unknown_flow(kit: Any) -> None:
    flow_arn = kit.flow()
    a2i = kit.a2i

    with pytest.raises(a2i.exceptions.ValidationException) as caught:
        a2i.list_human_loops(FlowDefinitionArn=flow_arn, MaxResults=101)
    assert "MaxResults" in caught.value.response["Error"]["Message"]
    with pytest.raises(a2i.exceptions.ValidationException) as caught:
        a2i.list_human_loops(FlowDefinitionArn=flow_arn, NextToken="garbage")
    assert "NextToken" in caught.value.response["Error"]["Message"]
    with pytest.raises(a2i.exceptions.ResourceNotFoundException):
        a2i.list_human_loops(FlowDefinitionArn=flow_arn.replace("fraud", "ghost"))


def test_concurrent_starts_each_get_their_own_answer(kit: Any) -> None:
    """Starts that arrive together share a transaction; none is lost or mixed up."""
    flow_arn = kit.flow()
    arn_prefix = kit.start("txn-taken", flow_arn, amount=0).removesuffix("txn-taken")
    names = [f"txn-{i}" for i in range(60)]

    def start(name: str) -> str:
        try:
            return kit.start(name, flow_arn, amount=name)
        except kit.a2i.exceptions.ConflictException:
            return "conflict"

    calls = [*names, *names, "txn-taken"]
    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(start, calls))
    results: dict[str, list[str]] = {}
    for name, outcome in zip(calls, outcomes, strict=True):
        results.setdefault(name, []).append(outcome)

    # Both starts of a name get that loop's ARN; neither may be refused.
    assert results.pop("txn-taken") == ["conflict"]
    assert results == {n: [arn_prefix + n] * 2 for n in names}

    listed = kit.a2i.list_human_loops(FlowDefinitionArn=flow_arn, MaxResults=100)
    assert len(listed["HumanLoopSummaries"]) == 61
    stored = kit.engine.loops.describe("txn-41").input_content
    assert json.loads(stored) == {"amount": "txn-41"}
