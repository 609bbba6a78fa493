"""A small JSON client for the Kubernetes API: plain dicts in and out, and raw watches.

The generated client's models would hide the camelCase API objects the agent
reasons about; this keeps the wire format and uses the official kubeconfig loader.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3

JSON = dict[str, Any]
log = logging.getLogger(__name__)


class ApiError(Exception):
    """A non-2xx answer of the API server."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class Kube:
    """Synchronous, thread-safe JSON access to one API server."""

    def __init__(self, kubeconfig: Path) -> None:
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=cfg
        )
        self.server = cfg.host.rstrip("/")
        self.ca_file: str = cfg.ssl_ca_cert or ""
        headers = {"Accept": "application/json", "User-Agent": "modelrollout-node"}
        token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
        if token:
            headers["Authorization"] = token if token.startswith("Bearer") else f"Bearer {token}"
        self._headers = headers
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=16,
            cert_reqs=ssl.CERT_REQUIRED if self.ca_file else ssl.CERT_NONE,
            ca_certs=self.ca_file or None,
            cert_file=cfg.cert_file or None,
            key_file=cfg.key_file or None,
        )

    @property
    def address(self) -> tuple[str, int]:
        """The API server's host and port, as pods must reach it."""
        parts = urlsplit(self.server)
        return parts.hostname or "127.0.0.1", parts.port or 443

    def ca_pem(self) -> str:
        return Path(self.ca_file).read_text() if self.ca_file else ""

    def request(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        *,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> JSON:
        url = self.server + path + ("?" + urlencode(params) if params else "")
        headers = dict(self._headers)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        resp = self._pool.request(method, url, body=data, headers=headers, timeout=timeout)
        text = resp.data.decode("utf-8", "replace")
        if resp.status >= 300:
            raise ApiError(resp.status, text)
        return json.loads(text) if text else {}

    def get(self, path: str, **params: str) -> JSON | None:
        """GET an object, None when it does not exist."""
        try:
            return self.request("GET", path, params=params or None)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def merge_patch(self, path: str, body: JSON) -> JSON:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def watch(
        self, path: str, handle: Callable[[str, JSON], None], stop: threading.Event, **params: str
    ) -> None:
        """List then watch a collection until stop is set, calling handle(type, object).

        Every (re)list is handed over whole as a ``SYNC`` event with the list
        object, so handlers can drop what vanished while the watch was down.
        """
        while not stop.is_set():
            try:
                listing = self.request("GET", path, params=params or None)
                handle("SYNC", listing)
                version = listing["metadata"]["resourceVersion"]
                while not stop.is_set():
                    for kind, obj in self._stream(path, version, stop, params):
                        version = obj.get("metadata", {}).get("resourceVersion", version)
                        if kind != "BOOKMARK":
                            handle(kind, obj)
            except Exception as exc:  # the API went away or the watch expired: relist
                if not stop.is_set():
                    log.debug("watch %s restarts: %s", path, exc)
                    stop.wait(1.0)

    def _stream(
        self, path: str, version: str, stop: threading.Event, params: dict[str, str]
    ) -> Iterator[tuple[str, JSON]]:
        query = {**params, "watch": "true", "resourceVersion": version}
        query["allowWatchBookmarks"] = "true"
        query["timeoutSeconds"] = "60"
        url = f"{self.server}{path}?{urlencode(query)}"
        resp = self._pool.request(
            "GET",
            url,
            headers=self._headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=10, read=90),
        )
        try:
            if resp.status >= 300:
                raise ApiError(resp.status, resp.data.decode("utf-8", "replace"))
            buffer = b""
            for chunk in resp.stream(4096, decode_content=True):
                if stop.is_set():
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        raise ApiError(int(event["object"].get("code", 500)), str(event))
                    yield event["type"], event["object"]
        finally:
            resp.release_conn()
