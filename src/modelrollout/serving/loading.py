"""Fetch, verify and load a model artifact, refusing anything unsafe with a clear reason.

Order matters: the bytes are fetched (with size limits), their SHA-256 is
checked, and only then is anything deserialised. skops is the default format,
with an explicit trusted-types policy; pickle/joblib (which can run arbitrary
code) only with ``allow_unsafe_pickle``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_EXTENSIONS = {".pkl": "pickle", ".pickle": "pickle", ".joblib": "joblib"}


class LoadError(Exception):
    """The artifact cannot be served; the message says why and what to do."""


@dataclass(frozen=True)
class Artifact:
    """A fetched artifact on local disk, with its verified digest."""

    path: Path
    sha256: str
    size: int


def fetch(
    uri: str,
    *,
    timeout_s: float,
    max_bytes: int,
    cache_dir: str | None = None,
) -> Path:
    """Make the artifact available as a local file (downloading it when remote)."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = Path(urllib.parse.unquote(parsed.path) if parsed.scheme else uri)
        if not path.is_file():
            raise LoadError(f"artifact {uri!r} does not exist or is not a file")
        if path.stat().st_size > max_bytes:
            raise LoadError(f"artifact {uri!r} is larger than the limit of {max_bytes} bytes")
        return path
    directory = Path(cache_dir or tempfile.mkdtemp(prefix="modelrollout-"))
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / (Path(parsed.path).name or "artifact")
    if parsed.scheme in ("http", "https"):
        _download_http(uri, target, timeout_s=timeout_s, max_bytes=max_bytes)
    elif parsed.scheme == "s3":
        _download_s3(parsed.netloc, parsed.path.lstrip("/"), target, max_bytes=max_bytes)
    else:
        raise LoadError(f"unsupported artifact URI scheme {parsed.scheme!r} in {uri!r}")
    return target


def _download_http(uri: str, target: Path, *, timeout_s: float, max_bytes: int) -> None:
    """Stream an http(s) artifact to disk with a timeout, a size limit and progress logs."""
    try:
        with urllib.request.urlopen(uri, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise LoadError(f"{uri} is {expected} bytes, over the limit of {max_bytes}")
            with target.open("wb") as out:
                _copy_limited(response, out, uri=uri, expected=expected, max_bytes=max_bytes)
    except urllib.error.HTTPError as err:
        raise LoadError(f"downloading {uri} failed: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        raise LoadError(f"downloading {uri} failed: {reason}") from err


def _copy_limited(
    source: IO[bytes], out: IO[bytes], *, uri: str, expected: int | None, max_bytes: int
) -> int:
    done = 0
    last_log = time.monotonic()
    while chunk := source.read(_CHUNK):
        done += len(chunk)
        if done > max_bytes:
            raise LoadError(f"{uri} exceeds the limit of {max_bytes} bytes")
        out.write(chunk)
        if time.monotonic() - last_log >= 2.0:
            last_log = time.monotonic()
            total = f" of {expected}" if expected else ""
            log.info("downloading %s: %d%s bytes", uri, done, total)
    if expected is not None and done != expected:
        raise LoadError(f"{uri} ended after {done} of {expected} bytes")
    log.info("downloaded %s: %d bytes", uri, done)
    return done


def _download_s3(bucket: str, key: str, target: Path, *, max_bytes: int) -> None:
    try:
        import boto3
    except ImportError as err:
        raise LoadError(
            "s3:// artifacts need the 's3' extra: pip install 'modelrollout[s3]'"
        ) from err
    client = boto3.client("s3")
    try:
        size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        if size > max_bytes:
            raise LoadError(f"s3://{bucket}/{key} is {size} bytes, over the limit of {max_bytes}")
        log.info("downloading s3://%s/%s (%d bytes)", bucket, key, size)
        client.download_file(bucket, key, str(target))
    except LoadError:
        raise
    except Exception as err:  # botocore raises many unrelated types
        raise LoadError(f"downloading s3://{bucket}/{key} failed: {err}") from err


def verify(path: Path, expected_sha256: str | None) -> Artifact:
    """Hash the file and compare with the expected digest before anything reads it."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    actual = digest.hexdigest()
    if expected_sha256 is not None and actual != expected_sha256.strip().lower():
        raise LoadError(
            f"sha256 mismatch for {path.name}: expected {expected_sha256}, got {actual}; "
            "refusing to load"
        )
    return Artifact(path=path, sha256=actual, size=size)


def detect_format(path: Path, declared: str) -> str:
    """``skops``, ``joblib``, ``pickle`` or ``onnx``: the declared format, checked."""
    with path.open("rb") as f:
        head = f.read(4)
    is_zip = head == _ZIP_MAGIC
    if declared == "auto":
        if path.suffix.lower() == ".onnx":
            return "onnx"
        if is_zip:
            return "skops"
        return _PICKLE_EXTENSIONS.get(
            path.suffix.lower(), "pickle" if head[:1] == b"\x80" else "skops"
        )
    if declared == "skops" and not is_zip:
        raise LoadError(
            f"{path.name} is not a skops file (no zip header): truncated or wrong format"
        )
    return declared


def read_onnx(artifact: Artifact) -> bytes:
    """An ONNX model's bytes (a protobuf, not pickle: parsing it runs no code)."""
    data = artifact.path.read_bytes()
    if hashlib.sha256(data).hexdigest() != artifact.sha256:
        raise LoadError(f"{artifact.path.name} changed after its sha256 was verified")
    return data


def deserialize(
    artifact: Artifact,
    *,
    fmt: str,
    trusted: tuple[str, ...],
    allow_unsafe_pickle: bool,
) -> Any:
    """Load the estimator with the policy the format needs."""
    if fmt == "skops":
        return _load_skops(artifact.path, trusted)
    if fmt in ("joblib", "pickle"):
        if not allow_unsafe_pickle:
            raise LoadError(
                f"{artifact.path.name} is a {fmt} artifact, which can run arbitrary code when "
                "loaded; refusing without --allow-unsafe-pickle (prefer the skops format)"
            )
        import joblib

        try:
            return joblib.load(artifact.path)
        except Exception as err:
            raise LoadError(f"loading {fmt} artifact {artifact.path.name} failed: {err}") from err
    raise LoadError(f"unknown model format {fmt!r}")


def untrusted_types(path: Path) -> list[str]:
    """Types in a skops file that skops itself does not trust (read from its schema)."""
    import skops.io

    try:
        return list(skops.io.get_untrusted_types(file=str(path)))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise LoadError(
            f"{path.name} is not a readable skops file (truncated or corrupt?): {err}"
        ) from err


def _load_skops(path: Path, trusted: tuple[str, ...]) -> Any:
    """Load only when every type skops does not trust was trusted explicitly."""
    import skops.io

    found = untrusted_types(path)
    refused = [t for t in found if t not in trusted]
    if refused:
        flags = " ".join(f"--trust {t}" for t in refused)
        raise LoadError(
            f"{path.name} contains types that are not trusted: {', '.join(refused)}; "
            f"if you trust them, pass {flags}"
        )
    try:
        return skops.io.load(str(path), trusted=found)
    except Exception as err:
        raise LoadError(f"loading skops artifact {path.name} failed: {err}") from err


def write_termination_message(path: str | None, message: str) -> None:
    """Best effort: Kubernetes shows this file's content as the container's last state."""
    if not path:
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(message[:4000])
    except OSError as err:
        log.warning("could not write termination message to %s: %s", path, err)


def remove_download(path: Path, uri: str) -> None:
    """Delete a downloaded copy once loaded (local files are never touched)."""
    if urllib.parse.urlparse(uri).scheme not in ("", "file"):
        with contextlib.suppress(OSError):
            os.unlink(path)
