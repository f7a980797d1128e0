"""The shape Istio gives a sidecar, in real Envoy.

Istio delivers a NETWORK WasmPlugin through ECDS: the outbound listener's
filter chain holds a `config_discovery` entry for the wasm network filter,
before `tcp_proxy`, and a DestinationRule with `tls.mode: SIMPLE` gives the
upstream cluster a TLS transport socket. Here the discovery source is a
file (filesystem ECDS) instead of istiod's ADS; Envoy treats both the same
way. A config update must reach new connections without dropping existing
ones."""

from __future__ import annotations

import time

import pytest

from harness import Envoy, UpstreamTls, raw_exchange, redis_py
from harness.ecds import EcdsEnvoy
from harness.resp import command as C

SERVER_PASSWORD = "TlsServerPass"


def plugin(client_password: str) -> dict:
    return {
        "downstream": {"password": client_password, "max_auth_failures": 0},
        "upstream": {"password": {"env": "REDIS_PASSWORD"}},
    }


def reloads(envoy: Envoy) -> int:
    stats = envoy.stats(filter="extension_config_discovery")
    return sum(v for k, v in stats.items() if k.endswith(".config_reload"))


@pytest.fixture
def sidecar(scope, pki, wasm_path, redis_factory):
    server = redis_factory("tls", password=SERVER_PASSWORD)
    ecds_path = scope.dir / "ecds-redis-auth.yaml"
    envoy = EcdsEnvoy(
        scope.dir,
        server,
        name="sidecar",
        ecds_path=ecds_path,
        upstream_tls=UpstreamTls.simple(pki),
        host_env={"REDIS_PASSWORD": SERVER_PASSWORD},
    )
    envoy.publish(1, plugin("first-client-pw"), wasm_path)
    scope.envoys.append(envoy)
    envoy.start()
    deadline = time.monotonic() + 10
    while reloads(envoy) < 1:
        assert time.monotonic() < deadline, envoy.stats(filter="extension_config_discovery")
        time.sleep(0.05)
    return envoy, server


def test_ecds_delivered_filter_with_tls_upstream(sidecar):
    envoy, _ = sidecar
    raw = raw_exchange(envoy, C("GET", "k") + C("AUTH", "first-client-pw") + C("SET", "k", "v") + C("GET", "k"), until_replies=4)
    assert raw.replies == ["NOAUTH Authentication required.", "OK", "OK", b"v"]
    # The upstream really is TLS: Envoy's cluster did the handshakes.
    assert envoy.counter("cluster.redis.ssl.handshake") >= 1
    envoy.wait_stat("wasmcustom.redis_auth.auth_success", 1)
    envoy.wait_stat("wasmcustom.redis_auth.noauth_rejected", 1)


def test_config_update_reaches_new_connections_and_keeps_old_ones(sidecar, wasm_path):
    envoy, _ = sidecar
    before = redis_py(envoy, password="first-client-pw")
    assert before.set("kept", "yes")

    envoy.publish(2, plugin("second-client-pw"), wasm_path)
    deadline = time.monotonic() + 10
    while reloads(envoy) < 2:
        assert time.monotonic() < deadline, "the update was not applied"
        time.sleep(0.05)

    # New connections get the new client password, and only that.
    fresh = raw_exchange(envoy, C("AUTH", "first-client-pw") + C("AUTH", "second-client-pw") + C("GET", "kept"), until_replies=3)
    assert fresh.replies[0].startswith("WRONGPASS")
    assert fresh.replies[1:] == ["OK", b"yes"]
    # The connection opened before the update is still up and still served
    # by the filter instance it started with.
    assert before.get("kept") == "yes"
    assert before.set("after-update", "1")
    assert envoy.counter("listener_manager.listener_modified") == 0
