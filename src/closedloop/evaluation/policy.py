"""The promotion policy: when a challenger may replace the champion, with the reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from closedloop.errors import ValidationError
from closedloop.evaluation.metrics import McNemarResult

__all__ = ["METRICS", "Decision", "PromotionPolicy", "decide"]

# Metrics a policy may compare; True where higher is better.
METRICS = {
    "accuracy": True,
    "f1_macro": True,
    "precision_macro": True,
    "recall_macro": True,
    "roc_auc": True,
    "ece": False,
}


@dataclass(frozen=True)
class PromotionPolicy:
    """Promote when ``metric`` gains at least ``min_gain``, no class's recall drops by
    more than ``max_recall_drop``, and (if required) McNemar's p-value is below ``alpha``.
    """

    metric: str = "f1_macro"
    min_gain: float = 0.0
    max_recall_drop: float = 0.05
    require_significance: bool = False
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValidationError(
                f"policy metric must be one of {sorted(METRICS)}; got {self.metric!r}",
                "metric",
            )
        if not 0 <= self.max_recall_drop <= 1:
            raise ValidationError(
                f"max_recall_drop must be between 0 and 1; got {self.max_recall_drop!r}",
                "max_recall_drop",
            )
        if not 0 < self.alpha < 1:
            raise ValidationError(
                f"alpha must be between 0 and 1; got {self.alpha!r}", "alpha"
            )


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    policy: PromotionPolicy,
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    test: McNemarResult | None = None,
) -> Decision:
    """Apply ``policy`` to the two models' metrics on the same held-out rows."""
    if champion is None:
        return Decision(True, ["no champion to beat; the challenger is the first"])
    checks = [
        _gain(policy, challenger, champion),
        *_recall_drops(policy, challenger, champion),
    ]
    if policy.require_significance:
        checks.append(_significance(policy, test))
    return Decision(all(ok for ok, _ in checks), [reason for _, reason in checks])


def _gain(
    policy: PromotionPolicy, challenger: dict[str, Any], champion: dict[str, Any]
) -> tuple[bool, str]:
    new, old = challenger.get(policy.metric), champion.get(policy.metric)
    if new is None or old is None:
        return False, f"{policy.metric} is undefined on these rows; cannot compare"
    gain = (new - old) if METRICS[policy.metric] else (old - new)
    ok = gain >= policy.min_gain
    verb = "meets" if ok else "misses"
    return ok, (
        f"{policy.metric} {new:.4f} vs {old:.4f}: gain {gain:+.4f} {verb} the minimum {policy.min_gain:+.4f}"
    )


def _recall_drops(
    policy: PromotionPolicy, challenger: dict[str, Any], champion: dict[str, Any]
) -> list[tuple[bool, str]]:
    results = []
    for label, old in champion["per_class"].items():
        new = challenger["per_class"].get(label)
        if new is None or old["support"] == 0:
            continue
        drop = old["recall"] - new["recall"]
        if drop > policy.max_recall_drop:
            change = f"{old['recall']:.4f} to {new['recall']:.4f}"
            limit = f"at most {policy.max_recall_drop:.4f} allowed"
            reason = f"recall of class {label!r} drops {drop:.4f} ({change}); {limit}"
            results.append((False, reason))
    if not results:
        results.append(
            (True, f"no class's recall drops more than {policy.max_recall_drop:.4f}")
        )
    return results


def _significance(
    policy: PromotionPolicy, test: McNemarResult | None
) -> tuple[bool, str]:
    if test is None:
        return False, "significance required but McNemar's test was not run"
    fewer_errors = test.only_a > test.only_b
    ok = fewer_errors and test.p_value < policy.alpha
    return ok, (
        f"McNemar p={test.p_value:.4g} (challenger alone right on {test.only_a} rows, "
        f"champion alone on {test.only_b}); "
        f"{'significant' if ok else 'not significant'} at alpha {policy.alpha}"
    )
