"""Redis Sentinel behind the filter: a master, replicas and sentinels on
loopback, each behind its own Envoy.

    topo = start_topology(scope)          # master + 1 replica + 3 sentinels
    topo.nodes[0].envoy                   # the master's data listener (filter, data config)
    topo.sentinels[0].envoy               # a sentinel listener (filter, sentinel config)
    topo.sentinel_listeners()             # [(host, port), ...] for Sentinel clients

Every node and sentinel binds its outgoing connections to its own address
in 127.0.1.0/24 (`bind-source-addr`), and the data Envoys pass connections
from that range through a filter chain without the filter
(`bypass_sources`), the shape of a mesh where a Redis pod's own sidecar has
no filter: replication and Sentinel's links to the nodes go through the
Envoys (so the addresses Sentinel hands out are Envoy listeners) but never
meet the filter. Clients connect from 127.0.0.1 and always do.

Nodes announce their Envoy listener (`replica-announce-ip/-port`), so
Sentinel reports, and fails over to, addresses that go through the filter.
Sentinels announce their own port (`sentinel announce-ip/-port`): they talk
to each other directly; only clients use the sentinel listeners, where the
filter asks for SENTINEL_CLIENT_PASSWORD and injects Sentinel's
`requirepass` (SENTINEL_SERVER_PASSWORD), as the data listeners ask for
CLIENT_PASSWORD and inject the server's password (SERVER_PASSWORD). Peer
sentinels authenticate to each other with `sentinel sentinel-pass`.

The sentinels are `RedisServer`s of kind "sentinel" in `scope.redises`, so
the scope stops them and failure reports show their logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .envoy import Envoy
from .paths import tool
from .procs import Proc, free_port, is_listening, wait_until
from .redis_server import DEFAULT_SERVER_PASSWORD, RedisServer, _conf_quote, start_redis

SERVER_PASSWORD = DEFAULT_SERVER_PASSWORD  # requirepass + masterauth of the data nodes
CLIENT_PASSWORD = "ClientPass1"  # what clients give the data listeners
SENTINEL_SERVER_PASSWORD = "SentinelServerPass"  # Sentinel's own requirepass
SENTINEL_CLIENT_PASSWORD = "SentinelClientPass"  # what clients give the sentinel listeners
MASTER_NAME = "mymaster"
MESH_SOURCES = "127.0.1.0/24"  # node-to-node sources: the Envoys' bypass chain
ANNOUNCE_IP = "127.0.0.1"


def data_config(extra_users: Sequence[str] = ()) -> dict:
    """The data listeners' filter config: clients log in as `default` with
    CLIENT_PASSWORD; the server password comes from $REDIS_PASSWORD."""
    return {
        "downstream": {"users": [f"user default on >{CLIENT_PASSWORD} ~* &* +@all", *extra_users]},
        "upstream": {"password": {"env": "REDIS_PASSWORD"}},
    }


def sentinel_config(extra_users: Sequence[str] = ()) -> dict:
    """The sentinel listeners' filter config: clients log in as `default`
    with SENTINEL_CLIENT_PASSWORD; Sentinel's requirepass comes from
    $SENTINEL_PASSWORD; `server_version` says the server is a Sentinel (its
    commands, and only those, exist)."""
    return {
        "server_version": "sentinel-7.0",
        "downstream": {"users": [f"user default on >{SENTINEL_CLIENT_PASSWORD} ~* &* +@all", *extra_users]},
        "upstream": {"password": {"env": "SENTINEL_PASSWORD"}},
    }


@dataclass
class Node:
    """A data node: redis-server and the Envoy in front of it."""

    redis: RedisServer
    envoy: Envoy
    source: str  # bind-source-addr

    @property
    def listener(self) -> tuple[str, int]:
        return self.envoy.addr

    def info(self, section: str = "replication") -> dict[str, Any]:
        """INFO straight from the server (real password), parsed by redis-py."""
        c = self.redis.client(timeout=2)
        try:
            return c.info(section)
        finally:
            c.close()


@dataclass
class SentinelNode:
    sentinel: RedisServer  # kind "sentinel"
    envoy: Envoy
    source: str

    @property
    def listener(self) -> tuple[str, int]:
        return self.envoy.addr

    def direct(self, **kw):
        """redis-py straight to the sentinel with its real password."""
        kw.setdefault("timeout", 2)
        return self.sentinel.client(**kw)

    def command(self, *args):
        c = self.direct()
        try:
            return c.execute_command(*args)
        finally:
            c.close()


@dataclass
class Topology:
    nodes: list[Node]
    sentinels: list[SentinelNode]
    master_name: str = MASTER_NAME
    quorum: int = 2
    notes: dict[str, Any] = field(default_factory=dict)

    def sentinel_listeners(self) -> list[tuple[str, int]]:
        return [s.listener for s in self.sentinels]

    def node_at(self, addr) -> Node:
        host, port = addr[0], int(addr[1])
        for n in self.nodes:
            if n.envoy.port == port and host == ANNOUNCE_IP:
                return n
        raise LookupError(f"no node's listener is {host}:{port}")

    def reported_masters(self) -> list[tuple[str, int] | None]:
        """What each sentinel (asked directly) says the master's address is."""
        out = []
        for s in self.sentinels:
            try:
                r = s.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
                out.append((r[0], int(r[1])) if r else None)
            except Exception:  # noqa: BLE001 - a sentinel that cannot answer
                out.append(None)
        return out

    def envoys(self) -> list[Envoy]:
        return [n.envoy for n in self.nodes] + [s.envoy for s in self.sentinels]

    def stop(self) -> None:
        for e in self.envoys():
            e.stop()
        for s in self.sentinels:
            s.sentinel.stop()
        for n in self.nodes:
            n.redis.stop()


def start_sentinel(
    run_dir: Path,
    *,
    name: str,
    port: int,
    master: tuple[str, int],
    source: str,
    master_name: str = MASTER_NAME,
    quorum: int = 2,
    auth_pass: str = SERVER_PASSWORD,
    password: str = SENTINEL_SERVER_PASSWORD,
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 5000,
    timeout: float = 15.0,
) -> RedisServer:
    """`redis-server sentinel.conf --sentinel` on `port`, monitoring
    `master`; ready once it logs `+monitor master`."""
    d = run_dir / f"{name}-{port}"
    d.mkdir(parents=True, exist_ok=True)
    conf = [
        f"port {port}",
        "bind 127.0.0.1",
        "daemonize no",
        'logfile ""',
        f"dir {_conf_quote(str(d))}",
        "protected-mode no",
        f"bind-source-addr {source}",
        f"requirepass {_conf_quote(password)}",
        # Peers are reached at their announced address, directly: the
        # listening address, not the source address of the link to the
        # master (which is what Sentinel would pick by itself).
        f"sentinel announce-ip {ANNOUNCE_IP}",
        f"sentinel announce-port {port}",
        # What this sentinel sends to its peers, whose requirepass is the same.
        f"sentinel sentinel-pass {_conf_quote(password)}",
        f"sentinel monitor {master_name} {master[0]} {master[1]} {quorum}",
        f"sentinel auth-pass {master_name} {_conf_quote(auth_pass)}",
        f"sentinel down-after-milliseconds {master_name} {down_after_ms}",
        f"sentinel failover-timeout {master_name} {failover_timeout_ms}",
        f"sentinel parallel-syncs {master_name} 1",
    ]
    conf_path = d / "sentinel.conf"
    conf_path.write_text("\n".join(conf) + "\n")
    proc = Proc(name, [tool("redis-server"), str(conf_path), "--sentinel"], d / "sentinel.log", cwd=d)
    proc.start()
    try:
        wait_until(
            lambda: is_listening(port) and "+monitor master" in proc.log_text(),
            timeout,
            f"{name} on port {port}",
            procs=[proc],
        )
    except Exception:
        proc.stop()
        raise
    return RedisServer(
        name=name, host="127.0.0.1", port=port, kind="sentinel", dir=d, proc=proc,
        password=password, conf_lines=conf,
    )  # fmt: skip


def start_topology(
    scope,
    *,
    replicas: int = 1,
    sentinels: int = 3,
    quorum: int = 2,
    data_users: Sequence[str] = (),
    sentinel_users: Sequence[str] = (),
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 5000,
    envoy_opts: dict | None = None,
    timeout: float = 30.0,
) -> Topology:
    """Start Envoys (first: their ports are what the nodes announce), then
    the master, the replicas and the sentinels; return once replication is
    up and every sentinel knows every replica and every other sentinel.
    Everything is registered with `scope` (envoys, redises)."""
    eo = {"concurrency": 1, **(envoy_opts or {})}
    n_nodes = 1 + replicas
    node_ports = [free_port() for _ in range(n_nodes)]
    sentinel_ports = [free_port() for _ in range(sentinels)]
    data_envoys = [
        scope.envoy(
            ("127.0.0.1", p),
            start=False,
            name=f"envoy-node{i}",
            plugin_config=data_config(data_users),
            host_env={"REDIS_PASSWORD": SERVER_PASSWORD},
            bypass_sources=[MESH_SOURCES],
            **eo,
        )
        for i, p in enumerate(node_ports)
    ]
    sentinel_envoys = [
        scope.envoy(
            ("127.0.0.1", p),
            start=False,
            name=f"envoy-sentinel{i}",
            plugin_config=sentinel_config(sentinel_users),
            host_env={"SENTINEL_PASSWORD": SENTINEL_SERVER_PASSWORD},
            **eo,
        )
        for i, p in enumerate(sentinel_ports)
    ]
    # One after the other, from this thread: a Proc dies with the thread
    # that started it (PR_SET_PDEATHSIG), so no thread pool here.
    for e in data_envoys + sentinel_envoys:
        e.start()

    master_listener = data_envoys[0].addr
    nodes: list[Node] = []
    for i, (port, envoy) in enumerate(zip(node_ports, data_envoys)):
        source = f"127.0.1.{10 + i}"
        extra = [
            f"masterauth {_conf_quote(SERVER_PASSWORD)}",
            f"replica-announce-ip {ANNOUNCE_IP}",
            f"replica-announce-port {envoy.port}",
            f"bind-source-addr {source}",
            "repl-diskless-sync-delay 0",  # no 5 s wait before each full sync
        ]
        if i > 0:
            extra.append(f"replicaof {master_listener[0]} {master_listener[1]}")
        r = start_redis(scope.dir, "password", name=f"node{i}", port=port, extra_conf=extra)
        scope.redises.append(r)
        nodes.append(Node(r, envoy, source))

    def replication_up():
        return all(n.info().get("master_link_status") == "up" for n in nodes[1:])

    wait_until(replication_up, timeout, "replicas in sync with the master through its Envoy")

    snodes: list[SentinelNode] = []
    for i, (port, envoy) in enumerate(zip(sentinel_ports, sentinel_envoys)):
        source = f"127.0.1.{20 + i}"
        s = start_sentinel(
            scope.dir, name=f"sentinel{i}", port=port, master=master_listener, source=source,
            quorum=quorum, down_after_ms=down_after_ms, failover_timeout_ms=failover_timeout_ms,
        )  # fmt: skip
        scope.redises.append(s)
        snodes.append(SentinelNode(s, envoy, source))

    topo = Topology(nodes, snodes, quorum=quorum)
    wait_until(lambda: mesh_formed(topo), timeout, "sentinels that know every replica and every peer")
    return topo


def mesh_formed(topo: Topology) -> bool:
    """Every sentinel (asked directly) knows the master at its listener,
    every replica at its listener (link up), and every other sentinel."""
    master = topo.nodes[0]
    want_replicas = {(ANNOUNCE_IP, n.envoy.port) for n in topo.nodes if n is not master}
    want_peers = {(ANNOUNCE_IP, s.sentinel.port) for s in topo.sentinels}
    for s in topo.sentinels:
        try:
            m = s.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", topo.master_name)
            if not m or (m[0], int(m[1])) != (ANNOUNCE_IP, master.envoy.port):
                return False
            c = s.direct()
            try:
                reps = c.sentinel_slaves(topo.master_name)
                peers = c.sentinel_sentinels(topo.master_name)
            finally:
                c.close()
            got = {(r["ip"], int(r["port"])) for r in reps if r.get("master-link-status") == "ok"}
            if got != want_replicas:
                return False
            got_peers = {(p["ip"], int(p["port"])) for p in peers}
            if got_peers != want_peers - {(ANNOUNCE_IP, s.sentinel.port)}:
                return False
        except Exception:  # noqa: BLE001 - not there yet
            return False
    return True
