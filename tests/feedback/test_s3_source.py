"""`closedloop feedback build s3://...` against a real S3-compatible server, as a user runs it."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from feedback_helpers import output
from typer.testing import CliRunner

import closedloop.feedback.build as build_module
from closedloop.cli.main import app
from closedloop.store.objects import filesystem_for

CAT = {"label": "cat", "confidence": 0.95}
THREE_CATS = [("w1", "cat"), ("w2", "cat"), ("w3", "cat")]
THREE_DOGS = [("w1", "dog"), ("w2", "dog"), ("w3", "dog")]
FLOW = "prefix/fraud/2024/05/01/10/00"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLOSEDLOOP_DATABASE_URL", raising=False)
    monkeypatch.delenv("CLOSEDLOOP_STORAGE_URL", raising=False)
    return CliRunner()


def _put(s3: Any, bucket: str, key: str, document: Any) -> None:
    body = document if isinstance(document, bytes) else orjson.dumps(document)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _upload_reviews(s3: Any, bucket: str) -> str:
    """Three loops, a truncated file and two objects the reader must pass over."""
    objects = {
        f"{FLOW}/01/confirmed/output.json": output(
            "confirmed", THREE_CATS, prediction=CAT
        ),
        f"{FLOW}/02/corrected/output.json": output(
            "corrected", THREE_DOGS, prediction=CAT
        ),
        f"{FLOW}/03/short/output.json": output("short", [("w1", "cat")]),
        f"{FLOW}/04/broken/output.json": b'{"humanAnswers": [',
        f"{FLOW}/05/notes/readme.txt": b"not an output file",
        "elsewhere/fraud/06/outside/output.json": output("outside", THREE_CATS),
    }
    for key, document in objects.items():
        _put(s3, bucket, key, document)
    return f"s3://{bucket}/{FLOW}/04/broken/output.json"


def test_feedback_build_consolidates_an_s3_prefix_and_skips_the_bad_file_by_its_url(
    cli: CliRunner, s3: Any, s3_bucket: str, tmp_path: Path
) -> None:
    broken = _upload_reviews(s3, s3_bucket)
    out = tmp_path / "feedback.parquet"
    source = f"s3://{s3_bucket}/prefix"
    args = ["feedback", "build", source, "--out", str(out), "--task-count", "3"]

    result = cli.invoke(app, [*args, "--json"])

    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    counts = report["counts"]
    assert (counts["files_read"], counts["bad_files"], counts["accepted"]) == (3, 1, 2)
    assert [bad["path"] for bad in report["bad_files"]] == [broken]
    assert "not valid JSON" in report["bad_files"][0]["reason"]
    rows = {row["human_loop_name"]: row for row in pq.read_table(out).to_pylist()}
    assert sorted(rows) == ["confirmed", "corrected", "short"]
    assert rows["confirmed"]["label"] == "cat"
    assert rows["confirmed"]["tag"] == "confirmed"
    # The model said cat with 0.95 confidence; three reviewers said dog.
    assert rows["corrected"]["label"] == "dog"
    assert rows["corrected"]["tag"] == "corrected_high_confidence"
    assert rows["short"]["status"] == "dropped"


def test_feedback_build_writes_its_table_into_the_bucket(
    cli: CliRunner, s3: Any, s3_bucket: str
) -> None:
    _upload_reviews(s3, s3_bucket)
    out = f"s3://{s3_bucket}/tables/feedback.parquet"

    result = cli.invoke(
        app, ["feedback", "build", f"s3://{s3_bucket}/prefix", "--out", out]
    )

    assert result.exit_code == 0, result.output
    assert f"to {out}" in result.stdout
    body = s3.get_object(Bucket=s3_bucket, Key="tables/feedback.parquet")["Body"].read()
    names = pq.read_table(io.BytesIO(body)).column("human_loop_name").to_pylist()
    assert sorted(names) == ["confirmed", "corrected", "short"]


def test_a_prefix_with_glob_characters_is_read_as_written(
    cli: CliRunner, s3: Any, s3_bucket: str, tmp_path: Path
) -> None:
    _put(s3, s3_bucket, "exports [2024-05]/a/output.json", output("a", THREE_CATS))
    _put(s3, s3_bucket, "exports [2024-05]/b/output.json", output("b", THREE_DOGS))

    source = f"s3://{s3_bucket}/exports [2024-05]"
    out = tmp_path / "f.csv"

    result = cli.invoke(app, ["feedback", "build", source, "--out", str(out), "--json"])

    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["counts"]["files_read"] == 2


def test_a_source_in_a_missing_bucket_is_one_error_line(
    cli: CliRunner, s3: Any, tmp_path: Path
) -> None:
    source = "s3://closedloop-test-no-such-bucket/prefix"

    result = cli.invoke(
        app, ["feedback", "build", source, "--out", str(tmp_path / "f.parquet")]
    )

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot read SOURCE {source!r}: ")
    assert "bucket does not exist" in result.stderr
    assert not (tmp_path / "f.parquet").exists()


def test_writing_the_table_to_a_missing_bucket_fails_and_creates_no_bucket(
    cli: CliRunner, s3: Any, s3_bucket: str
) -> None:
    _upload_reviews(s3, s3_bucket)
    out = "s3://closedloop-test-typo/feedback.parquet"

    result = cli.invoke(
        app, ["feedback", "build", f"s3://{s3_bucket}/prefix", "--out", out]
    )

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot write feedback to {out!r}: ")
    buckets = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert "closedloop-test-typo" not in buckets


def test_the_installed_command_reaches_the_server_through_fsspec_s3_json(
    s3: Any, s3_bucket: str, tmp_path: Path
) -> None:
    _upload_reviews(s3, s3_bucket)
    env = dict(os.environ, CLOSEDLOOP_HOME=str(tmp_path / "home"))
    env.pop("CLOSEDLOOP_DATABASE_URL", None)
    env.pop("CLOSEDLOOP_STORAGE_URL", None)
    endpoint = env.pop("AWS_ENDPOINT_URL_S3")
    env["FSSPEC_S3"] = orjson.dumps({"endpoint_url": endpoint}).decode()
    command = str(Path(sys.executable).with_name("closedloop"))
    out = tmp_path / "feedback.parquet"
    source = f"s3://{s3_bucket}/prefix"

    done = subprocess.run(
        [command, "feedback", "build", source, "--out", str(out), "--json"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr.decode()
    assert orjson.loads(done.stdout)["counts"]["files_read"] == 3
    assert pq.read_table(out).num_rows == 3


def test_an_unreachable_endpoint_is_one_error_line_naming_the_source(
    cli: CliRunner, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    source = "s3://any-bucket/prefix"

    result = cli.invoke(
        app, ["feedback", "build", source, "--out", str(tmp_path / "f.parquet")]
    )

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot read SOURCE {source!r}: ")
    assert "Could not connect" in result.stderr


def test_a_source_whose_filesystem_is_not_installed_is_refused_by_name(
    cli: CliRunner, tmp_path: Path
) -> None:
    result = cli.invoke(
        app,
        [
            "feedback",
            "build",
            "nosuchfs://bucket/prefix",
            "--out",
            str(tmp_path / "f.csv"),
        ],
    )

    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: SOURCE must be a folder or an fsspec URL whose filesystem is installed; "
        "got 'nosuchfs://bucket/prefix'"
    )


@pytest.mark.parametrize("where", ["bucket", "folder"])
def test_a_table_that_fails_half_written_leaves_the_previous_one_whole(
    cli: CliRunner,
    s3: Any,
    s3_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    _upload_reviews(s3, s3_bucket)
    source = f"s3://{s3_bucket}/prefix"
    out = (
        f"s3://{s3_bucket}/tables/feedback.parquet"
        if where == "bucket"
        else str(tmp_path / "tables" / "feedback.parquet")
    )
    assert cli.invoke(app, ["feedback", "build", source, "--out", out]).exit_code == 0
    fs, target = filesystem_for(out, "out")
    before = fs.cat_file(target)

    def fails_half_way(table: Any, file: Any) -> None:
        file.write(b"PAR1" + b"\0" * 4096)
        raise RuntimeError("the writer died")

    monkeypatch.setattr(build_module, "_write_parquet", fails_half_way)
    failed = cli.invoke(app, ["feedback", "build", source, "--out", out])

    assert failed.exit_code != 0
    assert fs.cat_file(target) == before
    names = pq.read_table(io.BytesIO(before)).column("human_loop_name").to_pylist()
    assert sorted(names) == ["confirmed", "corrected", "short"]
    if where == "folder":
        assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == [
            "feedback.parquet"
        ]


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_local_table_is_written_like_any_new_file_and_keeps_its_mode(
    cli: CliRunner, tmp_path: Path, umask_022: None
) -> None:
    source = tmp_path / "reviews"
    (source / "a").mkdir(parents=True)
    (source / "a" / "output.json").write_bytes(orjson.dumps(output("a", THREE_CATS)))
    fresh, kept = tmp_path / "fresh.parquet", tmp_path / "kept.csv"
    kept.write_text("old\n")
    kept.chmod(0o664)
    real = tmp_path / "runs" / "latest.parquet"
    real.parent.mkdir()
    real.write_bytes(b"old")
    linked = tmp_path / "latest.parquet"
    linked.symlink_to(real)

    for out in (fresh, kept, linked):
        result = cli.invoke(app, ["feedback", "build", str(source), "--out", str(out)])
        assert result.exit_code == 0, result.output

    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    assert stat.S_IMODE(kept.stat().st_mode) == 0o664
    assert linked.is_symlink()  # written through the link, not replaced
    assert pq.read_table(real).column("human_loop_name").to_pylist() == ["a"]
