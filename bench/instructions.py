#!/usr/bin/env python3
"""Instructions per command on the filter's hot paths, counted by callgrind.

Runs benches/instructions.rs (see its docs) under `valgrind --tool=callgrind`
for each scenario twice, with FEW and MANY round trips, and reports

    (instructions(MANY) - instructions(FEW)) / ((MANY - FEW) * depth)

the instructions one command and its reply cost in steady state: setup,
process start and the AUTH exchange cancel out. The count is the same on
every run of the same binary, whatever else the machine does, so a change
can be judged on a noisy machine: compare the table before and after.

Usage (./dev instructions [ARGS] installs valgrind if missing):
  python3 bench/instructions.py                  every scenario; table + CSV
  python3 bench/instructions.py auth-set-64      only these scenarios
  python3 bench/instructions.py --profile auth-set-64
                                                 the top functions of one scenario
                                                 (callgrind_annotate, self cost)

Scenarios are <configuration>-<test>-<depth>: passthrough (no authentication
configured), auth (client AUTH answered, server AUTH injected), acl (a user
whose every command is checked: key patterns and a command allow-list);
set or get of 16-byte values; pipeline depth. Written to
bench/results/instructions.csv; the previous file's figures are shown beside
the new ones.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CSV = RESULTS / "instructions.csv"
SCENARIOS = [
    f"{kind}-{test}-{depth}"
    for kind in ("passthrough", "auth", "acl")
    for test in ("set", "get")
    for depth in (1, 16, 64)
]
FEW, MANY = 20, 220


def build(symbols: bool) -> Path:
    env = dict(os.environ)
    if symbols:
        # Function names for the profile; the code is the same.
        env["CARGO_PROFILE_BENCH_STRIP"] = "none"
        env["CARGO_PROFILE_BENCH_DEBUG"] = "line-tables-only"
    out = subprocess.run(
        ["cargo", "bench", "--bench", "instructions", "--features", "testkit", "--no-run",
         "--message-format=json"],
        cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable") \
                and message["target"]["name"] == "instructions":  # fmt: skip
            return Path(message["executable"])
    raise SystemExit("cargo did not report the instructions benchmark's executable")


def count(binary: Path, scenario: str, iterations: int, out_file: Path) -> int:
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", str(binary), scenario,
         str(iterations)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or not found:
        raise SystemExit(f"{scenario}: the benchmark failed:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def per_command(binary: Path, scenario: str, scratch: Path) -> float:
    depth = int(scenario.rsplit("-", 1)[1])
    few = count(binary, scenario, FEW, scratch / "few.out")
    many = count(binary, scenario, MANY, scratch / "many.out")
    return (many - few) / ((MANY - FEW) * depth)


def previous() -> dict[str, float]:
    if not CSV.exists():
        return {}
    with CSV.open() as f:
        return {row["scenario"]: float(row["instructions_per_command"]) for row in csv.DictReader(f)}


def profile(binary: Path, scenario: str, scratch: Path) -> None:
    out_file = scratch / "profile.out"
    count(binary, scenario, MANY, out_file)
    annotated = subprocess.run(["callgrind_annotate", "--inclusive=no", str(out_file)], check=True,
                               stdout=subprocess.PIPE, text=True).stdout  # fmt: skip
    print(annotated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help=f"default: all ({', '.join(SCENARIOS)})")
    parser.add_argument("--profile", metavar="SCENARIO", help="print the top functions of one scenario")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if args.profile:
            profile(build(symbols=True), args.profile, scratch)
            return
        binary = build(symbols=False)
        before = previous()
        rows = []
        print(f"{'scenario':<22} {'instructions/command':>21} {'before':>8} {'change':>8}")
        for scenario in args.scenarios or SCENARIOS:
            value = per_command(binary, scenario, scratch)
            rows.append({"scenario": scenario, "instructions_per_command": f"{value:.0f}"})
            old = before.get(scenario)
            change = f"{(value / old - 1) * 100:+.1f}%" if old else ""
            print(f"{scenario:<22} {value:>21.0f} {old or '':>8} {change:>8}", flush=True)
    if not args.scenarios:
        RESULTS.mkdir(parents=True, exist_ok=True)
        with CSV.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["scenario", "instructions_per_command"])
            writer.writeheader()
            writer.writerows(rows)
        print(f"\nwritten: {CSV.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
