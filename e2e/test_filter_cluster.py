"""Redis Cluster through the filter: a real cluster of redis-server 7 nodes
(three masters, three replicas), each behind its own Envoy with the filter,
each announcing its listener (see harness/cluster.py for the topology and
why replication and the cluster bus do not meet the filter).

Clients know only the client passwords; the filter answers their AUTH and
logs in to every node with the server password. Checked, with real clients
(redis-cli -c, redis-py RedisCluster in RESP2 and RESP3, ioredis Cluster,
node-redis createCluster) and raw RESP compared byte for byte with the
nodes' own answers where Redis defines them:

- topology: CLUSTER SLOTS / SHARDS / NODES through the filter are the
  node's own answers and name only the filtered listeners; replicas
  replicate through the listener's chain without the filter;
- refusals on every node: commands before AUTH, a wrong password, the
  server's own password (which the filter does not know as a client
  password), HELLO … AUTH: the same bytes the node gives;
- keys in every slot range, from every client; pipelines and MULTI/EXEC on
  one slot; READONLY replica reads (the replica counts the GETs);
- pub/sub across nodes and sharded pub/sub (SSUBSCRIBE/SPUBLISH);
- ACLs: restricted users get the same verdicts as the same ACL user on the
  node itself, on every node, for topology commands (CLUSTER SLOTS, SHARDS,
  NODES, MYID, KEYSLOT, COUNTKEYSINSLOT, INFO), ASKING, READONLY/READWRITE,
  operator subcommands (SETSLOT, FAILOVER, …) and keys and channels
  outside their patterns (NOPERM before MOVED, as in Redis); cluster
  clients log in as such a user;
- a live slot migration with clients running: ASK and MOVED through the
  filter are the nodes' own bytes and name listeners, and the clients see
  no error;
- CLUSTER FAILOVER with clients running: they follow the new master;
- a replica restarted while loading its data: the node's own -LOADING (and
  -CLUSTERDOWN for keys) through the filter, then reads again.

One cluster serves the module; the tests that change the topology (the
migration, the failover, the restart) come last. About a minute.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from harness import raw_exchange, redis_cli, resp, wait_until
from harness.cluster import RedisCluster, node_cluster_run, start_cluster
from harness.redis_server import DEFAULT_SERVER_PASSWORD
from harness.resp import command as C

CLIENT_PASSWORD = "ClientPass1"

# Users for the ACL checks: the same lines on the filter and on every node.
APP_RULES = (
    "~app:* &app:* -@all +@read +@write +@connection +command +info "
    "+cluster|slots +cluster|shards +cluster|nodes +cluster|myid +cluster|keyslot "
    "+cluster|countkeysinslot +cluster|info +readonly +readwrite +asking"
)
USERS = {
    "app": ("apppw", APP_RULES),
    # Keys only: no topology, no READONLY, no ASKING.
    "plain": ("plainpw", "~* -@all +get +set +ping"),
}
PLUGIN_CONFIG = {
    "downstream": {
        "password": CLIENT_PASSWORD,
        "users": [f"user {name} on >{pw} {rules}" for name, (pw, rules) in USERS.items()],
    },
    "upstream": {"password": {"env": "REDIS_PASSWORD"}},
}

NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


@pytest.fixture(scope="module")
def cluster(e2e_run, wasm_path) -> RedisCluster:
    from conftest import _fail_on_vm_failures

    s = e2e_run.scope("test_filter_cluster")
    try:
        c = start_cluster(s, PLUGIN_CONFIG)
        for n in c.nodes:
            with n.admin() as a:
                for name, (pw, rules) in USERS.items():
                    a.execute_command("ACL", "SETUSER", name, "on", f">{pw}", *rules.split())
        yield c
        _fail_on_vm_failures(s)
    finally:
        s.close()


def _key_in_slot_of(c: RedisCluster, node, prefix: str = "app:") -> str:
    """A key that `node` (a master) serves."""
    for i in range(100000):
        key = f"{prefix}{{t{i}}}"
        if c.owner(c.keyslot(key)) is node:
            return key
    raise AssertionError(f"no key for {node}")


def _both(node, payload: bytes, *, client_auth: bytes, server_auth: bytes, replies: int):
    """The same commands through the filter (after `client_auth`) and
    straight to the node (after `server_auth`)."""
    via = raw_exchange(node.listener, client_auth + payload, until_replies=replies)
    direct = raw_exchange(node.direct, server_auth + payload, until_replies=replies)
    return via, direct


# ------------------------------------------------------------------ topology


def test_topology_names_the_filtered_listeners(cluster):
    listeners = {n.envoy.port for n in cluster.nodes}
    directs = {n.redis.port for n in cluster.nodes}
    for n in cluster.nodes:
        via = raw_exchange(n.listener, C("AUTH", CLIENT_PASSWORD) + C("CLUSTER", "SLOTS"), until_replies=2)
        direct = raw_exchange(n.direct, C("AUTH", DEFAULT_SERVER_PASSWORD) + C("CLUSTER", "SLOTS"), until_replies=2)
        assert via.replies[0] == "OK"
        assert via.replies[1:] == direct.replies[1:]
        ports = {int(node[1]) for slot_range in via.replies[1] for node in slot_range[2:]}
        assert ports == listeners

        nodes_reply = redis_cli(n.listener, "CLUSTER", "NODES", a=CLIENT_PASSWORD).stdout
        announced = {int(m) for m in re.findall(r" 127\.0\.0\.1:(\d+)@", nodes_reply)}
        assert announced == listeners and not announced & directs

        shards = redis_cli(n.listener, "CLUSTER", "SHARDS", a=CLIENT_PASSWORD, resp3=False).stdout
        assert {int(p) for p in re.findall(r"^port\n(\d+)$", shards, re.M)} == listeners


def test_replication_uses_the_listener_but_not_the_filter(cluster):
    for r in cluster.replicas():
        repl = r.info("replication")
        master = cluster.by_listener_port(int(repl["master_port"]))
        assert repl["master_link_status"] == "up"
        # The replica's link passed the master's Envoy, on the chain without
        # the filter: more connections than the filter ever saw.
        e = master.envoy
        total = e.counter(f"listener.127.0.0.1_{e.port}.downstream_cx_total")
        seen = e.wasm_stats().get("wasmcustom.redis_auth.connections", 0)
        assert total > seen, (total, seen)
        with master.admin() as a:
            flags = [l for l in a.execute_command("CLIENT", "LIST").splitlines() if "flags=S" in l]
        assert flags, "no replica connection on the master"


# ------------------------------------------------------------------ refusals


REFUSAL_CASES = [
    ("command before AUTH", C("GET", "app:x")),
    ("CLUSTER SLOTS before AUTH", C("CLUSTER", "SLOTS")),
    ("READONLY before AUTH", C("READONLY")),
    ("ASKING before AUTH", C("ASKING")),
    ("wrong password", C("AUTH", "nope") + C("GET", "app:x")),
    ("wrong user", C("AUTH", "nobody", "nope") + C("GET", "app:x")),
    ("HELLO AUTH wrong", C("HELLO", "3", "AUTH", "default", "nope") + C("PING")),
    ("HELLO before AUTH", C("HELLO", "3") + C("PING")),
]


@pytest.mark.parametrize("name,payload", REFUSAL_CASES, ids=[c[0] for c in REFUSAL_CASES])
def test_refusals_identical_on_every_node(cluster, name, payload):
    replies = resp.count_replies(payload)
    for n in cluster.nodes:
        via = raw_exchange(n.listener, payload, until_replies=replies)
        direct = raw_exchange(n.direct, payload, until_replies=replies)
        assert via.data == direct.data, (n, via, direct)
        assert not via.closed


def test_the_server_password_is_refused_on_every_node(cluster):
    for n in cluster.nodes:
        r = raw_exchange(n.listener, C("AUTH", DEFAULT_SERVER_PASSWORD) + C("GET", "app:x"), until_replies=2)
        assert r.data == WRONGPASS + NOAUTH, (n, r)
        r = raw_exchange(n.listener, C("AUTH", "default", DEFAULT_SERVER_PASSWORD) + C("PING"), until_replies=2)
        assert r.data == WRONGPASS + NOAUTH, (n, r)


# ------------------------------------------------------------------ clients


def _keys_for_every_master(c: RedisCluster, per_master: int = 3) -> list[str]:
    keys: list[str] = []
    for m in c.masters():
        found = 0
        for i in range(100000):
            key = f"app:{i}"
            if c.owner(c.keyslot(key)) is m:
                keys.append(key)
                found += 1
                if found == per_master:
                    break
    return keys


def _read_direct(c: RedisCluster, key: str) -> str | None:
    with c.owner(c.keyslot(key)).admin() as a:
        return a.get(key)


def test_redis_cli_follows_redirects_through_the_filter(cluster):
    entry = cluster.nodes[0]
    for key in _keys_for_every_master(cluster):
        r = redis_cli(entry.listener, "SET", key, f"cli-{key}", a=CLIENT_PASSWORD, extra=["-c"])
        assert r.stdout.strip() == "OK", r
        assert _read_direct(cluster, key) == f"cli-{key}"
        r = redis_cli(entry.listener, "GET", key, a=CLIENT_PASSWORD, extra=["-c"])
        assert r.stdout.strip() == f"cli-{key}"
    # Without -c, a key elsewhere is the node's own MOVED naming a listener.
    key = next(k for k in _keys_for_every_master(cluster) if cluster.owner(cluster.keyslot(k)) is not entry)
    r = redis_cli(entry.listener, "GET", key, a=CLIENT_PASSWORD)
    owner = cluster.owner(cluster.keyslot(key))
    assert r.stdout.strip() == f"MOVED {cluster.keyslot(key)} 127.0.0.1:{owner.envoy.port}"


def _redis_py_cluster(c: RedisCluster, protocol: int, **kw):
    from redis.cluster import ClusterNode, RedisCluster as PyCluster

    kw.setdefault("password", CLIENT_PASSWORD)
    return PyCluster(
        startup_nodes=[ClusterNode(h, p) for h, p in c.startup_nodes[:2]],
        protocol=protocol,
        decode_responses=True,
        socket_timeout=5,
        **kw,
    )


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_cluster(cluster, protocol):
    rc = _redis_py_cluster(cluster, protocol)
    try:
        nodes = {(n.host, n.port) for n in rc.get_nodes()}
        assert nodes == set(cluster.startup_nodes)
        keys = [f"app:py{protocol}:{i}" for i in range(300)]
        slots = {cluster.keyslot(k) for k in keys}
        owners = {cluster.owner(s).index for s in slots}
        assert len(owners) == 3
        for k in keys:
            assert rc.set(k, k.upper())
        assert [rc.get(k) for k in keys] == [k.upper() for k in keys]
        for k in keys[:: 50]:
            assert _read_direct(cluster, k) == k.upper()
        # A pipeline across slots (redis-py splits it per node).
        pipe = rc.pipeline()
        for k in keys[:60]:
            pipe.incr(k + ":n")
        assert pipe.execute() == [1] * 60
        # MULTI/EXEC on one slot, through the owner's listener.
        tag = "{app:tx" + str(protocol) + "}"
        node = rc.get_node_from_key(tag)
        conn = rc.get_redis_connection(node)
        with conn.pipeline(transaction=True) as tx:
            tx.set(tag + "a", 1).incr(tag + "a").get(tag + "a")
            assert tx.execute() == [True, 2, "2"]
    finally:
        rc.close()


def test_readonly_replica_reads(cluster):
    from redis.cluster import LoadBalancingStrategy

    keys = [f"app:ro:{i}" for i in range(60)]
    writer = _redis_py_cluster(cluster, 2)
    try:
        for k in keys:
            writer.set(k, "r")
    finally:
        writer.close()
    before = {r.index: r.info("commandstats").get("cmdstat_get", {}).get("calls", 0) for r in cluster.replicas()}
    reader = _redis_py_cluster(cluster, 3, load_balancing_strategy=LoadBalancingStrategy.RANDOM_REPLICA)
    try:
        for k in keys:
            wait_until(lambda k=k: reader.get(k) == "r", 5, f"{k} on a replica")
    finally:
        reader.close()
    after = {r.index: r.info("commandstats").get("cmdstat_get", {}).get("calls", 0) for r in cluster.replicas()}
    assert all(after[i] > before[i] for i in before), (before, after)
    # READONLY itself, raw: the replica answers a read of its master's key.
    replica = cluster.replicas()[0]
    key = next(k for k in keys if cluster.owner(cluster.keyslot(k)).index != replica.index
               and replica in cluster.replicas_of(cluster.owner(cluster.keyslot(k))))  # fmt: skip
    payload = C("GET", key) + C("READONLY") + C("GET", key) + C("READWRITE") + C("GET", key)
    via, direct = _both(replica, payload, client_auth=C("AUTH", CLIENT_PASSWORD),
                        server_auth=C("AUTH", DEFAULT_SERVER_PASSWORD), replies=6)  # fmt: skip
    assert via.data == direct.data
    assert via.replies[1:] == [via.replies[1], "OK", b"r", "OK", via.replies[5]]
    assert str(via.replies[1]).startswith("MOVED ")


@pytest.mark.parametrize("client", ["ioredis", "node-redis"])
def test_node_clients(cluster, client):
    keys = _keys_for_every_master(cluster, 4)
    cmds = [["SET", k, f"{client}-{k}"] for k in keys] + [["GET", k] for k in keys]
    out = node_cluster_run(client, cluster.startup_nodes[:1], cmds, password=CLIENT_PASSWORD,
                           spubsub={"channel": "app:news", "message": f"hello-{client}"})  # fmt: skip
    assert out["connected"] and out["error"] is None, out
    assert [r.get("ok") for r in out["results"]] == ["OK"] * len(keys) + [f"{client}-{k}" for k in keys], out
    assert out["received"] == f"hello-{client}"
    for k in keys:
        assert _read_direct(cluster, k) == f"{client}-{k}"


def test_node_redis_resp3_replicas(cluster):
    keys = _keys_for_every_master(cluster, 2)
    out = node_cluster_run("node-redis", cluster.startup_nodes[:1], [["SET", k, "x"] for k in keys],
                           password=CLIENT_PASSWORD, resp=3)  # fmt: skip
    assert [r.get("ok") for r in out["results"]] == ["OK"] * len(keys), out
    out = node_cluster_run("node-redis", cluster.startup_nodes[:1], [["GET", k] for k in keys],
                           password=CLIENT_PASSWORD, resp=3, replicas=True)  # fmt: skip
    assert [r.get("ok") for r in out["results"]] == ["x"] * len(keys), out


def test_pubsub_across_nodes_and_sharded_pubsub(cluster):
    from harness import redis_py

    a, b = cluster.nodes[0], cluster.nodes[4]
    sub = redis_py(a.listener, password=CLIENT_PASSWORD, protocol=3)
    pub = redis_py(b.listener, password=CLIENT_PASSWORD)
    try:
        ps = sub.pubsub()
        ps.subscribe("app:global")
        assert ps.get_message(timeout=2)["type"] == "subscribe"
        # Classic PUBLISH on any node reaches subscribers on every node (over
        # the bus; the count it answers is the publishing node's own: 0).
        assert pub.publish("app:global", "hi") == 0
        msg = ps.get_message(timeout=5)
        assert msg and msg["data"] == "hi"
        ps.close()
        # SSUBSCRIBE on the shard's master; SPUBLISH elsewhere is MOVED.
        channel = "app:shard"
        owner = cluster.owner(cluster.keyslot(channel))
        other = next(n for n in cluster.masters() if n is not owner)
        r = raw_exchange(other.listener, C("AUTH", CLIENT_PASSWORD) + C("SPUBLISH", channel, "x"), until_replies=2)
        assert r.replies[1] == resp.Error(f"MOVED {cluster.keyslot(channel)} 127.0.0.1:{owner.envoy.port}")
        shard_sub = redis_py(owner.listener, password=CLIENT_PASSWORD, protocol=3)
        shard_pub = redis_py(owner.listener, password=CLIENT_PASSWORD)
        try:
            sps = shard_sub.pubsub()
            sps.ssubscribe(channel)
            assert sps.get_sharded_message(timeout=2)["type"] == "ssubscribe"
            assert shard_pub.execute_command("SPUBLISH", channel, "sharded") == 1
            msg = sps.get_sharded_message(timeout=2)
            assert msg and msg["data"] == "sharded"
            sps.close()
        finally:
            shard_sub.close()
            shard_pub.close()
    finally:
        sub.close()
        pub.close()


# ------------------------------------------------------------------ ACLs


ACL_COMMANDS = [
    ("CLUSTER", "SLOTS"),
    ("CLUSTER", "MYID"),
    ("CLUSTER", "KEYSLOT", "app:x"),
    ("CLUSTER", "COUNTKEYSINSLOT", "0"),
    ("CLUSTER", "SHARDS"),
    ("CLUSTER", "NODES"),
    ("CLUSTER", "INFO"),
    ("CLUSTER", "SETSLOT", "0", "STABLE"),
    ("CLUSTER", "FAILOVER"),
    ("CLUSTER", "RESET"),
    ("CLUSTER", "FORGET", "0000000000000000000000000000000000000000"),
    ("CLUSTER", "GETKEYSINSLOT", "0", "1"),
    ("CLUSTER", "NOSUCH"),
    ("CLUSTER",),
    ("ASKING",),
    ("READONLY",),
    ("READWRITE",),
    ("GET", "app:x"),
    ("SET", "app:y", "1"),
    ("GET", "other:x"),
    ("MGET", "app:x", "other:x"),
    ("SPUBLISH", "app:ch", "m"),
    ("SPUBLISH", "other:ch", "m"),
    ("PUBLISH", "other:ch", "m"),
    ("MIGRATE", "127.0.0.1", "1", "app:x", "0", "100"),
    ("COMMAND", "COUNT"),
    ("PING",),
]
# Replies that change from one call to the next (ping times, offsets): both
# sides must agree on success or the exact error, not on the text.
VOLATILE = {("CLUSTER", "SHARDS"), ("CLUSTER", "NODES"), ("CLUSTER", "INFO")}


def _shape(cmd, reply):
    if isinstance(reply, resp.Error) or tuple(cmd) not in VOLATILE:
        return reply
    return "<volatile>"


@pytest.mark.parametrize("user", sorted(USERS))
def test_acl_verdicts_match_the_nodes_on_every_node(cluster, user):
    password = USERS[user][0]
    payload = b"".join(C(*cmd) for cmd in ACL_COMMANDS)
    for n in cluster.nodes:
        via, direct = _both(n, payload, client_auth=C("AUTH", user, password),
                            server_auth=C("AUTH", user, password), replies=len(ACL_COMMANDS) + 1)  # fmt: skip
        assert via.replies[0] == "OK" and direct.replies[0] == "OK"
        got = [_shape(c, r) for c, r in zip(ACL_COMMANDS, via.replies[1:])]
        want = [_shape(c, r) for c, r in zip(ACL_COMMANDS, direct.replies[1:])]
        for cmd, g, w in zip(ACL_COMMANDS, got, want):
            assert g == w, (n, user, cmd, g, w)
        assert len(got) == len(ACL_COMMANDS)
    # The verdicts are not all alike: this user is refused something and
    # allowed something.
    kinds = {isinstance(r, resp.Error) and str(r).startswith("NOPERM") for r in via.replies[1:]}
    assert kinds == {True, False}


def test_restricted_user_runs_a_cluster_client(cluster):
    rc = _redis_py_cluster(cluster, 3, username="app", password="apppw")
    try:
        keys = [f"app:acl:{i}" for i in range(60)]
        for k in keys:
            assert rc.set(k, "1")
        assert rc.mget_nonatomic(keys) == ["1"] * len(keys)
        from redis.exceptions import NoPermissionError

        with pytest.raises(NoPermissionError):
            rc.get("other:key")
    finally:
        rc.close()
    out = node_cluster_run("ioredis", cluster.startup_nodes[:1], [["SET", "app:io", "1"], ["GET", "other:io"]],
                           username="app", password="apppw")  # fmt: skip
    assert out["connected"], out
    assert out["results"][0] == {"ok": "OK"}
    assert out["results"][1]["error"].startswith("NOPERM"), out
    # A user without topology rights cannot start a cluster client, with
    # Redis's own refusal.
    r = raw_exchange(cluster.nodes[0].listener, C("AUTH", "plain", "plainpw") + C("CLUSTER", "SLOTS"), until_replies=2)
    assert str(r.replies[1]).startswith("NOPERM")


# ------------------------------------------------------------------ topology changes (last)


class Load:
    """Clients writing and reading while the topology changes: redis-py
    RedisCluster in threads, each on its own keys, counting what they see."""

    def __init__(self, cluster: RedisCluster, keys: list[str], threads: int = 3):
        self.cluster = cluster
        self.keys = keys
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.ops = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i, threads), daemon=True) for i in range(threads)]

    def _run(self, me: int, of: int):
        rc = _redis_py_cluster(self.cluster, 2)
        mine = self.keys[me::of]
        n = 0
        try:
            while not self.stop.is_set():
                k = mine[n % len(mine)]
                try:
                    rc.set(k, str(n))
                    got = rc.get(k)
                    if got != str(n):
                        raise AssertionError(f"{k}: wrote {n}, read {got!r}")
                    with self.lock:
                        self.ops += 1
                except Exception as e:  # noqa: BLE001
                    with self.lock:
                        self.errors.append(f"{type(e).__name__}: {e}")
                n += 1
        finally:
            rc.close()

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


def test_live_slot_migration_ask_and_moved(cluster):
    key0 = "app:{mig}0"
    slot = cluster.keyslot(key0)
    src = cluster.owner(slot)
    dst = next(m for m in cluster.masters() if m is not src)
    keys = [f"app:{{mig}}{i}" for i in range(200)]
    with src.admin() as a:
        for k in keys:
            a.set(k, "before")
    with Load(cluster, keys) as load:
        wait_until(lambda: load.ops > 50, 10, "clients running")
        # Half way: the slot MIGRATING/IMPORTING, one key moved.
        assert cluster.start_migration(slot, dst) is src
        assert cluster.migrate_keys(slot, src, dst, keys=[key0]) == 1
        auth = dict(client_auth=C("AUTH", CLIENT_PASSWORD), server_auth=C("AUTH", DEFAULT_SERVER_PASSWORD))
        via, direct = _both(src, C("GET", key0), replies=2, **auth)
        assert via.data == direct.data
        assert via.replies[1] == resp.Error(f"ASK {slot} 127.0.0.1:{dst.envoy.port}")
        via, direct = _both(dst, C("GET", key0) + C("ASKING") + C("GET", key0), replies=4, **auth)
        # (The value itself changes: the clients keep writing it.)
        assert via.replies[:3] == direct.replies[:3]
        assert via.replies[1] == resp.Error(f"MOVED {slot} 127.0.0.1:{src.envoy.port}")
        assert via.replies[2] == "OK" and isinstance(via.replies[3], bytes)
        # The rest of the slot moves while the clients run.
        time.sleep(0.5)
        assert cluster.migrate_keys(slot, src, dst, pace=0.05) >= len(keys) - 1
        cluster.end_migration(slot, src, dst)
        ops_at_switch = load.ops
        wait_until(lambda: load.ops > ops_at_switch + 50, 10, "clients after the migration")
    assert load.errors == [], load.errors[:5]
    via, direct = _both(src, C("GET", key0), replies=2, **auth)
    assert via.data == direct.data
    assert via.replies[1] == resp.Error(f"MOVED {slot} 127.0.0.1:{dst.envoy.port}")
    with dst.admin() as a, src.admin() as b:
        assert a.exists(*keys) == len(keys)
        assert int(b.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)) == 0
    cluster.wait_converged()


def test_cluster_failover_clients_follow(cluster):
    master = cluster.masters()[0]
    replica = cluster.replicas_of(master)[0]
    keys = [_key_in_slot_of(cluster, master, "app:fo:")] + [f"app:fo:{i}" for i in range(100)]
    with Load(cluster, keys) as load:
        wait_until(lambda: load.ops > 50, 10, "clients running")
        cluster.failover(replica)
        ops_at_switch = load.ops
        wait_until(lambda: load.ops > ops_at_switch + 100, 15, "clients after the failover")
        errors_during = list(load.errors)
    assert master.role() == "slave" and replica.role() == "master"
    # A coordinated failover pauses writes and then redirects: redis-py
    # follows the MOVED without an error.
    assert errors_during == [], errors_during[:5]
    key = keys[0]
    r = raw_exchange(master.listener, C("AUTH", CLIENT_PASSWORD) + C("SET", key, "x"), until_replies=2)
    assert r.replies[1] == resp.Error(f"MOVED {cluster.keyslot(key)} 127.0.0.1:{replica.envoy.port}")
    # And back, so the roles are as they were.
    cluster.failover(master)


def test_replica_restarted_while_loading(cluster):
    replica = cluster.replicas()[0]
    master = cluster.by_listener_port(int(replica.info("replication")["master_port"]))
    key = _key_in_slot_of(cluster, master, "app:load:")
    with master.admin() as a:
        a.set(key, "loaded")
        tag = key[key.index("{"):key.index("}") + 1]
        pipe = a.pipeline(transaction=False)
        for i in range(20000):
            pipe.set(f"app:bulk:{tag}{i}", "x")
        pipe.execute()
    wait_until(lambda: replica.info("replication")["master_repl_offset"]
               == master.info("replication")["master_repl_offset"], 10, "the replica to catch up")  # fmt: skip
    with replica.admin() as a:
        a.execute_command("SAVE")
    replica.redis.stop()
    conf = replica.redis.dir / "redis.conf"
    conf.write_text(conf.read_text() + "key-load-delay 100\nloading-process-events-interval-bytes 1024\n")
    replica.redis.proc.start()
    try:
        wait_until(lambda: _loading(replica), 15, "the replica to be loading")
        # A keyed command meets the cluster check first (-CLUSTERDOWN until
        # the node has heard from its peers), a keyless one -LOADING.
        payload = C("READONLY") + C("GET", key) + C("DBSIZE")
        via = raw_exchange(replica.listener, C("AUTH", CLIENT_PASSWORD) + payload, until_replies=4)
        direct = raw_exchange(replica.direct, C("AUTH", DEFAULT_SERVER_PASSWORD) + payload, until_replies=4)
        assert via.data == direct.data
        assert via.replies[0] == "OK"
        assert via.replies[3] == resp.Error("LOADING Redis is loading the dataset in memory"), via
    finally:
        with replica.admin() as a:
            a.config_set("key-load-delay", 0)
    wait_until(lambda: not _loading(replica), 60, "the replica to finish loading")
    cluster.wait_converged(60)
    r = raw_exchange(replica.listener, C("AUTH", CLIENT_PASSWORD) + C("READONLY") + C("GET", key), until_replies=3)
    assert r.replies == ["OK", "OK", b"loaded"]


def _loading(node) -> bool:
    try:
        return node.info("persistence").get("loading") == 1
    except Exception:  # noqa: BLE001 (not up yet)
        return False
