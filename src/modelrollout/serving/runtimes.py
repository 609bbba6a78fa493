"""Choose the runtime that serves a loaded artifact: sklearn, onnx, or auto.

``auto`` compiles a scikit-learn estimator with skl2onnx, checks the compiled
model against the estimator on a probe set (``equivalence``) and serves it only
when they agree; otherwise it serves the estimator and records why. The
compiler is injected (``Compiler``), so tests can hand in a tampered graph.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelrollout.serving import equivalence
from modelrollout.serving.model import ModelInfo, Runtime, RuntimeInfo, SklearnRuntime

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "sklearn", "onnx")
MAX_REASON_CHARS = 240
"""Fallback reasons become a metric label and a metadata entry: one short line."""

Compiler = Callable[[Any, ModelInfo], Runtime]
"""Builds a compiled runtime for an estimator; raises ``ConversionUnsupported`` if it cannot."""


@dataclass(frozen=True)
class Choice:
    """What the loader needs to know to pick a runtime."""

    requested: str
    probe_rows: int = 256
    atol: float = equivalence.DEFAULT_ATOL
    rtol: float = equivalence.DEFAULT_RTOL
    probe_path: str | None = None
    """A local file of probe rows (``--probe-data``, already fetched)."""


def short_reason(text: str) -> str:
    """One line of at most ``MAX_REASON_CHARS`` (converter errors can dump whole graphs)."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 3] + "..."


def skl2onnx_compiler(estimator: Any, info: ModelInfo) -> Runtime:
    """The real compiler: skl2onnx, then an ONNX Runtime session."""
    from modelrollout.serving.compiled import OnnxRuntime, convert

    model_bytes = convert(estimator, info.n_features, info.kind == "classifier")
    return OnnxRuntime(model_bytes, classes=info.classes)


def probe_for(estimator: Any, info: ModelInfo, choice: Choice) -> equivalence.Probe:
    """The probe set, by the preference order in ``equivalence``'s doc."""
    if choice.probe_path is not None:
        rows = equivalence.read_probe_file(choice.probe_path, info.n_features)
        return equivalence.Probe(rows, f"--probe-data {choice.probe_path}")
    shipped = equivalence.shipped_rows(estimator, info.n_features)
    if shipped is not None:
        return shipped
    return equivalence.synthetic_rows(estimator, info.n_features, choice.probe_rows)


def select(
    estimator: Any, info: ModelInfo, choice: Choice, compiler: Compiler = skl2onnx_compiler
) -> tuple[Runtime, RuntimeInfo]:
    """The runtime to serve a scikit-learn estimator with, and the record of why."""
    reference = SklearnRuntime(estimator)
    if choice.requested == "sklearn":
        return reference, RuntimeInfo("sklearn", "sklearn")
    if choice.requested != "auto":
        raise ValueError(
            f"--runtime {choice.requested} needs an .onnx artifact; this one is scikit-learn"
        )
    from modelrollout.serving.compiled import ConversionUnsupported

    def fallback(
        reason: str, probe: str = "", diff: float = float("nan")
    ) -> tuple[Runtime, RuntimeInfo]:
        reason = short_reason(reason)
        log.warning("serving with scikit-learn instead of ONNX: %s", reason)
        return reference, RuntimeInfo("sklearn", "auto", reason, probe, diff)

    try:
        candidate = compiler(estimator, info)
    except ConversionUnsupported as err:
        return fallback(str(err))
    except Exception as err:  # e.g. onnxruntime missing or refusing the graph: still serve
        return fallback(f"compiling failed: {type(err).__name__}: {err}")
    try:
        probe = probe_for(estimator, info, choice)
        verdict = equivalence.compare(
            info, reference, candidate, probe.rows, (choice.atol, choice.rtol)
        )
    except Exception as err:  # a graph that cannot even run is a disagreement
        return fallback(f"equivalence check failed: {type(err).__name__}: {err}")
    if verdict.reason:
        return fallback(
            f"compiled model disagrees with scikit-learn: {verdict.reason}",
            probe.describe(),
            verdict.max_abs_diff,
        )
    log.info(
        "serving with ONNX Runtime: equivalent to scikit-learn on %s (max |diff| %.3g)",
        probe.describe(),
        verdict.max_abs_diff,
    )
    return candidate, RuntimeInfo("onnx", "auto", "", probe.describe(), verdict.max_abs_diff)
