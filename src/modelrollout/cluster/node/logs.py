"""Serves container logs the way a kubelet does, so ``kubectl logs [-f] [--previous]`` works.

The API server forwards ``pods/log`` to the node's InternalIP and ``daemonEndpoints``
port over HTTPS; it does not verify the node's certificate unless told to, so a
self-signed one (made here) is enough. Only 127.0.0.1 is bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)
MARKER = b"==== "
"""Log lines the agent writes when a container (re)starts; they split runs apart."""
FOLLOW_POLL = 0.5


def select_log(data: bytes, *, previous: bool, tail: int | None, limit: int | None) -> bytes:
    """The current (or previous) run of a container log, last tail lines, at most limit bytes."""
    runs: list[list[bytes]] = [[]]
    for line in data.splitlines(keepends=True):
        if line.startswith(MARKER):
            runs.append([])
        else:
            runs[-1].append(line)
    runs = runs[1:] if len(runs) > 1 else runs
    before = runs[-2] if len(runs) >= 2 else []
    wanted = before if previous else runs[-1]
    if tail is not None:
        wanted = wanted[-tail:] if tail > 0 else []
    out = b"".join(wanted)
    return out[:limit] if limit is not None else out


def self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """A serving certificate for host (made once, kept in directory)."""
    cert_path, key_path = directory / "kubelet.crt", directory / "kubelet.key"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelrollout-node")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), False
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class LogServer:
    """``GET /containerLogs/<namespace>/<pod>/<container>`` over HTTPS on the node address."""

    def __init__(self, state_dir: Path, host: str, running: Callable[[str, str], bool]) -> None:
        self._state_dir = state_dir
        self._host = host
        self._running = running
        """running(pod uid, container) -> whether that container's process runs now."""
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen on a free port; returns it (the Node's kubelet endpoint port)."""
        cert, key = self_signed(self._state_dir, self._host)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._server = await asyncio.start_server(self._handle, self._host, 0, ssl=context)
        return int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    def _log_file(self, namespace: str, pod: str, container: str) -> tuple[Path, str] | None:
        """(log file, pod uid) of the newest pod with that name."""
        dirs = sorted(
            (self._state_dir / "logs").glob(f"{namespace}_{pod}_*"),
            key=lambda d: d.stat().st_mtime,
        )
        if not dirs:
            return None
        uid = dirs[-1].name.rsplit("_", 1)[-1]
        return dirs[-1] / f"{container}.log", uid

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            target = request.split(b"\r\n", 1)[0].split(b" ")[1].decode()
            await self._respond(target, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def _respond(self, target: str, writer: asyncio.StreamWriter) -> None:
        url = urlsplit(target)
        parts = url.path.strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        found = (
            self._log_file(*parts[1:4]) if len(parts) == 4 and parts[0] == "containerLogs" else None
        )
        if found is None or not found[0].is_file():
            writer.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return
        path, uid = found
        container = parts[3]
        tail = int(query["tailLines"]) if "tailLines" in query else None
        limit = int(query["limitBytes"]) if "limitBytes" in query else None
        previous = query.get("previous") == "true"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        data = path.read_bytes()
        writer.write(select_log(data, previous=previous, tail=tail, limit=limit))
        await writer.drain()
        if query.get("follow") == "true" and not previous:
            await self._follow(path, len(data), writer, lambda: self._running(uid, container))

    async def _follow(
        self, path: Path, offset: int, writer: asyncio.StreamWriter, running: Callable[[], bool]
    ) -> None:
        """Stream what the container appends until it exits or the client leaves."""
        alive = True
        while alive and not writer.is_closing():
            alive = running()
            await asyncio.sleep(FOLLOW_POLL)
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            if chunk:
                offset += len(chunk)
                writer.write(
                    b"".join(x for x in chunk.splitlines(True) if not x.startswith(MARKER))
                )
                await writer.drain()
