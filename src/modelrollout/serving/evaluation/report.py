"""The HTML report: ROC curves, confusion matrices, metric bars with confidence intervals.

People would rather look than read; the JSON stays the source of truth and the
page only draws its numbers (plus ROC curves, which need the raw answers).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from modelrollout.serving.evaluation.metrics import Predictions, probability_columns
from modelrollout.serving.evaluation.result import clean


def write(
    full: Mapping[str, Any],
    directory: str,
    y: np.ndarray,
    answers: Mapping[str, Predictions],
) -> list[str]:
    """Write index.html and the PNG charts into ``directory``; return the file names."""
    import matplotlib

    matplotlib.use("Agg")
    os.makedirs(directory, exist_ok=True)
    charts: list[tuple[str, str]] = []
    labels = full.get("labels")
    if labels is not None:
        roc = _roc_chart(directory, y, np.asarray(labels), answers)
        if roc:
            charts.append((roc, "ROC curves (one-vs-rest per class for multiclass)"))
        for side in ("candidate", "baseline"):
            section = full.get(side)
            if section and section.get("confusion_matrix") is not None:
                name = _confusion_chart(directory, side, section["confusion_matrix"], labels)
                charts.append((name, f"Confusion matrix of the {side}"))
    charts.append((_metric_bars(directory, full), "Model-quality metrics"))
    if full.get("comparison"):
        charts.append((_delta_chart(directory, full["comparison"]), "Candidate - baseline"))
    page = _page(full, charts)
    with open(os.path.join(directory, "index.html"), "w", encoding="utf-8") as fh:
        fh.write(page)
    return ["index.html"] + [c[0] for c in charts]


def _save(fig: Any, directory: str, name: str) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(os.path.join(directory, name), dpi=100)
    plt.close(fig)
    return name


def _roc_chart(
    directory: str, y: np.ndarray, labels: np.ndarray, answers: Mapping[str, Predictions]
) -> str | None:
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(6, 5))
    drawn = False
    for side, pred in answers.items():
        proba, _ = probability_columns(pred, labels)
        if proba is None:
            continue
        classes = [1] if len(labels) == 2 else range(len(labels))
        for c in classes:
            pos = y == labels[c]
            if pos.all() or not pos.any():
                continue
            fpr, tpr, _ = roc_curve(pos, proba[:, c])
            ax.plot(fpr, tpr, label=f"{side} class {labels[c]}")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize="small")
    return _save(fig, directory, "roc.png")


def _confusion_chart(directory: str, side: str, matrix: list[list[int]], labels: list[Any]) -> str:
    import matplotlib.pyplot as plt

    cm = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 + 0.5 * len(labels), 1 + 0.5 * len(labels)))
    ax.imshow(cm, cmap="Blues")
    if len(labels) <= 20:
        ticks = range(len(labels))
        ax.set_xticks(ticks, [str(x) for x in labels], rotation=90)
        ax.set_yticks(ticks, [str(x) for x in labels])
        for i in ticks:
            for j in ticks:
                color = "white" if cm[i, j] > cm.max() / 2 else "black"
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=color)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(side)
    return _save(fig, directory, f"confusion_{side}.png")


_QUALITY_SKIP = ("latency_", "error_rate", "rows_per_second")


def _metric_bars(directory: str, full: Mapping[str, Any]) -> str:
    import matplotlib.pyplot as plt

    cand = full["candidate"]["metrics"]
    base = (full.get("baseline") or {}).get("metrics") or {}
    comp = (full.get("comparison") or {}).get("metrics") or {}
    names = [n for n, v in cand.items() if v is not None and not n.startswith(_QUALITY_SKIP)]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names)), 4))
    ax.bar(x - 0.2, [cand[n] for n in names], 0.4, label="candidate")
    if base:
        values = [base.get(n) or 0.0 for n in names]
        # Error bars: where the candidate would sit at the ends of the delta's interval.
        err = np.array(
            [
                [
                    -(comp.get(n, {}).get("ci_low") or 0.0) + (comp.get(n, {}).get("delta") or 0),
                    (comp.get(n, {}).get("ci_high") or 0.0) - (comp.get(n, {}).get("delta") or 0),
                ]
                for n in names
            ]
        ).T
        ax.bar(x + 0.2, values, 0.4, label="baseline")
        ax.errorbar(x - 0.2, [cand[n] for n in names], yerr=np.abs(err), fmt="none", c="k")
    ax.set_xticks(x, names, rotation=60, ha="right")
    ax.legend(loc="lower left")
    return _save(fig, directory, "metrics.png")


def _delta_chart(directory: str, comparison: Mapping[str, Any]) -> str:
    import matplotlib.pyplot as plt

    rows = [
        (n, c["delta"], c["ci_low"], c["ci_high"])
        for n, c in comparison["metrics"].items()
        if c.get("ci_low") is not None and c.get("ci_high") is not None
    ]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(rows) + 1.2))
    for i, (_, delta, lo, hi) in enumerate(rows):
        ax.plot([lo, hi], [i, i], "k-")
        ax.plot([delta], [i], "o", color="tab:blue")
    ax.axvline(0, color="grey", linestyle=":")
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    level = comparison.get("confidence", 0.95)
    ax.set_xlabel(f"candidate - baseline ({level:.0%} paired bootstrap interval)")
    return _save(fig, directory, "deltas.png")


def _page(full: Mapping[str, Any], charts: list[tuple[str, str]]) -> str:
    gates = full.get("gates") or {}
    rows = "".join(
        f"<tr class={'pass' if v['passed'] else 'fail'}><td>{html.escape(v['gate'])}</td>"
        f"<td>{'pass' if v['passed'] else 'FAIL'}</td><td>{html.escape(v['message'])}</td></tr>"
        for v in gates.get("verdicts", [])
    )
    images = "".join(
        f"<figure><img src='{name}' alt='{html.escape(caption)}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, caption in charts
    )
    ds = full["dataset"]
    raw = html.escape(json.dumps(clean(full), indent=2))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Evaluation: {html.escape(full["verdict"])}</title>
<style>body{{font-family:sans-serif;margin:2em}} .fail{{color:#b00}} .pass{{color:#060}}
td{{padding:2px 8px}} figure{{display:inline-block;margin:1em}}</style></head><body>
<h1>Evaluation {html.escape(full["verdict"])}</h1>
<p>{ds["rows"]} rows of {html.escape(ds["uri"])} ({html.escape(ds["digest"])}), {full["task"]}</p>
<table>{rows}</table>{images}
<details><summary>Full result</summary><pre>{raw}</pre></details>
</body></html>
"""
