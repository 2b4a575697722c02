"""Tests for request validation driven by botocore's API models."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop import spec
from closedloop.errors import ValidationError
from closedloop.spec import compile_model_pattern, parse_timestamp, validate_request

A2I = "sagemaker-a2i-runtime"
SM = "sagemaker"
ACCOUNT = "123456789012"
FLOW_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:flow-definition/my-flow"
WORKTEAM_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:workteam/private-crowd/team"
UI_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:human-task-ui/my-ui"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/service-role/A2IRole"


def start_loop(**changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "HumanLoopName": "loop-1",
        "FlowDefinitionArn": FLOW_ARN,
        "HumanLoopInput": {"InputContent": '{"text": "hello"}'},
        "DataAttributes": {"ContentClassifiers": ["FreeOfAdultContent"]},
    }
    return {**params, **changes}


def human_loop_config(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "WorkteamArn": WORKTEAM_ARN,
        "HumanTaskUiArn": UI_ARN,
        "TaskTitle": "Review the label",
        "TaskDescription": "Check whether the model's label is right",
        "TaskCount": 3,
        "TaskAvailabilityLifetimeInSeconds": 3600,
        "TaskTimeLimitInSeconds": 300,
        "TaskKeywords": ["images", "labels"],
        "PublicWorkforceTaskPrice": {"AmountInUsd": {"Dollars": 0, "Cents": 3}},
    }
    return {**config, **changes}


def create_flow(**changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "FlowDefinitionName": "my-flow",
        "HumanLoopConfig": human_loop_config(),
        "OutputConfig": {"S3OutputPath": "s3://bucket/reviews/"},
        "RoleArn": ROLE_ARN,
        "Tags": [{"Key": "team", "Value": "fraud"}],
    }
    return {**params, **changes}


def create_ui(**changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "HumanTaskUiName": "my-ui",
        "UiTemplate": {
            "Content": "<crowd-form>\n  {{ task.input.text }}\n</crowd-form>"
        },
    }
    return {**params, **changes}


def refusal(service: str, operation: str, params: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        validate_request(service, operation, params)
    return caught.value


VALID_REQUESTS = [
    (A2I, "StartHumanLoop", start_loop()),
    (
        A2I,
        "StartHumanLoop",
        {k: v for k, v in start_loop().items() if k != "DataAttributes"},
    ),
    (A2I, "DescribeHumanLoop", {"HumanLoopName": "loop-1"}),
    (
        A2I,
        "ListHumanLoops",
        {
            "FlowDefinitionArn": FLOW_ARN,
            "CreationTimeAfter": "2020-02-24",
            "CreationTimeBefore": datetime(2030, 1, 1, tzinfo=UTC),
            "SortOrder": "Descending",
            "MaxResults": 100,
            "NextToken": "abc==",
        },
    ),
    (A2I, "StopHumanLoop", {"HumanLoopName": "a"}),
    (A2I, "DeleteHumanLoop", {"HumanLoopName": "a--b-c9"}),
    (SM, "CreateHumanTaskUi", create_ui(Tags=[{"Key": "Ключ é", "Value": "v 1"}])),
    (SM, "DescribeHumanTaskUi", {"HumanTaskUiName": "my-ui"}),
    (SM, "ListHumanTaskUis", {}),
    (
        SM,
        "ListHumanTaskUis",
        {"CreationTimeAfter": 1582538400, "SortOrder": "Ascending"},
    ),
    (SM, "DeleteHumanTaskUi", {"HumanTaskUiName": "my-ui"}),
    (SM, "CreateFlowDefinition", create_flow()),
    (SM, "DescribeFlowDefinition", {"FlowDefinitionName": "my-flow"}),
    (SM, "ListFlowDefinitions", {"MaxResults": 1, "NextToken": ""}),
    (SM, "DeleteFlowDefinition", {"FlowDefinitionName": "my-flow"}),
    (SM, "DescribeWorkteam", {"WorkteamName": "Private-Crowd"}),
    (SM, "ListWorkteams", {"SortBy": "CreateDate", "NameContains": "crowd"}),
    (
        SM,
        "RenderUiTemplate",
        {
            "UiTemplate": {"Content": "<p>{{ x }}</p>"},
            "Task": {"Input": "{}"},
            "RoleArn": ROLE_ARN,
        },
    ),
    (
        SM,
        "RenderUiTemplate",
        {"HumanTaskUiArn": UI_ARN, "Task": {"Input": "{}"}, "RoleArn": ROLE_ARN},
    ),
]


@pytest.mark.parametrize(("service", "operation", "params"), VALID_REQUESTS)
def test_valid_requests_are_accepted(
    service: str, operation: str, params: dict[str, Any]
) -> None:
    validate_request(service, operation, params)


INVALID_REQUESTS = [
    (
        A2I,
        "StartHumanLoop",
        start_loop(HumanLoopName="Bad_Name"),
        "HumanLoopName",
        "must match pattern",
    ),
    (
        A2I,
        "StartHumanLoop",
        start_loop(FlowDefinitionArn="my-flow"),
        "FlowDefinitionArn",
        "must match pattern",
    ),
    (
        A2I,
        "StartHumanLoop",
        start_loop(HumanLoopInput={}),
        "HumanLoopInput.InputContent",
        "is required",
    ),
    (
        A2I,
        "StartHumanLoop",
        start_loop(DataAttributes={"ContentClassifiers": ["Nice"]}),
        "DataAttributes.ContentClassifiers[0]",
        "must be one of 'FreeOfPersonallyIdentifiableInformation', 'FreeOfAdultContent'; got 'Nice'",
    ),
    (A2I, "DescribeHumanLoop", {}, "HumanLoopName", "HumanLoopName is required"),
    (
        A2I,
        "DescribeHumanLoop",
        {"HumanLoopName": "x" * 64},
        "HumanLoopName",
        "between 1 and 63 characters; got 64",
    ),
    (
        A2I,
        "ListHumanLoops",
        {"FlowDefinitionArn": FLOW_ARN, "MaxResults": 101},
        "MaxResults",
        "between 1 and 100",
    ),
    (
        A2I,
        "ListHumanLoops",
        {"SortOrder": "Ascending"},
        "FlowDefinitionArn",
        "is required",
    ),
    (
        A2I,
        "ListHumanLoops",
        {"FlowDefinitionArn": FLOW_ARN, "NextToken": 5},
        "NextToken",
        "must be a string; got 5",
    ),
    (
        A2I,
        "StopHumanLoop",
        {"HumanLoopName": "-leading"},
        "HumanLoopName",
        "must match pattern",
    ),
    (
        A2I,
        "DeleteHumanLoop",
        {"HumanLoopName": ""},
        "HumanLoopName",
        "between 1 and 63 characters; got 0",
    ),
    (
        SM,
        "CreateHumanTaskUi",
        create_ui(UiTemplate={"Content": ""}),
        "UiTemplate.Content",
        "between 1 and 128000 characters; got 0",
    ),
    (
        SM,
        "CreateHumanTaskUi",
        create_ui(HumanTaskUiName="my_ui"),
        "HumanTaskUiName",
        "must match pattern",
    ),
    (
        SM,
        "CreateHumanTaskUi",
        create_ui(Tags=[{"Key": "a!", "Value": "v"}]),
        "Tags[0].Key",
        "must match pattern",
    ),
    (
        SM,
        "CreateHumanTaskUi",
        create_ui(Tags=[{"Key": "k"}] * 51),
        "Tags",
        "at most 50 items; got 51",
    ),
    (
        SM,
        "DescribeHumanTaskUi",
        {"HumanTaskUiName": "UPPER"},
        "HumanTaskUiName",
        "must match pattern",
    ),
    (
        SM,
        "ListHumanTaskUis",
        {"CreationTimeBefore": "soon"},
        "CreationTimeBefore",
        "must be a timestamp",
    ),
    (
        SM,
        "DeleteHumanTaskUi",
        {"HumanTaskUiName": 7},
        "HumanTaskUiName",
        "must be a string; got 7",
    ),
    (
        SM,
        "CreateFlowDefinition",
        create_flow(RoleArn="arn:aws:iam::1:role"),
        "RoleArn",
        "between 20 and 2048",
    ),
    (
        SM,
        "CreateFlowDefinition",
        create_flow(HumanLoopConfig=human_loop_config(TaskCount=0)),
        "HumanLoopConfig.TaskCount",
        "HumanLoopConfig.TaskCount must be between 1 and 10; got 0",
    ),
    (
        SM,
        "CreateFlowDefinition",
        create_flow(
            HumanLoopConfig=human_loop_config(TaskKeywords=["ok", "fine", "not ok!"])
        ),
        "HumanLoopConfig.TaskKeywords[2]",
        "HumanLoopConfig.TaskKeywords[2] must match pattern '[A-Za-z0-9]+( [A-Za-z0-9]+)*'; got 'not ok!'",
    ),
    (
        SM,
        "CreateFlowDefinition",
        create_flow(HumanLoopConfig=human_loop_config(TaskTimeLimitInSeconds="300")),
        "HumanLoopConfig.TaskTimeLimitInSeconds",
        "must be an integer; got '300'",
    ),
    (
        SM,
        "CreateFlowDefinition",
        create_flow(OutputConfig={"S3OutputPath": "ftp://bucket/x"}),
        "OutputConfig.S3OutputPath",
        "must match pattern",
    ),
    (
        SM,
        "DescribeFlowDefinition",
        {"FlowDefinitionName": "a" * 64},
        "FlowDefinitionName",
        "between 1 and 63",
    ),
    (
        SM,
        "ListFlowDefinitions",
        {"SortOrder": "Up"},
        "SortOrder",
        "SortOrder must be one of 'Ascending', 'Descending'; got 'Up'",
    ),
    (
        SM,
        "DeleteFlowDefinition",
        {"FlowDefinitionName": None},
        "FlowDefinitionName",
        "is required",
    ),
    (
        SM,
        "DescribeWorkteam",
        {"WorkteamName": "crowd team"},
        "WorkteamName",
        "must match pattern",
    ),
    (
        SM,
        "ListWorkteams",
        {"SortBy": "Size"},
        "SortBy",
        "must be one of 'Name', 'CreateDate'; got 'Size'",
    ),
    (
        SM,
        "RenderUiTemplate",
        {"Task": {"Input": "{}"}},
        "RoleArn",
        "RoleArn is required",
    ),
    (
        SM,
        "RenderUiTemplate",
        {"Task": {"Input": ""}, "RoleArn": ROLE_ARN},
        "Task.Input",
        "between 2 and 128000 characters; got 0",
    ),
]


@pytest.mark.parametrize(
    ("service", "operation", "params", "field", "message"), INVALID_REQUESTS
)
def test_invalid_requests_name_the_field_and_rule(
    service: str, operation: str, params: dict[str, Any], field: str, message: str
) -> None:
    error = refusal(service, operation, params)

    assert error.field == field
    assert message in error.message
    assert error.message.startswith(field) or "Unknown field" in error.message


def test_operations_cover_the_brief() -> None:
    covered = {
        (service, operation)
        for service, operation, *_ in VALID_REQUESTS + INVALID_REQUESTS
    }

    assert len(covered) == 16


def test_messages_read_as_documented() -> None:
    bad_name = refusal(A2I, "StartHumanLoop", start_loop(HumanLoopName="Bad_Name"))
    too_long = refusal(
        A2I,
        "StartHumanLoop",
        start_loop(HumanLoopInput={"InputContent": "x" * 3145729}),
    )

    assert (
        bad_name.message
        == "HumanLoopName must match pattern '^[a-z0-9](-*[a-z0-9])*$'; got 'Bad_Name'"
    )
    assert (
        too_long.message
        == "HumanLoopInput.InputContent must be at most 3145728 characters; got 3145729"
    )


def test_unknown_members_are_refused_with_the_allowed_names() -> None:
    top = refusal(A2I, "StopHumanLoop", {"HumanLoopName": "a", "Foo": 1})
    nested = refusal(
        SM,
        "CreateFlowDefinition",
        create_flow(HumanLoopConfig=human_loop_config(Foo=1)),
    )

    assert (
        top.message
        == "Unknown field 'Foo' in StopHumanLoop request; allowed: HumanLoopName"
    )
    assert nested.field == "HumanLoopConfig.Foo"
    assert nested.message.startswith(
        "Unknown field 'Foo' in HumanLoopConfig; allowed: WorkteamArn, "
    )


def test_task_count_goes_past_a2is_cap_of_three_up_to_ten() -> None:
    validate_request(
        SM,
        "CreateFlowDefinition",
        create_flow(HumanLoopConfig=human_loop_config(TaskCount=10)),
    )
    error = refusal(
        SM,
        "CreateFlowDefinition",
        create_flow(HumanLoopConfig=human_loop_config(TaskCount=11)),
    )

    assert error.message == "HumanLoopConfig.TaskCount must be between 1 and 10; got 11"
    assert spec.MODEL_EXTENSIONS == {
        ("sagemaker", "FlowDefinitionTaskCount"): {"max": 10}
    }


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_is_not_an_integer(flag: bool) -> None:
    error = refusal(
        A2I, "ListHumanLoops", {"FlowDefinitionArn": FLOW_ARN, "MaxResults": flag}
    )

    assert error.message == f"MaxResults must be an integer; got {flag!r}"


def test_unknown_operation_and_service_are_refused() -> None:
    assert (
        refusal(A2I, "StartHumanLoops", {}).message
        == "Unknown operation 'StartHumanLoops' for sagemaker-a2i-runtime"
    )
    assert refusal("no-such-service", "StartHumanLoop", {}).field is None


def test_a_request_that_is_not_an_object_is_refused() -> None:
    error = refusal(A2I, "DescribeHumanLoop", ["loop-1"])

    assert (
        error.message == "DescribeHumanLoop request must be an object; got ['loop-1']"
    )
    assert error.field is None


def test_map_values_are_checked_with_their_key_in_the_path() -> None:
    container = {"Image": "img", "Environment": {"MODE": 3}}
    params = {
        "ModelName": "m",
        "PrimaryContainer": container,
        "ExecutionRoleArn": ROLE_ARN,
    }

    error = refusal(SM, "CreateModel", params)

    assert error.field == "PrimaryContainer.Environment['MODE']"


def test_recursive_shapes_are_checked_at_every_depth() -> None:
    inner = {"SubExpressions": [{"Operator": "Nope"}]}
    params = {
        "Resource": "TrainingJob",
        "SearchExpression": {"SubExpressions": [inner]},
    }

    error = refusal(SM, "Search", params)

    assert (
        error.field == "SearchExpression.SubExpressions[0].SubExpressions[0].Operator"
    )


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("a", True),
        ("a-b", True),
        ("a--b", True),
        ("a-", False),
        ("A", False),
        ("a\n", False),
        ("a b", False),
    ],
)
def test_anchored_human_loop_name_pattern_matches_whole_values(
    name: str, accepted: bool
) -> None:
    pattern = compile_model_pattern("^[a-z0-9](-*[a-z0-9])*$")

    assert (pattern.fullmatch(name) is not None) is accepted


def test_unanchored_patterns_must_match_the_whole_value() -> None:
    error = refusal(SM, "DescribeHumanTaskUi", {"HumanTaskUiName": "ui-ok_but-not-all"})

    assert error.field == "HumanTaskUiName"


@pytest.mark.parametrize(
    ("title", "accepted"),
    [
        ("Plain title", True),
        ("Tab\tand\nnewline", True),
        ("Ünïcödé 中文", True),
        ("emoji 😀", False),
        ("\x00", False),
    ],
)
def test_task_title_pattern_uses_java_unicode_escapes(
    title: str, accepted: bool
) -> None:
    params = create_flow(HumanLoopConfig=human_loop_config(TaskTitle=title))

    if accepted:
        validate_request(SM, "CreateFlowDefinition", params)
    else:
        assert (
            refusal(SM, "CreateFlowDefinition", params).field
            == "HumanLoopConfig.TaskTitle"
        )


def test_surrogate_pairs_in_a_pattern_mean_characters_beyond_the_bmp() -> None:
    pattern = compile_model_pattern(
        r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*"
    )

    assert pattern.fullmatch("tab\there, emoji 😀") is not None
    assert pattern.fullmatch("\ufffe") is None
    assert pattern.fullmatch("\n") is None


def test_java_dot_stops_at_every_line_terminator() -> None:
    description = create_flow(
        HumanLoopConfig=human_loop_config(TaskDescription="two\nlines")
    )

    assert (
        refusal(SM, "CreateFlowDefinition", description).field
        == "HumanLoopConfig.TaskDescription"
    )
    assert compile_model_pattern(".+").fullmatch("a\u2028b") is None


@pytest.mark.parametrize(
    ("pattern", "value", "accepted"),
    [
        (r"\p{ASCII}*", "plain", True),
        (r"\p{ASCII}*", "é", False),
        (r"\A\S[\p{Print}]*\z", "x ok", True),
        (r"\A\S[\p{Print}]*\z", " x", False),
        (r"arn:[\p{Alnum}\-]+:lambda:.*", "arn:aws-cn:lambda:x", True),
        (r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,128}", "Größe 2", True),
        (r"[\p{L}\p{M}\p{S}\p{N}\p{P}]+", "a b", False),
        (r"\d+", "١٢", False),
    ],
)
def test_java_classes_keep_their_java_meaning(
    pattern: str, value: str, accepted: bool
) -> None:
    assert (compile_model_pattern(pattern).fullmatch(value) is not None) is accepted


def test_every_pattern_in_the_models_compiles_without_warnings() -> None:
    session = botocore.session.get_session()
    patterns: set[str] = set()
    for service in (SM, A2I, "sagemaker-runtime"):
        model = session.get_service_model(service)
        shapes = [model.shape_for(name) for name in model.shape_names]
        patterns |= {s.metadata["pattern"] for s in shapes if "pattern" in s.metadata}

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = [compile_model_pattern(pattern) for pattern in sorted(patterns)]

    assert len(compiled) > 100


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-02-24", datetime(2020, 2, 24, tzinfo=UTC)),
        ("2020-02-24T10:00:00Z", datetime(2020, 2, 24, 10, tzinfo=UTC)),
        ("2020-02-24T11:00:00+01:00", datetime(2020, 2, 24, 10, tzinfo=UTC)),
        ("2020-02-24T10:00:00.5", datetime(2020, 2, 24, 10, 0, 0, 500000, tzinfo=UTC)),
        (1582538400, datetime(2020, 2, 24, 10, tzinfo=UTC)),
        (1582538400.25, datetime(2020, 2, 24, 10, 0, 0, 250000, tzinfo=UTC)),
        (datetime(2020, 2, 24, 10), datetime(2020, 2, 24, 10, tzinfo=UTC)),
        (
            datetime(2020, 2, 24, 12, tzinfo=timezone(timedelta(hours=2))),
            datetime(2020, 2, 24, 10, tzinfo=UTC),
        ),
    ],
)
def test_timestamps_are_read_as_aware_utc(value: object, expected: datetime) -> None:
    parsed = parse_timestamp(value, "CreationTimeAfter")

    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value", ["yesterday", "", True, None, [2020], float("nan"), 10**20]
)
def test_unreadable_timestamps_name_the_field(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_timestamp(value, "CreationTimeBefore")

    assert caught.value.field == "CreationTimeBefore"
    assert caught.value.message.startswith("CreationTimeBefore must be a timestamp")


HUMAN_LOOP_NAME = re.compile(r"[a-z0-9](-*[a-z0-9])*")


@settings(derandomize=True, max_examples=300)
@given(
    st.from_regex(HUMAN_LOOP_NAME, fullmatch=True).filter(lambda name: len(name) <= 63)
)
def test_any_well_formed_human_loop_name_is_accepted(name: str) -> None:
    validate_request(A2I, "DescribeHumanLoop", {"HumanLoopName": name})


@settings(derandomize=True, max_examples=100)
@given(
    st.from_regex(HUMAN_LOOP_NAME, fullmatch=True).filter(lambda name: len(name) > 63)
)
def test_any_human_loop_name_over_63_characters_is_refused(name: str) -> None:
    error = refusal(A2I, "StartHumanLoop", start_loop(HumanLoopName=name))

    assert (
        error.message
        == f"HumanLoopName must be between 1 and 63 characters; got {len(name)}"
    )


@settings(derandomize=True, max_examples=300)
@given(st.text(alphabet="ab-_Z9 \n", max_size=70))
def test_human_loop_names_are_accepted_exactly_when_they_follow_the_rules(
    name: str,
) -> None:
    follows_rules = 1 <= len(name) <= 63 and HUMAN_LOOP_NAME.fullmatch(name) is not None

    try:
        validate_request(A2I, "DeleteHumanLoop", {"HumanLoopName": name})
        accepted = True
    except ValidationError as error:
        assert error.field == "HumanLoopName"
        accepted = False

    assert accepted is follows_rules


def test_public_surface() -> None:
    assert spec.__all__ == [
        "MODEL_EXTENSIONS",
        "compile_model_pattern",
        "parse_timestamp",
        "validate_request",
    ]
