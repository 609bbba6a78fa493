"""Background processes that outlive the command that started them, found again by pid file.

`modelrollout cluster up` returns while etcd, kube-apiserver and kube-controller-manager keep
running; `cluster down` (another process) must find and stop them, and a crash must be visible.
So each component runs in its own session (process group), logs to a file, and records its pid
together with the kernel's start time of that pid, which guards against a recycled pid.
The node agent is one more such component.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

POLL_INTERVAL = 0.2
"""Seconds between liveness/health polls while waiting."""


class ComponentError(RuntimeError):
    """A component exited or never became healthy; the message carries its last log lines."""

    def __init__(self, name: str, reason: str, log_tail: Sequence[str]) -> None:
        tail = "\n".join(f"  | {line}" for line in log_tail) or "  | (log is empty)"
        super().__init__(f"{name}: {reason}; last log lines:\n{tail}")
        self.component = name
        self.reason = reason


@dataclass(frozen=True)
class ProcessRecord:
    """What the pid file holds: enough to tell our process from a later one with the same pid."""

    pid: int
    start_ticks: int
    argv: tuple[str, ...]


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) from /proc, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = proc_stat(int(entry.name))
        if stat is not None and stat[1] == pgid and stat[0] != "Z":
            members.append(int(entry.name))
    return members


class Component:
    """One supervised background process: ``<run_dir>/<name>.pid`` and ``<name>.log``."""

    def __init__(self, name: str, run_dir: Path) -> None:
        self.name = name
        self.run_dir = run_dir
        self.pid_path = run_dir / f"{name}.pid"
        self.log_path = run_dir / f"{name}.log"
        self._popen: subprocess.Popen[bytes] | None = None

    def record(self) -> ProcessRecord | None:
        """The pid file's content, or None when the component was never started (or stopped)."""
        try:
            data = json.loads(self.pid_path.read_text())
        except FileNotFoundError:
            return None
        return ProcessRecord(int(data["pid"]), int(data["start_ticks"]), tuple(data["argv"]))

    def running(self) -> bool:
        """True while the recorded process exists, is not a zombie and is the one we started."""
        if self._popen is not None:
            self._popen.poll()  # reap our own child so that it does not linger as a zombie
        rec = self.record()
        if rec is None:
            return False
        stat = proc_stat(rec.pid)
        return stat is not None and stat[0] != "Z" and stat[2] == rec.start_ticks

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        """Start ``argv`` in a new session, stdout and stderr appended to the log file."""
        if self.running():
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"==== {time.strftime('%Y-%m-%dT%H:%M:%S')} start: {argv[0]}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        stat = proc_stat(self._popen.pid)
        start_ticks = stat[2] if stat is not None else -1
        record = {"pid": self._popen.pid, "start_ticks": start_ticks, "argv": list(argv)}
        self.pid_path.write_text(json.dumps(record))

    def wait_healthy(self, check: Callable[[], bool], timeout: float) -> None:
        """Poll ``check`` until it passes; raise ComponentError if the process dies or times out."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise ComponentError(self.name, "exited while starting", self.log_tail())
            with contextlib.suppress(OSError):
                if check():
                    return
            if time.monotonic() > deadline:
                reason = f"not healthy after {timeout:.0f} s"
                raise ComponentError(self.name, reason, self.log_tail())
            time.sleep(POLL_INTERVAL)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after ``timeout``; idempotent."""
        rec = self.record()
        if rec is not None and self.running():
            pgid = rec.pid  # start_new_session made the component its group's leader
            self._signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while group_members(pgid) and time.monotonic() < deadline:
                if self._popen is not None:
                    self._popen.poll()
                time.sleep(POLL_INTERVAL / 2)
            if group_members(pgid):
                self._signal_group(pgid, signal.SIGKILL)
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=5)
            self._popen = None
        self.pid_path.unlink(missing_ok=True)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)

    def log_tail(self, lines: int = 25) -> list[str]:
        """The last ``lines`` lines of the log (read from the end, logs can be large)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                size = log.tell()
                log.seek(max(0, size - 64 * 1024))
                text = log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        return text.splitlines()[-lines:]
