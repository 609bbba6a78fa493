"""Labelled datasets: read a URI, pick label and features, hold out rows, digest them.

Reading (I/O) is separate from selecting and sampling (pure functions on a
DataFrame), so the latter are tested without files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelrollout import exitcodes
from modelrollout.serving.evaluation.errors import EvaluationError, bad_input

SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")
"""Datasets bundled with scikit-learn, readable as ``sklearn://NAME`` without a download."""

DIGEST_PREFIX = b"modelrollout.dataset/v1\n"
"""Versions the digest's canonical byte layout (see docs/evaluation-output.md)."""


@dataclass(frozen=True)
class DatasetSettings:
    """Which rows and columns to evaluate on."""

    uri: str
    """Path, ``file://``, ``http(s)://``, ``s3://`` (extra) or ``sklearn://NAME``."""
    label: str | None = None
    """Label column (default: ``target`` for ``sklearn://``, else required)."""
    features: tuple[str, ...] = ()
    """Feature columns in model input order (default: every other column, in file order)."""
    file_format: str = "auto"
    """``csv``, ``parquet``, ``jsonl`` or ``auto`` (from the file extension)."""
    holdout_fraction: float | None = None
    """Evaluate only this held-out fraction (train_test_split's test part); None: all rows."""
    seed: int = 0
    """Random state of the hold-out split."""
    stratify: bool = False
    """Keep class proportions in the hold-out split."""
    max_rows: int | None = None
    """Use at most this many rows (the first ones after hold-out)."""
    timeout_s: float = 60.0
    """Socket timeout for http(s) downloads."""


@dataclass(frozen=True)
class Dataset:
    """The rows actually evaluated."""

    features: np.ndarray
    """float64 matrix, one row per example, columns in ``feature_names`` order."""
    labels: np.ndarray
    """True labels (classification) or values (regression)."""
    feature_names: tuple[str, ...]
    label_name: str
    rows_read: int
    """Rows in the source before hold-out and row cap."""
    digest: str
    """``sha256:<hex>`` of the canonical bytes of these rows."""


def load(settings: DatasetSettings) -> Dataset:
    """Read, select, sample and digest; every failure is an EvaluationError with a reason."""
    frame = read_frame(settings)
    label = settings.label or ("target" if settings.uri.startswith("sklearn://") else None)
    if label is None:
        raise bad_input("no label column given (--label)")
    return prepare(frame, settings, label)


def prepare(frame: pd.DataFrame, settings: DatasetSettings, label: str) -> Dataset:
    """Select columns, hold out and cap rows, convert to arrays, digest (pure)."""
    if frame.shape[0] == 0:
        raise bad_input(f"dataset {settings.uri} has no rows")
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    if label not in columns:
        raise bad_input(f"label column {label!r} not in dataset (columns: {', '.join(columns)})")
    features = list(settings.features) or [c for c in columns if c != label]
    missing = [c for c in features if c not in columns]
    if missing:
        raise bad_input(f"feature columns not in dataset: {', '.join(missing)}")
    if not features:
        raise bad_input("no feature columns")
    non_numeric = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise bad_input(f"feature columns are not numeric: {', '.join(non_numeric)}")
    y = frame[label].to_numpy()
    if pd.isna(y).any():
        raise bad_input(f"label column {label!r} has {int(pd.isna(y).sum())} missing values")
    rows = select_rows(y, settings)
    x = frame[features].to_numpy(dtype=np.float64)[rows]
    y = _normalise_labels(y[rows])
    return Dataset(x, y, tuple(features), label, frame.shape[0], digest(features, label, x, y))


def select_rows(y: np.ndarray, settings: DatasetSettings) -> np.ndarray:
    """Indices of the held-out rows (exactly train_test_split's test part), capped."""
    idx = np.arange(len(y))
    if settings.holdout_fraction is not None:
        from sklearn.model_selection import train_test_split

        if not 0 < settings.holdout_fraction < 1:
            raise bad_input("hold-out fraction must be between 0 and 1")
        try:
            _, idx = train_test_split(
                idx,
                test_size=settings.holdout_fraction,
                random_state=settings.seed,
                stratify=y if settings.stratify else None,
            )
        except ValueError as err:
            raise bad_input(
                f"cannot hold out {settings.holdout_fraction} of the rows: {err}"
            ) from err
    if settings.max_rows is not None:
        idx = idx[: settings.max_rows]
    if len(idx) == 0:
        raise bad_input("no rows left after hold-out and row cap")
    return np.asarray(idx)


def _normalise_labels(y: np.ndarray) -> np.ndarray:
    """Integral floats become int64 and objects become str, so labels compare exactly."""
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
        return y.astype(np.int64)
    if y.dtype.kind in "OUSb":
        return y.astype(str) if y.dtype.kind != "b" else y.astype(np.int64)
    return y


def digest(features: list[str], label: str, x: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of the canonical bytes of the evaluated rows, in evaluation order.

    Layout: prefix, JSON header ``[features, label]``, the float64 little-endian
    C-order feature matrix, then the labels as a JSON list.
    """
    h = hashlib.sha256(DIGEST_PREFIX)
    h.update(json.dumps([features, label]).encode() + b"\n")
    h.update(np.ascontiguousarray(x, dtype="<f8").tobytes())
    h.update(b"\n" + json.dumps(y.tolist()).encode())
    return "sha256:" + h.hexdigest()


def read_frame(settings: DatasetSettings) -> pd.DataFrame:
    """Read the whole source into a DataFrame."""
    uri = settings.uri
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme if len(parsed.scheme) > 1 else ""  # "C:" is not a scheme
    if scheme == "sklearn":
        return _sklearn_frame(parsed.netloc or parsed.path)
    fmt = settings.file_format if settings.file_format != "auto" else _format_of(parsed.path)
    try:
        if scheme in ("", "file"):
            path = urllib.parse.unquote(parsed.path) if scheme == "file" else uri
            if not os.path.isfile(path):
                raise bad_input(f"cannot read dataset {uri}: no such file")
            return _parse(path, fmt)
        if scheme in ("http", "https"):
            with urllib.request.urlopen(uri, timeout=settings.timeout_s) as resp:
                return _parse(io.BytesIO(resp.read()), fmt)
        if scheme == "s3":
            return _parse(io.BytesIO(_s3_bytes(parsed)), fmt)
    except EvaluationError:
        raise
    except Exception as err:  # any reader or network error: the dataset is unreadable
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise bad_input(f"cannot read dataset {uri}: {reason}") from err
    raise bad_input(f"unsupported dataset URI scheme {scheme!r} in {uri}")


def _format_of(path: str) -> str:
    lower = path.lower().removesuffix(".gz")
    for ext, fmt in ((".csv", "csv"), (".parquet", "parquet"), (".pq", "parquet")):
        if lower.endswith(ext):
            return fmt
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise bad_input(f"cannot tell the format of {path!r}: use --format csv|parquet|jsonl")


def _parse(source: Any, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(source)
    if fmt == "parquet":
        return pd.read_parquet(source)
    if fmt == "jsonl":
        return pd.read_json(source, lines=True)
    raise bad_input(f"unknown dataset format {fmt!r} (csv, parquet, jsonl)")


def _sklearn_frame(name: str) -> pd.DataFrame:
    if name not in SKLEARN_DATASETS:
        raise bad_input(
            f"unknown sklearn:// dataset {name!r} (one of {', '.join(SKLEARN_DATASETS)})"
        )
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    return bunch.frame


def _s3_bytes(parsed: urllib.parse.ParseResult) -> bytes:
    try:
        import boto3
    except ImportError:
        raise EvaluationError(
            "s3:// datasets need the 's3' extra: pip install 'modelrollout[s3]'",
            exitcodes.MISSING_EXTRA,
        ) from None
    obj = boto3.client("s3").get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
    return bytes(obj["Body"].read())
