"""A deliberately slow estimator (pickle-only), to hold a request in flight on purpose.

``predict`` sleeps ``x[0, 0]`` seconds (capped at 10) and returns the first
column; a negative ``x[0, 0]`` makes it raise, like a broken model would.
Loaded by the server process with ``--allow-unsafe-pickle``.
"""

from __future__ import annotations

import time

import numpy as np


class SlowRegressor:
    """Two features; the first one is how long to sleep."""

    n_features_in_ = 2

    def predict(self, x: np.ndarray) -> np.ndarray:
        if x[0, 0] < 0:
            raise RuntimeError("boom")
        time.sleep(min(float(x[0, 0]), 10.0))
        return np.asarray(x[:, 0], dtype=np.float64)
