"""Load and memory through the real filter, with bench/load.py's driver:

- many live connections (RESP2 and RESP3, every AUTH form, pub/sub, MULTI,
  blocking commands, wrong AUTHs) for a few seconds, every reply checked
  byte for byte against a per-connection model, the filter's counters
  checked against what was sent, and memory per connection bounded;
- 64 MiB values both ways, on one connection and on three at once (one of
  them a slow reader): the bytes arrive intact and the filter holds a few
  KiB, not the value.

The figures are printed (`-s` shows them); bounds are generous, timings are
measured and never asserted.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from harness.paths import REPO_ROOT


def _load_tool():
    name = "bench_load"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / "load.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules[name]


tool = _load_tool()

KIB = 1024
MIB = 1024 * 1024


@pytest.fixture
def redis(redis_factory):
    return redis_factory("password")


@pytest.fixture
def envoy(redis, envoy_factory):
    return envoy_factory(
        redis, plugin_config=tool.FILTER_CONFIG, host_env={"REDIS_PASSWORD": redis.password}
    )


@pytest.mark.timeout(90)
def test_two_hundred_connections_every_reply_verified(envoy):
    n = 200
    opts = tool.LoadOptions(connections=n, seconds=8, interval=0.4, idle=1.0, quiet=True)
    report = tool.run_load(envoy, tool.filter_creds(), opts, envoy=envoy)
    print("\n" + tool.format_report(report))
    d = report.as_dict()

    assert d["errors"] == 0, "\n".join(d["error_samples"])
    assert d["connected"] == n
    assert d["dropped"] == 0 and d["stalls"] == 0 and d["missing_messages"] == 0
    # Every operation ran, and plenty of them (about 20,000 replies on an idle
    # machine; the floor only says the load really ran).
    assert set(d["ops"]) >= set(tool.OP_WEIGHTS) | {"publish"}
    assert d["traffic_replies_verified"] >= 2 * n
    assert d["messages_verified"] > 0
    assert d["auth_wrong_sent"] > 0 and d["noauth_sent"] > 0
    # The filter saw every connection, all of them were live at once, and
    # its gauges are back to zero (checked by run_load: counter_mismatches).
    m = d["memory"]
    assert m["active_connections_peak"] == n
    assert m["downstream_cx_active_peak"] == n
    # Memory, per connection (measured: a few KiB held, a few KiB of VM
    # growth, under 20 KiB of Envoy heap; bounds are 8-16 times that).
    held, vm, alloc = m["held_bytes"], m["vm_memory_bytes"], m["envoy_allocated"]
    assert held["peak_per_connection"] < 64 * KIB
    assert held["steady_per_connection"] < 32 * KIB
    assert held["after"] == 0
    assert vm["growth_per_connection"] < 64 * KIB
    assert alloc["steady_per_connection"] < 256 * KIB


@pytest.mark.timeout(120)
def test_sixty_four_mebibyte_values_stream_through(envoy, redis):
    report = tool.stream_values(envoy, tool.filter_creds(), envoy=envoy, size=64 * MIB,
                                rounds=(1, 3), redis=redis)  # fmt: skip
    print("\n" + tool.format_stream_report(report))

    for rnd in report.results:
        for r in rnd:
            assert r.error is None, f"{r.key}: {r.error}"
            assert r.sent_sha256 == r.got_sha256, f"{r.key}: the value came back different"
    # The gauges were read while the values were in flight, many times.
    assert report.transfer_samples >= 10
    # The sessions hold what they read of a line, never the value (measured:
    # under 1 KiB for all connections together).
    assert report.stat(tool.HELD) <= 64 * KIB
    # The VMs' linear memory grows by Envoy's chunks (each read is copied in
    # whole), never by anything like a value (measured: 1-2 MiB).
    growth = report.stat(tool.VM) - report.before[tool.VM]
    assert growth <= 16 * MIB, f"the VMs grew by {growth / MIB:.1f} MiB"
    assert report.after.get(tool.HELD, 0) == 0
    assert report.after.get(tool.ACTIVE, 0) == 0
