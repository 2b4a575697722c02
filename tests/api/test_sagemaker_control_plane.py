"""The SageMaker control plane through boto3: task UIs, flow definitions, workteams."""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from closedloop.engine import Engine

TEMPLATE = "<crowd-form><crowd-input name='note'></crowd-input></crowd-form>"


@pytest.fixture
def engine(clocked_engine: Engine) -> Engine:
    return clocked_engine


def _error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


@pytest.fixture
def unvalidated(server: Any, credentials: dict[str, str]) -> Any:
    """A client that sends what it is given, so the server's own checks are tested."""
    return boto3.client(
        "sagemaker",
        endpoint_url=server.url + "/sagemaker",
        region_name="us-east-1",
        aws_access_key_id=credentials["aws_access_key_id"],
        aws_secret_access_key=credentials["aws_secret_access_key"],
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )


def _flow_names(sagemaker: Any) -> list[str]:
    summaries = sagemaker.list_flow_definitions()["FlowDefinitionSummaries"]
    return [s["FlowDefinitionName"] for s in summaries]


def test_human_task_ui_create_describe_list_delete(sagemaker: Any, clock: Any) -> None:
    arn = sagemaker.create_human_task_ui(
        HumanTaskUiName="note-ui", UiTemplate={"Content": TEMPLATE}
    )["HumanTaskUiArn"]

    described = sagemaker.describe_human_task_ui(HumanTaskUiName="note-ui")
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:human-task-ui/note-ui"
    assert described["HumanTaskUiArn"] == arn
    assert described["HumanTaskUiStatus"] == "Active"
    assert described["CreationTime"] == clock.now
    assert (
        described["UiTemplate"]["ContentSha256"]
        == hashlib.sha256(TEMPLATE.encode()).hexdigest()
    )
    listed = sagemaker.list_human_task_uis()["HumanTaskUiSummaries"]
    assert [u["HumanTaskUiName"] for u in listed] == ["note-ui"]

    with pytest.raises(ClientError) as caught:
        sagemaker.create_human_task_ui(
            HumanTaskUiName="note-ui", UiTemplate={"Content": "<p>other</p>"}
        )
    assert _error(caught)[0] == "ResourceInUse"
    sagemaker.delete_human_task_ui(HumanTaskUiName="note-ui")
    for call in (sagemaker.describe_human_task_ui, sagemaker.delete_human_task_ui):
        with pytest.raises(ClientError) as caught:
            call(HumanTaskUiName="note-ui")
        assert _error(caught)[0] == "ResourceNotFound"
    assert sagemaker.list_human_task_uis()["HumanTaskUiSummaries"] == []


def test_task_ui_used_by_a_flow_cannot_be_deleted(kit: Any) -> None:
    kit.flow()

    with pytest.raises(ClientError) as caught:
        kit.sagemaker.delete_human_task_ui(HumanTaskUiName="fraud-review-ui")

    code, message = _error(caught)
    assert code == "ResourceInUse"
    assert "fraud-review" in message
    kit.sagemaker.describe_human_task_ui(HumanTaskUiName="fraud-review-ui")


def test_flow_definition_create_describe_list_delete(kit: Any, clock: Any) -> None:
    sagemaker = kit.sagemaker
    kit.engine.workforce.create_team("reviewers")
    ui_arn = kit.task_ui()
    request = kit.flow_request(
        "fraud-review", "reviewers", ui_arn, TaskCount=3, TaskKeywords=["fraud"]
    )

    arn = sagemaker.create_flow_definition(**request)["FlowDefinitionArn"]

    described = sagemaker.describe_flow_definition(FlowDefinitionName="fraud-review")
    assert (
        arn == "arn:aws:sagemaker:us-east-1:000000000000:flow-definition/fraud-review"
    )
    assert described["FlowDefinitionArn"] == arn
    assert described["FlowDefinitionStatus"] == "Active"
    assert described["CreationTime"] == clock.now
    assert described["HumanLoopConfig"] == request["HumanLoopConfig"]
    assert described["OutputConfig"] == request["OutputConfig"]
    assert described["RoleArn"] == request["RoleArn"]
    assert _flow_names(sagemaker) == ["fraud-review"]
    with pytest.raises(ClientError) as caught:
        sagemaker.create_flow_definition(**request)
    assert _error(caught)[0] == "ResourceInUse"

    sagemaker.delete_flow_definition(FlowDefinitionName="fraud-review")

    with pytest.raises(ClientError) as caught:
        sagemaker.describe_flow_definition(FlowDefinitionName="fraud-review")
    assert _error(caught)[0] == "ResourceNotFound"
    with pytest.raises(ClientError) as caught:
        sagemaker.delete_flow_definition(FlowDefinitionName="fraud-review")
    assert _error(caught)[0] == "ResourceNotFound"
    assert _flow_names(sagemaker) == []


def test_flow_with_a_loop_in_progress_cannot_be_deleted(kit: Any) -> None:
    flow_arn = kit.flow()
    kit.start("txn-1", flow_arn)

    with pytest.raises(ClientError) as caught:
        kit.sagemaker.delete_flow_definition(FlowDefinitionName="fraud-review")

    code, message = _error(caught)
    assert code == "ResourceInUse"
    assert "txn-1" in message
    assert _flow_names(kit.sagemaker) == ["fraud-review"]
    kit.a2i.stop_human_loop(HumanLoopName="txn-1")
    kit.sagemaker.delete_flow_definition(FlowDefinitionName="fraud-review")
    assert kit.status("txn-1") == "Stopped"


def test_task_count_up_to_ten_is_accepted_and_eleven_refused(
    kit: Any, unvalidated: Any
) -> None:
    kit.engine.workforce.create_team("reviewers")
    ui_arn = kit.task_ui()
    client = unvalidated

    client.create_flow_definition(
        **kit.flow_request("ten", "reviewers", ui_arn, TaskCount=10)
    )
    for count in (11, 0):
        with pytest.raises(ClientError) as caught:
            client.create_flow_definition(
                **kit.flow_request(f"n{count}", "reviewers", ui_arn, TaskCount=count)
            )
        code, message = _error(caught)
        assert code == "ValidationException"
        assert "HumanLoopConfig.TaskCount" in message
        assert repr(count) in message

    assert _flow_names(kit.sagemaker) == ["ten"]
    described = kit.sagemaker.describe_flow_definition(FlowDefinitionName="ten")
    assert described["HumanLoopConfig"]["TaskCount"] == 10


BAD_FLOWS: list[tuple[dict[str, Any], str]] = [
    ({"FlowDefinitionName": "Bad_Name"}, "FlowDefinitionName"),
    ({"team": "ghost-team"}, "HumanLoopConfig.WorkteamArn"),
    ({"WorkteamArn": "arn:aws:iam::1:role/x"}, "HumanLoopConfig.WorkteamArn"),
    ({"ui": "ghost-ui"}, "HumanLoopConfig.HumanTaskUiArn"),
    ({"TaskAvailabilityLifetimeInSeconds": 864_001}, "TaskAvailabilityLifetime"),
    ({"TaskTimeLimitInSeconds": 28_801}, "HumanLoopConfig.TaskTimeLimitInSeconds"),
    ({"S3OutputPath": "ftp://bucket/out"}, "OutputConfig.S3OutputPath"),
]


def test_create_flow_with_bad_input_is_refused_naming_the_field(
    kit: Any, unvalidated: Any
) -> None:
    kit.engine.workforce.create_team("reviewers")
    good_ui = kit.task_ui()

    for template, field in BAD_FLOWS:
        change = dict(template)
        ui_arn = good_ui.replace("fraud-ui", change.pop("ui", "fraud-ui"))
        request = kit.flow_request("flow", change.pop("team", "reviewers"), ui_arn)
        if "S3OutputPath" in change:
            request["OutputConfig"]["S3OutputPath"] = change.pop("S3OutputPath")
        if "FlowDefinitionName" in change:
            request["FlowDefinitionName"] = change.pop("FlowDefinitionName")
        request["HumanLoopConfig"].update(change)

        with pytest.raises(ClientError) as caught:
            unvalidated.create_flow_definition(**request)

        code, message = _error(caught)
        assert code == "ValidationException"
        assert field in message
    assert _flow_names(kit.sagemaker) == []


def test_create_flow_with_dot_segment_output_path_names_the_field(kit: Any) -> None:
    kit.engine.workforce.create_team("reviewers")
    request = kit.flow_request("flow", "reviewers", kit.task_ui())
    request["OutputConfig"]["S3OutputPath"] = "s3://bucket/../escape"

    with pytest.raises(ClientError) as caught:
        kit.sagemaker.create_flow_definition(**request)

    assert "OutputConfig.S3OutputPath" in _error(caught)[1]


def test_workteams_are_described_and_listed_with_paging(
    engine: Engine, sagemaker: Any, clock: Any
) -> None:
    for name in ("gamma", "alpha", "beta"):
        engine.workforce.create_team(name, description=f"team {name}")
        clock.advance(1)
    engine.workforce.create_worker("alice", ["alpha"])

    team = sagemaker.describe_workteam(WorkteamName="alpha")["Workteam"]

    assert team["WorkteamArn"] == (
        "arn:aws:sagemaker:us-east-1:000000000000:workteam/private-crowd/alpha"
    )
    assert team["Description"] == "team alpha"
    by_date = sagemaker.list_workteams()["Workteams"]
    assert [t["WorkteamName"] for t in by_date] == ["gamma", "alpha", "beta"]
    first = sagemaker.list_workteams(SortBy="Name", MaxResults=2)
    assert [t["WorkteamName"] for t in first["Workteams"]] == ["alpha", "beta"]
    rest = sagemaker.list_workteams(
        SortBy="Name", MaxResults=2, NextToken=first["NextToken"]
    )
    assert [t["WorkteamName"] for t in rest["Workteams"]] == ["gamma"]
    assert "NextToken" not in rest
    named = sagemaker.list_workteams(NameContains="ta", SortOrder="Descending")
    assert [t["WorkteamName"] for t in named["Workteams"]] == ["beta"]
    with pytest.raises(ClientError) as caught:
        sagemaker.describe_workteam(WorkteamName="ghost")
    code, message = _error(caught)
    assert code == "ValidationException"
    assert "ghost" in message


def test_flow_definitions_and_task_uis_page_with_next_token(
    kit: Any, clock: Any
) -> None:
    for index in range(5):
        kit.flow(f"flow-{index}")
        clock.advance(1)
    sagemaker = kit.sagemaker

    seen: list[str] = []
    params: dict[str, Any] = {"MaxResults": 2, "SortOrder": "Ascending"}
    while True:
        page = sagemaker.list_flow_definitions(**params)
        seen += [f["FlowDefinitionName"] for f in page["FlowDefinitionSummaries"]]
        if "NextToken" not in page:
            break
        params["NextToken"] = page["NextToken"]

    assert seen == [f"flow-{i}" for i in range(5)]
    uis = sagemaker.list_human_task_uis(MaxResults=3)
    assert [u["HumanTaskUiName"] for u in uis["HumanTaskUiSummaries"]] == [
        "flow-4-ui",
        "flow-3-ui",
        "flow-2-ui",
    ]
    with pytest.raises(ClientError) as caught:
        sagemaker.list_flow_definitions(NextToken=uis["NextToken"])
    code, message = _error(caught)
    assert code == "ValidationException"
    assert "NextToken" in message
