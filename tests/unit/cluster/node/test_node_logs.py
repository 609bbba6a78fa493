"""Which part of a container's log file ``kubectl logs`` shows."""

from __future__ import annotations

from modelrollout.cluster.node.logs import select_log

LOG = b"==== start 1\nfirst a\nfirst b\n==== start 2\nsecond a\nsecond b\nsecond c\n"


def test_current_run_only() -> None:
    assert (
        select_log(LOG, previous=False, tail=None, limit=None) == b"second a\nsecond b\nsecond c\n"
    )


def test_previous_run() -> None:
    assert select_log(LOG, previous=True, tail=None, limit=None) == b"first a\nfirst b\n"
    assert select_log(b"==== start\nonly\n", previous=True, tail=None, limit=None) == b""


def test_tail_and_limit() -> None:
    assert select_log(LOG, previous=False, tail=1, limit=None) == b"second c\n"
    assert select_log(LOG, previous=False, tail=0, limit=None) == b""
    assert select_log(LOG, previous=False, tail=None, limit=4) == b"seco"


def test_log_without_markers_is_one_run() -> None:
    assert select_log(b"a\nb\n", previous=False, tail=None, limit=None) == b"a\nb\n"
