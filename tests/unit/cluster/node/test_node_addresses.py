"""Loopback address pools and the per-pod hosts file."""

from __future__ import annotations

import ipaddress

import pytest

from modelrollout.cluster.node.addresses import AddressPool, ServiceName, hosts_file


def test_pool_hands_out_distinct_loopback_addresses_and_keeps_them_per_key() -> None:
    pool = AddressPool("127.10.0.0/29")
    a, b = pool.allocate("a"), pool.allocate("b")
    assert a != b
    assert pool.allocate("a") == a
    assert all(ipaddress.ip_address(x).is_loopback for x in (a, b))
    assert a not in ("127.10.0.0", "127.10.0.1", "127.10.0.7")


def test_pool_exhausts_then_reuses_released_addresses() -> None:
    pool = AddressPool("127.10.0.0/29")  # .2 .. .6
    got = [pool.allocate(str(i)) for i in range(5)]
    assert len(set(got)) == 5
    with pytest.raises(RuntimeError, match="exhausted"):
        pool.allocate("late")
    pool.release("2")
    assert pool.allocate("late") == got[2]


def test_pool_honours_a_free_preferred_address_only() -> None:
    pool = AddressPool("127.10.0.0/24")
    assert pool.allocate("a", prefer="127.10.0.50") == "127.10.0.50"
    assert pool.allocate("b", prefer="127.10.0.50") != "127.10.0.50"
    assert pool.allocate("c", prefer="10.0.0.5") != "10.0.0.5"


def test_pool_refuses_networks_outside_loopback() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
        AddressPool("10.96.0.0/12")


def test_hosts_file_maps_service_names_short_names_only_in_own_namespace() -> None:
    services = [
        ServiceName("web", "ns", "127.11.0.2"),
        ServiceName("db", "other", "127.11.0.3"),
    ]
    text = hosts_file("web-abc", "ns", "127.10.0.4", services)
    lines = {line.split("\t")[0]: line.split("\t")[1].split() for line in text.splitlines()[1:]}
    assert lines["127.10.0.4"] == ["web-abc"]
    assert lines["127.11.0.2"] == [
        "web.ns.svc.cluster.local",
        "web.ns.svc",
        "web.ns",
        "web",
    ]
    assert lines["127.11.0.3"] == ["db.other.svc.cluster.local", "db.other.svc", "db.other"]
    assert lines["127.0.0.1"] == ["localhost"]
