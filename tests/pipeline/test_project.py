"""The project file: the starter parses, and every broken setting is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from closedloop.errors import ValidationError
from closedloop.pipeline.project import load_project, starter_project


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "closedloop.toml"
    path.write_text(text)
    return path


def test_the_starter_project_file_loads_with_its_defaults(tmp_path: Path) -> None:
    project = load_project(_write(tmp_path, starter_project("claims")))

    assert project.name == "claims" and project.model.name == "claims-model"
    assert (
        project.review.budget_per_day == 100 and project.promotion.metric == "f1_macro"
    )
    assert project.root == tmp_path.resolve()


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        (("task_count = 1", "task_count = 11"), "review.task_count"),
        (("[triggers]", '[triggers]\nschedule = "every monday"'), "triggers.schedule"),
        (("[triggers]", "[triggers]\nnew_reviews = 0"), "triggers.new_reviews"),
        (('metric = "f1_macro"', 'metric = "vibes"'), "promotion.metric"),
        (('name = "claims-model"', 'name = "Claims Model"'), "model.name"),
        (("[endpoint]", "[endpoint]\nreplicas = 3"), "endpoint.replicas"),
        (
            (
                "[endpoint]",
                '[review.conditions]\nConditions = [{ ConditionType = "Nope" }]\n\n[endpoint]',
            ),
            "review.conditions",
        ),
    ],
)
def test_a_broken_setting_is_named_in_the_error(
    tmp_path: Path, change: tuple[str, str], setting: str
) -> None:
    text = starter_project("claims")
    assert change[0] in text
    with pytest.raises(ValidationError) as caught:
        load_project(_write(tmp_path, text.replace(change[0], change[1], 1)))
    assert setting in caught.value.message


def test_a_missing_or_malformed_file_is_refused_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="closedloop init"):
        load_project(tmp_path / "absent.toml")
    with pytest.raises(ValidationError, match="not valid TOML"):
        load_project(_write(tmp_path, "name = "))
