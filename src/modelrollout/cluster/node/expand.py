"""Kubernetes' ``$(VAR)`` expansion and container environment resolution (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

JSON = dict[str, Any]


class ConfigError(Exception):
    """The container cannot be configured (reported as ``CreateContainerConfigError``)."""


class Lookup(Protocol):
    """Read access to ConfigMaps and Secrets (decoded), injected so resolution stays pure."""

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None: ...

    def secret(self, namespace: str, name: str) -> dict[str, str] | None: ...


def expand(text: str, mapping: Mapping[str, str]) -> str:
    """Expand ``$(VAR)`` from mapping as Kubernetes does.

    ``$$`` is an escaped ``$``; a reference to an undefined variable and an
    unterminated ``$(`` stay as written.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            out.append(mapping[name] if name in mapping else text[i : end + 1])
            i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: JSON, path: str, pod_ip: str, host_ip: str) -> str:
    """The downward-API value of ``fieldPath`` for this pod."""
    meta = pod.get("metadata", {})
    spec = pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path])
    match = _SUBSCRIPT.match(path)
    if match:
        return str(meta.get(match.group(1), {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1], {})
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")


def resource_value(container: JSON, resource: str, capacity: Mapping[str, str]) -> str:
    """``resourceFieldRef``: the limit or request as written, else the node capacity."""
    kind, _, name = resource.partition(".")
    value = container.get("resources", {}).get(kind, {}).get(name)
    if value is None:
        value = capacity.get(name, "0")
    return str(value)


def _key_ref(ref: JSON, data: dict[str, str] | None, kind: str) -> str | None:
    optional = bool(ref.get("optional", False))
    name, key = ref.get("name", ""), ref.get("key", "")
    if data is None:
        if optional:
            return None
        raise ConfigError(f"{kind} {name!r} not found")
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"key {key!r} not found in {kind} {name!r}")
    return data[key]


def _value_from(
    source: JSON, pod: JSON, container: JSON, ctx: EnvContext, lookup: Lookup
) -> str | None:
    ns = pod["metadata"]["namespace"]
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"], ctx.pod_ip, ctx.host_ip)
    if "resourceFieldRef" in source:
        return resource_value(container, source["resourceFieldRef"]["resource"], ctx.capacity)
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return _key_ref(ref, lookup.config_map(ns, ref.get("name", "")), "configmap")
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        return _key_ref(ref, lookup.secret(ns, ref.get("name", "")), "secret")
    raise ConfigError(f"unsupported valueFrom {sorted(source)}")


class EnvContext:
    """Values outside the pod object that env resolution needs."""

    def __init__(
        self,
        pod_ip: str,
        host_ip: str,
        base: Mapping[str, str],
        capacity: Mapping[str, str] | None = None,
    ) -> None:
        self.pod_ip = pod_ip
        self.host_ip = host_ip
        self.base = dict(base)
        self.capacity = dict(capacity or {})


def _env_from(pod: JSON, container: JSON, lookup: Lookup) -> dict[str, str]:
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        for kind in ("configMapRef", "secretRef"):
            if kind not in source:
                continue
            ref = source[kind]
            getter = lookup.config_map if kind == "configMapRef" else lookup.secret
            data = getter(ns, ref.get("name", ""))
            if data is None:
                if ref.get("optional", False):
                    continue
                raise ConfigError(f"{kind[:-3].lower()} {ref.get('name')!r} not found")
            env.update({prefix + k: v for k, v in data.items()})
    return env


def resolve_env(pod: JSON, container: JSON, ctx: EnvContext, lookup: Lookup) -> dict[str, str]:
    """The process environment of a container: image env, envFrom, then env in order."""
    env = dict(ctx.base)
    env.update(_env_from(pod, container, lookup))
    for item in container.get("env", []):
        name = item["name"]
        if "valueFrom" in item:
            value = _value_from(item["valueFrom"], pod, container, ctx, lookup)
            if value is None:
                continue
            env[name] = value
        else:
            env[name] = expand(str(item.get("value", "")), env)
    return env


def container_argv(container: JSON, entrypoint: list[str], env: Mapping[str, str]) -> list[str]:
    """The command line: ``command`` (else the image entrypoint) plus ``args``, expanded."""
    command = container.get("command") or entrypoint
    args = container.get("args") or []
    return [expand(str(word), env) for word in [*command, *args]]
