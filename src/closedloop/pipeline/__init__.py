"""The continuous retraining pipeline: recorded, resumable runs and their triggers."""

from closedloop.pipeline.runner import (
    PipelineRunner,
    RunReport,
    Step,
    StepContext,
    StepReport,
)

__all__ = ["PipelineRunner", "RunReport", "Step", "StepContext", "StepReport"]
