#!/usr/bin/env python3
"""Throughput of one Redis behind four paths, measured in one run:

  direct       redis-benchmark -> redis-server
  tcp_proxy    -> Envoy tcp_proxy -> redis-server
  filter       -> Envoy [envoy-redis-auth wasm + tcp_proxy] -> redis-server
  filter_acl   -> the same, as a user with key patterns and a command
                  allow-list, so that every command is checked
  redis_proxy  -> Envoy's native redis_proxy -> redis-server

Every path authenticates: the direct and tcp_proxy paths with the server
password, the filter with the client password (the filter injects the
server's; filter_acl as the restricted user), redis_proxy with its
downstream password. filter_acl against filter is what the ACL check
costs. Results are printed as
requests per second and as ratios to `direct` and `tcp_proxy`, which is what
to compare across machines; absolute numbers depend on the machine.

Usage: python3 bench/run.py [--requests N] [--clients C] [--pipeline P ...]
(run ./dev setup and ./dev build first; ./dev bench does both).
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from harness import Run  # noqa: E402

CLIENT_PASSWORD = "bench-client-pw"
# redis-benchmark's SET/GET use the key "key:__rand_int__"; the user may
# read and write only those keys, and run only what redis-benchmark sends.
ACL_USER = "bench"
ACL_PASSWORD = "bench-acl-pw"
ACL_LINE = f"user {ACL_USER} on >{ACL_PASSWORD} ~key:* ~counter:* -@all +set +get +ping +config|get"
TESTS = "set,get"


def benchmark(
    port: int, password: str, requests: int, clients: int, pipeline: int, user: str | None = None
) -> dict[str, float]:
    login = ["--user", user] if user else []
    out = subprocess.run(
        [
            "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), *login, "-a", password,
            "-t", TESTS, "-n", str(requests), "-c", str(clients), "-P", str(pipeline),
            "-d", "64", "--csv",
        ],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout
    rows = csv.reader(io.StringIO(out))
    header = next(rows)
    rps = header.index("rps")
    return {row[0]: float(row[rps]) for row in rows if row}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--pipeline", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()

    with Run.create() as run, run.scope("bench") as scope:
        redis = scope.redis("password")
        paths = {
            "direct": (redis.port, redis.password),
            "tcp_proxy": (scope.envoy(redis, name="tcp-proxy").port, redis.password),
            "filter": (
                scope.envoy(
                    redis,
                    name="filter",
                    plugin_config={
                        "downstream": {"password": CLIENT_PASSWORD},
                        "upstream": {"password": {"env": "REDIS_PASSWORD"}},
                    },
                    host_env={"REDIS_PASSWORD": redis.password},
                ).port,
                CLIENT_PASSWORD,
            ),
            "filter_acl": (
                scope.envoy(
                    redis,
                    name="filter-acl",
                    plugin_config={
                        "downstream": {"password": CLIENT_PASSWORD, "users": [ACL_LINE]},
                        "upstream": {"password": {"env": "REDIS_PASSWORD"}},
                    },
                    host_env={"REDIS_PASSWORD": redis.password},
                ).port,
                ACL_PASSWORD,
                ACL_USER,
            ),
            "redis_proxy": (
                scope.envoy(
                    redis,
                    name="redis-proxy",
                    mode="redis_proxy",
                    redis_downstream_password=CLIENT_PASSWORD,
                    redis_upstream_password=redis.password,
                ).port,
                CLIENT_PASSWORD,
            ),
        }
        paths = {name: (entry + (None,))[:3] for name, entry in paths.items()}
        print(f"redis-benchmark -t {TESTS} -n {args.requests} -c {args.clients} -d 64; Envoy --concurrency 2")
        print()
        print("| pipeline | test | path | requests/s | vs direct | vs tcp_proxy | vs filter |")
        print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
        for pipeline in args.pipeline:
            results = {
                name: benchmark(port, password, args.requests, args.clients, pipeline, user)
                for name, (port, password, user) in paths.items()
            }
            for test in results["direct"]:
                direct = results["direct"][test]
                tcp = results["tcp_proxy"][test]
                unrestricted = results["filter"].get(test, 0.0) or 1.0
                for name, measured in results.items():
                    rps = measured.get(test, 0.0)
                    print(
                        f"| {pipeline} | {test} | {name} | {rps:,.0f} | {rps / direct:.2f} "
                        f"| {rps / tcp:.2f} | {rps / unrestricted:.2f} |"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
