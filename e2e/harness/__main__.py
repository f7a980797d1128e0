"""Command-line helpers for ./dev (run as `PYTHONPATH=e2e python3 -m harness ...`).

  render-envoy  write an Envoy bootstrap (the same renderer the tests use) and
                print the Envoy argv to run it, one argument per line
  wait-envoy    wait until an Envoy's admin says LIVE and its listener is bound
  envoy-bin     print the Envoy executable's path
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .envoy import Envoy, wait_ready
from .paths import envoy_binary
from .procs import HarnessError


def _render(a) -> int:
    host, _, port = a.upstream.rpartition(":")
    kw = {}
    if a.plugin_config_file:
        kw["plugin_config"] = Path(a.plugin_config_file).read_text()
        kw["wasm_path"] = str(Path(a.wasm).resolve())
        kw["host_env_keys"] = a.host_env_key or []
    out = Path(a.out)
    e = Envoy(out.parent, (host or "127.0.0.1", int(port)), name="dev", port=a.listen,
              admin_port=a.admin, dir=out.parent, **kw)  # fmt: skip
    e.config_path = out
    e.write_config()
    print("\n".join(e.argv()))  # one argument per line (for bash mapfile)
    return 0


def _wait(a) -> int:
    try:
        wait_ready(a.admin, a.listener, a.timeout, pid=a.pid)
    except HarnessError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m harness")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render-envoy", help="write an Envoy bootstrap YAML, print the envoy argv")
    r.add_argument("--listen", type=int, required=True)
    r.add_argument("--admin", type=int, required=True)
    r.add_argument("--upstream", required=True, help="host:port of redis")
    r.add_argument("--plugin-config-file", help="plugin JSON; omit for no wasm filter")
    r.add_argument("--wasm", help="wasm path (with --plugin-config-file)")
    r.add_argument("--host-env-key", action="append", help="vm_config host_env_keys entry")
    r.add_argument("--out", required=True, help="where to write the YAML")
    w = sub.add_parser("wait-envoy", help="wait until Envoy is LIVE with its listener bound")
    w.add_argument("--admin", type=int, required=True)
    w.add_argument("--listener", type=int, required=True)
    w.add_argument("--timeout", type=float, default=30)
    w.add_argument("--pid", type=int, help="give up as soon as this process exits")
    sub.add_parser("envoy-bin", help="print the Envoy executable path")
    a = p.parse_args(argv)
    if a.cmd == "render-envoy":
        if a.plugin_config_file and not a.wasm:
            p.error("--plugin-config-file needs --wasm")
        return _render(a)
    if a.cmd == "wait-envoy":
        return _wait(a)
    print(envoy_binary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
