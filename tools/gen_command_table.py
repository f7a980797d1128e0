#!/usr/bin/env python3
"""Generate src/command/table.rs from a real redis-server's COMMAND INFO.

Usage:
    python3 tools/gen_command_table.py            # rewrite src/command/table.rs
    python3 tools/gen_command_table.py --check    # exit 1 (with a diff) if it is stale

Options:
    --redis-server PATH   redis-server binary (default: redis-server on PATH)
    --redis-src DIR       Redis source tree; if given, the hidden flags below are
                          cross-checked against DIR/src/commands/*.json
    --output PATH         where to write (default: src/command/table.rs)

A throwaway redis-server is started on a free loopback port with persistence
off, queried with COMMAND INFO (every command, subcommands nested) and ACL CAT,
and killed afterwards. The output is sorted and byte-for-byte deterministic.

COMMAND INFO hides two flags on purpose (see addReplyFlagsForCommand in
server.c): MAY_REPLICATE and PROTECTED. They are listed here by hand from the
Redis 7.0 command JSON files; pass --redis-src to re-verify them.
"""

import argparse
import difflib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

EXPECTED_VERSION = "7.0.15"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(REPO_ROOT, "src", "command", "table.rs")

# Flag names exactly as COMMAND INFO spells them, in addReplyFlagsForCommand
# order. The Rust constant is the upper-cased name (CommandFlags::NO_AUTH).
# Bit positions live in src/command/mod.rs; this list only validates names.
VISIBLE_FLAGS = [
    "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript",
    "blocking", "loading", "stale", "skip_monitor", "skip_slowlog", "asking",
    "fast", "no_auth", "no_mandatory_keys", "no_async_loading", "no_multi",
    "movablekeys", "allow_busy",
]

# Flags COMMAND INFO does not report, by full command name (Redis 7.0.15).
HIDDEN_FLAGS = {
    "may_replicate": ["eval", "evalsha", "fcall", "pfcount", "publish", "spublish"],
    "protected": ["debug", "module|load", "module|loadex", "module|unload"],
}

# Bit order of CommandFlags in src/command/mod.rs.
FLAG_ORDER = VISIBLE_FLAGS + sorted(HIDDEN_FLAGS)

# ACL categories in ACLCommandCategories order (acl.c); must equal ACL CAT.
ACL_CATEGORIES = [
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
    "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
    "blocking", "dangerous", "connection", "transaction", "scripting",
]


# ---------------------------------------------------------------- RESP client

class Resp:
    """A minimal RESP2 client: raw bytes in, Python values out, no decoding."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError("server error: %r" % rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("unexpected reply line %r" % line)

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, extra_args=()):
    """Start a throwaway redis-server; returns (process, port, tmpdir)."""
    for _attempt in range(5):
        port = free_port()
        tmpdir = tempfile.mkdtemp(prefix="redis-gen-")
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", tmpdir,
             "--daemonize", "no", "--logfile", "", "--loglevel", "warning",
             *extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if proc.poll() is not None:
                break  # probably lost the port race; try another
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc, port, tmpdir
            except OSError:
                time.sleep(0.05)
        stop_server(proc, tmpdir)
    raise RuntimeError("could not start %s" % binary)


def stop_server(proc, tmpdir):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(tmpdir, ignore_errors=True)


# ------------------------------------------------------------------ the table

def parse_command(entry):
    """One COMMAND INFO entry (7.0 layout) -> dict."""
    name, arity, flags, first, last, step, cats = entry[:7]
    subs = entry[9] if len(entry) > 9 and entry[9] else []
    name = name.decode().lower()
    flags = [f.decode() for f in flags]
    for f in flags:
        if f not in VISIBLE_FLAGS:
            raise SystemExit("unknown COMMAND INFO flag %r on %s" % (f, name))
    cat_names = []
    for c in cats:
        c = c.decode()
        if not c.startswith("@") or c[1:] not in ACL_CATEGORIES:
            raise SystemExit("unknown ACL category %r on %s" % (c, name))
        cat_names.append(c[1:])
    for value in (arity, first, last, step):
        if not -32768 <= value <= 32767:
            raise SystemExit("%s: %d does not fit i16" % (name, value))
    return {
        "name": name,
        "arity": arity,
        "flags": flags,
        "cats": cat_names,
        "keys": (first, last, step),
        "subs": sorted((parse_command(s) for s in subs), key=lambda c: c["name"]),
    }


def add_hidden_flags(commands):
    by_name = {}
    for c in commands:
        by_name[c["name"]] = c
        for s in c["subs"]:
            by_name[s["name"]] = s
    for flag, names in HIDDEN_FLAGS.items():
        for n in names:
            if n not in by_name:
                raise SystemExit("hidden flag %s: no command %r" % (flag, n))
            by_name[n]["flags"].append(flag)
    for c in by_name.values():
        c["flags"].sort(key=FLAG_ORDER.index)


def check_hidden_flags(src_dir):
    """Cross-check HIDDEN_FLAGS against Redis's src/commands/*.json."""
    found = {flag: [] for flag in HIDDEN_FLAGS}
    files = glob.glob(os.path.join(src_dir, "src", "commands", "*.json"))
    if not files:
        raise SystemExit("no command JSON files under %s/src/commands" % src_dir)
    for path in files:
        with open(path) as f:
            doc = json.load(f)
        for name, info in doc.items():
            full = name.lower()
            if "container" in info:
                full = info["container"].lower() + "|" + full
            for flag in info.get("command_flags", []):
                if flag.lower() in found:
                    found[flag.lower()].append(full)
    for flag, names in HIDDEN_FLAGS.items():
        if sorted(found[flag]) != sorted(names):
            raise SystemExit("hidden flag %s: source says %s, script says %s"
                             % (flag, sorted(found[flag]), sorted(names)))


def ident(name):
    return "".join(ch if ch.isalnum() else "_" for ch in name.upper())


def rust_str(s):
    assert all(32 <= ord(ch) < 127 and ch not in '"\\' for ch in s), s
    return '"%s"' % s


def entry(c, subs_ref):
    flags = ", ".join("F::" + f.upper() for f in c["flags"])
    cats = ", ".join("C::" + k.upper() for k in sorted(c["cats"], key=ACL_CATEGORIES.index))
    first, last, step = c["keys"]
    return "    cmd(%s, %d, &[%s], &[%s], (%d, %d, %d), %s)," % (
        rust_str(c["name"]), c["arity"], flags, cats, first, last, step, subs_ref)


def render(version, commands):
    out = []
    out.append("// @generated by tools/gen_command_table.py from the COMMAND INFO of")
    out.append("// redis-server %s. Do not edit by hand." % version)
    out.append("//")
    out.append("// Regenerate: python3 tools/gen_command_table.py")
    out.append("// Verify:     python3 tools/gen_command_table.py --check")
    out.append("//")
    out.append("// MAY_REPLICATE and PROTECTED are hidden by COMMAND INFO and come from the")
    out.append("// generator's list (checked against src/commands/*.json with --redis-src).")
    out.append("")
    out.append("use super::{AclCategories as C, CommandFlags as F, CommandSpec, cmd};")
    out.append("")
    out.append("/// The Redis version this table was generated from.")
    out.append("pub const REDIS_VERSION: &str = %s;" % rust_str(version))
    out.append("")
    out.append("/// Every top-level command, sorted by (lowercase) name.")
    out.append("pub static COMMANDS: &[CommandSpec] = &[")
    for c in commands:
        ref = "SUB_" + ident(c["name"]) if c["subs"] else "&[]"
        out.append(entry(c, ref))
    out.append("];")
    for c in commands:
        if not c["subs"]:
            continue
        out.append("")
        out.append("static SUB_%s: &[CommandSpec] = &[" % ident(c["name"]))
        for s in c["subs"]:
            out.append(entry(s, "&[]"))
        out.append("];")
    return "\n".join(out) + "\n"


def generate(binary, src_dir):
    if src_dir:
        check_hidden_flags(src_dir)
    proc, port, tmpdir = start_server(binary)
    try:
        r = Resp(port)
        info = r.call("INFO", "server").decode()
        version = next(line.split(":", 1)[1].strip() for line in info.splitlines()
                       if line.startswith("redis_version:"))
        if version != EXPECTED_VERSION:
            raise SystemExit("expected redis %s, got %s" % (EXPECTED_VERSION, version))
        cats = [c.decode() for c in r.call("ACL", "CAT")]
        if cats != ACL_CATEGORIES:
            raise SystemExit("ACL CAT differs from the script's list: %s" % cats)
        raw = r.call("COMMAND", "INFO")
        r.close()
    finally:
        stop_server(proc, tmpdir)
    commands = sorted((parse_command(e) for e in raw if e is not None),
                      key=lambda c: c["name"])
    add_hidden_flags(commands)
    names = [c["name"] for c in commands]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate command names")
    return render(version, commands)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--redis-src", default=None)
    ap.add_argument("--output", default=DEFAULT_OUTPUT)
    args = ap.parse_args()

    text = generate(args.redis_server, args.redis_src)
    if args.check:
        try:
            with open(args.output) as f:
                current = f.read()
        except FileNotFoundError:
            current = ""
        if current != text:
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(True), text.splitlines(True),
                args.output, "regenerated"))
            print("\n%s is stale; run tools/gen_command_table.py" % args.output,
                  file=sys.stderr)
            return 1
        print("%s is up to date" % args.output)
        return 0
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.output)
    print("wrote %s" % args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
