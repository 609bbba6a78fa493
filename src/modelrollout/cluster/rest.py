"""A minimal HTTPS client for the few raw calls the cluster code makes (health, TokenRequest).

The control plane's own code must not need the ``kubernetes`` client: it starts before any
client is configured, and a health poll every 200 ms should stay cheap.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from modelrollout.cluster.pki import Pair


class ApiError(RuntimeError):
    """The API server answered with an HTTP error; ``status`` and the body are kept."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class RestClient:
    """HTTPS to one server, verified against ``ca``, authenticated by an optional client cert."""

    def __init__(self, base_url: str, ca: Path, client: Pair | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._context = ssl.create_default_context(cafile=str(ca))
        if client is not None:
            self._context.load_cert_chain(str(client.cert), str(client.key))

    def request(
        self, method: str, path: str, body: Any = None, timeout: float = 10.0
    ) -> tuple[int, bytes]:
        """Send one request; return (status, body) for 2xx, raise ApiError otherwise."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._context, timeout=timeout) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as err:
            raise ApiError(method, url, err.code, err.read().decode(errors="replace")) from err

    def json(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request and decode its JSON answer."""
        return json.loads(self.request(method, path, body)[1])

    def ok(self, path: str, timeout: float = 2.0) -> bool:
        """True when GET ``path`` answers 2xx (health endpoints answer plain ``ok``)."""
        try:
            status, _ = self.request("GET", path, timeout=timeout)
        except (ApiError, OSError):
            return False
        return 200 <= status < 300


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when a plain-HTTP GET answers 2xx (etcd's /health on loopback)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError):
        return False
