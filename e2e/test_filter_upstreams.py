"""The server side: ACL users, TLS originated by Envoy (as an Istio
DestinationRule does), secrets from the environment and from base64, and
credentials the server refuses."""

from __future__ import annotations

import base64

from harness import UpstreamTls, raw_exchange, redis_py
from harness.resp import command as C

CLIENT_PASSWORD = "testredis123!"
DOWNSTREAM = {"password": CLIENT_PASSWORD}
# Client password inline, server password from the VM's environment.
SERVER_PASSWORD_FROM_ENV = {"downstream": DOWNSTREAM, "upstream": {"password": {"env": "REDIS_PASSWORD"}}}


def test_acl_user_upstream(redis_acl, envoy_factory):
    # user default off; user appuser on >SuperSecretPass ~* &* +@all
    envoy = envoy_factory(
        redis_acl,
        plugin_config={
            "downstream": DOWNSTREAM,
            "upstream": {"username": redis_acl.username, "password": {"env": "REDIS_PASSWORD"}},
        },
        host_env={"REDIS_PASSWORD": redis_acl.password},
    )
    c = redis_py(envoy, password=CLIENT_PASSWORD)
    assert c.set("acl", "ok") and c.get("acl") == "ok"
    # ACL WHOAMI answers for the proxy's user; the server's own view of the
    # connection (CLIENT INFO) shows the proxy's server identity.
    assert c.acl_whoami() == "default"
    assert f" user={redis_acl.username} " in c.execute_command("CLIENT", "INFO")
    # RESET logs the server connection out too; the filter logs it back in.
    raw = raw_exchange(envoy, C("AUTH", CLIENT_PASSWORD) + C("RESET") + C("AUTH", CLIENT_PASSWORD) + C("CLIENT", "INFO"), until_replies=4)
    assert f" user={redis_acl.username} ".encode() in raw.replies[3]


def test_tls_only_upstream_through_envoy_tls_origination(pki, redis_factory, envoy_factory):
    server = redis_factory("tls", password="TlsServerPass")
    envoy = envoy_factory(
        server,
        plugin_config=SERVER_PASSWORD_FROM_ENV,
        host_env={"REDIS_PASSWORD": "TlsServerPass"},
        upstream_tls=UpstreamTls.simple(pki),
    )
    # The client speaks plain RESP to Envoy; Envoy speaks TLS to Redis.
    c = redis_py(envoy, password=CLIENT_PASSWORD, protocol=3)
    assert c.set("tls", "yes") and c.get("tls") == "yes"
    raw = raw_exchange(envoy, C("GET", "tls") + C("AUTH", "nope"), until_replies=2)
    assert raw.replies[0] == "NOAUTH Authentication required."


def test_mutual_tls_upstream(pki, redis_factory, envoy_factory):
    server = redis_factory("mtls", password="MtlsServerPass")
    envoy = envoy_factory(
        server,
        plugin_config=SERVER_PASSWORD_FROM_ENV,
        host_env={"REDIS_PASSWORD": "MtlsServerPass"},
        upstream_tls=UpstreamTls.mutual(pki),
    )
    c = redis_py(envoy, password=CLIENT_PASSWORD)
    assert c.ping()


def test_base64_secret_and_trailing_newline_warning(redis_factory, envoy_factory):
    # Seed 000's Secret: dGVzdHJlZGlzCg== is "testredis\n". The newline is
    # part of the password, and the operator is warned about it.
    server = redis_factory("password", password="testredis\n")
    envoy = envoy_factory(
        server,
        plugin_config={
            "downstream": DOWNSTREAM,
            "upstream": {"password": {"base64": base64.b64encode(b"testredis\n").decode()}},
        },
    )
    envoy.wait_log(r"upstream\.password: the value ends with a newline")
    assert redis_py(envoy, password=CLIENT_PASSWORD).ping()


def test_env_secret_from_vm_environment(redis_password, envoy_factory):
    envoy = envoy_factory(
        redis_password,
        plugin_config={"downstream": {"password": {"env": "CLIENT_PW"}}, "upstream": {"password": {"env": "SERVER_PW"}}},
        vm_env={"CLIENT_PW": CLIENT_PASSWORD},
        host_env={"SERVER_PW": redis_password.password},
    )
    assert redis_py(envoy, password=CLIENT_PASSWORD).ping()


def test_rejected_proxy_credentials_are_named(redis_password, envoy_factory):
    envoy = envoy_factory(
        redis_password,
        plugin_config={"downstream": DOWNSTREAM, "upstream": {"password": "not-the-password"}},
    )
    raw = raw_exchange(envoy, C("AUTH", CLIENT_PASSWORD) + C("GET", "k"), until_replies=2)
    assert not raw.closed
    for reply in raw.replies:
        assert reply.startswith("ERR envoy-redis-auth: the Redis server rejected the proxy's credentials")
        assert "WRONGPASS" in reply
    envoy.wait_log(r"rejected the proxy's AUTH \(WRONGPASS")
    envoy.wait_stat("wasmcustom.redis_auth.upstream_auth_failure", 1)
    assert "not-the-password" not in envoy.log_text()


def test_proxy_password_for_a_passwordless_server(redis_plain, envoy_factory):
    envoy = envoy_factory(redis_plain, plugin_config={"upstream": {"password": "pw"}})
    raw = raw_exchange(envoy, C("PING"), until_replies=1)
    assert "AUTH <password> called without any password configured" in raw.replies[0]
