"""Train small scikit-learn models on bundled datasets and save them as skops artifacts.

Usage: python examples/train_models.py OUTDIR
Writes breast_cancer_lr.skops (StandardScaler + LogisticRegression),
breast_cancer_rf.skops (100-tree random forest; needs --trust sklearn.tree._tree.Tree),
iris_lr.skops and diabetes_ridge.skops (a regressor), and prints each file's sha256.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skops.io import dump


def build(outdir: Path) -> dict[str, Path]:
    """Fit and save every example model; return name → path."""
    outdir.mkdir(parents=True, exist_ok=True)
    cancer = load_breast_cancer()
    iris = load_iris()
    diabetes = load_diabetes()
    models = {
        "breast_cancer_lr": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
            cancer.data, cancer.target
        ),
        "breast_cancer_rf": RandomForestClassifier(n_estimators=100, random_state=0).fit(
            cancer.data, cancer.target
        ),
        "iris_lr": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
            iris.data, iris.target
        ),
        "diabetes_ridge": Ridge().fit(diabetes.data, diabetes.target),
    }
    paths = {}
    for name, model in models.items():
        path = outdir / f"{name}.skops"
        dump(model, path)
        paths[name] = path
    return paths


if __name__ == "__main__":
    for name, path in build(Path(sys.argv[1] if len(sys.argv) > 1 else "models")).items():
        print(name, path, hashlib.sha256(path.read_bytes()).hexdigest())
