"""The fraud demo: a drifting transaction stream, reviewed and retrained through the engine.

Every step goes through the real parts: a day-0 model trained, registered and
deployed by the engine; each simulated day the endpoint scores the day's
transactions over SigV4-signed HTTP and its flow's activation conditions start
the human loops; simulated reviewers answer through the worker API; the
project's pipeline retrains weekly and promotes a better model. A baseline
endpoint pinned to the day-0 model scores the same stream and never changes.

The drift is learnable on purpose: from week 1 on, more legitimate travellers
pay hotels, airlines and car rentals abroad at night (merchant categories the
day-0 model never saw), so its flags fill with false alarms that reviewers
correct; and a card-testing fraud pattern (tiny online amounts, new cards, high
velocity) grows, half-caught by the old model and caught by the retrained one.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from sqlalchemy import func, select

from closedloop.core.conditions import Prediction, parse_conditions
from closedloop.engine import Engine
from closedloop.errors import ClosedloopError, ValidationError
from closedloop.pipeline import PipelineRunner
from closedloop.pipeline.project import Project, load_project, starter_project
from closedloop.pipeline.setup import setup_project
from closedloop.pipeline.steps import build_steps
from closedloop.serving.routing import sampling_key
from closedloop.settings import Settings
from closedloop.simulation.server import BackgroundServer
from closedloop.store.models import HumanLoop

__all__ = [
    "CONDITIONS",
    "DemoOptions",
    "DemoResult",
    "WeekResult",
    "run_fraud_demo",
    "transactions",
]

logger = logging.getLogger(__name__)
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PROJECT = "fraud"
MODEL = "fraud-model"
BASELINE_ENDPOINT = "fraud-baseline"
OVERFLOW_ENDPOINT = "fraud-overflow"
BATCH = 50
CONDITIONS: dict[str, Any] = {
    "Conditions": [
        {
            "Or": [
                {
                    "ConditionType": "ModelConfidenceCheck",
                    "ConditionParameters": {
                        "LabelName": "fraud",
                        "ConfidenceGreaterThan": 50,
                    },
                },
                {
                    "ConditionType": "ModelConfidenceCheck",
                    "ConditionParameters": {"ConfidenceLessThan": 80},
                },
                {
                    "ConditionType": "Sampling",
                    "ConditionParameters": {"RandomSamplingPercentage": 3},
                },
            ]
        }
    ]
}
_MERCHANTS = [
    "grocery",
    "restaurant",
    "fuel",
    "retail",
    "online",
    "travel",
    "electronics",
    "gift_cards",
]
_DAY_HOURS = np.array(
    [1, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 8, 7, 6, 4, 3, 2]
)
_NIGHT_HOURS = np.array(
    [9, 9, 9, 9, 8, 6, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 4, 5, 6, 8]
)
_PARAMS = '{ model = "logistic", C = 10.0 }'
_METRIC = "precision_macro"
_ABROAD = ["GB", "FR", "MX", "BR", "NG", "RU", "RO", "TH"]


@dataclass(frozen=True)
class DemoOptions:
    """The knobs of the demo; the same options and seed give the same numbers."""

    weeks: int = 4
    seed: int = 7
    reviews_per_day: int = 100
    reviewer_accuracy: float = 0.95
    task_count: int = 1
    daily_volume: int = 400
    base_rows: int = 5000

    def __post_init__(self) -> None:
        _check_range("weeks", self.weeks, 1, 52)
        _check_range("reviews_per_day", self.reviews_per_day, 0, 100_000)
        _check_range("task_count", self.task_count, 1, 10)
        _check_range("daily_volume", self.daily_volume, 20, 100_000)
        _check_range("base_rows", self.base_rows, 200, 1_000_000)
        if not 0.5 <= self.reviewer_accuracy <= 1:
            raise ValidationError(
                f"reviewer_accuracy must be between 0.5 and 1; got {self.reviewer_accuracy!r}",
                "reviewer_accuracy",
            )


@dataclass(frozen=True)
class WeekResult:
    week: int
    precision: float
    recall: float
    accuracy: float
    reviews: int
    model_version: int
    promoted: bool


@dataclass(frozen=True)
class DemoResult:
    weeks: list[WeekResult]
    baseline: list[dict[str, float | int]]
    loops_completed: int

    def summary(self) -> dict[str, Any]:
        """The summary.json document."""
        return {
            "weeks": [vars(w).copy() for w in self.weeks],
            "baseline": self.baseline,
            "loops_completed": self.loops_completed,
        }


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValidationError(
            f"{name} must be between {low} and {high}; got {value!r}", name
        )


def transactions(
    rng: np.random.Generator, n: int, week: int, *, travellers: float | None = None
) -> pd.DataFrame:
    """One day of ``n`` transactions as fraud looked in ``week`` (0 is the first)."""
    frauds = rng.binomial(n, 0.03)
    testing = rng.binomial(frauds, min(0.5, 0.15 * week))
    share = 0.012 + 0.015 * week if travellers is None else travellers
    trips = rng.binomial(n - frauds, share)
    parts = [
        (_everyday(rng, n - frauds - trips), "legit"),
        (_travellers(rng, trips), "legit"),
        (_stolen_cards(rng, frauds - testing), "fraud"),
        (_card_testing(rng, testing), "fraud"),
    ]
    frame = pd.concat(
        [pd.DataFrame(p).assign(label=label) for p, label in parts], ignore_index=True
    )
    frame["amount"] = frame["amount"].round(2)
    frame["card_age_days"] = frame["card_age_days"].round().astype(int)
    order = rng.permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


def _hours(rng: np.random.Generator, n: int, weights: np.ndarray) -> Any:
    return rng.choice(24, n, p=weights / weights.sum())


def _everyday(rng: np.random.Generator, n: int) -> dict[str, Any]:
    return {
        "amount": rng.lognormal(3.4, 0.9, n),
        "hour": _hours(rng, n, _DAY_HOURS),
        "merchant": rng.choice(
            _MERCHANTS, n, p=[0.25, 0.2, 0.12, 0.18, 0.15, 0.04, 0.04, 0.02]
        ),
        "country": rng.choice(["US", "CA", "GB", "MX"], n, p=[0.94, 0.03, 0.02, 0.01]),
        "card_age_days": rng.gamma(2, 300, n),
        "velocity": rng.poisson(1.5, n),
    }


def _travellers(rng: np.random.Generator, n: int) -> dict[str, Any]:
    return {
        "amount": rng.lognormal(5.0, 0.7, n),
        "hour": _hours(rng, n, _NIGHT_HOURS),
        "merchant": rng.choice(["hotel", "airline", "car_rental"], n),
        "country": rng.choice(["FR", "MX", "TH", "IT", "ES", "GB"], n),
        "card_age_days": rng.gamma(2, 300, n),
        "velocity": rng.poisson(3, n),
    }


def _stolen_cards(rng: np.random.Generator, n: int) -> dict[str, Any]:
    return {
        "amount": rng.lognormal(5.4, 0.8, n),
        "hour": _hours(rng, n, _NIGHT_HOURS),
        "merchant": rng.choice(["electronics", "gift_cards", "online", "travel"], n),
        "country": rng.choice(_ABROAD, n),
        "card_age_days": rng.gamma(1.5, 60, n),
        "velocity": rng.poisson(5, n),
    }


def _card_testing(rng: np.random.Generator, n: int) -> dict[str, Any]:
    return {
        "amount": rng.lognormal(1.5, 0.5, n),
        "hour": _hours(rng, n, _NIGHT_HOURS),
        "merchant": rng.choice(["online", "gift_cards"], n),
        "country": rng.choice(["US", "US", "CA"], n),
        "card_age_days": rng.gamma(1.5, 60, n),
        "velocity": rng.poisson(9, n),
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [c for c in frame.columns if c != "label"]
    return [
        {
            c: (v.item() if hasattr(v, "item") else v)
            for c, v in zip(columns, row, strict=True)
        }
        for row in frame[columns].itertuples(index=False, name=None)
    ]


class _Clock:
    """The simulated time the engine sees: label times and recency follow the story."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class _Signer:
    """SigV4-signed InvokeEndpoint calls with ``{"instances": [...]}`` batches."""

    def __init__(self, http: httpx.Client, key_id: str, secret: str, region: str):
        self._http = http
        self._auth = SigV4Auth(Credentials(key_id, secret), "sagemaker", region)

    def invoke(self, endpoint: str, records: Sequence[Mapping[str, Any]]) -> Any:
        url = f"{self._http.base_url}endpoints/{endpoint}/invocations"
        body = orjson.dumps({"instances": list(records)})
        request = AWSRequest(
            method="POST",
            url=url,
            data=body,
            headers={"Content-Type": "application/json"},
        )
        self._auth.add_auth(request)
        reply = self._http.post(url, content=body, headers=dict(request.headers))
        if reply.status_code != 200:
            raise ClosedloopError(
                f"endpoint {endpoint!r} answered {reply.status_code}: {reply.text[:200]}"
            )
        return reply.json()["predictions"]


def _write_project(root: Path, options: DemoOptions) -> Project:
    text = starter_project(PROJECT).replace("params = {}", f"params = {_PARAMS}")
    text = text.replace(
        "task_count = 1 ", f"task_count = {options.task_count} "
    ).replace("budget_per_day = 100", f"budget_per_day = {options.reviews_per_day}")
    text = text.replace('metric = "f1_macro"', f'metric = "{_METRIC}"')
    # Reviewed rows are a biased slice (mostly flags); at 2x they correct the
    # model without drowning the base rows' picture of everyday traffic.
    text = text.replace("human_weight = 5.0", "human_weight = 2.0")
    text = text.replace(
        "# conditions = {", f"conditions = {_toml(CONDITIONS)}\n# was {{"
    )
    path = root / "closedloop.toml"
    path.write_text(text)
    return load_project(path)


def _toml(value: Any) -> str:
    """An inline TOML table or array for the JSON-like ``value``."""
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return orjson.dumps(value).decode()


def run_fraud_demo(
    home: Path,
    options: DemoOptions,
    *,
    on_day: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Play the scenario in a fresh embedded installation at ``home``.

    Whatever ``home`` held is deleted first, so point it at a folder of its own.
    """
    if home.exists():
        shutil.rmtree(home)
    clock = _Clock()
    settings = Settings.from_env(None, home=home, database_url="", storage_url="")
    engine = Engine(settings, clock=clock)
    try:
        with BackgroundServer(engine) as server:
            return _Scenario(engine, clock, server.url, options).play(on_day)
    finally:
        engine.close()


@dataclass
class _Week:
    truth: list[str] = field(default_factory=list)
    served: list[str] = field(default_factory=list)
    baseline: list[str] = field(default_factory=list)
    reviews: int = 0


class _Scenario:
    def __init__(
        self, engine: Engine, clock: _Clock, url: str, options: DemoOptions
    ) -> None:
        self.engine, self.clock, self.options = engine, clock, options
        self.http = httpx.Client(base_url=url + "/", timeout=60)
        self.truth: dict[str, str] = {}
        root = engine.settings.home / "project"
        (root / "data").mkdir(parents=True, exist_ok=True)
        self.project = _write_project(root, options)
        self.root = root

    def play(self, on_day: Callable[[int, int], None] | None) -> DemoResult:
        signer, tokens = self._prepare()
        weeks: list[WeekResult] = []
        baseline: list[dict[str, float | int]] = []
        for week in range(self.options.weeks):
            tally = _Week()
            for day in range(7):
                self._play_day(signer, tokens, week, day, tally)
                if on_day is not None:
                    on_day(week, day)
            served = self._served_version(signer)
            promoted = self._retrain(signer, week)
            weeks.append(
                WeekResult(
                    week + 1,
                    *_scores(tally, tally.served),
                    tally.reviews,
                    served,
                    promoted,
                )
            )
            baseline.append({"week": week + 1, **_score_dict(tally, tally.baseline)})
        self.http.close()
        return DemoResult(weeks, baseline, self._completed_loops())

    def _prepare(self) -> tuple[_Signer, list[str]]:
        engine, project = self.engine, self.project
        setup_project(engine, project)
        workers = [f"reviewer-{i + 1}" for i in range(self.options.task_count)]
        tokens = []
        for name in workers:
            engine.workforce.create_worker(name, [project.review.team])
            tokens.append(engine.workforce.issue_token(name))
        key = engine.keys.create("fraud-demo")
        signer = _Signer(
            self.http, key.access_key_id, key.secret_access_key, engine.settings.region
        )
        self._day_zero_model()
        return signer, tokens

    def _day_zero_model(self) -> None:
        engine, data = self.engine, self.project.data
        rng = np.random.default_rng([self.options.seed, 0])
        base = transactions(rng, self.options.base_rows, 0, travellers=0.0)
        base.insert(0, "id", [f"b{i:06d}" for i in range(len(base))])
        stamps = (
            START
            - timedelta(days=28)
            + pd.to_timedelta(np.arange(len(base)) * 28 * 86400 // len(base), unit="s")
        )
        base["time"] = stamps.strftime("%Y-%m-%dT%H:%M:%S")
        path = self.root / "data" / "base.csv"
        base.to_csv(path, index=False)
        version = engine.datasets.import_file(
            data.dataset,
            str(path),
            label=data.label,
            id_column=data.id,
            time_column=data.time,
        )
        model = self.project.model
        run = engine.training.train(
            MODEL,
            version.ref,
            model.trainer,
            {
                **model.params,
                "half_life_days": model.recency_half_life_days,
                "human_weight": model.human_weight,
            },
            model.seed,
        )
        number = int(run.model_version or 1)
        engine.registry.approve(MODEL, number)
        engine.registry.promote(MODEL, number)
        flow = self.project.review.flow
        engine.endpoints.deploy(
            self.project.endpoint.name, MODEL, "@production", flow_name=flow
        )
        engine.endpoints.deploy(OVERFLOW_ENDPOINT, MODEL, "@production")
        engine.endpoints.deploy(BASELINE_ENDPOINT, MODEL, str(number))

    def _play_day(
        self, signer: _Signer, tokens: list[str], week: int, day: int, tally: _Week
    ) -> None:
        self.clock.now = START + timedelta(days=7 * week + day)
        rng = np.random.default_rng([self.options.seed, 1, week, day])
        frame = transactions(rng, self.options.daily_volume, week)
        records = _records(frame)
        labels = frame["label"].tolist()
        for record, label in zip(records, labels, strict=True):
            self.truth[sampling_key(record)] = label
        served, started = self._score_within_budget(signer, records)
        tally.truth += labels
        tally.served += served
        tally.baseline += _labels(signer, BASELINE_ENDPOINT, records)
        tally.reviews += started
        self.clock.now += timedelta(hours=8)
        for index, token in enumerate(tokens):
            self._review(token, index)

    def _score_within_budget(
        self, signer: _Signer, records: list[dict[str, Any]]
    ) -> tuple[list[str], int]:
        """Route batches no larger than the budget left, then score the rest unrouted.

        A batch of n records starts at most n loops, so the day never starts more
        loops than ``reviews_per_day``; once the budget is spent, the records go
        to an endpoint of the same model without a flow.
        """
        labels: list[str] = []
        started, position = 0, 0
        endpoint = self.project.endpoint.name
        while position < len(records):
            left = self.options.reviews_per_day - started
            routed = left > 0
            size = min(BATCH, left) if routed else BATCH
            batch = records[position : position + size]
            answers = signer.invoke(endpoint if routed else OVERFLOW_ENDPOINT, batch)
            started += sum(1 for a in answers if a["human_loop_name"])
            labels += [a["label"] for a in answers]
            position += size
        return labels, started

    def _review(self, token: str, index: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        while True:
            claim = self.http.post("api/v1/worker/tasks/next", headers=headers)
            if claim.status_code != 200:
                return
            task = claim.json()
            content = task["inputContent"]
            if isinstance(content, str):
                content = orjson.loads(content)
            label = self._reviewer_label(content["features"], index)
            reply = self.http.post(
                f"api/v1/worker/tasks/{task['taskId']}/answer",
                headers=headers,
                json={"answerContent": {"category": {"label": label}}},
            )
            reply.raise_for_status()

    def _reviewer_label(self, features: Mapping[str, Any], worker: int) -> str:
        key = sampling_key(features)
        truth = self.truth[key]
        draw = int(
            hashlib.sha256(f"{self.options.seed}:{worker}:{key}".encode()).hexdigest()[
                :12
            ],
            16,
        )
        if draw / 16**12 < self.options.reviewer_accuracy:
            return truth
        return "legit" if truth == "fraud" else "fraud"

    def _retrain(self, signer: _Signer, week: int) -> bool:
        self.clock.now = START + timedelta(days=7 * (week + 1), hours=-6)
        runner = PipelineRunner(
            self.engine, self.project.name, build_steps(self.project)
        )
        report = runner.run("schedule")
        outputs = {step.name: step.outputs for step in report.steps}
        promoted = bool(outputs.get("deploy", {}).get("promoted", False))
        self._wait_for_swap(signer)
        return promoted

    def _served_version(self, signer: _Signer) -> int:
        answers = signer.invoke(OVERFLOW_ENDPOINT, [self._probe()])
        return int(answers[0]["model_version"])

    def _wait_for_swap(self, signer: _Signer) -> None:
        """Send harmless probes until both live endpoints serve the production version."""
        target = self.engine.registry.alias_version(MODEL, "production")
        probe = self._probe()
        deadline = time.monotonic() + 60
        for endpoint in (self.project.endpoint.name, OVERFLOW_ENDPOINT):
            while True:
                answer = signer.invoke(endpoint, [probe])[0]
                if answer["human_loop_name"]:
                    raise ClosedloopError(
                        "the demo's probe record started a human loop"
                    )
                if answer["model_version"] == target:
                    break
                if time.monotonic() > deadline:
                    raise ClosedloopError(
                        f"endpoint {endpoint!r} did not swap to version {target} within 60 s"
                    )
                time.sleep(0.2)

    def _probe(self) -> dict[str, Any]:
        """An everyday purchase no condition routes: confident, and outside the audit sample."""
        conditions = parse_conditions(orjson.dumps(CONDITIONS).decode())
        sure = Prediction("legit", {"legit": 0.999, "fraud": 0.001})
        for cents in range(100, 10_000):
            record = {
                "amount": cents / 100,
                "hour": 12,
                "merchant": "grocery",
                "country": "US",
                "card_age_days": 900,
                "velocity": 1,
            }
            if not conditions.evaluate(
                prediction=sure, sampling_key=sampling_key(record)
            ).activated:
                return record
        raise ClosedloopError("no probe record escapes the audit sample")

    def _completed_loops(self) -> int:
        flow = self.project.review.flow
        with self.engine.ctx.db.read() as session:
            count = session.scalar(
                select(func.count())
                .select_from(HumanLoop)
                .where(HumanLoop.flow_name == flow, HumanLoop.status == "Completed")
            )
        return int(count or 0)


def _labels(signer: _Signer, endpoint: str, records: list[dict[str, Any]]) -> list[str]:
    labels: list[str] = []
    for start in range(0, len(records), 200):
        labels += [
            a["label"] for a in signer.invoke(endpoint, records[start : start + 200])
        ]
    return labels


def _score_dict(tally: _Week, predicted: list[str]) -> dict[str, float]:
    precision, recall, accuracy = _scores(tally, predicted)
    return {"precision": precision, "recall": recall, "accuracy": accuracy}


def _scores(tally: _Week, predicted: list[str]) -> tuple[float, float, float]:
    truth = np.array(tally.truth) == "fraud"
    flags = np.array(predicted) == "fraud"
    hits = int((truth & flags).sum())
    precision = hits / max(int(flags.sum()), 1)
    recall = hits / max(int(truth.sum()), 1)
    accuracy = float((truth == flags).mean())
    return round(precision, 4), round(recall, 4), round(accuracy, 4)
