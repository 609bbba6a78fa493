"""The limit check shared by the built-in canary thresholds and the Prometheus queries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hit:
    """The limit a value broke."""

    threshold: float
    """The value's bound: the limit itself, or derived from the stable version's value."""
    kind: str
    """``max``, ``min``, ``maxIncrease`` or ``maxRatio``."""


def first_breach(
    value: float,
    stable: float | None,
    *,
    max: float | None = None,
    min: float | None = None,
    max_increase: float | None = None,
    max_ratio: float | None = None,
) -> Hit | None:
    """The first limit ``value`` breaks: absolute ones first, then those relative to the stable
    version's value (skipped without one; ``maxRatio`` also when it is 0)."""
    if max is not None and value > max:
        return Hit(max, "max")
    if min is not None and value < min:
        return Hit(min, "min")
    if stable is None:
        return None
    if max_increase is not None and value - stable > max_increase:
        return Hit(stable + max_increase, "maxIncrease")
    if max_ratio is not None and stable > 0 and value / stable > max_ratio:
        return Hit(stable * max_ratio, "maxRatio")
    return None
