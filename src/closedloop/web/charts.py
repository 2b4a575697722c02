"""Server-drawn SVG charts for the operator pages: no script, no inline style, CSP-safe."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from closedloop.pipeline.monitoring import DayFigures

__all__ = ["Chart", "monitoring_chart"]

WIDTH, HEIGHT, PAD = 640, 200, 30


@dataclass(frozen=True)
class Chart:
    """Audited accuracy with its 95% band and reviewer-model agreement, one point a day."""

    days: Sequence[DayFigures]
    accuracy: str  # SVG polyline points
    band: str  # SVG polygon points
    agreement: str
    labels: list[tuple[float, str]]


def monitoring_chart(days: Sequence[DayFigures]) -> Chart:
    count = max(len(days), 1)

    def x(index: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * (index / max(count - 1, 1))

    def y(value: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * value

    audited = [(i, d) for i, d in enumerate(days) if d.accuracy is not None]
    accuracy = " ".join(f"{x(i):.1f},{y(d.accuracy or 0):.1f}" for i, d in audited)
    upper = [f"{x(i):.1f},{y(d.accuracy_high or 0):.1f}" for i, d in audited]
    lower = [f"{x(i):.1f},{y(d.accuracy_low or 0):.1f}" for i, d in reversed(audited)]
    agreement = " ".join(
        f"{x(i):.1f},{y(d.agreement):.1f}"
        for i, d in enumerate(days)
        if d.agreement is not None
    )
    step = max(count // 6, 1)
    labels = [(x(i), d.day.isoformat()) for i, d in enumerate(days) if i % step == 0]
    return Chart(days, accuracy, " ".join(upper + lower), agreement, labels)
