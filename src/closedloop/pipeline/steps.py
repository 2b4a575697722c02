"""The steps of one retraining cycle, built from a project: feedback to deployment."""

from __future__ import annotations

import logging
from typing import Any

from closedloop.errors import NotFoundError
from closedloop.evaluation.policy import PromotionPolicy
from closedloop.feedback import build_feedback, write_feedback
from closedloop.pipeline.project import Project
from closedloop.pipeline.runner import Step, StepContext

__all__ = ["STEP_NAMES", "build_steps"]

logger = logging.getLogger(__name__)
PIPELINE_BUCKET = "s3://closedloop-pipeline"
STEP_NAMES = ("feedback", "merge", "train", "evaluate", "gate", "register", "deploy")


def build_steps(project: Project) -> list[Step]:
    """feedback → merge → train → evaluate → gate → register → deploy, for ``project``.

    Every step is idempotent, so a resumed run may repeat an interrupted one. A
    cycle with no new accepted labels stops after merge: there is nothing to learn.
    """
    steps = _Steps(project)
    return [Step(name, getattr(steps, name)) for name in STEP_NAMES]


class _Steps:
    def __init__(self, project: Project) -> None:
        self.project = project

    def feedback(self, context: StepContext) -> dict[str, Any]:
        engine, review = context.engine, self.project.review
        objects = engine.ctx.objects
        flow = engine.flows.describe(review.flow)
        source = f"{flow.output_path.rstrip('/')}/{flow.name}"
        if not objects.exists(source):
            return {"accepted": 0, "path": None, "counts": {}}
        result = build_feedback(
            [objects.url(source)],
            label_path=review.label_path,
            label_set=review.labels,
            task_count=review.task_count,
            min_confidence=review.min_confidence,
        )
        # Kept in the object store beside the run's other artifacts; the path is
        # its full URL (a local path or s3://...), which the merge step reads.
        target = objects.url(
            f"{PIPELINE_BUCKET}/{self.project.name}/run-{context.run_id}/feedback.parquet"
        )
        write_feedback(result, target)
        return {
            "accepted": result.counts.get("accepted", 0),
            "path": target,
            "counts": result.counts,
        }

    def merge(self, context: StepContext) -> dict[str, Any]:
        datasets, data = context.engine.datasets, self.project.data
        try:
            base = datasets.latest(data.dataset)
        except NotFoundError:
            if data.base is None:
                raise
            path = str((self.project.root / data.base).resolve())
            base = datasets.import_file(
                data.dataset,
                path,
                label=data.label,
                id_column=data.id,
                time_column=data.time,
            )
        feedback = context.outputs["feedback"]
        if not feedback["accepted"]:
            return {"dataset": base.ref, "new_labels": 0}
        merged = datasets.merge(data.dataset, feedback["path"], parent=base.ref)
        return {
            "dataset": merged.ref,
            "new_labels": feedback["accepted"],
            "counts": merged.manifest["counts"],
        }

    def _skipped(self, context: StepContext) -> bool:
        return (
            not context.outputs["merge"]["new_labels"]
            and context.engine.registry.alias_version(
                self.project.model.name, "production"
            )
            is not None
        )

    def train(self, context: StepContext) -> dict[str, Any]:
        if self._skipped(context):
            return {"skipped": "no new labels"}
        model = self.project.model
        params = {
            **model.params,
            "half_life_days": model.recency_half_life_days,
            "human_weight": model.human_weight,
        }
        run = context.engine.training.train(
            model.name,
            context.outputs["merge"]["dataset"],
            model.trainer,
            params,
            model.seed,
        )
        return {
            "model": model.name,
            "version": run.model_version,
            "run_id": run.run_id,
            "metrics": run.metrics,
        }

    def evaluate(self, context: StepContext) -> dict[str, Any]:
        trained = context.outputs["train"]
        if "skipped" in trained:
            return {"skipped": trained["skipped"]}
        promotion = self.project.promotion
        policy = PromotionPolicy(
            metric=promotion.metric,
            min_gain=promotion.min_gain,
            max_recall_drop=promotion.max_recall_drop,
            require_significance=promotion.require_significance,
        )
        evaluation = context.engine.training.evaluate(
            trained["model"], trained["version"], "production", policy=policy
        )
        return {
            "promote": evaluation.decision.promote,
            "reasons": evaluation.decision.reasons,
            "champion": evaluation.champion,
            "metrics": evaluation.metrics,
            "report": evaluation.report_uri,
        }

    def gate(self, context: StepContext) -> dict[str, Any]:
        evaluated = context.outputs["evaluate"]
        if "skipped" in evaluated:
            return {"promote": False, "reasons": [evaluated["skipped"]]}
        decision = {
            "promote": bool(evaluated["promote"]),
            "reasons": evaluated["reasons"],
        }
        trained = context.outputs["train"]
        detail = {
            "model": trained["model"],
            "version": trained["version"],
            "reasons": decision["reasons"],
        }
        status = "Promoted" if decision["promote"] else "Rejected"
        context.engine.events.record_pipeline_event(
            status, self.project.name, context.run_id, detail
        )
        return decision

    def register(self, context: StepContext) -> dict[str, Any]:
        trained, decision = context.outputs["train"], context.outputs["gate"]
        if "skipped" in trained:
            return {"status": None}
        registry, version = context.engine.registry, int(trained["version"])
        current = registry.get(trained["model"], version).status
        if current == "PendingManualApproval":
            (registry.approve if decision["promote"] else registry.reject)(
                trained["model"], version
            )
        return {
            "version": version,
            "status": registry.get(trained["model"], version).status,
        }

    def deploy(self, context: StepContext) -> dict[str, Any]:
        trained, decision = context.outputs["train"], context.outputs["gate"]
        engine, model = context.engine, self.project.model.name
        promoted = False
        if decision["promote"] and "skipped" not in trained:
            version = int(trained["version"])
            if engine.registry.alias_version(model, "production") != version:
                engine.registry.promote(model, version)
                promoted = True
        production = engine.registry.alias_version(model, "production")
        if production is not None:
            engine.endpoints.deploy(
                self.project.endpoint.name,
                model,
                "@production",
                flow_name=self.project.review.flow,
            )
        return {"promoted": promoted, "production": production}
