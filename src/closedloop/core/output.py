"""A2I's output.json: where it goes and what it holds, byte-compatible with A2I."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from closedloop.core.events import format_time

__all__ = ["OutputAnswer", "output_document", "output_uri"]


def output_uri(
    output_path: str, flow_name: str, loop_name: str, created_at: datetime
) -> str:
    """``<S3OutputPath>/<flow>/YYYY/MM/DD/hh/mm/ss/<loop>/output.json`` at the loop's creation (UTC)."""
    stamp = created_at.strftime("%Y/%m/%d/%H/%M/%S")
    return f"{output_path.rstrip('/')}/{flow_name}/{stamp}/{loop_name}/output.json"


@dataclass(frozen=True)
class OutputAnswer:
    """One worker's answer as A2I records it."""

    answer_content: dict[str, Any]
    acceptance_time: datetime
    submission_time: datetime
    worker_id: str
    identity: dict[str, str]

    @property
    def time_spent_seconds(self) -> float:
        """Seconds from acceptance to submission, never negative, to the millisecond."""
        spent = (self.submission_time - self.acceptance_time).total_seconds()
        return round(max(spent, 0.0), 3)


def output_document(
    flow_arn: str, loop_name: str, input_content: str, answers: Sequence[OutputAnswer]
) -> bytes:
    """The output.json bytes; keys in the order A2I writes them."""
    document = {
        "flowDefinitionArn": flow_arn,
        "humanAnswers": [_answer(a) for a in answers],
        "humanLoopName": loop_name,
        "inputContent": orjson.loads(input_content),
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def _answer(answer: OutputAnswer) -> dict[str, Any]:
    return {
        "acceptanceTime": format_time(answer.acceptance_time),
        "answerContent": answer.answer_content,
        "submissionTime": format_time(answer.submission_time),
        "timeSpentInSeconds": answer.time_spent_seconds,
        "workerId": answer.worker_id,
        "workerMetadata": {"identityData": answer.identity},
    }
