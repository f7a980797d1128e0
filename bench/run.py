#!/usr/bin/env python3
"""One Redis behind six paths, measured side by side in one run:

  direct             redis-benchmark -> redis-server
  tcp_proxy          -> Envoy tcp_proxy -> redis-server             (the bare sidecar)
  wasm_floor         -> Envoy [bench/floor: a proxy-wasm filter that only reads
                        each chunk + tcp_proxy]: what Envoy's Wasm machinery
                        costs any filter that looks at its bytes
  filter_passthrough -> Envoy [envoy-redis-auth, no auth configured + tcp_proxy]
  filter             -> Envoy [envoy-redis-auth: client AUTH answered, server AUTH injected]
  filter_acl         -> the same, as a user with key patterns and a command
                        allow-list, so that every command is checked
  redis_proxy        -> Envoy's native redis_proxy (downstream_auth_passwords)

Every path authenticates (redis-benchmark -a): direct, tcp_proxy,
wasm_floor and filter_passthrough with the server password, filter with the client
password, filter_acl as the restricted user, redis_proxy with its
downstream password.

The proxy is made the bottleneck: each Envoy runs one worker
(`--concurrency 1`) with every thread pinned to CPU 0, Redis and
redis-benchmark are pinned to CPU 1 (`--no-pin` leaves scheduling alone).
For each configuration (pipeline depth, clients, value size) and test (SET,
GET) the targets take turns, round after round, in a rotated order; each
figure is the median over the rounds:

  rps          redis-benchmark's requests per second
  p50_ms, p99_ms  its latency percentiles (--csv)
  cpu_us       Envoy's CPU time per request, in microseconds: the sum of
               se.sum_exec_runtime over the Envoy's threads
               (/proc/<pid>/task/*/sched) across the run, divided by the
               requests (none for direct)

and the ratios to tcp_proxy and to redis_proxy. Written to
bench/results/<name>.csv with the machine in <name>.json, and drawn in
<name>.png (matplotlib; throughput, CPU per request and p99 per target and
depth, ratios to tcp_proxy annotated).

Usage (./dev bench [ARGS] builds the wasm and installs what this needs):
  python3 bench/run.py --quick        depth 16, 50 clients, 16 B, 3 rounds (a minute)
  python3 bench/run.py                depths 1/16/64, 50/500 clients, 16 B/1 KiB/64 KiB,
                                      5 rounds (the README's chart; long)
  options: --depths, --clients, --sizes, --rounds, --requests (scale), --targets,
           --name, --no-pin
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "e2e"))

from harness import Run  # noqa: E402
from harness.paths import envoy_binary  # noqa: E402

CLIENT_PASSWORD = "bench-client-pw"
# redis-benchmark's SET/GET use the key "key:__rand_int__"; the user may
# read and write only those keys, and run only what redis-benchmark sends.
ACL_USER = "bench"
ACL_PASSWORD = "bench-acl-pw"
ACL_LINE = f"user {ACL_USER} on >{ACL_PASSWORD} ~key:* ~counter:* -@all +set +get +ping +config|get"
TESTS = ("set", "get")
TARGETS = ("direct", "tcp_proxy", "wasm_floor", "filter_passthrough", "filter", "filter_acl", "redis_proxy")
# bench/floor/: a proxy-wasm filter that only reads each chunk (./dev bench
# builds it, as it builds the filter).
FLOOR_WASM = ROOT / "bench" / "floor" / "target" / "wasm32-wasip1" / "release" / "floor.wasm"
ENVOY_CPU = 0
LOAD_CPU = 1
RESULTS = ROOT / "bench" / "results"


@dataclass
class Target:
    name: str
    port: int
    password: str
    user: str | None = None
    envoy_pid: int | None = None
    ready_s: float | None = None


# ------------------------------------------------------------------ measuring

def threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return []


def pin(pid: int, cpu: int) -> None:
    """Every thread of `pid` onto `cpu` (threads started later inherit it
    from the thread that starts them)."""
    for tid in threads(pid):
        try:
            os.sched_setaffinity(tid, {cpu})
        except (ProcessLookupError, PermissionError):
            pass


def cpu_seconds(pid: int) -> float:
    """CPU time of all threads of `pid` so far, from the scheduler's
    nanosecond accounting (se.sum_exec_runtime, in ms); /proc/<pid>/stat's
    clock ticks where /proc/*/sched is missing."""
    total = 0.0
    found = False
    for tid in threads(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/sched") as f:
                for line in f:
                    if line.startswith("se.sum_exec_runtime"):
                        total += float(line.split(":")[1]) / 1000.0
                        found = True
                        break
        except FileNotFoundError:
            continue
    if found:
        return total
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def benchmark(target: Target, test: str, requests: int, clients: int, depth: int, size: int,
              pin_load: bool) -> dict[str, float]:  # fmt: skip
    login = ["--user", target.user] if target.user else []
    argv = [
        "redis-benchmark", "-h", "127.0.0.1", "-p", str(target.port), *login, "-a", target.password,
        "-t", test, "-n", str(requests), "-c", str(clients), "-P", str(depth), "-d", str(size), "--csv",
    ]  # fmt: skip
    if pin_load:
        argv = ["taskset", "-c", str(LOAD_CPU), *argv]
    before = cpu_seconds(target.envoy_pid) if target.envoy_pid else 0.0
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=True).stdout
    after = cpu_seconds(target.envoy_pid) if target.envoy_pid else 0.0
    rows = list(csv.reader(io.StringIO(out)))
    header, row = rows[0], rows[1]
    get = lambda col: float(row[header.index(col)])  # noqa: E731
    return {
        "rps": get("rps"),
        "p50_ms": get("p50_latency_ms"),
        "p99_ms": get("p99_latency_ms"),
        "cpu_us": (after - before) / requests * 1e6 if target.envoy_pid else float("nan"),
    }


def requests_for(depth: int, clients: int, size: int, scale: float) -> int:
    """About a second of work on the 2-core machine (less for 64 KiB
    values), at least two pipelines per client."""
    base = {1: 50_000, 16: 500_000, 64: 1_000_000}.get(depth, 200_000)
    if size >= 65536:
        base //= 40
    elif size >= 1024:
        base //= 2
    return max(int(base * scale), clients * depth * 2)


# ------------------------------------------------------------------ targets

def start_targets(scope, names: list[str], pin_cpus: bool) -> dict[str, Target]:
    redis = scope.redis("password", extra_conf=["maxclients 10000"])
    if pin_cpus:
        pin(redis.proc.pid, LOAD_CPU)
    env = {"REDIS_PASSWORD": redis.password}
    filter_cfg = {"downstream": {"password": CLIENT_PASSWORD}, "upstream": {"password": {"env": "REDIS_PASSWORD"}}}
    acl_cfg = {"downstream": {"password": CLIENT_PASSWORD, "users": [ACL_LINE]},
               "upstream": {"password": {"env": "REDIS_PASSWORD"}}}  # fmt: skip
    one = {"concurrency": 1, "component_log_level": None}
    made: dict[str, Target] = {}
    for name in names:
        if name == "direct":
            made[name] = Target(name, redis.port, redis.password)
            continue
        began = time.monotonic()
        if name == "tcp_proxy":
            envoy = scope.envoy(redis, name=name, **one)
            target = Target(name, envoy.port, redis.password)
        elif name == "wasm_floor":
            if not FLOOR_WASM.exists():
                raise SystemExit(f"{FLOOR_WASM} is missing: ./dev bench builds it")
            envoy = scope.envoy(redis, name=name, plugin_config={}, wasm_path=FLOOR_WASM, **one)
            target = Target(name, envoy.port, redis.password)
        elif name == "filter_passthrough":
            envoy = scope.envoy(redis, name=name, plugin_config={}, **one)
            target = Target(name, envoy.port, redis.password)
        elif name == "filter":
            envoy = scope.envoy(redis, name=name, plugin_config=filter_cfg, host_env=env, **one)
            target = Target(name, envoy.port, CLIENT_PASSWORD)
        elif name == "filter_acl":
            envoy = scope.envoy(redis, name=name, plugin_config=acl_cfg, host_env=env, **one)
            target = Target(name, envoy.port, ACL_PASSWORD, ACL_USER)
        elif name == "redis_proxy":
            envoy = scope.envoy(redis, name=name, mode="redis_proxy", redis_downstream_password=CLIENT_PASSWORD,
                                redis_upstream_password=redis.password, **one)  # fmt: skip
            target = Target(name, envoy.port, CLIENT_PASSWORD)
        else:
            raise SystemExit(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
        # Start to listening, the Wasm VMs created and configured: what a
        # filter adds here is its VM's start (one sample; wall-clock).
        target.ready_s = round(time.monotonic() - began, 3)
        target.envoy_pid = envoy.proc.pid
        if pin_cpus:
            pin(envoy.proc.pid, ENVOY_CPU)
        made[name] = target
    return made


# ------------------------------------------------------------------ the machine

def machine() -> dict[str, str]:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    def version(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    import re

    envoy = re.search(r"version: \S*?/(\d+\.\d+\.\d+)/", version([envoy_binary(), "--version"]))
    redis = re.search(r"v=(\S+)", version(["redis-server", "--version"]))
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": model,
        "kernel": platform.release(),
        "envoy": envoy.group(1) if envoy else "?",
        "redis": redis.group(1) if redis else "?",
        "wasm_bytes": str((ROOT / "target/wasm32-wasip1/release/envoy_redis_auth.wasm").stat().st_size)
        if (ROOT / "target/wasm32-wasip1/release/envoy_redis_auth.wasm").exists() else "?",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


# ------------------------------------------------------------------ output

def ratio(a: float, b: float) -> float:
    return a / b if b and b == b and a == a else float("nan")


def summarize(samples: dict, names: list[str]) -> list[dict]:
    rows = []
    for (depth, clients, size, test), per_target in samples.items():
        med = {n: {k: statistics.median(r[k] for r in per_target[n]) for k in per_target[n][0]}
               for n in names if per_target.get(n)}  # fmt: skip
        tcp, rp = med.get("tcp_proxy"), med.get("redis_proxy")
        for n, m in med.items():
            rows.append({
                "depth": depth, "clients": clients, "size": size, "test": test, "target": n,
                "rounds": len(per_target[n]),
                "rps": round(m["rps"], 1), "p50_ms": m["p50_ms"], "p99_ms": m["p99_ms"],
                "cpu_us": round(m["cpu_us"], 4),
                "rps_vs_tcp_proxy": round(ratio(m["rps"], tcp["rps"]), 3) if tcp else "",
                "cpu_vs_tcp_proxy": round(ratio(m["cpu_us"], tcp["cpu_us"]), 3) if tcp else "",
                "p99_vs_tcp_proxy": round(ratio(m["p99_ms"], tcp["p99_ms"]), 3) if tcp else "",
                "rps_vs_redis_proxy": round(ratio(m["rps"], rp["rps"]), 3) if rp else "",
                "cpu_vs_redis_proxy": round(ratio(m["cpu_us"], rp["cpu_us"]), 3) if rp else "",
            })  # fmt: skip
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def draw(path: Path, rows: list[dict], info: dict[str, str]) -> bool:
    """Throughput, CPU per request and p99 per target and depth, for the
    first (clients, size) measured, SET and GET averaged; ratios to
    tcp_proxy over the bars. False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    clients, size = rows[0]["clients"], rows[0]["size"]
    sel = [r for r in rows if r["clients"] == clients and r["size"] == size]
    depths = sorted({r["depth"] for r in sel})
    targets = [t for t in TARGETS if any(r["target"] == t for r in sel)]
    metrics = [("rps", "requests/s", "rps_vs_tcp_proxy"), ("cpu_us", "Envoy CPU µs / request", "cpu_vs_tcp_proxy"),
               ("p99_ms", "p99 latency (ms)", "p99_vs_tcp_proxy")]  # fmt: skip
    fig, axes = plt.subplots(len(metrics), len(depths), figsize=(max(4.2 * len(depths), 8), 9), squeeze=False)
    colors = plt.get_cmap("tab10")
    for col, depth in enumerate(depths):
        for row, (key, label, rkey) in enumerate(metrics):
            ax = axes[row][col]
            vals, ratios = [], []
            for t in targets:
                rs = [r for r in sel if r["target"] == t and r["depth"] == depth]
                v = [float(r[key]) for r in rs if r[key] == r[key]]
                q = [float(r[rkey]) for r in rs if r[rkey] not in ("", None) and r[rkey] == r[rkey]]
                vals.append(statistics.mean(v) if v else 0.0)
                ratios.append(statistics.mean(q) if q else None)
            bars = ax.bar(range(len(targets)), vals, color=[colors(i) for i in range(len(targets))])
            for b, q, t in zip(bars, ratios, targets):
                if q is not None and t != "tcp_proxy" and b.get_height() > 0:
                    ax.annotate(f"{q:.2f}×", (b.get_x() + b.get_width() / 2, b.get_height()),
                                ha="center", va="bottom", fontsize=7)  # fmt: skip
            ax.set_xticks(range(len(targets)))
            ax.set_xticklabels(targets, rotation=35, ha="right", fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
            if row == 0:
                ax.set_title(f"pipeline depth {depth}", fontsize=9)
            if col == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(
        f"redis-benchmark SET/GET (mean of the two), {clients} clients, {size} B values; one Envoy worker "
        f"pinned to its own core; ratios to tcp_proxy over the bars\n"
        f"{info['cpus']} CPUs ({info['cpu_model']}), Envoy {info['envoy']}, Redis {info['redis']}, "
        f"wasm {info['wasm_bytes']} B, medians of {info['rounds']} rounds, {info['date']}",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ------------------------------------------------------------------ main

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="depth 16, 50 clients, 16 B, 3 rounds, fewer requests")
    p.add_argument("--depths", type=int, nargs="+")
    p.add_argument("--clients", type=int, nargs="+")
    p.add_argument("--sizes", type=int, nargs="+")
    p.add_argument("--rounds", type=int)
    p.add_argument("--requests", type=float, default=1.0, help="scale the requests per run")
    p.add_argument("--targets", nargs="+", default=list(TARGETS))
    p.add_argument("--name", help="results file name (default: quick or latest)")
    p.add_argument("--no-pin", action="store_true", help="do not pin Envoy and the load to CPUs")
    a = p.parse_args()
    depths = a.depths or ([16] if a.quick else [1, 16, 64])
    clients_list = a.clients or ([50] if a.quick else [50, 500])
    sizes = a.sizes or ([16] if a.quick else [16, 1024, 65536])
    rounds = a.rounds or (3 if a.quick else 5)
    scale = a.requests * (0.25 if a.quick else 1.0)
    name = a.name or ("quick" if a.quick else "latest")
    pin_cpus = not a.no_pin and (os.cpu_count() or 1) >= 2
    if pin_cpus and subprocess.run(["which", "taskset"], capture_output=True).returncode != 0:
        raise SystemExit("taskset not found (util-linux); or run with --no-pin")

    info = machine()
    info.update({"pinned": str(pin_cpus), "rounds": str(rounds), "envoy_concurrency": "1"})
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    samples: dict = {}
    with Run.create() as run, run.scope("bench") as scope:
        targets = start_targets(scope, a.targets, pin_cpus)
        names = list(targets)
        ready = {t.name: t.ready_s for t in targets.values() if t.ready_s is not None}
        print("Envoy start to ready (s): " + ", ".join(f"{k} {v}" for k, v in ready.items()), flush=True)
        configs = [(d, c, s) for c in clients_list for s in sizes for d in depths]
        started = time.monotonic()
        for rnd in range(rounds):
            for depth, clients, size in configs:
                n = requests_for(depth, clients, size, scale)
                order = names[rnd % len(names):] + names[:rnd % len(names)]
                for test in TESTS:
                    for tname in order:
                        r = benchmark(targets[tname], test, n, clients, depth, size, pin_cpus)
                        samples.setdefault((depth, clients, size, test), {}).setdefault(tname, []).append(r)
            print(f"round {rnd + 1}/{rounds} done ({time.monotonic() - started:.0f} s)", flush=True)
    rows = summarize(samples, names)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_csv(RESULTS / f"{name}.csv", rows)
    (RESULTS / f"{name}.json").write_text(json.dumps({"machine": info, "argv": sys.argv[1:], "envoy_ready_s": ready}, indent=2) + "\n")
    drawn = draw(RESULTS / f"{name}.png", rows, info)
    print()
    print("| depth | clients | size | test | target | req/s | p99 ms | Envoy CPU µs/req | rps ×tcp | CPU ×tcp | rps ×redis_proxy |")
    print("| ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['depth']} | {r['clients']} | {r['size']} | {r['test']} | {r['target']} | {r['rps']:,.0f} "
              f"| {r['p99_ms']} | {r['cpu_us']} | {r['rps_vs_tcp_proxy']} | {r['cpu_vs_tcp_proxy']} "
              f"| {r['rps_vs_redis_proxy']} |")  # fmt: skip
    print(f"\nwrote {RESULTS / (name + '.csv')}" + (f", {RESULTS / (name + '.png')}" if drawn else
          " (no chart: pip install -r bench/requirements.txt)"))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
