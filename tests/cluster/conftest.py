"""Cluster-layer fixtures."""

from __future__ import annotations

import pytest

from tests.cluster.rollout import install_crds
from tests.conftest import Kubectl


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> None:
    """modelrollout's CRDs installed and Established (idempotent), for the module's tests."""
    install_crds(kubectl)
