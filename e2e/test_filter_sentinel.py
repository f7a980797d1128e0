"""Redis Sentinel through the filter: discovery, clients, failover.

Topology (all on loopback, built by harness.sentinel.start_topology):

    client (127.0.0.1)
      |  SENTINEL ... (AUTH SentinelClientPass)        SET/GET (AUTH ClientPass1)
      v                                                 v
    envoy-sentinel{0,1,2}  [filter: sentinel config]   envoy-node{0,1}  [bypass chain | filter: data config]
      |  AUTH SentinelServerPass injected                |  AUTH ServerSecretPass injected (client chain only)
      v                                                 v
    sentinel{0,1,2}  --(127.0.1.2x, direct peers)-->   node0 (master)  <--replication (127.0.1.11)--  node1 (replica)
         \\___________ links to the nodes, from 127.0.1.2x, via envoy-node{0,1}'s bypass chain ___/

| port | configuration |
| --- | --- |
| envoy-node{i} listener, source 127.0.0.1 (clients) | the filter with the data config: `downstream.users` `default` with `ClientPass1`, `upstream` password `ServerSecretPass` from `$REDIS_PASSWORD` |
| envoy-node{i} listener, source 127.0.1.0/24 (nodes, sentinels) | `bypass_sources`: a first filter chain with only tcp_proxy (no filter); the peer authenticates itself (`masterauth`, `sentinel auth-pass`) |
| envoy-sentinel{j} listener | the filter with the sentinel config: `server_version` `sentinel-7.0` (Sentinel's commands), `default` with `SentinelClientPass`, `upstream` password `SentinelServerPass` (Sentinel's `requirepass`) from `$SENTINEL_PASSWORD`, and two restricted users |
| node{i} port | only Envoy's; nodes announce envoy-node{i} (`replica-announce-ip 127.0.0.1`, `replica-announce-port`) |
| sentinel{j} port | sentinel to sentinel (announced with `sentinel announce-ip/-port`, `sentinel sentinel-pass`); tests use it as the reference ("direct sentinel") |

Why node-to-node traffic bypasses the filter: replication and Sentinel's
links to the nodes are the mesh's own traffic (in Kubernetes, from a Redis
pod's own sidecar, which has no filter). Every redis-server and sentinel
binds its outgoing connections to its own 127.0.1.x (`bind-source-addr`),
so Envoy picks the bypass chain for them: they reach the node through the
same listener whose address Sentinel hands out (so after a failover the new
master is again an Envoy listener), and they authenticate with the real
passwords, which clients never get. Sentinels announce their own port, not
the sentinel listener, so peers talk directly and only clients meet the
filter there.

Checked: the bypass; the sentinel listener answering as Sentinel (SENTINEL
replies, WRONGPASS, NOAUTH, and before AUTH "unknown command" for what
Sentinel lacks, byte for byte); ACL verdicts of restricted Sentinel users
(`+sentinel|get-master-addr-by-name` and no more, or all but @dangerous)
identical to the same users on each Sentinel; redis-py Sentinel (RESP2 and
RESP3) and ioredis `sentinels` discovering and using master and replica
through the filter; a failover (SIGKILL of the master) the clients recover
from, and the old master's resync on the bypass chain.

Tests share one topology (module scope); the failover test runs last.
"""

from __future__ import annotations

import socket
import time

import pytest
import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from harness import differential, ioredis_run, raw_exchange, resp, wait_until
from harness.resp import command as C
from harness.sentinel import (
    ANNOUNCE_IP,
    CLIENT_PASSWORD,
    MASTER_NAME,
    SENTINEL_CLIENT_PASSWORD,
    SENTINEL_SERVER_PASSWORD,
    SERVER_PASSWORD,
    Topology,
    start_topology,
)

WATCHER = ("watcher", "WatcherPass")  # a sentinel-listener user not allowed everything
WATCHER_RULES = "~* &* +@all -@dangerous -@scripting"
DISCOVER = ("discover", "DiscoverPass")  # only what finding the master takes
DISCOVER_RULES = "-@all +sentinel|get-master-addr-by-name +sentinel|sentinels +ping +hello +auth"
CONNECTIONS = "wasmcustom.redis_auth.connections"
CX_TOTAL = "tcp.redis.downstream_cx_total"
_VM_FAILURE = ("panicked at", "Uncaught RuntimeError")


@pytest.fixture(scope="module")
def topo(session_scope, wasm_path):
    t = start_topology(
        session_scope,
        sentinel_users=[f"user {WATCHER[0]} on >{WATCHER[1]} {WATCHER_RULES}",
                        f"user {DISCOVER[0]} on >{DISCOVER[1]} {DISCOVER_RULES}"],  # fmt: skip
    )
    # Before any client: what the mesh alone did to the Envoys.
    t.notes["baseline"] = {e.name: e.stats() for e in t.envoys()}
    yield t
    t.stop()
    panics = [f"{e.log_path}: {l}" for e in t.envoys() for l in e.log_text().splitlines() if any(m in l for m in _VM_FAILURE)]
    assert not panics, "the wasm VM failed:\n" + "\n".join(panics[:20])


def exchange_from(source: str, addr, payload: bytes, replies: int, timeout: float = 5.0) -> list:
    """Send `payload` from a socket bound to `source`; the first `replies` replies."""
    with socket.socket() as s:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect(addr)
        s.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout
        while len(resp.split_replies(data)[0]) < replies and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return resp.split_replies(data)[0]


def sentinel_client(topo: Topology, protocol: int = 2, **kw) -> Sentinel:
    return Sentinel(
        topo.sentinel_listeners(),
        sentinel_kwargs={"password": SENTINEL_CLIENT_PASSWORD, "protocol": protocol, "socket_timeout": 2},
        password=CLIENT_PASSWORD,
        protocol=protocol,
        socket_timeout=2,
        socket_connect_timeout=2,
        **kw,
    )


# ------------------------------------------------------------------ the bypass


def test_node_to_node_traffic_bypasses_the_filter(topo):
    master, replica = topo.nodes
    base = topo.notes["baseline"]
    # Replication (1 connection) and each sentinel's two links (cmd and
    # pubsub) passed the master's Envoy; the replica's got the sentinels'
    # links. None of them reached the filter.
    assert base[master.envoy.name][CX_TOTAL] >= 1 + 2 * len(topo.sentinels), base[master.envoy.name]
    assert base[replica.envoy.name][CX_TOTAL] >= 2 * len(topo.sentinels), base[replica.envoy.name]
    for e in topo.envoys():
        assert base[e.name].get(CONNECTIONS, 0) == 0, (e.name, base[e.name])
    # Sentinels talk to each other directly: nothing went through the sentinel listeners.
    for s in topo.sentinels:
        assert base[s.envoy.name].get(CX_TOTAL, 0) == 0, base[s.envoy.name]
    # The master sees them as the replica and the sentinels, logged in as default.
    clients = master.redis.client().client_list()
    assert sum("S" in c["flags"] for c in clients) == 1
    assert sum(c["name"].startswith("sentinel-") for c in clients) == 2 * len(topo.sentinels)

    # The same listener, two sources: from 127.0.1.x the real server (its
    # NOAUTH, its password), from 127.0.0.1 the filter (client password only).
    before = master.envoy.counter(CONNECTIONS)
    mesh = exchange_from("127.0.1.99", master.listener, C("PING") + C("AUTH", SERVER_PASSWORD) + C("ROLE"), 3)
    assert mesh[:2] == ["NOAUTH Authentication required.", "OK"], mesh
    assert mesh[2][0] == b"master", mesh
    assert master.envoy.counter(CONNECTIONS) == before
    client = exchange_from("127.0.0.1", master.listener, C("AUTH", SERVER_PASSWORD) + C("AUTH", CLIENT_PASSWORD) + C("ROLE"), 3)
    assert client[0].startswith("WRONGPASS") and client[1] == "OK", client
    assert client[2][0] == b"master", client
    master.envoy.wait_stat(CONNECTIONS, before + 1)


# ------------------------------------------------------------------ the sentinel listener


def test_sentinel_listener_answers_like_sentinel(topo):
    s = topo.sentinels[0]
    master = topo.nodes[0]
    ask = C("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
    via = raw_exchange(s.listener, C("AUTH", SENTINEL_CLIENT_PASSWORD) + ask, until_replies=2)
    direct = raw_exchange(s.sentinel, C("AUTH", SENTINEL_SERVER_PASSWORD) + ask, until_replies=2)
    assert via.replies[1] == [ANNOUNCE_IP.encode(), str(master.envoy.port).encode()], via
    assert via.data == direct.data

    # A wrong password: the same WRONGPASS (and the NOAUTH after it) as Sentinel's.
    for chunking in ("whole", "byte"):
        a, b = differential(s.listener, s.sentinel, C("AUTH", "wrong") + C("PING"), chunking, until_replies=2)
        assert a.data == b.data and a.replies[0].startswith("WRONGPASS"), (a, b)
    # Sentinel's real password is nothing to the listener: it answers as
    # Sentinel answers a wrong one.
    via_real = raw_exchange(s.listener, C("AUTH", SENTINEL_SERVER_PASSWORD) + C("PING"), until_replies=2)
    direct_wrong = raw_exchange(s.sentinel, C("AUTH", "wrong") + C("PING"), until_replies=2)
    assert via_real.data == direct_wrong.data, (via_real, direct_wrong)
    # Before AUTH: Sentinel's NOAUTH for commands both know.
    before = C("PING") + C("HELLO", "3") + C("CLIENT", "INFO") + C("INFO")
    a, b = differential(s.listener, s.sentinel, before, "whole", until_replies=4)
    assert a.data == b.data and a.replies[0].startswith("NOAUTH"), (a, b)

    # RESP3 with HELLO AUTH: the server is a sentinel, SENTINEL MASTER answers a map.
    hello = raw_exchange(
        s.listener, C("HELLO", "3", "AUTH", "default", SENTINEL_CLIENT_PASSWORD) + C("SENTINEL", "master", MASTER_NAME),
        until_replies=2,
    )
    assert hello.replies[0][b"mode"] == b"sentinel", hello
    assert hello.replies[1][b"port"] == str(master.envoy.port).encode(), hello



# Users of the sentinel listener, the same on the filter and (ACL SETUSER) on
# every Sentinel: one allowed all but @dangerous (SENTINEL is @admin
# @dangerous), one allowed only what a client needs to find the master.
SENTINEL_USERS = {
    WATCHER[0]: (WATCHER[1], WATCHER_RULES),
    DISCOVER[0]: (DISCOVER[1], DISCOVER_RULES),
}
ACL_PROBES = [
    ("SENTINEL", "get-master-addr-by-name", MASTER_NAME),
    ("SENTINEL", "sentinels", MASTER_NAME),
    ("SENTINEL", "masters"),
    ("SENTINEL", "failover", MASTER_NAME + "-nosuch"),
    ("SENTINEL", "nosuch"),
    ("SENTINEL",),
    ("PING",),
    ("ROLE",),
    ("INFO", "server"),
    ("CLIENT", "KILL", "ID", "0"),
    ("PUBLISH", "news", "x"),
    ("SUBSCRIBE", "news"),
]
# Replies whose content changes from call to call (or from sentinel to
# sentinel): their kind, or their exact error, must agree.
VOLATILE = {("SENTINEL", "sentinels"), ("SENTINEL", "masters"), ("ROLE",), ("INFO", "server")}


@pytest.mark.parametrize("user", sorted(SENTINEL_USERS))
def test_sentinel_acl_verdicts_match_sentinel(topo, user):
    password, rules = SENTINEL_USERS[user]
    for s in topo.sentinels:
        s.command("ACL", "SETUSER", user, "reset", "on", f">{password}", *rules.split())
    for s in topo.sentinels:
        payload = C("AUTH", user, password) + b"".join(C(*p) for p in ACL_PROBES)
        a, b = differential(s.listener, s.sentinel, payload, "whole", until_replies=len(ACL_PROBES) + 1)

        def shape(replies):
            probes = [("AUTH",), *ACL_PROBES]
            return [_kind(r) if tuple(p[:2]) in VOLATILE else r for p, r in zip(probes, replies)]

        assert len(a.replies) == len(ACL_PROBES) + 1, a
        assert shape(a.replies) == shape(b.replies), (s, user, a, b)
    # Not all alike: each user is refused something and allowed something.
    kinds = {isinstance(r, resp.Error) and r.startswith("NOPERM") for r in a.replies[1:]}
    assert kinds == {True, False}, a


def _kind(reply):
    return reply if isinstance(reply, resp.Error) else type(reply).__name__


def test_sentinel_listener_before_auth_unknown_commands(topo):
    # Before AUTH a Sentinel answers a command it does not have (SET, QUIT,
    # RESET) with "unknown command", and NOAUTH for its own (SENTINEL):
    # existence comes first. server_version sentinel-7.0 gives the filter
    # Sentinel's table.
    s = topo.sentinels[0]
    for command in [("SENTINEL", "get-master-addr-by-name", MASTER_NAME), ("SET", "k", "v"),
                    ("RESET",), ("SENTINEL", "nosuch"), ("QUIT",)]:  # fmt: skip
        a, b = differential(s.listener, s.sentinel, C(*command) + C("AUTH", "wrong") + C(*command), "whole",
                            until_replies=3)  # fmt: skip
        assert a.data == b.data, (command, a, b)


# ------------------------------------------------------------------ clients


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_sentinel_client(topo, protocol):
    master, replica = topo.nodes
    sentinel = sentinel_client(topo, protocol)
    assert sentinel.discover_master(MASTER_NAME) == (ANNOUNCE_IP, master.envoy.port)
    assert sentinel.discover_slaves(MASTER_NAME) == [(ANNOUNCE_IP, replica.envoy.port)]
    m = sentinel.master_for(MASTER_NAME, decode_responses=True)
    key = f"py{protocol}"
    assert m.set(key, "through-the-filter") and m.get(key) == "through-the-filter"
    assert m.execute_command("WAIT", 1, 2000) == 1
    assert master.redis.client().get(key) == "through-the-filter"  # it went to the master
    r = sentinel.slave_for(MASTER_NAME, decode_responses=True)
    replica_conns = replica.envoy.counter(CONNECTIONS)
    assert r.get(key) == "through-the-filter"
    assert r.execute_command("ROLE")[0] == "slave"
    with pytest.raises(redis.exceptions.ReadOnlyError):
        r.set(key, "no")
    assert replica.envoy.counter(CONNECTIONS) > replica_conns  # the read went through the replica's filter
    # The client password is all the client has: the server's is refused at
    # the data listener, Sentinel's at the sentinel listener.
    once = {"retry": Retry(NoBackoff(), 0), "socket_timeout": 2}
    with pytest.raises(redis.exceptions.AuthenticationError):
        Sentinel(topo.sentinel_listeners(), sentinel_kwargs={"password": SENTINEL_CLIENT_PASSWORD, **once},
                 password=SERVER_PASSWORD, protocol=protocol, **once).master_for(MASTER_NAME).ping()  # fmt: skip
    with pytest.raises(redis.sentinel.MasterNotFoundError):
        Sentinel(topo.sentinel_listeners(), sentinel_kwargs={"password": SENTINEL_SERVER_PASSWORD, **once},
                 password=CLIENT_PASSWORD, protocol=protocol, **once).discover_master(MASTER_NAME)  # fmt: skip


def test_ioredis_sentinel_client(topo):
    master, replica = topo.nodes
    sentinels = [{"host": h, "port": p} for h, p in topo.sentinel_listeners()]
    common = {"sentinels": sentinels, "name": MASTER_NAME, "sentinelPassword": SENTINEL_CLIENT_PASSWORD}
    w = ioredis_run(
        topo.sentinel_listeners()[0],
        [["set", "io", "sentinel"], ["get", "io"], ["role"], ["wait", 1, 2000]],
        password=CLIENT_PASSWORD,
        options={**common, "role": "master"},
    )
    values = w.values
    assert values[:2] == ["OK", "sentinel"] and values[2][0] == "master" and values[3] == 1, w
    assert master.redis.client().get("io") == "sentinel"
    replica_conns = replica.envoy.counter(CONNECTIONS)
    r = ioredis_run(
        topo.sentinel_listeners()[0],
        [["get", "io"], ["role"], ["set", "io", "no"]],
        password=CLIENT_PASSWORD,
        options={**common, "role": "slave"},
    )
    assert r.connected, r
    assert r.results[0] == {"ok": "sentinel"} and r.results[1]["ok"][0] == "slave", r.results
    assert r.results[2]["error"].startswith("READONLY"), r.results
    assert replica.envoy.counter(CONNECTIONS) > replica_conns
    bad = ioredis_run(
        topo.sentinel_listeners()[0], [["get", "io"]], password=CLIENT_PASSWORD,
        options={**common, "sentinelPassword": SENTINEL_SERVER_PASSWORD, "sentinelRetryStrategy": None},
    )  # fmt: skip
    assert not bad.connected, bad


# ------------------------------------------------------------------ failover (last)


def test_failover_clients_recover_through_the_filter(topo):
    old, new = topo.nodes
    sentinel = sentinel_client(topo)
    m = sentinel.master_for(
        MASTER_NAME,
        decode_responses=True,
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 3),
    )
    assert m.set("failover", "before")
    assert m.execute_command("WAIT", 1, 2000) == 1

    old.redis.kill()
    killed = time.monotonic()
    errors: list[str] = []
    recovered_at = None
    i = 0
    while time.monotonic() - killed < 20:
        i += 1
        try:
            m.set("failover", i)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError) as e:
            errors.append(f"{time.monotonic() - killed:.2f}s {type(e).__name__}: {e}")
            time.sleep(0.1)
            continue
        recovered_at = time.monotonic() - killed
        break
    assert recovered_at is not None, f"no write succeeded within 20 s of the kill; {len(errors)} errors: {errors[-5:]}"
    assert len(errors) <= 100, errors[-5:]
    # The write went to the old replica, now the master, and so do the next.
    assert new.redis.client().get("failover") == str(i)
    for j in range(20):
        assert m.set("after", j)
    assert new.redis.client().get("after") == "19"
    assert new.info()["role"] == "master"
    # Every sentinel reports the new master at its Envoy listener, directly
    # and through the sentinel listeners.
    wait_until(lambda: topo.reported_masters() == [(ANNOUNCE_IP, new.envoy.port)] * len(topo.sentinels), 10,
               "every sentinel to report the new master")  # fmt: skip
    assert sentinel.discover_master(MASTER_NAME) == (ANNOUNCE_IP, new.envoy.port)

    # The old master comes back empty, as a master; Sentinel turns it into
    # a replica of the new one, and it syncs through the new master's
    # Envoy on the bypass chain (the filter sees no new connection).
    conns, cx = new.envoy.counter(CONNECTIONS), new.envoy.counter(CX_TOTAL)
    old.redis.start()

    def old_is_replica():
        try:
            info = old.info()
        except redis.exceptions.ConnectionError:
            # Sentinel reconfigures it with CLIENT KILL TYPE normal: our
            # INFO connection may be one of those it kills.
            return False
        return (
            info.get("role") == "slave"
            and info.get("master_port") == new.envoy.port
            and info.get("master_link_status") == "up"
        )

    wait_until(old_is_replica, 40, "the old master to replicate from the new one through its Envoy")
    assert old.redis.client().get("after") == "19"
    # The replica says `master_link_status:up` a moment before the master
    # has its REPLCONF ACK and says `online`.
    def new_master_sees_online_replica():
        rep = new.info()
        return rep if rep.get("slave0", {}).get("state") == "online" else None

    rep = wait_until(new_master_sees_online_replica, 10, "the new master to list the old one online")
    assert rep["connected_slaves"] == 1 and rep["slave0"]["port"] == old.envoy.port, rep
    assert rep["slave0"]["ip"] == ANNOUNCE_IP and rep["slave0"]["state"] == "online", rep
    assert new.envoy.counter(CONNECTIONS) == conns
    assert new.envoy.counter(CX_TOTAL) > cx
    # Reads through the filter find the old master as a replica.
    wait_until(lambda: sentinel.discover_slaves(MASTER_NAME) == [(ANNOUNCE_IP, old.envoy.port)], 20,
               "sentinels to list the old master as a replica")  # fmt: skip
    assert sentinel.slave_for(MASTER_NAME, decode_responses=True).get("after") == "19"
    print(f"failover: first write {recovered_at:.2f}s after the kill, {len(errors)} errors; " + "; ".join(errors[:3]))
