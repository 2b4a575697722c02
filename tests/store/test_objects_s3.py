"""The object store on a real S3-compatible server: A2I's key layout, whole writes, clear errors."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from closedloop.cli.main import app
from closedloop.engine import Engine
from closedloop.errors import StoreError
from closedloop.settings import Settings
from closedloop.store.objects import ObjectStore

TEMPLATE = (
    "<crowd-form><crowd-classifier name='category' "
    "categories=\"['fraud', 'ok']\"></crowd-classifier></crowd-form>"
)
A2I_KEY = re.compile(
    r"root/reviews/out/fraud/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}/\d{2}/(loop-t\d)/output\.json"
)


@pytest.fixture
def s3_engine(s3_bucket: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine whose object store is ``s3://<bucket>/root`` on the test server."""
    settings = Settings.from_env(
        {}, home=tmp_path / "home", storage_url=f"s3://{s3_bucket}/root"
    )
    engine = Engine(settings)
    yield engine
    engine.close()


def _complete_loops(engine: Engine, answers: dict[str, list[str]]) -> str:
    """One completed loop per item, each answered by two reviewers; the flow's name."""
    workers = [engine.workforce.create_worker(f"w{i}", ["reviewers"]) for i in range(2)]
    ui = engine.task_uis.create("ui", TEMPLATE)
    flow = engine.flows.create(
        {
            "FlowDefinitionName": "fraud",
            "RoleArn": "arn:aws:iam::000000000000:role/r",
            "OutputConfig": {"S3OutputPath": "s3://reviews/out"},
            "HumanLoopConfig": {
                "WorkteamArn": engine.workforce.team_arn("reviewers"),
                "HumanTaskUiArn": ui.arn,
                "TaskTitle": "t",
                "TaskDescription": "d",
                "TaskCount": 2,
            },
        }
    )
    for item, labels in answers.items():
        content = {"id": item, "prediction": {"label": "ok", "confidence": 0.6}}
        engine.loops.start(f"loop-{item}", flow.arn, json.dumps(content))
        for worker, label in zip(workers, labels, strict=True):
            task = engine.tasks.claim_next(worker)
            assert task is not None
            engine.tasks.answer(worker, task.task_id, {"category": {"label": label}})
    return flow.name


def _keys(s3: Any, bucket: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_a_completed_loop_writes_output_json_into_the_bucket_in_a2i_key_layout(
    s3_engine: Engine, s3: Any, s3_bucket: str
) -> None:
    _complete_loops(s3_engine, {"t1": ["fraud", "fraud"]})

    keys = _keys(s3, s3_bucket)
    assert len(keys) == 1 and A2I_KEY.fullmatch(keys[0]), keys
    body = s3.get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read()
    document = orjson.loads(body)
    assert document["humanLoopName"] == "loop-t1"
    assert document["inputContent"]["id"] == "t1"
    assert [a["answerContent"] for a in document["humanAnswers"]] == [
        {"category": {"label": "fraud"}}
    ] * 2
    uri = s3_engine.loops.describe("loop-t1").output_uri
    assert uri == "s3://" + keys[0].removeprefix("root/")
    assert s3_engine.ctx.objects.read(uri) == body


def test_feedback_build_with_flow_reads_its_outputs_back_from_the_bucket(
    s3_engine: Engine, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = _complete_loops(s3_engine, {"t1": ["fraud", "fraud"], "t2": ["ok", "ok"]})
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(s3_engine.settings.home))
    monkeypatch.setenv("CLOSEDLOOP_STORAGE_URL", f"s3://{s3_bucket}/root")
    monkeypatch.delenv("CLOSEDLOOP_DATABASE_URL", raising=False)
    out = f"s3://{s3_bucket}/tables/feedback.csv"

    result = CliRunner().invoke(
        app, ["feedback", "build", "--flow", flow, "--out", out, "--json"]
    )

    assert result.exit_code == 0, result.output
    counts = orjson.loads(result.stdout)["counts"]
    assert (counts["files_read"], counts["accepted"]) == (2, 2)


def test_a_reader_sees_the_old_object_or_the_new_never_a_part(
    s3: Any, s3_bucket: str
) -> None:
    store = ObjectStore(f"s3://{s3_bucket}/root")
    key = "reviews/out/fraud/2024/05/06/07/08/09/loop-1/output.json"
    versions = [b"a" * (4 << 20), b"b" * (6 << 20)]
    store.write_atomic(f"s3://{key}", versions[0])

    def overwrite() -> None:
        for n in range(1, 7):
            store.write_atomic(f"s3://{key}", versions[n % 2])

    writer = threading.Thread(target=overwrite)
    writer.start()
    seen: list[bytes] = []
    while writer.is_alive() or not seen:
        seen.append(s3.get_object(Bucket=s3_bucket, Key=f"root/{key}")["Body"].read())
    writer.join()

    assert {len(body) for body in seen} <= {len(v) for v in versions}
    assert all(body in versions for body in seen)
    assert store.read(f"s3://{key}") == versions[0]


def test_objects_another_writer_puts_are_seen_at_once(s3: Any, s3_bucket: str) -> None:
    store = ObjectStore(f"s3://{s3_bucket}/root")
    first = "s3://reviews/out/fraud/a/output.json"
    second = "s3://reviews/out/fraud/b/output.json"
    store.write_atomic(first, b"{}")
    assert store.list_prefix("s3://reviews/out") == [first]
    assert not store.exists(second)

    s3.put_object(
        Bucket=s3_bucket, Key="root/reviews/out/fraud/b/output.json", Body=b"{}"
    )

    assert store.exists(second)
    assert store.list_prefix("s3://reviews/out") == [first, second]
    assert store.url(second) == f"s3://{s3_bucket}/root/reviews/out/fraud/b/output.json"


def test_a_missing_bucket_is_a_store_error_and_no_bucket_is_made(s3: Any) -> None:
    store = ObjectStore("s3://closedloop-test-absent/root")
    uri = "s3://reviews/out/fraud/a/output.json"

    with pytest.raises(StoreError, match=re.escape(f"could not write {uri!r}")):
        store.write_atomic(uri, b"{}")
    with pytest.raises(StoreError, match=re.escape(f"could not read {uri!r}")):
        store.read(uri)

    buckets = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert "closedloop-test-absent" not in buckets
