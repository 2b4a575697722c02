"""The fraud demo's outputs: summary.json, a PNG of the weekly figures, report.html."""

from __future__ import annotations

import html
from pathlib import Path

import orjson

from closedloop.simulation.fraud import DemoResult

__all__ = ["PLOT_FILE", "REPORT_FILE", "SUMMARY_FILE", "write_report"]

SUMMARY_FILE = "summary.json"
PLOT_FILE = "weekly.png"
REPORT_FILE = "report.html"


def write_report(result: DemoResult, out: Path) -> dict[str, Path]:
    """Write the three files into ``out`` (made if missing); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary": out / SUMMARY_FILE,
        "plot": out / PLOT_FILE,
        "report": out / REPORT_FILE,
    }
    paths["summary"].write_bytes(
        orjson.dumps(result.summary(), option=orjson.OPT_INDENT_2)
    )
    _plot(result, paths["plot"])
    paths["report"].write_text(_html(result))
    return paths


def _plot(result: DemoResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    weeks = [w.week for w in result.weeks]
    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("precision", "recall"), strict=True):
        axis.plot(weeks, [getattr(w, metric) for w in result.weeks], "o-")
        axis.plot(weeks, [b[metric] for b in result.baseline], "s--")
        axis.set_title(f"{metric} of the fraud flags")
        axis.set_xlabel("week")
        axis.set_xticks(weeks)
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
        axis.legend(["retrained weekly", "baseline (never retrained)"])
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _html(result: DemoResult) -> str:
    rows = "\n".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                w.week,
                f"{w.precision:.1%}",
                f"{w.recall:.1%}",
                f"{w.accuracy:.2%}",
                w.reviews,
                w.model_version,
                "yes" if w.promoted else "no",
                f"{b['precision']:.1%}",
                f"{b['recall']:.1%}",
                f"{b['accuracy']:.2%}",
            )
        )
        + "</tr>"
        for w, b in zip(result.weeks, result.baseline, strict=True)
    )
    return _PAGE.format(
        rows=rows, loops=result.loops_completed, plot=html.escape(PLOT_FILE)
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>closedloop fraud demo</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}</style></head>
<body><h1>closedloop fraud demo</h1>
<p>Each week the endpoint scored the day's transactions, routed flagged,
low-confidence and sampled ones to human review, and the pipeline retrained
on the reviews. The baseline is the day-0 model, never retrained, scored on
the same stream. {loops} human loops completed.</p>
<table><tr><th>week</th><th>precision</th><th>recall</th><th>accuracy</th>
<th>reviews</th><th>model version</th><th>promoted</th><th>baseline precision</th>
<th>baseline recall</th><th>baseline accuracy</th></tr>
{rows}
</table>
<p><img src="{plot}" alt="weekly precision and recall"></p>
</body></html>
"""
