"""InvokeEndpoint through boto3's sagemaker-runtime: predictions, routing, bad input, auth."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from serving_helpers import (
    CONFIDENT,
    MODEL,
    Models,
    ServingServer,
    boto_client,
    make_flow,
)
from sqlalchemy import func, select

from closedloop.engine import Engine
from closedloop.serving.endpoints import Endpoints
from closedloop.store.models import HumanLoop


@pytest.fixture
def runtime(serving: ServingServer, credentials: dict[str, str]) -> Any:
    return boto_client("sagemaker-runtime", serving.url, credentials)


def invoke(runtime: Any, body: Any, endpoint: str = "fraud-live") -> dict[str, Any]:
    response = runtime.invoke_endpoint(
        EndpointName=endpoint, Body=json.dumps(body), ContentType="application/json"
    )
    answer: dict[str, Any] = json.loads(response["Body"].read())
    answer["_variant"] = response["InvokedProductionVariant"]
    return answer


def loop_count(engine: Engine) -> int:
    with engine.ctx.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(HumanLoop)) or 0)


@pytest.fixture
def deployed(engine: Engine, endpoints: Endpoints, models: Models) -> Models:
    version = models.register(c=1.0)
    models.registry.promote(MODEL, version)
    make_flow(engine)
    endpoints.deploy("fraud-live", MODEL, "@production", "fraud-review")
    return models


def test_low_confidence_record_starts_a_loop_and_a_confident_one_does_not(
    engine: Engine, deployed: Models, runtime: Any
) -> None:
    uncertain = deployed.uncertain_record(1)

    sure = invoke(runtime, CONFIDENT)
    unsure = invoke(runtime, uncertain)

    assert sure["label"] == "fraud" and sure["confidence"] > 0.9
    assert sure["model_version"] == 1 and sure["human_loop_name"] is None
    assert set(sure["probabilities"]) == {"fraud", "legit"}
    assert sure["_variant"] == "fraud-v1"
    expected = deployed.registry.load(MODEL, 1).predict_proba(pd.DataFrame([CONFIDENT]))
    assert sure["probabilities"]["fraud"] == pytest.approx(expected[0][0], abs=1e-4)
    loop = engine.loops.describe(unsure["human_loop_name"])
    content = json.loads(loop.input_content)
    assert content["features"] == uncertain
    assert content["prediction"]["label"] == unsure["label"]
    assert content["prediction"]["probabilities"] == unsure["probabilities"]
    assert content["model"] == {"name": MODEL, "version": 1}
    assert content["endpoint"] == "fraud-live"
    assert loop_count(engine) == 1


def test_a_retried_record_finds_its_loop_instead_of_starting_another(
    engine: Engine, deployed: Models, runtime: Any
) -> None:
    uncertain = deployed.uncertain_record(1)

    first = invoke(runtime, uncertain)
    again = invoke(runtime, dict(reversed(list(uncertain.items()))))

    assert first["human_loop_name"] == again["human_loop_name"]
    assert loop_count(engine) == 1


def test_instances_get_one_prediction_each_in_order(
    engine: Engine, deployed: Models, runtime: Any
) -> None:
    uncertain = deployed.uncertain_record(1)

    answer = invoke(runtime, {"instances": [CONFIDENT, uncertain, CONFIDENT]})

    loops = [p["human_loop_name"] for p in answer["predictions"]]
    assert loops[0] is None and loops[2] is None and loops[1] is not None
    assert [p["model_version"] for p in answer["predictions"]] == [1, 1, 1]


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"amount": 10.0, "age": 30}, "country"),
        ({**CONFIDENT, "colour": "red"}, "colour"),
        ({**CONFIDENT, "age": "thirty"}, "age"),
        ({**CONFIDENT, "country": 7}, "country"),
        ({**CONFIDENT, "amount": True}, "amount"),
    ],
)
def test_a_bad_feature_is_refused_by_name_and_nothing_is_stored(
    engine: Engine,
    deployed: Models,
    runtime: Any,
    record: dict[str, Any],
    field: str,
) -> None:
    uncertain = deployed.uncertain_record(1)

    with pytest.raises(ClientError) as caught:
        invoke(runtime, {"instances": [uncertain, record]})

    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationError"
    assert (
        f"'{field}'" in error["Error"]["Message"] or field in error["Error"]["Message"]
    )
    assert "instances[1]" in error["Error"]["Message"]
    assert loop_count(engine) == 0


def test_a_body_over_six_megabytes_is_refused_with_413(
    engine: Engine, deployed: Models, runtime: Any
) -> None:
    big = {"instances": [CONFIDENT] * 150_000}

    with pytest.raises(ClientError) as caught:
        invoke(runtime, big)

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert loop_count(engine) == 0


def test_an_unknown_endpoint_is_a_validation_error(
    deployed: Models, runtime: Any
) -> None:
    with pytest.raises(ClientError) as caught:
        invoke(runtime, CONFIDENT, endpoint="nowhere")

    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "nowhere" in caught.value.response["Error"]["Message"]


def test_an_unsigned_request_is_refused_with_403(
    engine: Engine, deployed: Models, serving: ServingServer
) -> None:
    response = httpx.post(
        serving.url + "/endpoints/fraud-live/invocations",
        json=deployed.uncertain_record(1),
    )

    assert response.status_code == 403
    assert loop_count(engine) == 0


def test_an_endpoint_without_a_flow_only_predicts(
    engine: Engine, deployed: Models, endpoints: Endpoints, runtime: Any
) -> None:
    endpoints.deploy("fraud-plain", MODEL, "1")

    answer = invoke(runtime, deployed.uncertain_record(1), endpoint="fraud-plain")

    assert answer["human_loop_name"] is None and answer["model_version"] == 1
    assert loop_count(engine) == 0
