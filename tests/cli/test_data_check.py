"""``closedloop data check``: flagged rows as a table, JSON and a file, as a user runs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from closedloop.cli.main import app
from closedloop.engine import Engine
from ml_data import mixed_frame

FLIPPED = 12


@pytest.fixture
def cli(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(engine.settings.home))
    if engine.settings.database_url:
        monkeypatch.setenv("CLOSEDLOOP_DATABASE_URL", engine.settings.database_url)
    return CliRunner()


@pytest.fixture
def planted(cli: CliRunner, tmp_path: Path) -> set[str]:
    """Dataset ``fraud``: 300 rows imported with the CLI, 12 of them with a flipped label."""
    frame = mixed_frame(300, 0)
    rows = np.random.default_rng(11).choice(len(frame), FLIPPED, replace=False)
    frame.loc[rows, "is_fraud"] = np.where(
        frame.loc[rows, "is_fraud"] == "yes", "no", "yes"
    )
    frame.to_csv(tmp_path / "base.csv", index=False)
    imported = cli.invoke(
        app,
        [
            *("data", "import", "fraud", str(tmp_path / "base.csv")),
            *("--label", "is_fraud", "--id", "txn", "--time", "ts"),
        ],
    )
    assert imported.exit_code == 0, imported.output
    return set(frame.loc[rows, "txn"])


def test_check_prints_totals_and_the_worst_rows_first(
    cli: CliRunner, planted: set[str]
) -> None:
    result = cli.invoke(app, ["data", "check", "fraud", "--limit", "5"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "fraud:1: 300 rows checked (0 human, 300 base), 5 folds, trainer tabular (model=logistic);"
    )
    assert lines[1].split() == [
        "row_id",
        "given",
        "suggested",
        "quality",
        "p(suggested)",
        "source",
        "human_loop",
    ]
    shown = [line.split() for line in lines[2:7]]
    assert all(cells[0] in planted and cells[1] != cells[2] for cells in shown)
    qualities = [float(cells[3]) for cells in shown]
    assert qualities == sorted(qualities)
    assert lines[7].startswith("showing 5 of ")


def test_check_json_and_out_file_carry_every_flagged_row(
    cli: CliRunner, planted: set[str], tmp_path: Path
) -> None:
    out = tmp_path / "flagged.parquet"

    result = cli.invoke(
        app,
        [
            *("data", "check", "fraud", "--json", "--limit", "0", "--out", str(out)),
            *("--folds", "4", "--seed", "3"),
        ],
    )
    listed = cli.invoke(app, ["data", "list", "fraud", "--json"])

    assert result.exit_code == 0, result.output
    value = orjson.loads(result.stdout)
    flagged = {row["row_id"] for row in value["flagged"]}
    assert value["folds"] == 4 and value["seed"] == 3
    assert value["totals"]["rows_checked"] == 300
    assert value["totals"]["flagged"] == len(flagged) == value["shown"]
    assert len(flagged & planted) >= 11  # of 12 planted
    assert len(flagged - planted) <= 2  # of 288 clean rows
    written = pd.read_parquet(out)
    assert list(written["row_id"]) == [row["row_id"] for row in value["flagged"]]
    assert len(orjson.loads(listed.stdout)["versions"]) == 1  # no version was made


def test_check_refuses_a_bad_out_extension_before_any_work(
    cli: CliRunner, planted: set[str], tmp_path: Path
) -> None:
    result = cli.invoke(
        app, ["data", "check", "fraud", "--out", str(tmp_path / "flagged.txt")]
    )

    assert result.exit_code == 2
    assert "--out must end in .csv or .parquet" in result.stderr
    assert not (tmp_path / "flagged.txt").exists()


def test_check_of_a_missing_dataset_or_bad_folds_exits_with_one_line(
    cli: CliRunner, planted: set[str]
) -> None:
    missing = cli.invoke(app, ["data", "check", "nothing"])
    folds = cli.invoke(app, ["data", "check", "fraud", "--folds", "1"])

    assert missing.exit_code == 3
    assert "dataset 'nothing' has no versions" in missing.stderr
    assert folds.exit_code == 2
    assert folds.stderr.strip() == (
        "error: folds must be an integer of at least 2; got 1"
    )
