"""Production monitoring: accuracy from the random audit sample, with a confidence interval.

Loops started because the model was unsure or flagged a record over-represent
hard cases, so their agreement with the model understates accuracy. Only loops
the random ``Sampling`` condition picked (``audit`` in their input) estimate
production accuracy; the others are shown as reviewer-model agreement.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import select

from closedloop.engine import Engine
from closedloop.feedback import extract_label, guess_label_path
from closedloop.store.models import Answer, HumanLoop

__all__ = ["DayFigures", "Monitoring", "wilson_interval"]


@dataclass(frozen=True)
class DayFigures:
    """One day of reviews of a flow."""

    day: date
    reviews: int
    audited: int
    audited_correct: int
    agreement: float | None
    accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None


def wilson_interval(
    successes: int, trials: int, z: float = 1.96
) -> tuple[float, float]:
    """The Wilson score interval (95% by default); sound for small samples and extremes."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    spread = (
        z
        * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
        / denominator
    )
    return (max(0.0, centre - spread), min(1.0, centre + spread))


class Monitoring:
    """Daily review figures of a flow, read from the store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def daily(
        self,
        flow_name: str,
        *,
        since: datetime | None = None,
        label_path: str | None = None,
    ) -> list[DayFigures]:
        """Reviews per day, reviewer-model agreement, and audited accuracy with its interval."""
        loops = self._completed(flow_name, since)
        path = label_path
        if path is None and loops:
            path = guess_label_path(
                a for _, answers, _ in loops.values() for a in answers
            )
        days: dict[date, Counter[str]] = defaultdict(Counter)
        for ended, answers, content in loops.values():
            verdict = _verdict(content, answers, path)
            counts = days[ended.date()]
            counts["reviews"] += 1
            if verdict is None:
                continue
            agrees, audited = verdict
            counts["judged"] += 1
            counts["agree"] += agrees
            counts["audited"] += audited
            counts["audited_correct"] += agrees and audited
        return [_figures(day, counts) for day, counts in sorted(days.items())]

    def audited_accuracy(
        self, flow_name: str, *, since: datetime | None = None
    ) -> tuple[float | None, int]:
        """Accuracy over every audited loop since ``since`` and how many it rests on."""
        figures = self.daily(flow_name, since=since)
        audited = sum(f.audited for f in figures)
        correct = sum(f.audited_correct for f in figures)
        return (correct / audited if audited else None, audited)

    def _completed(
        self, flow_name: str, since: datetime | None
    ) -> dict[int, tuple[datetime, list[dict[str, Any]], dict[str, Any]]]:
        query = select(HumanLoop.id, HumanLoop.ended_at, HumanLoop.input_content).where(
            HumanLoop.flow_name == flow_name, HumanLoop.status == "Completed"
        )
        if since is not None:
            query = query.where(HumanLoop.ended_at >= since)
        result: dict[int, tuple[datetime, list[dict[str, Any]], dict[str, Any]]] = {}
        with self._engine.ctx.db.read() as session:
            for loop_id, ended, content in session.execute(query):
                if ended is not None:
                    result[loop_id] = (ended, [], orjson.loads(content))
            if result:
                answers = select(Answer.loop_id, Answer.answer_content).where(
                    Answer.loop_id.in_(list(result))
                )
                for loop_id, content in session.execute(answers):
                    result[loop_id][1].append(orjson.loads(content))
        return result


def _verdict(
    content: dict[str, Any], answers: Iterable[dict[str, Any]], path: str | None
) -> tuple[bool, bool] | None:
    """(reviewers agree with the model, the audit sample picked it), or None without a prediction."""
    prediction = content.get("prediction")
    if not isinstance(prediction, dict) or path is None:
        return None
    labels = [
        label
        for label in (extract_label(a, path) for a in answers)
        if label is not None
    ]
    if not labels:
        return None
    consensus = Counter(labels).most_common(1)[0][0]
    return (consensus == prediction.get("label"), bool(content.get("audit")))


def _figures(day: date, counts: Counter[str]) -> DayFigures:
    audited, correct = counts["audited"], counts["audited_correct"]
    low, high = wilson_interval(correct, audited) if audited else (None, None)
    return DayFigures(
        day=day,
        reviews=counts["reviews"],
        audited=audited,
        audited_correct=correct,
        agreement=counts["agree"] / counts["judged"] if counts["judged"] else None,
        accuracy=correct / audited if audited else None,
        accuracy_low=low,
        accuracy_high=high,
    )
