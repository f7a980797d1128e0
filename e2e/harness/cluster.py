"""A real Redis Cluster on loopback, every node behind its own Envoy with the
filter, the way a mesh intercepts pod IPs.

    node i:   redis-server 127.0.0.1:P_i (bus P_i+10000), cluster-enabled,
              requirepass/masterauth = the server password,
              bind-source-addr 127.0.1.(i+1)
    Envoy i:  listener 127.0.0.1:L_i -> 127.0.0.1:P_i, two filter chains:
              source 127.0.1.0/24  tcp_proxy only   (node to node)
              anyone else          filter + tcp_proxy (clients)
    announce: cluster-announce-ip 127.0.0.1, cluster-announce-port L_i,
              cluster-announce-bus-port P_i+10000

So `CLUSTER SLOTS`/`SHARDS`/`NODES`, `MOVED` and `ASK` name the filtered
listeners, and cluster-aware clients reach every node through the filter.
Replicas connect to their master's announced address too, but from their
own 127.0.1.x source (Redis 7's `bind-source-addr`), which selects the chain
without the filter: as in a mesh, where replication leaves a Redis pod
through that pod's own sidecar, which has no filter. The cluster bus goes
node to node directly.

The cluster is created the way an operator does it, with
`redis-cli --cluster create` over the nodes' own addresses and the server
password, while every node still announces its own port; only then does
each node start announcing its listener (`CONFIG SET
cluster-announce-port`). `redis-cli --cluster` follows the announced
addresses for its final check, and through the filter the server password
is (rightly) refused: operator tools belong on the node-to-node path (in
Kubernetes: run inside a Redis pod).
"""

from __future__ import annotations

import random
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Mapping

from .clients import run_node_runner
from .envoy import Envoy
from .paths import E2E_DIR, tool
from .procs import HarnessError, _bindable, wait_until
from .redis_server import DEFAULT_SERVER_PASSWORD, RedisServer
from .scope import Scope

NODE_SOURCES = "127.0.1.0/24"


def node_source(index: int) -> str:
    """The address node `index` binds its outgoing connections to."""
    return f"127.0.1.{index + 1}"


def _cluster_ports(count: int, rng: random.Random) -> list[int]:
    """`count` ports P with P and P+10000 (the bus) free on 127.0.0.1."""
    ports: list[int] = []
    while len(ports) < count:
        p = rng.randrange(20000, 30000)
        if p in ports or p + 10000 in ports:
            continue
        if _bindable("127.0.0.1", p) and _bindable("127.0.0.1", p + 10000):
            ports.append(p)
    return ports


@dataclass
class ClusterNode:
    index: int
    redis: RedisServer
    envoy: Envoy

    @property
    def listener(self) -> tuple[str, int]:
        """Where clients reach this node: through Envoy and the filter."""
        return self.envoy.addr

    @property
    def direct(self) -> tuple[str, int]:
        return self.redis.addr

    @property
    def source(self) -> str:
        return node_source(self.index)

    def admin(self, **kw):
        """redis-py straight to the node with the server password (the
        operator's path)."""
        return self.redis.client(**kw)

    def info(self, section: str) -> dict[str, Any]:
        with self.admin() as c:
            return c.info(section)

    def node_id(self) -> str:
        with self.admin() as c:
            return c.execute_command("CLUSTER", "MYID")

    def role(self) -> str:
        return self.info("replication")["role"]

    def __repr__(self) -> str:
        return f"<node {self.index} redis :{self.redis.port} listener :{self.envoy.port}>"


class RedisCluster:
    def __init__(self, scope: Scope, nodes: list[ClusterNode], password: str):
        self.scope = scope
        self.nodes = nodes
        self.password = password

    # -- topology, as the nodes report it
    def by_listener_port(self, port: int) -> ClusterNode:
        for n in self.nodes:
            if n.envoy.port == port:
                return n
        raise KeyError(port)

    def masters(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.role() == "master"]

    def replicas(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.role() == "slave"]

    def replicas_of(self, master: ClusterNode) -> list[ClusterNode]:
        mid = master.node_id()
        out = []
        for n in self.nodes:
            with n.admin() as c:
                line = [l for l in c.execute_command("CLUSTER", "NODES").splitlines() if "myself" in l][0]
            if line.split()[3] == mid:
                out.append(n)
        return out

    def owner(self, slot: int) -> ClusterNode:
        """The master serving `slot`, from CLUSTER SLOTS (announced ports)."""
        with self.nodes[0].admin() as c:
            for start, end, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return self.by_listener_port(int(master[1]))
        raise HarnessError(f"slot {slot} has no owner")

    def keyslot(self, key: str) -> int:
        with self.nodes[0].admin() as c:
            return int(c.execute_command("CLUSTER", "KEYSLOT", key))

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [n.listener for n in self.nodes]

    # -- waiting
    def converged(self) -> bool:
        """Every node: cluster_state ok, every other node known at its
        listener and listed in CLUSTER SLOTS, and as replica, linked to its
        master's listener."""
        want = sorted(n.envoy.port for n in self.nodes)
        for n in self.nodes:
            try:
                with n.admin() as c:
                    if c.execute_command("CLUSTER", "INFO").find("cluster_state:ok") < 0:
                        return False
                    lines = c.execute_command("CLUSTER", "NODES").splitlines()
                    ports = sorted(int(l.split()[1].split("@")[0].rsplit(":", 1)[1]) for l in lines)
                    if ports != want or any("fail" in l.split()[2] or "handshake" in l.split()[2] for l in lines):
                        return False
                    # CLUSTER SLOTS leaves out a replica until its
                    # replication offset has been gossiped (Redis 7's
                    # isReplicaAvailable): clients would not see it yet.
                    slots = c.execute_command("CLUSTER", "SLOTS")
                    if sorted({int(x[1]) for r in slots for x in r[2:]}) != want:
                        return False
                    repl = c.info("replication")
                    if repl["role"] == "slave":
                        if repl.get("master_link_status") != "up" or int(repl["master_port"]) not in want:
                            return False
            except Exception:  # noqa: BLE001 (a node restarting)
                return False
        return True

    def wait_converged(self, timeout: float = 30.0) -> None:
        wait_until(self.converged, timeout, "the cluster to agree on its listeners",
                   procs=[n.redis.proc for n in self.nodes])  # fmt: skip

    # -- operator actions (on the nodes' own addresses, never through the filter)
    def start_migration(self, slot: int, dst: ClusterNode) -> ClusterNode:
        """Mark `slot` IMPORTING on master `dst` and MIGRATING on its owner,
        which is returned: from now on a key already moved is an ASK."""
        src = self.owner(slot)
        if src is dst:
            raise ValueError("slot already on dst")
        with src.admin() as s, dst.admin() as d:
            d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src.node_id())
            s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.node_id())
        return src

    def migrate_keys(self, slot: int, src: ClusterNode, dst: ClusterNode, *, keys=None,
                     batch: int = 10, pace: float = 0.0) -> int:  # fmt: skip
        """MIGRATE `keys` (default: every key left in `slot`, `batch` at a
        time, `pace` seconds apart, so clients meet ASK meanwhile) from
        `src` to `dst` over the nodes' own addresses. Returns how many."""
        moved = 0
        with src.admin() as s:
            while True:
                todo = keys if keys is not None else s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
                if not todo:
                    return moved
                s.execute_command("MIGRATE", "127.0.0.1", dst.redis.port, "", 0, 5000,
                                  "AUTH", self.password, "KEYS", *todo)  # fmt: skip
                moved += len(todo)
                if keys is not None:
                    return moved
                if pace:
                    time.sleep(pace)

    def end_migration(self, slot: int, src: ClusterNode, dst: ClusterNode) -> None:
        """`slot` belongs to `dst` now: SETSLOT NODE on dst, src, then the
        other masters."""
        dst_id = dst.node_id()
        for n in (dst, src, *[m for m in self.masters() if m not in (src, dst)]):
            with n.admin() as c:
                c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)

    def failover(self, replica: ClusterNode, timeout: float = 30.0) -> None:
        """`CLUSTER FAILOVER` on `replica` (a coordinated manual failover),
        then wait until it is a master and the cluster has converged."""
        with replica.admin() as c:
            c.execute_command("CLUSTER", "FAILOVER")
        wait_until(lambda: replica.role() == "master", timeout, f"{replica} to become master")
        self.wait_converged(timeout)


def start_cluster(
    scope: Scope,
    plugin_config: Mapping | str,
    *,
    masters: int = 3,
    replicas: int = 1,
    password: str = DEFAULT_SERVER_PASSWORD,
    host_env: Mapping[str, str] | None = None,
    node_timeout_ms: int = 3000,
    extra_conf: list[str] | None = None,
    seed: int | None = None,
) -> RedisCluster:
    """Start (masters * (1 + replicas)) nodes, each behind an Envoy with
    `plugin_config`, create the cluster and wait until every node announces
    its listener. `host_env` defaults to REDIS_PASSWORD=<password>."""
    count = masters * (1 + replicas)
    rng = random.Random(seed)
    ports = _cluster_ports(count, rng)
    env = dict(host_env) if host_env is not None else {"REDIS_PASSWORD": password}
    nodes: list[ClusterNode] = []
    for i, port in enumerate(ports):
        envoy = scope.envoy(
            ("127.0.0.1", port),
            name=f"envoy-node{i}",
            plugin_config=plugin_config,
            host_env=env,
            bypass_sources=[NODE_SOURCES],
            concurrency=1,
        )
        conf = [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {node_timeout_ms}",
            "cluster-announce-ip 127.0.0.1",
            f"cluster-announce-bus-port {port + 10000}",
            f"masterauth {password}",
            f"bind-source-addr {node_source(i)}",
            "cluster-allow-replica-migration no",
            *(extra_conf or []),
        ]
        redis = scope.redis("password", name=f"node{i}", password=password, port=port, extra_conf=conf)
        nodes.append(ClusterNode(i, redis, envoy))
    cluster = RedisCluster(scope, nodes, password)
    create = subprocess.run(
        [tool("redis-cli"), "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
         "--cluster-replicas", str(replicas), "--cluster-yes", "-a", password, "--no-auth-warning"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if create.returncode != 0 or "[OK] All 16384 slots covered." not in create.stdout:
        raise HarnessError(f"redis-cli --cluster create failed:\n{create.stdout}\n{create.stderr}")
    for n in nodes:
        with n.admin() as c:
            c.config_set("cluster-announce-port", n.envoy.port)
            # Into redis.conf too, so a restarted node announces it again.
            c.execute_command("CONFIG", "REWRITE")
    cluster.wait_converged(60)
    return cluster


# ------------------------------------------------------------------ node clients

def node_cluster_run(client: str, nodes, commands, *, username: str | None = None,
                     password: str | None = None, resp: int = 2, replicas: bool = False,
                     spubsub: Mapping[str, str] | None = None, timeout: float = 25.0) -> dict:  # fmt: skip
    """Run `commands` with ioredis `Cluster` (client="ioredis") or node-redis
    `createCluster` ("node-redis") from `nodes` (listener addresses); see
    e2e/cluster_runner.js for the result's shape."""
    spec: dict[str, Any] = {
        "client": client,
        "nodes": [list(n) for n in nodes],
        "commands": [[str(a) for a in c] for c in commands],
        "resp": resp,
        "replicas": replicas,
        "timeoutMs": int(timeout * 1000) - 3000,
    }
    if username is not None:
        spec["username"] = username
    if password is not None:
        spec["password"] = password
    if spubsub:
        spec["spubsub"] = dict(spubsub)
    return run_node_runner(E2E_DIR / "cluster_runner.js", spec, timeout)
