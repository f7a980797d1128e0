"""The rig itself, proven with real parts and NO wasm filter: Envoy tcp_proxy
(and native redis_proxy) in front of real redis-servers, driven by real
clients. If these fail, the filter tests cannot be trusted."""

from __future__ import annotations

import pytest
import redis

import harness
from harness import UpstreamTls, ioredis_run, raw_exchange, redis_cli, redis_py, resp
from harness.raw import chunk, differential
from harness import redis_suite

PING = resp.command("PING")


# ------------------------------------------------------------------ (a) requirepass


def test_redis_py_auth_set_get_through_tcp_proxy(redis_password, envoy_factory):
    envoy = envoy_factory(redis_password)
    for protocol in (2, 3):
        c = redis_py(envoy, password=redis_password.password, protocol=protocol)
        assert c.set(f"k{protocol}", "v") is True
        assert c.get(f"k{protocol}") == "v"
        assert c.connection_pool.get_connection().protocol == protocol
        c.close()
    # The value really is in the server behind Envoy.
    assert redis_password.client().get("k2") == "v"


def test_redis_py_wrong_password_is_an_error(redis_password, envoy_factory):
    envoy = envoy_factory(redis_password)
    with pytest.raises(redis.AuthenticationError):
        redis_py(envoy, password="not-the-password").ping()


def test_ioredis_auth_set_get_through_tcp_proxy(redis_password, envoy_factory):
    envoy = envoy_factory(redis_password)
    r = ioredis_run(envoy, [["SET", "a", "1"], ["GET", "a"], ["INCR", "a"], ["NOSUCHCMD"]], password=redis_password.password)
    assert r.connected, r
    assert r.results[:3] == [{"ok": "OK"}, {"ok": "1"}, {"ok": 2}]
    assert "unknown command" in r.results[3]["error"]
    piped = ioredis_run(envoy, [["SET", "b", "2"], ["GET", "b"]], password=redis_password.password, pipeline=True)
    assert piped.values == ["OK", "2"]


def test_ioredis_wrong_password_fails_to_connect(redis_password, envoy_factory):
    envoy = envoy_factory(redis_password)
    r = ioredis_run(envoy, [["PING"]], password="nope")
    assert not r.connected
    assert "WRONGPASS" in (r.error or "") + " ".join(r.events)


def test_redis_cli_auth_modes_through_tcp_proxy(redis_password, envoy_factory):
    envoy = envoy_factory(redis_password)
    pw = redis_password.password
    assert redis_cli(envoy, "SET", "c", "3", a=pw).stdout.strip() == "OK"
    assert redis_cli(envoy, "GET", "c", pass_=pw).stdout.strip() == "3"
    assert redis_cli(envoy, "GET", "c", user="default", pass_=pw).stdout.strip() == "3"
    r3 = redis_cli(envoy, "HELLO", "3", a=pw, resp3=True, raw=False)
    assert '"proto"' in r3.stdout and "(integer) 3" in r3.stdout
    # stdin mode: commands line by line
    out = redis_cli(envoy, a=pw, stdin="SET d 4\nGET d\nPING\n")
    assert out.lines == ["OK", "4", "PONG"]
    # without a password the server says NOAUTH (redis-cli still exits 0)
    noauth = redis_cli(envoy, "GET", "c")
    assert "NOAUTH" in noauth.stdout and noauth.returncode == 0
    # -a with a warning: we suppress it by default, and can ask for it
    warn = redis_cli(envoy, "PING", a=pw, no_auth_warning=False)
    assert "Warning" in warn.stderr and warn.stdout.strip() == "PONG"


# ------------------------------------------------------------------ (b) ACL


def test_acl_user_via_ioredis_username_password(redis_acl, envoy_factory):
    assert (redis_acl.username, redis_acl.password) == (harness.ACL_USER, harness.ACL_PASSWORD)
    envoy = envoy_factory(redis_acl)
    r = ioredis_run(envoy, [["ACL", "WHOAMI"], ["SET", "x", "y"], ["GET", "x"]],
                    username="appuser", password="SuperSecretPass")  # fmt: skip
    assert r.values == ["appuser", "OK", "y"]
    # the default user is off: no credentials means NOAUTH
    noauth = ioredis_run(envoy, [["GET", "x"]], options={"enableReadyCheck": False})
    assert noauth.connected and "NOAUTH" in noauth.results[0]["error"]
    # redis-py and redis-cli with --user/--pass too
    assert redis_py(envoy, username="appuser", password="SuperSecretPass").get("x") == "y"
    assert redis_cli(envoy, "ACL", "WHOAMI", user="appuser", pass_="SuperSecretPass").stdout.strip() == "appuser"


# ------------------------------------------------------------------ (c) TLS upstream


def test_tls_only_redis_through_upstream_tls_context(redis_tls, pki, envoy_factory):
    # The redis really is TLS-only: plain text to it does not get a reply.
    plain = raw_exchange(redis_tls, PING, idle_timeout=0.5)
    assert b"PONG" not in plain.data
    envoy = envoy_factory(redis_tls, upstream_tls=UpstreamTls.simple(pki))
    c = redis_py(envoy)  # plain TCP to Envoy; Envoy originates TLS
    assert c.set("t", "1") is True and c.get("t") == "1"
    assert redis_tls.client().get("t") == "1"  # direct TLS client sees it
    assert envoy.counter("cluster.redis.ssl.handshake") >= 1


def test_mutual_tls_upstream(redis_mtls, pki, envoy_factory):
    ok = envoy_factory(redis_mtls, upstream_tls=UpstreamTls.mutual(pki))
    assert raw_exchange(ok, PING, until_replies=1).data == b"+PONG\r\n"
    # Without a client certificate the server refuses: the client sees a close.
    no_cert = envoy_factory(redis_mtls, upstream_tls=UpstreamTls.simple(pki))
    r = raw_exchange(no_cert, PING, until_replies=1)
    assert r.closed and b"PONG" not in r.data
    # A client certificate from an untrusted CA is refused too.
    rogue = envoy_factory(redis_mtls, upstream_tls=UpstreamTls.mutual(
        pki, client_cert=pki.rogue_client_cert, client_key=pki.rogue_client_key))  # fmt: skip
    r = raw_exchange(rogue, PING, until_replies=1)
    assert r.closed and b"PONG" not in r.data


def test_upstream_tls_verifies_server_san(redis_tls, pki, envoy_factory):
    bad = envoy_factory(redis_tls, upstream_tls=UpstreamTls(ca_file=pki.ca_cert, sni="redis.test", verify_san=["other.test"]))
    r = raw_exchange(bad, PING, until_replies=1)
    assert r.closed and r.data == b""
    assert bad.wait_stat("cluster.redis.ssl.fail_verify_san", lambda v: v >= 1) >= 1


# ------------------------------------------------------------------ (d) relay


def test_relay_records_both_directions(redis_password, relay_factory, envoy_factory):
    relay = relay_factory(redis_password)
    envoy = envoy_factory(relay)
    c = redis_py(envoy, password=redis_password.password)
    assert c.set("rk", "rv") is True
    c.close()
    relay.wait_closed()
    [conn] = relay.connections
    assert conn.to_server.startswith(resp.command("AUTH", "ServerSecretPass"))
    assert resp.command("SET", "rk", "rv") in conn.to_server
    assert conn.to_client.startswith(b"+OK\r\n")
    assert conn.first_eof == "client"
    # events preserve direction and order
    dirs = [d for _, d, _ in conn.events]
    assert dirs[0] == "c2s" and "s2c" in dirs
    # a second connection is recorded separately; reset() forgets
    assert raw_exchange(envoy, resp.command("AUTH", "ServerSecretPass") + PING, until_replies=2).data == b"+OK\r\n+PONG\r\n"
    assert len(relay.wait_connections(2)) == 2
    relay.reset()
    assert relay.connections == [] and relay.to_server() == b""


def test_relay_reports_unreachable_upstream(scope, relay_factory):
    dead = ("127.0.0.1", harness.free_port())
    relay = relay_factory(dead)
    r = raw_exchange(relay, PING, idle_timeout=2)
    assert r.closed and r.data == b""
    [conn] = relay.connections
    assert conn.upstream_error


# ------------------------------------------------------------------ (e) raw client


def test_chunking_modes():
    payload = bytes(range(40))
    assert chunk(payload, "whole") == [payload]
    assert chunk(payload, "byte") == [bytes([b]) for b in payload]
    assert chunk(payload, 7)[0] == payload[:7] and len(chunk(payload, 7)) == 6
    r1, r2 = chunk(payload, "random", seed=3), chunk(payload, "random", seed=3)
    assert r1 == r2 and b"".join(r1) == payload and len(r1) > 1
    assert chunk(payload, "random", seed=4) != r1
    assert [len(p) for p in chunk(payload, [1, 2])][:4] == [1, 2, 1, 2]
    with pytest.raises(ValueError):
        chunk(payload, 0)


def test_raw_ping_byte_by_byte_equals_direct_redis(redis_plain, envoy_factory):
    envoy = envoy_factory(redis_plain)
    via_envoy, direct = differential(envoy, redis_plain, PING, chunking="byte", until_replies=1)
    assert via_envoy.data == direct.data == b"+PONG\r\n"
    assert not via_envoy.closed and not direct.closed
    assert via_envoy.stopped_by == "replies"


def test_raw_pipeline_random_chunks_inline_and_close(redis_plain, envoy_factory):
    envoy = envoy_factory(redis_plain)
    pipeline = resp.commands(("SET", "p", "1"), ("INCR", "p"), ("GET", "p")) + b"PING\r\n" + b"ECHO hi\r\n"
    for seed in range(3):
        redis_plain.client().delete("p")
        a = raw_exchange(envoy, pipeline, "random", seed=seed, until_replies=5)
        redis_plain.client().delete("p")
        b = raw_exchange(redis_plain, pipeline, "random", seed=seed, until_replies=5)
        assert a.data == b.data == b"+OK\r\n:2\r\n$1\r\n2\r\n+PONG\r\n$2\r\nhi\r\n"
    # QUIT: both close after +OK; the raw client reports the close
    a, b = differential(envoy, redis_plain, resp.command("QUIT"), chunking=3, idle_timeout=3)
    assert (a.data, a.closed) == (b.data, b.closed) == (b"+OK\r\n", True)
    # An error reply from a protocol error, and the server's close, match too
    a, b = differential(envoy, redis_plain, b"*1\r\n$x\r\n", idle_timeout=3)
    assert a.data == b.data and a.data.startswith(b"-ERR Protocol error") and a.closed and b.closed


def test_raw_result_replies_decode(redis_plain, envoy_factory):
    envoy = envoy_factory(redis_plain)
    r = raw_exchange(envoy, resp.command("HELLO", "3") + resp.command("PING"), until_replies=2)
    hello, pong = r.replies
    assert hello[b"proto"] == 3 and pong == "PONG"


def test_big_pipeline_does_not_deadlock(redis_plain, envoy_factory):
    envoy = envoy_factory(redis_plain)
    value = b"x" * 1000
    payload = resp.command("SET", "big", value) + resp.command("GET", "big") * 2000
    r = raw_exchange(envoy, payload, until_replies=2001, timeout=30)
    assert r.stopped_by == "replies"
    assert resp.count_replies(r.data) == 2001


# ------------------------------------------------------------------ (f) rejected configs


def test_garbage_wasm_is_rejected_with_log(redis_plain, envoy_rejects, scope):
    bogus = scope.dir / "garbage.wasm"
    bogus.write_bytes(b"\0asm\x01\0\0\0garbage")
    log = envoy_rejects(redis_plain, plugin_config={"downstream": {"password": "x"}}, wasm_path=bogus)
    assert "Unable to create Wasm plugin" in log
    assert "initializing config" in log


def test_invalid_field_is_rejected_and_valid_config_accepted(redis_plain, envoy_try_start, envoy_rejects):
    log = envoy_rejects(redis_plain, tcp_proxy={"no_such_field": 1})
    assert "no_such_field" in log
    envoy, result = envoy_try_start(redis_plain)
    assert result.accepted and result.returncode is None and envoy.alive
    assert raw_exchange(envoy, PING, until_replies=1).data == b"+PONG\r\n"
    ok, out = envoy.validate()
    assert ok, out


# ------------------------------------------------------------------ (g) native redis_proxy


def test_native_redis_proxy_answers_ping(redis_password, envoy_factory):
    envoy = envoy_factory(
        redis_password,
        mode="redis_proxy",
        redis_downstream_password="client-pw",
        redis_upstream_password=redis_password.password,
    )
    assert raw_exchange(envoy, PING, until_replies=1).data.startswith(b"-NOAUTH")
    r = raw_exchange(envoy, resp.command("AUTH", "client-pw") + PING + resp.command("SET", "n", "1"), until_replies=3)
    assert r.data == b"+OK\r\n+PONG\r\n+OK\r\n"
    assert redis_password.client().get("n") == "1"
    assert envoy.counter("redis.redis.command.set.total") == 1


# ------------------------------------------------------------------ the rig's own guarantees


def test_readiness_opens_no_connection_and_stats_work(redis_plain, relay_factory, envoy_factory):
    relay = relay_factory(redis_plain)
    envoy = envoy_factory(relay)
    # becoming ready did not touch the listener (stats and relay are clean)
    assert envoy.counter("tcp.redis.downstream_cx_total") == 0
    assert relay.connections == []
    for _ in range(3):
        assert raw_exchange(envoy, PING, until_replies=1).data == b"+PONG\r\n"
    assert envoy.wait_stat("tcp.redis.downstream_cx_total", 3) == 3
    assert "tcp.redis.downstream_cx_total" in envoy.stats(filter=r"^tcp\.redis\.")
    assert envoy.counter("no.such.stat", default=-1) == -1


def test_restart_keeps_port_and_resets_stats(redis_plain, envoy_factory):
    envoy = envoy_factory(redis_plain)
    port, pid = envoy.port, envoy.proc.pid
    assert raw_exchange(envoy, PING, until_replies=1).data == b"+PONG\r\n"
    envoy.restart(tcp_proxy={"idle_timeout": "30s"})
    assert envoy.port == port and envoy.proc.pid != pid
    assert envoy.counter("tcp.redis.downstream_cx_total") == 0
    assert raw_exchange(envoy, PING, until_replies=1).data == b"+PONG\r\n"
    assert envoy.log_text().count("=== [") == 2  # one log, one header per start


def test_upstream_kill_and_restart(redis_plain, envoy_factory):
    envoy = envoy_factory(redis_plain)
    redis_plain.kill()
    r = raw_exchange(envoy, PING, until_replies=1)
    assert r.closed and r.data == b""  # upstream refused: Envoy closes the client
    assert envoy.wait_stat("cluster.redis.upstream_cx_connect_fail", 1) == 1
    redis_plain.start()
    assert raw_exchange(envoy, PING, until_replies=1).data == b"+PONG\r\n"
    assert envoy.wait_log(r"\]\[warning\]\[main\].*no configured limit")


def test_scope_close_stops_everything(e2e_run):
    with e2e_run.scope("cleanup-check") as s:
        r = s.redis("password")
        e = s.envoy(r)
        procs = [r.proc, e.proc]
        ports = [r.port, e.port, e.admin_port]
        assert all(p.alive for p in procs)
    assert not any(p.alive for p in procs)
    assert not any(harness.is_listening(p) for p in ports)


@pytest.mark.parametrize("policy", ["FAIL_CLOSED", "FAIL_RELOAD", "FAIL_OPEN"])
def test_wasm_filter_block_accepted_by_envoy(policy, null_wasm, redis_password, relay_factory, envoy_factory):
    relay = relay_factory(redis_password)
    envoy = envoy_factory(relay, plugin_config={"downstream": {"password": "x"}}, wasm_path=null_wasm,
                          host_env={"REDIS_PASSWORD": "s"}, vm_env={"K": "V"}, failure_policy=policy)  # fmt: skip
    payload = resp.command("AUTH", redis_password.password) + PING
    r = raw_exchange(envoy, payload, "byte", until_replies=2)
    assert r.data == b"+OK\r\n+PONG\r\n"
    relay.wait_closed()
    assert relay.to_server() == payload  # the null filter passes bytes untouched
    assert envoy.counter("wasm.envoy_redis_auth.vm_reload_failure", default=-1) == 0
    assert envoy.counter("wasm.wasm_vm_count") >= 2  # one VM per worker (--concurrency 2) + main


def test_plugin_rejecting_its_config_is_reported(null_wasm_rejecting, redis_plain, envoy_rejects):
    log = envoy_rejects(redis_plain, plugin_config={"bad": True}, wasm_path=null_wasm_rejecting)
    assert "Failed to configure base Wasm plugin" in log
    assert "Unable to create Wasm plugin envoy_redis_auth" in log


def test_wasm_filter_block_shape(tmp_path):
    """The rendered wasm filter block, field by field (Envoy accepts it: see
    test_wasm_filter_block_accepted_by_envoy)."""
    e = harness.Envoy(tmp_path, ("127.0.0.1", 1), plugin_config={"a": 1}, wasm_path="/x.wasm",
                      host_env={"REDIS_PASSWORD": "s"}, vm_env={"K": "V"})  # fmt: skip
    [wasm, tcp] = e.render()["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
    cfg = wasm["typed_config"]["config"]
    assert wasm["name"] == "envoy.filters.network.wasm"
    assert cfg["root_id"] == "envoy_redis_auth" and cfg["failure_policy"] == "FAIL_CLOSED"
    assert cfg["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"
    assert cfg["vm_config"]["environment_variables"] == {"key_values": {"K": "V"}, "host_env_keys": ["REDIS_PASSWORD"]}
    assert cfg["configuration"] == {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": '{"a": 1}'}
    assert tcp["name"] == "envoy.filters.network.tcp_proxy"
    assert e._env() == {"REDIS_PASSWORD": "s"}


def test_redis_suite_output_parsing(tmp_path):
    """harness.redis_suite reads the suite's output as its test server prints
    it: an [err] and the lines under it belong to that test, an error that
    names no test is kept apart, a [TIMEOUT] fails the test in progress, and
    the summary after "The End" is not counted again."""
    output = "\n".join([
        "Testing unit/x",
        "[ok]: PING (3 ms)",
        "[err]: GET in tests/unit/x.tcl",
        "Expected 'a' to be equal to 'b'",
        "[ok]: GET (1 ms)",
        "[ignore]: MIGRATE: Not supported on external server",
        "[err]: I/O error reading reply",
        "    while executing",
        "[TIMEOUT]: clients state report follows.",
        "sock1 => (IN PROGRESS) BLPOP",
        "",
        "                   The End",
        "*** [err]: GET in tests/unit/x.tcl",
    ])  # fmt: skip
    run = redis_suite.parse("unit/x", output, 1.0, tmp_path / "x.log")
    assert run.tests == {"PING": "ok", "GET": "err", "MIGRATE": "ignore", "BLPOP": "err"}
    assert run.passed == {"PING"}
    assert run.details["GET"] == "[err]: GET in tests/unit/x.tcl\nExpected 'a' to be equal to 'b'"
    assert run.errors[0] == "[err]: I/O error reading reply\n    while executing"
    assert run.errors[1].startswith("[TIMEOUT]") and "BLPOP" in run.details["BLPOP"]
    assert len(run.errors) == 2
