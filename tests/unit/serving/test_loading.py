"""Fetch, verify and deserialise policies on local files."""

from __future__ import annotations

import hashlib
import pickle
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from skops.io import dump

from modelrollout.serving import loading
from modelrollout.serving.loading import LoadError


@pytest.fixture(scope="module")
def fitted() -> tuple[LogisticRegression, DecisionTreeClassifier]:
    data = load_iris()
    return (
        LogisticRegression(max_iter=500).fit(data.data, data.target),
        DecisionTreeClassifier(random_state=0).fit(data.data, data.target),
    )


def test_verify_accepts_right_and_refuses_wrong_digest(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"hello")
    digest = hashlib.sha256(b"hello").hexdigest()
    assert loading.verify(path, digest.upper()).sha256 == digest
    assert loading.verify(path, None).size == 5
    with pytest.raises(LoadError, match=r"sha256 mismatch for a\.bin"):
        loading.verify(path, "0" * 64)


def test_fetch_local(tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    path.write_bytes(b"x" * 10)
    assert loading.fetch(str(path), timeout_s=1, max_bytes=10) == path
    assert loading.fetch(path.as_uri(), timeout_s=1, max_bytes=10) == path
    with pytest.raises(LoadError, match="larger than the limit of 9 bytes"):
        loading.fetch(str(path), timeout_s=1, max_bytes=9)
    with pytest.raises(LoadError, match="does not exist"):
        loading.fetch(str(tmp_path / "nope"), timeout_s=1, max_bytes=10)
    with pytest.raises(LoadError, match="unsupported artifact URI scheme 'ftp'"):
        loading.fetch("ftp://host/m.skops", timeout_s=1, max_bytes=10)


def test_detect_format(tmp_path: Path, fitted: tuple[LogisticRegression, object]) -> None:
    skops_file = tmp_path / "m.bin"
    dump(fitted[0], skops_file)
    pickled = tmp_path / "m.pkl"
    pickled.write_bytes(pickle.dumps(fitted[0]))
    assert loading.detect_format(skops_file, "auto") == "skops"
    assert loading.detect_format(pickled, "auto") == "pickle"
    disguised = tmp_path / "m.skops"
    disguised.write_bytes(pickle.dumps(fitted[0]))
    assert loading.detect_format(disguised, "auto") == "pickle"
    with pytest.raises(LoadError, match="not a skops file"):
        loading.detect_format(disguised, "skops")


def load(path: Path, fmt: str, **kw: object) -> object:
    artifact = loading.verify(path, None)
    return loading.deserialize(
        artifact,
        fmt=fmt,
        trusted=kw.get("trusted", ()),  # type: ignore[arg-type]
        allow_unsafe_pickle=bool(kw.get("allow", False)),
    )


def test_skops_trust_policy(tmp_path: Path, fitted: tuple[object, object]) -> None:
    lr_path, tree_path = tmp_path / "lr.skops", tmp_path / "tree.skops"
    dump(fitted[0], lr_path)
    dump(fitted[1], tree_path)
    assert type(load(lr_path, "skops")).__name__ == "LogisticRegression"
    with pytest.raises(LoadError, match=r"not trusted: sklearn\.tree\._tree\.Tree"):
        load(tree_path, "skops")
    tree = load(tree_path, "skops", trusted=("sklearn.tree._tree.Tree",))
    assert type(tree).__name__ == "DecisionTreeClassifier"


def test_pickle_needs_opt_in(tmp_path: Path, fitted: tuple[object, object]) -> None:
    path = tmp_path / "m.joblib"
    path.write_bytes(pickle.dumps(fitted[0]))
    with pytest.raises(LoadError, match="--allow-unsafe-pickle"):
        load(path, "joblib")
    assert type(load(path, "joblib", allow=True)).__name__ == "LogisticRegression"


def test_truncated_skops(tmp_path: Path, fitted: tuple[object, object]) -> None:
    path = tmp_path / "m.skops"
    dump(fitted[0], path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(LoadError, match="truncated or corrupt"):
        load(path, "skops")


def test_termination_message(tmp_path: Path) -> None:
    target = tmp_path / "termination-log"
    loading.write_termination_message(str(target), "x" * 5000)
    assert len(target.read_text()) == 4000
    loading.write_termination_message(None, "ignored")
    loading.write_termination_message(str(tmp_path / "no" / "dir"), "logged, not raised")


def test_s3_without_extra_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if the s3 extra were absent
    with pytest.raises(LoadError, match=r"pip install 'modelrollout\[s3\]'"):
        loading.fetch("s3://bucket/model.skops", timeout_s=1, max_bytes=10, cache_dir=str(tmp_path))
