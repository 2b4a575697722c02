"""Benchmark reading A2I output files and Dawid-Skene against crowd-kit on the same answers.

Run ``python benchmarks/bench_consolidation.py`` (300,000 files, 1,000,000
answers) or add ``--small`` for a quick run. Needs crowd-kit for the side by
side (``pip install --no-deps crowd-kit`` plus pandas, scipy, scikit-learn,
attrs, tqdm and nltk).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from closedloop.feedback.consolidate import AnswerTable, dawid_skene
from closedloop.feedback.labels import extract_label
from closedloop.feedback.reader import LoopRecord, read_outputs

CLASSES = ["cat", "dog", "fox", "owl"]
RESULTS = Path(__file__).parent / "results" / "consolidation.json"
FULL = {"files": 300_000, "answers": 1_000_000, "workers": 60}
SMALL = {"files": 15_000, "answers": 50_000, "workers": 30}


def simulate_workers(
    n_workers: int, rng: np.random.Generator
) -> list[tuple[str, float]]:
    """Mixed quality: careful, average, sloppy, adversarial (shift the label) and lazy."""
    kinds = [
        "careful",
        "average",
        "sloppy",
        "average",
        "careful",
        "adversarial",
        "lazy",
    ]
    accuracy = {
        "careful": 0.92,
        "average": 0.75,
        "sloppy": 0.45,
        "adversarial": 0.0,
        "lazy": 0.0,
    }
    workers = []
    for index in range(n_workers):
        kind = kinds[index % len(kinds)]
        jitter = 0.0 if kind in ("adversarial", "lazy") else rng.uniform(-0.04, 0.04)
        workers.append((kind, accuracy[kind] + jitter))
    return workers


def answer_of(kind: str, accuracy: float, truth: int, rng: np.random.Generator) -> int:
    """One simulated worker's answer for an item whose true class is ``truth``."""
    if kind == "lazy":
        return 0
    if kind == "adversarial":
        return (truth + 1) % len(CLASSES)
    if rng.random() < accuracy:
        return truth
    return int(rng.integers(len(CLASSES)))


def generate(
    root: Path, n_files: int, n_answers: int, n_workers: int, seed: int = 7
) -> dict[str, str]:
    """Write ``n_files`` output.json files in A2I's key layout; return item -> truth."""
    rng = np.random.default_rng(seed)
    workers = simulate_workers(n_workers, rng)
    extra = n_answers - 3 * n_files  # this many files get a fourth answer
    truth_of: dict[str, str] = {}
    for index in range(n_files):
        truth = int(rng.integers(len(CLASSES)))
        chosen = rng.choice(n_workers, 4 if index < extra else 3, replace=False)
        document = _document(index, truth, chosen, workers, rng)
        folder = (
            root
            / "fd"
            / f"{index // 3600:04d}"
            / f"{index % 3600 // 60:02d}"
            / document["humanLoopName"]
        )
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "output.json").write_bytes(orjson.dumps(document))
        truth_of[f"item-{index}"] = CLASSES[truth]
    return truth_of


def _document(
    index: int,
    truth: int,
    chosen: Any,
    workers: list[tuple[str, float]],
    rng: np.random.Generator,
) -> dict[str, Any]:
    model = truth if rng.random() < 0.7 else int(rng.integers(len(CLASSES)))
    answers = [
        {
            "acceptanceTime": "2024-05-01T10:00:00.000Z",
            "answerContent": {
                "category": {"label": CLASSES[answer_of(*workers[w], truth, rng)]}
            },
            "submissionTime": "2024-05-01T10:01:00.000Z",
            "timeSpentInSeconds": 60.0,
            "workerId": f"worker-{w:03d}",
            "workerMetadata": {
                "identityData": {"identityProviderType": "Cognito", "sub": f"sub-{w}"}
            },
        }
        for w in chosen
    ]
    return {
        "flowDefinitionArn": "arn:aws:sagemaker:us-east-1:111122223333:flow-definition/bench",
        "humanAnswers": answers,
        "humanLoopName": f"loop-{index:07d}",
        "inputContent": {
            "id": f"item-{index}",
            "taskObject": {"text": f"sample text number {index}", "source": "bench"},
            "prediction": {
                "label": CLASSES[model],
                "confidence": round(float(rng.uniform(0.3, 1.0)), 3),
            },
        },
    }


def timed(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds over ``repeat`` runs, and the last run's result."""
    seconds, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def count_records(root: Path, threads: int) -> int:
    """Read and parse every file as a stream, as build_feedback does; count the records."""
    return sum(
        isinstance(record, LoopRecord)
        for record in read_outputs([str(root)], threads=threads)
    )


def triples(root: Path) -> list[tuple[str, str, str]]:
    """(item id, worker id, label) for every answer."""
    return [
        (
            str((record.input_content or {})["id"]),
            answer.worker_id or "",
            extract_label(answer.answer_content, "category.label") or "",
        )
        for record in read_outputs([str(root)])
        if isinstance(record, LoopRecord)
        for answer in record.answers
    ]


def accuracy(predicted: dict[str, str], truth: dict[str, str]) -> float:
    """Share of items whose predicted label is the simulated truth."""
    return sum(predicted[item] == label for item, label in truth.items()) / len(truth)


def bench_reading(root: Path, n_files: int, repeat: int) -> dict[str, Any]:
    """Files per second read and parsed: all inline, and with one or two loading threads."""
    results: dict[str, Any] = {}
    for threads in (0, 1, 2):
        seconds, count = timed(
            lambda threads=threads: count_records(root, threads), repeat
        )
        if count != n_files:
            raise RuntimeError(f"read {count} of {n_files} files")
        results[f"threads_{threads}"] = {
            "median_seconds": seconds,
            "files_per_second": n_files / seconds,
        }
    return results


def bench_dawid_skene(
    answers: list[tuple[str, str, str]], truth: dict[str, str], repeat: int
) -> dict[str, Any]:
    """closedloop's Dawid-Skene against crowd-kit's on the same answers."""
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    warnings.filterwarnings(
        "ignore", message="The (inplace|copy) keyword"
    )  # crowd-kit on pandas 3

    table = AnswerTable.from_answers(answers)
    ours_seconds, ours = timed(lambda: dawid_skene(table), repeat)
    frame = pd.DataFrame(answers, columns=["task", "worker", "label"])
    theirs_seconds, theirs = timed(
        lambda: DawidSkene(n_iter=100, tol=1e-5).fit(frame), repeat
    )
    ours_labels = dict(zip(table.item_ids, ours.labels(), strict=True))
    theirs_labels = theirs.labels_.to_dict()
    return {
        "closedloop": {
            "median_seconds": ours_seconds,
            "accuracy": accuracy(ours_labels, truth),
            "iterations": ours.n_iter,
        },
        "crowd_kit": {
            "median_seconds": theirs_seconds,
            "accuracy": accuracy(theirs_labels, truth),
            "iterations": len(theirs.loss_history_),
        },
        "label_agreement": accuracy(ours_labels, theirs_labels),
        "speedup": theirs_seconds / ours_seconds,
    }


def print_table(report: dict[str, Any]) -> None:
    """Print the results as a small table."""
    reading, ds = report["reading"], report["dawid_skene"]
    print(
        f"{report['files']:,} files, {report['answers']:,} answers, {report['workers']} workers, {report['cpus']} CPUs"
    )
    print(f"{'measure':<34}{'median s':>10}{'rate / accuracy':>20}")
    for name, row in reading.items():
        print(
            f"{'read+parse ' + name:<34}{row['median_seconds']:>10.2f}{row['files_per_second']:>15,.0f} f/s"
        )
    for name in ("closedloop", "crowd_kit"):
        row = ds[name]
        print(
            f"{'Dawid-Skene ' + name:<34}{row['median_seconds']:>10.2f}{row['accuracy']:>20.4f}"
        )
    print(
        f"Dawid-Skene speedup {ds['speedup']:.1f}x; labels agree on {ds['label_agreement']:.4%} of items"
    )


def main() -> None:
    """Generate the files, run both benchmarks, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--small", action="store_true", help="15,000 files and 50,000 answers"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed runs per measure (median is quoted)",
    )
    args = parser.parse_args()
    size = SMALL if args.small else FULL
    with tempfile.TemporaryDirectory(prefix="closedloop-bench-") as folder:
        root = Path(folder)
        start = time.perf_counter()
        truth = generate(root, size["files"], size["answers"], size["workers"])
        generated = time.perf_counter() - start
        reading = bench_reading(root, size["files"], args.repeat)
        answers = triples(root)
    report = {
        **size,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "generate_seconds": generated,
        "reading": reading,
        "dawid_skene": bench_dawid_skene(answers, truth, args.repeat),
    }
    print_table(report)
    if not args.small:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
