"""Starts one container: run as ``unshare --mount --uts --propagation private -- python -m
modelrollout.cluster.node.launch SPEC.json``.

Inside its private mount namespace it bind-mounts the pod's volumes, hosts file
and termination-message file over the container's paths (so two pods can both
see their own ``/mnt/models``), sets the hostname to the pod name, then
replaces itself with the container's program.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
PR_SET_PDEATHSIG = 1
EXIT_START_ERROR = 128
"""Exit code when the container could not be started (the log says why)."""


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _mount(libc: Any, source: str | None, target: str, flags: int) -> None:
    src = source.encode() if source else None
    if libc.mount(src, target.encode(), None, flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _mountpoint(target: str, is_file: bool) -> None:
    path = Path(target)
    if is_file:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.touch()
    else:
        path.mkdir(parents=True, exist_ok=True)


def bind_mounts(mounts: list[dict[str, Any]]) -> None:
    """Bind every mount (parents first); read-only ones are remounted read-only.

    Every source is opened before the first mount: a volume mounted over, say, /tmp
    must not hide the sources of later mounts that live under /tmp on the host.
    """
    libc = _libc()
    sources: list[tuple[int, bool]] = []
    for m in mounts:
        source = Path(m["source"])
        if not source.exists():
            if m.get("is_file"):
                source.parent.mkdir(parents=True, exist_ok=True)
                source.touch()
            else:
                source.mkdir(parents=True, exist_ok=True)
        fd = os.open(source, os.O_PATH | os.O_CLOEXEC)
        sources.append((fd, source.is_file()))
    for m, (fd, is_file) in zip(mounts, sources, strict=True):
        _mountpoint(m["target"], is_file)
        _mount(libc, f"/proc/self/fd/{fd}", m["target"], MS_BIND | MS_REC)
        if m.get("read_only"):
            _mount(libc, None, m["target"], MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)
        os.close(fd)


def restore_hidden(libc: Any, preserved: list[tuple[str, int]]) -> None:
    """Bind back host paths the program needs (venv, Python, sources) that a volume hid.

    A pod that mounts an emptyDir on /tmp must still run when the project itself
    lives under the host's /tmp (as in a CI clone): each preserved path was opened
    before any mount, and is bound over itself again if a mount replaced it.
    """
    for path, fd in preserved:
        before = os.fstat(fd)
        try:
            now = os.stat(path)
            hidden = (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino)
        except FileNotFoundError:
            hidden = True
        if hidden:
            Path(path).mkdir(parents=True, exist_ok=True)
            _mount(libc, f"/proc/self/fd/{fd}", path, MS_BIND | MS_REC)
        os.close(fd)


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    libc = _libc()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        if spec.get("hostname"):
            socket.sethostname(spec["hostname"][:63])
        preserved = [
            (path, os.open(path, os.O_PATH | os.O_CLOEXEC))
            for path in spec.get("preserve", [])
            if os.path.isdir(path)
        ]
        bind_mounts(spec["mounts"])
        restore_hidden(libc, preserved)
        workdir = spec.get("workdir") or "/"
        Path(workdir).mkdir(parents=True, exist_ok=True)
        os.chdir(workdir)
        os.execve(spec["program"], spec["argv"], spec["env"])
    except OSError as exc:
        print(f"modelrollout node: cannot start container: {exc}", file=sys.stderr, flush=True)
    return EXIT_START_ERROR


if __name__ == "__main__":
    sys.exit(main(sys.argv))
