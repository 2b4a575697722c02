"""SigV4 on the AWS-compatible APIs, and refused or malformed requests changing nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import boto3.session
import httpx
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from closedloop.api.aws import MAX_BODY_BYTES
from closedloop.engine import Engine

TARGET = {
    "X-Amz-Target": "SageMaker.CreateHumanTaskUi",
    "Content-Type": "application/x-amz-json-1.1",
}
UI_BODY = json.dumps(
    {"HumanTaskUiName": "note-ui", "UiTemplate": {"Content": "<p>note</p>"}}
).encode()


def _client(server: Any, service: str, **options: Any) -> Any:
    path = "/a2i" if service == "sagemaker-a2i-runtime" else "/sagemaker"
    config = Config(retries={"max_attempts": 1}, **options.pop("config", {}))
    session = boto3.session.Session(**options)
    return session.client(  # type: ignore[call-overload]
        service, endpoint_url=server.url + path, region_name="us-east-1", config=config
    )


def _task_uis(sagemaker: Any) -> list[str]:
    summaries = sagemaker.list_human_task_uis()["HumanTaskUiSummaries"]
    return [s["HumanTaskUiName"] for s in summaries]


def _refused_code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return str(caught.value.response["Error"]["Code"])


def test_unsigned_requests_are_refused_and_change_nothing(
    server: Any, sagemaker: Any
) -> None:
    anonymous = _client(server, "sagemaker", config={"signature_version": UNSIGNED})

    code = _refused_code(
        lambda: anonymous.create_human_task_ui(
            HumanTaskUiName="note-ui", UiTemplate={"Content": "<p>note</p>"}
        )
    )
    raw = httpx.post(server.url + "/sagemaker/", content=UI_BODY, headers=TARGET)

    assert code == "MissingAuthenticationTokenException"
    assert raw.status_code == 403
    assert raw.json()["__type"] == "MissingAuthenticationTokenException"
    assert _task_uis(sagemaker) == []


def test_wrong_secret_unknown_key_and_disabled_key_are_refused(
    engine: Engine, server: Any, credentials: dict[str, str], sagemaker: Any
) -> None:
    disabled = engine.keys.create("retired")
    engine.keys.disable("retired")
    cases = {
        "InvalidSignatureException": credentials["aws_access_key_id"],
        "UnrecognizedClientException": "AKCLNOSUCHKEY0000000",
    }

    for expected, key_id in cases.items():
        client = _client(
            server,
            "sagemaker-a2i-runtime",
            aws_access_key_id=key_id,
            aws_secret_access_key="not-the-secret",
        )
        assert (
            _refused_code(
                lambda c=client: c.list_human_loops(
                    FlowDefinitionArn=engine.flows.arn("any")
                )
            )
            == expected
        )
    retired = _client(
        server,
        "sagemaker",
        aws_access_key_id=disabled.access_key_id,
        aws_secret_access_key=disabled.secret_access_key,
    )
    code = _refused_code(
        lambda: retired.create_human_task_ui(
            HumanTaskUiName="note-ui", UiTemplate={"Content": "<p>note</p>"}
        )
    )

    assert code == "UnrecognizedClientException"
    assert _task_uis(sagemaker) == []


def test_stale_signing_time_is_refused(
    monkeypatch: pytest.MonkeyPatch, sagemaker: Any
) -> None:
    stale = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=6)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: stale)

    with pytest.raises(ClientError) as caught:
        sagemaker.create_human_task_ui(
            HumanTaskUiName="note-ui", UiTemplate={"Content": "<p>note</p>"}
        )

    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "expired" in caught.value.response["Error"]["Message"]
    monkeypatch.undo()
    assert _task_uis(sagemaker) == []


def test_body_changed_after_signing_is_refused(
    server: Any, credentials: dict[str, str], sagemaker: Any
) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = server.url + "/sagemaker/"
    request = AWSRequest(method="POST", url=url, data=b"{}", headers=TARGET)
    SigV4Auth(
        Credentials(
            credentials["aws_access_key_id"], credentials["aws_secret_access_key"]
        ),
        "sagemaker",
        "us-east-1",
    ).add_auth(request)

    reply = httpx.post(url, content=UI_BODY, headers=dict(request.headers.items()))

    assert reply.status_code == 403
    assert reply.json()["__type"] == "InvalidSignatureException"
    assert _task_uis(sagemaker) == []


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/sagemaker/", TARGET),
        ("/a2i/human-loops", {"Content-Type": "application/json"}),
    ],
)
def test_malformed_json_with_a_valid_signature_is_refused_naming_the_body(
    server: Any,
    send_signed: Any,
    sagemaker: Any,
    path: str,
    headers: dict[str, str],
) -> None:
    for body in (b'{"HumanTaskUiName": ', b'["not", "an", "object"]'):
        reply = send_signed("POST", server.url + path, body, headers)

        assert reply.status_code == 400
        assert reply.json()["__type"] == "ValidationException"
        assert "request body" in reply.json()["message"]

    assert _task_uis(sagemaker) == []


def test_unknown_operation_is_refused_naming_the_target(
    server: Any, send_signed: Any
) -> None:
    headers = {**TARGET, "X-Amz-Target": "SageMaker.CreateEverything"}

    reply = send_signed("POST", server.url + "/sagemaker/", UI_BODY, headers)

    assert reply.status_code == 400
    assert "X-Amz-Target" in reply.json()["message"]


def test_oversize_body_is_refused_with_413_and_changes_nothing(
    engine: Engine, server: Any, send_signed: Any, a2i: Any
) -> None:
    engine.workforce.create_team("reviewers")
    flow_arn = engine.flows.arn("missing-flow")
    padding = "x" * (MAX_BODY_BYTES + 1)
    body = json.dumps(
        {
            "HumanLoopName": "huge",
            "FlowDefinitionArn": flow_arn,
            "HumanLoopInput": {"InputContent": json.dumps({"p": padding})},
        }
    ).encode()

    reply = send_signed(
        "POST",
        server.url + "/a2i/human-loops",
        body,
        {"Content-Type": "application/json"},
    )

    assert reply.status_code == 413
    assert reply.json()["__type"] == "ValidationException"
    assert str(MAX_BODY_BYTES) in reply.json()["message"]
    with pytest.raises(a2i.exceptions.ResourceNotFoundException):
        a2i.describe_human_loop(HumanLoopName="huge")
