"""The project file, ``closedloop.toml``: one use case, every setting checked by name."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic import (
    ValidationError as PydanticError,
)

from closedloop.core.conditions import parse_conditions
from closedloop.errors import ValidationError

__all__ = [
    "DEFAULT_PROJECT_FILE",
    "Project",
    "cron_trigger",
    "load_project",
    "starter_project",
]

DEFAULT_PROJECT_FILE = "closedloop.toml"
_NAME = r"^[a-z0-9](-?[a-z0-9]){0,62}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSection(_Section):
    dataset: str = Field(pattern=_NAME)
    base: str | None = None
    label: str = Field(min_length=1)
    id: str | None = None
    time: str | None = None


class ModelSection(_Section):
    name: str = Field(pattern=_NAME)
    trainer: str = "tabular"
    params: dict[str, Any] = Field(default_factory=dict)
    recency_half_life_days: float = Field(default=14.0, gt=0)
    human_weight: float = Field(default=5.0, gt=0)
    seed: int = 0


class ReviewSection(_Section):
    flow: str = Field(pattern=_NAME)
    team: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    labels: list[str] = Field(min_length=2)
    task_count: int = Field(default=1, ge=1, le=10)
    label_path: str | None = None
    budget_per_day: int = Field(default=100, ge=0)
    min_confidence: float = Field(default=0.7, ge=0, le=1)
    conditions: dict[str, Any] | None = None

    @field_validator("conditions")
    @classmethod
    def _conditions_parse(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            parse_conditions(orjson.dumps(value).decode(), field="review.conditions")
        return value


class EndpointSection(_Section):
    name: str = Field(pattern=_NAME)


class PromotionSection(_Section):
    metric: Literal[
        "accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc"
    ] = "f1_macro"
    min_gain: float = Field(default=0.0, ge=-1, le=1)
    max_recall_drop: float = Field(default=0.05, ge=0, le=1)
    require_significance: bool = False


class TriggersSection(_Section):
    schedule: str | None = None
    new_reviews: int | None = Field(default=None, ge=1)
    audited_accuracy_below: float | None = Field(default=None, gt=0, lt=1)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                cron_trigger(value)
            except ValueError as exc:
                raise ValueError(
                    f"must be a five-field cron expression like '0 3 * * 1'; {exc}"
                ) from exc
        return value


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expression: str) -> Any:
    """An APScheduler trigger for a standard cron expression, in UTC.

    In cron, day-of-week 0 and 7 are Sunday and 1 is Monday; APScheduler counts
    from Monday, so numeric days are rewritten as names before it reads them.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) == 5:
        fields[4] = re.sub(
            r"\b[0-7]\b", lambda m: _CRON_DAYS[int(m.group())], fields[4]
        )
    return CronTrigger.from_crontab(" ".join(fields), timezone="UTC")


class Project(_Section):
    """A use case: data, model, review, endpoint, promotion policy and triggers."""

    name: str = Field(pattern=_NAME)
    data: DataSection
    model: ModelSection
    review: ReviewSection
    endpoint: EndpointSection
    promotion: PromotionSection = PromotionSection()
    triggers: TriggersSection = TriggersSection()
    root: Path = Path(".")


def load_project(path: str | Path = DEFAULT_PROJECT_FILE) -> Project:
    """Read and check a project file; the first broken rule is named by its setting."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text())
    except FileNotFoundError as exc:
        raise ValidationError(
            f"project file {str(file)!r} does not exist; write one with `closedloop init`",
            "--project",
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(
            f"project file {str(file)!r} is not valid TOML: {exc}", "--project"
        ) from exc
    raw.pop("root", None)
    try:
        return Project(**raw, root=file.resolve().parent)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        got = first.get("input")
        shown = "" if isinstance(got, dict) else f"; got {got!r}"
        raise ValidationError(
            f"{where}: {first['msg']}{shown} (in {file})", where
        ) from None


def starter_project(name: str = "fraud") -> str:
    """A commented project file for ``closedloop init``."""
    return _STARTER.replace("{name}", name)


_STARTER = """# closedloop project file: one use case, from live predictions to retrained models.
name = "{name}"

[data]
dataset = "{name}"           # dataset in closedloop's store
base = "data/base.csv"       # imported as the first version when the dataset does not exist
label = "label"              # column holding the label
id = "id"                    # unique row id; human labels replace older labels of the same id
time = "time"                # row time; the newest human-verified rows are held out for evaluation

[model]
name = "{name}-model"
trainer = "tabular"          # tabular, text, or your own "package.module:function"
params = {}                  # passed to the trainer
recency_half_life_days = 14  # older rows weigh less
human_weight = 5.0           # human-reviewed rows weigh this much more

[review]
flow = "{name}-review"       # flow definition the endpoint routes to
team = "{name}-reviewers"
labels = ["fraud", "legit"]
task_count = 1               # distinct reviewers per item (up to 10)
budget_per_day = 100         # most loops started per day
min_confidence = 0.7         # consolidated labels below this go back for review
# conditions = { Conditions = [{ Or = [
#   { ConditionType = "ModelConfidenceCheck", ConditionParameters = { ConfidenceLessThan = 80 } },
#   { ConditionType = "Sampling", ConditionParameters = { RandomSamplingPercentage = 2 } } ] }] }

[endpoint]
name = "{name}"

[promotion]
metric = "f1_macro"          # accuracy, f1_macro, precision_macro, recall_macro, roc_auc
min_gain = 0.0               # the challenger must beat the champion by this much
max_recall_drop = 0.05       # and lose no more than this in any class's recall
require_significance = false # McNemar's test at 5%

[triggers]
# schedule = "0 3 * * 1"     # cron: Mondays at 03:00
# new_reviews = 500          # after this many newly completed loops
# audited_accuracy_below = 0.85  # when the audit sample says accuracy fell below this
"""
