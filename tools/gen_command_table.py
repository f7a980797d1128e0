#!/usr/bin/env python3
"""Generate src/command/table.rs from the command digests in tools/commands/.

Usage:
    python3 tools/gen_command_table.py            # rewrite src/command/table.rs
    python3 tools/gen_command_table.py --check    # exit 1 (with a diff) if it is stale

Options:
    --redis-server PATH   the installed redis-server (default: redis-server on
                          PATH), whose COMMAND INFO must equal the redis 7.0.15
                          digest
    --live VERSION=PATH   also compare the digest of VERSION (a ServerVersion
                          name: redis-7.2, valkey-8.0, ...) with the COMMAND
                          INFO of the server binary PATH; may be repeated
    --no-live             skip the comparisons with live servers
    --output PATH         where to write (default: src/command/table.rs)

The table merges one digest per server release (tools/import_commands.py
RELEASES: redis 7.0.15, 7.2.6, 7.4.1, valkey 7.2.7, 8.0.1, and sentinel
7.0.15, Redis 7.0.15's commands as Redis Sentinel has them; how to make them
is in that script). A command or subcommand that is the same in every
release is one entry; one that differs (arity, flags, categories, key specs,
getkeys procedure, channels) is one entry per distinct definition, each
tagged (`.only(&[...])`) with the releases that define it so. An entry
without `.only` is in every release. A container is one entry (the
generator refuses a container that differs between releases).

The table has three parts, so that Redis 7.0's commands alone are what
they were before newer releases were added (same entries, same ids, and
`COMMANDS` with its `subcommands` is exactly Redis 7.0's table):
COMMANDS (every entry Redis 7.0 has, with the subcommands 7.0 has),
NEWER_COMMANDS (the top-level entries 7.0 does not have) and
NEWER_SUBCOMMANDS (the subcommand entries 7.0 does not have, of containers
in COMMANDS). Ids are dense, in that order: each entry of COMMANDS followed
by its subcommands, then NEWER_COMMANDS likewise, then NEWER_SUBCOMMANDS.
Entries of one name are ordered by their first release.

Before writing (or checking) anything, the installed redis-server is started
on a free loopback port (persistence off), and its INFO, ACL CAT and COMMAND
INFO must agree with the redis 7.0.15 digest, and started again in sentinel
mode, where they must agree with the sentinel 7.0.15 digest (COMMAND INFO hides the flags
may_replicate and protected, and tells neither getkeys procedures nor
channels; those come from the release's sources, see import_commands.py).

Adding or bumping a release: import its digest (tools/import_commands.py),
add it to RELEASES there and to ServerVersion (src/command/version.rs), run
this script, then `cargo test --lib command` (its tests pin counts and known
entries) and tools/verify_command_keys.py.
"""

import argparse
import difflib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from import_commands import (  # noqa: E402
    ACL_CATEGORIES, CHANNEL_FLAGS, DATA_RELEASES, FLAG_ORDER, HIDDEN_FLAGS, KEY_FLAGS, RELEASES,
    VISIBLE_FLAGS, digest_path, load_digest)

# The release of the installed server, whose digest --check compares with it.
EXPECTED_VERSION = "7.0.15"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(REPO_ROOT, "src", "command", "table.rs")

# getkeys procedures (db.c) -> GetKeys variants (src/command/keyspec.rs).
GETKEYS_ENUM = {
    "bitfieldGetKeys": "Bitfield",
    "blmpopGetKeys": "Blmpop",
    "evalGetKeys": "Eval",
    "functionGetKeys": "Function",
    "georadiusGetKeys": "Georadius",
    "lmpopGetKeys": "Lmpop",
    "migrateGetKeys": "Migrate",
    "setGetKeys": "Set",
    "sintercardGetKeys": "Sintercard",
    "sortGetKeys": "Sort",
    "sortROGetKeys": "SortRo",
    "xreadGetKeys": "Xread",
    "zmpopGetKeys": "Zmpop",
    "zunionInterDiffGetKeys": "ZunionInterDiff",
    "zunionInterDiffStoreGetKeys": "ZunionInterDiffStore",
}


def version_name(variant):
    """ServerVersion variant (Redis72) -> its configuration name (redis-7.2)."""
    m = re.fullmatch(r"(Redis|Valkey|Sentinel)(\d)(\d)", variant)
    return "%s-%s.%s" % (m.group(1).lower(), m.group(2), m.group(3))


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


def start_server(binary, extra_args=(), sentinel=False):
    """Start a throwaway redis-server (with `sentinel`: in sentinel mode,
    which needs a writable configuration file); returns (process, port,
    tmpdir)."""
    for _attempt in range(5):
        port = free_port()
        tmpdir = tempfile.mkdtemp(prefix="redis-gen-")
        if sentinel:
            conf = os.path.join(tmpdir, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\n" % port)
            argv = [binary, conf, "--sentinel", "--loglevel", "warning", *extra_args]
        else:
            argv = [binary, "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", tmpdir,
                    "--daemonize", "no", "--logfile", "", "--loglevel", "warning",
                    *extra_args]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


# ------------------------------------------------------- COMMAND INFO replies

def pairs(flat):
    """A RESP2 map reply ([k1, v1, k2, v2, ...]) -> dict with str keys."""
    if len(flat) % 2:
        raise SystemExit("odd-length map reply %r" % (flat,))
    return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}


def check_int(where, value):
    if not isinstance(value, int) or not -2**31 <= value < 2**31:
        raise SystemExit("%s: %r does not fit i32" % (where, value))
    return value


def sort_key_flags(where, flags):
    for f in flags:
        if f not in KEY_FLAGS:
            raise SystemExit("%s: unknown key-spec flag %r" % (where, f))
    return sorted(set(flags), key=KEY_FLAGS.index)


def parse_key_spec(cmd, raw):
    """One COMMAND INFO key spec -> the src/commands/*.json shape (no notes).

    COMMAND INFO: flags [...], begin_search {type, spec {index | keyword,
    startfrom}}, find_keys {type, spec {lastkey, keystep, limit | keynumidx,
    firstkey, keystep}}; the JSON names keystep "step" and nests by type.
    """
    d = pairs(raw)
    where = "%s key spec" % cmd
    flags = sort_key_flags(where, [f.decode().upper() for f in d["flags"]])
    bs = pairs(d["begin_search"])
    bs_type, bs_spec = bs["type"].decode(), pairs(bs["spec"])
    if bs_type == "index":
        begin = {"index": {"pos": check_int(where, bs_spec["index"])}}
    elif bs_type == "keyword":
        begin = {"keyword": {"keyword": bs_spec["keyword"].decode(),
                             "startfrom": check_int(where, bs_spec["startfrom"])}}
    elif bs_type == "unknown":
        begin = {"unknown": None}
    else:
        raise SystemExit("%s: unknown begin_search type %r" % (where, bs_type))
    fk = pairs(d["find_keys"])
    fk_type, fk_spec = fk["type"].decode(), pairs(fk["spec"])
    if fk_type == "range":
        find = {"range": {"lastkey": check_int(where, fk_spec["lastkey"]),
                          "step": check_int(where, fk_spec["keystep"]),
                          "limit": check_int(where, fk_spec["limit"])}}
    elif fk_type == "keynum":
        find = {"keynum": {"keynumidx": check_int(where, fk_spec["keynumidx"]),
                           "firstkey": check_int(where, fk_spec["firstkey"]),
                           "step": check_int(where, fk_spec["keystep"])}}
    elif fk_type == "unknown":
        find = {"unknown": None}
    else:
        raise SystemExit("%s: unknown find_keys type %r" % (where, fk_type))
    return {"flags": flags, "begin_search": begin, "find_keys": find}


def parse_command(entry):
    """One COMMAND INFO entry (7.0 layout) -> dict."""
    name, arity, flags, first, last, step, cats = entry[:7]
    key_specs = entry[8] if len(entry) > 8 and entry[8] else []
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
        "key_specs": [parse_key_spec(name, k) for k in key_specs],
        "getkeys": None,
        "channels": None,
        "subs": sorted((parse_command(s) for s in subs), key=lambda c: c["name"]),
    }


# ------------------------------------------------------------- live servers

def live_commands(binary, expected_version=None, sentinel=False):
    """{full name: entry} from a running server's COMMAND INFO, in the
    digest's shape (no hidden flags, getkeys or channels), and its ACL CAT."""
    proc, port, tmpdir = start_server(binary, sentinel=sentinel)
    try:
        r = Resp(port)
        info = r.call("INFO", "server").decode()
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        version = (fields.get("valkey_version") or fields.get("redis_version", "")).strip()
        if expected_version and version != expected_version:
            raise SystemExit("%s: expected version %s, got %s" % (binary, expected_version, version))
        cats = [c.decode() for c in r.call("ACL", "CAT")]
        raw = r.call("COMMAND", "INFO")
        r.close()
    finally:
        stop_server(proc, tmpdir)
    out = {}

    def add(c):
        out[c["name"]] = {
            "name": c["name"], "arity": c["arity"], "flags": c["flags"],
            "acl": sorted(c["cats"], key=ACL_CATEGORIES.index), "keys": list(c["keys"]),
            "key_specs": c["key_specs"],
        }
        for s in c["subs"]:
            add(s)
    for e in raw:
        if e is not None:
            add(parse_command(e))
    return version, cats, out


def check_live(binary, server, release, expected_version=None):
    """The digest of (server, release) against the live server `binary`."""
    d = load_digest(server, release)
    version, cats, live = live_commands(binary, expected_version, sentinel=server == "sentinel")
    problems = []
    if cats != d["acl_categories"]:
        problems.append("ACL CAT: server %s, digest %s" % (cats, d["acl_categories"]))
    digest = {}
    for c in d["commands"]:
        digest[c["name"]] = {
            "name": c["name"], "arity": c["arity"],
            "flags": [f for f in c["flags"] if f not in HIDDEN_FLAGS],
            "acl": c["acl"], "keys": c["keys"], "key_specs": c.get("key_specs", []),
        }
    for name in sorted(set(live) | set(digest)):
        if live.get(name) != digest.get(name):
            problems.append("%s:\n  server %s\n  digest %s" % (name, live.get(name), digest.get(name)))
    if problems:
        raise SystemExit("%s (%s) disagrees with %s:\n%s" % (
            binary, version, os.path.relpath(digest_path(server, release), REPO_ROOT),
            "\n".join(problems)))
    print("%s %s: COMMAND INFO and ACL CAT match %s" % (
        binary, version, os.path.relpath(digest_path(server, release), REPO_ROOT)),
        file=sys.stderr)


# ---------------------------------------------------------------- the merge

def merge():
    """The merged table, in three parts (see the module docs of
    src/command/mod.rs):

    - `first`: the top-level entries redis 7.0 (RELEASES[0]) has, each a
      dict with "def", "mask" (bits in RELEASES order) and, for containers,
      "subs": the subcommand entries redis 7.0 has, and "newer": the others;
    - `newer`: the top-level entries redis 7.0 does not have (a container's
      subcommands all in its "subs");
    - ids assigned in the order first (each entry, then its "subs"), newer
      (likewise), then every "newer" list of `first`, container by container.
    """
    variants = {}
    for bit, (server, release, _) in enumerate(RELEASES):
        for c in load_digest(server, release)["commands"]:
            groups = variants.setdefault(c["name"], [])
            for g in groups:
                if g["def"] == c:
                    g["mask"] |= 1 << bit
                    break
            else:
                groups.append({"def": c, "mask": 1 << bit})
    for groups in variants.values():
        groups.sort(key=lambda g: (g["mask"] & -g["mask"]))
    subs = {}
    for name in variants:
        if "|" in name:
            subs.setdefault(name.split("|", 1)[0], []).append(name)
    first, newer = [], []
    for name in sorted(n for n in variants if "|" not in n):
        groups = variants[name]
        if name in subs:
            if len(groups) != 1:
                raise SystemExit(
                    "container %s differs between releases: one container entry per "
                    "variant would need its own subcommand lists (not supported)" % name)
            g = groups[0]
            g["subs"] = [v for s in sorted(subs.pop(name), key=lambda s: s.split("|", 1)[1])
                         for v in variants[s]]
            for bit in range(len(RELEASES)):
                has = any(v["mask"] & (1 << bit) for v in g["subs"])
                if bool(g["mask"] & (1 << bit)) != has:
                    raise SystemExit("container %s: %s has it %s subcommands" % (
                        name, RELEASES[bit][1], "without" if not has else "with, but not"))
            if g["mask"] & 1:
                g["newer"] = [v for v in g["subs"] if not v["mask"] & 1]
                g["subs"] = [v for v in g["subs"] if v["mask"] & 1]
        for g in groups:
            (first if g["mask"] & 1 else newer).append(g)
    if subs:
        raise SystemExit("subcommands without a container: %s" % sorted(subs))
    order = [spec for e in first + newer for spec in [e] + e.get("subs", [])]
    order += [spec for e in first for spec in e.get("newer", [])]
    for next_id, spec in enumerate(order):
        spec["id"] = next_id
    if len(order) > 65535:
        raise SystemExit("%d commands do not fit u16 ids" % len(order))
    return first, newer, len(order)


# ------------------------------------------------------------------- rendering

def ident(name):
    return "".join(ch if ch.isalnum() else "_" for ch in name.upper())


def rust_str(s):
    assert all(32 <= ord(ch) < 127 and ch not in '"\\' for ch in s), s
    return '"%s"' % s


def render_key_spec(ks):
    flags = ", ".join("K::" + f for f in ks["flags"])
    (bs_type, bs), = ks["begin_search"].items()
    (fk_type, fk), = ks["find_keys"].items()
    if bs_type == "index":
        begin = "index(%d)" % bs["pos"]
    elif bs_type == "keyword":
        begin = "keyword(%s, %d)" % (rust_str(bs["keyword"]), bs["startfrom"])
    else:
        begin = "BS::Unknown"
    if fk_type == "range":
        find = "range(%d, %d, %d)" % (fk["lastkey"], fk["step"], fk["limit"])
    elif fk_type == "keynum":
        find = "keynum(%d, %d, %d)" % (fk["keynumidx"], fk["firstkey"], fk["step"])
    else:
        find = "FK::Unknown"
    return "ks(&[%s], %s, %s)" % (flags, begin, find)


def check_i16(where, value):
    if not -32768 <= value <= 32767:
        raise SystemExit("%s: %d does not fit i16" % (where, value))
    return value


def entry(e, subs_ref):
    c = e["def"]
    for f in c["flags"]:
        if f not in FLAG_ORDER:
            raise SystemExit("%s: unknown flag %r" % (c["name"], f))
    flags = ", ".join("F::" + f.upper() for f in c["flags"])
    cats = ", ".join("C::" + k.upper() for k in c["acl"])
    first, last, step = (check_i16(c["name"], v) for v in c["keys"])
    out = "    cmd(%d, %s, %d, &[%s], &[%s], (%d, %d, %d), %s)" % (
        e["id"], rust_str(c["name"]), check_i16(c["name"], c["arity"]), flags, cats,
        first, last, step, subs_ref)
    if e["mask"] != (1 << len(RELEASES)) - 1:
        out += ".only(&[%s])" % ", ".join(
            "S::" + RELEASES[bit][2].upper() for bit in range(len(RELEASES))
            if e["mask"] & (1 << bit))
    if c.get("key_specs"):
        for ks in c["key_specs"]:
            for f in ks["flags"]:
                if f not in KEY_FLAGS:
                    raise SystemExit("%s: unknown key-spec flag %r" % (c["name"], f))
        out += ".key_specs(&[%s])" % ", ".join(render_key_spec(k) for k in c["key_specs"])
    if c.get("getkeys"):
        if c["getkeys"] not in GETKEYS_ENUM:
            raise SystemExit("%s: getkeys procedure %s has no GetKeys variant"
                             % (c["name"], c["getkeys"]))
        out += ".getkeys(G::%s)" % GETKEYS_ENUM[c["getkeys"]]
    if c.get("channels"):
        flags, start, count = c["channels"]
        if any(f not in CHANNEL_FLAGS for f in flags) or start < 1 or count < -1 or count == 0:
            raise SystemExit("channel spec of %s: bad %r" % (c["name"], c["channels"]))
        out += ".channels(&[%s], %d, %s)" % (
            ", ".join("CH::" + f for f in flags), start,
            "None" if count == -1 else "Some(%d)" % count)
    return out + ","


def render(first, newer, count):
    for server, release, _ in RELEASES:
        if load_digest(server, release)["acl_categories"] != ACL_CATEGORIES:
            raise SystemExit("%s %s has other ACL categories: AclCategories needs a "
                             "per-version view" % (server, release))
    body = []
    body.append("/// The server and release each [`ServerVersion`](super::ServerVersion) was")
    body.append("/// generated from, in `ServerVersion` order.")
    body.append("pub const SERVER_RELEASES: [(&str, &str); %d] = [%s];" % (
        len(RELEASES), ", ".join("(%s, %s)" % (rust_str(s), rust_str(r))
                                 for s, r, _ in RELEASES)))
    body.append("")
    body.append("/// The Redis release [`ServerVersion::Redis70`](super::ServerVersion::Redis70)")
    body.append("/// was generated from (the installed server's).")
    body.append("pub const REDIS_VERSION: &str = %s;" % rust_str(EXPECTED_VERSION))
    body.append("")
    body.append("/// How many entries (commands and subcommands, of every release) the")
    body.append("/// table has: every [`CommandSpec::id`] is below this.")
    body.append("pub const COMMAND_COUNT: usize = %d;" % count)
    body.append("")
    body.append("/// Every top-level command of Redis 7.0, as 7.0 defines it, sorted by")
    body.append("/// (lowercase) name; their `subcommands` are those of 7.0.")
    body.append("pub static COMMANDS: &[CommandSpec] = &[")
    for e in first:
        ref = "SUB_" + ident(e["def"]["name"]) if e.get("subs") else "&[]"
        body.append(entry(e, ref))
    body.append("];")
    body.append("")
    body.append("/// The top-level entries of the other releases that Redis 7.0 does not")
    body.append("/// have (or defines otherwise), sorted by name; entries of one name are for")
    body.append("/// disjoint sets of releases.")
    body.append("pub(super) static NEWER_COMMANDS: &[CommandSpec] = &[")
    for e in newer:
        ref = "SUB_" + ident(e["def"]["name"]) if e.get("subs") else "&[]"
        body.append(entry(e, ref))
    body.append("];")
    body.append("")
    body.append("/// The subcommands of the containers of [`COMMANDS`] that Redis 7.0 does not")
    body.append("/// have (or defines otherwise), by container id (ascending), each list")
    body.append("/// sorted by name.")
    body.append("pub(super) static NEWER_SUBCOMMANDS: &[(u16, &[CommandSpec])] = &[")
    for e in first:
        if e.get("newer"):
            body.append("    (%d, NEWER_SUB_%s)," % (e["id"], ident(e["def"]["name"])))
    body.append("];")
    for e in first + newer:
        if not e.get("subs"):
            continue
        body.append("")
        body.append("static SUB_%s: &[CommandSpec] = &[" % ident(e["def"]["name"]))
        for s in e["subs"]:
            body.append(entry(s, "&[]"))
        body.append("];")
    for e in first:
        if not e.get("newer"):
            continue
        body.append("")
        body.append("static NEWER_SUB_%s: &[CommandSpec] = &[" % ident(e["def"]["name"]))
        for s in e["newer"]:
            body.append(entry(s, "&[]"))
        body.append("];")
    body = "\n".join(body) + "\n"

    # Import only what the body uses: an unused import fails clippy.
    def used(names):
        return [n for n in names if re.search(r"(?<![\w:])%s\b" % re.escape(n.split(" as ")[-1]), body)]
    keyspec = used(["BeginSearch as BS", "ChannelFlags as CH", "FindKeys as FK",
                    "GetKeys as G", "KeyFlags as K", "index", "keynum", "keyword",
                    "ks", "range"])
    top = used(["AclCategories as C", "CommandFlags as F", "CommandSpec", "ServerSet as S",
                "cmd"])
    releases = ", ".join("%s %s" % (s, r) for s, r, _ in RELEASES)
    out = []
    out.append("// @generated by tools/gen_command_table.py from tools/commands/*.json, the")
    out.append("// command digests of %s." % releases)
    out.append("// Do not edit by hand.")
    out.append("//")
    out.append("// Regenerate: python3 tools/gen_command_table.py")
    out.append("// Verify:     python3 tools/gen_command_table.py --check")
    out.append("//")
    out.append("// An entry without .only(...) is the same in every release.")
    out.append("")
    out.append("use super::keyspec::{%s};" % ", ".join(keyspec))
    out.append("use super::{%s};" % ", ".join(top))
    out.append("")
    return "\n".join(out) + "\n" + body


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--live", action="append", default=[], metavar="VERSION=PATH")
    ap.add_argument("--no-live", action="store_true")
    ap.add_argument("--output", default=DEFAULT_OUTPUT)
    args = ap.parse_args()

    by_name = {version_name(v): (s, r) for s, r, v in RELEASES}
    live = [(args.redis_server, "redis", EXPECTED_VERSION, EXPECTED_VERSION),
            (args.redis_server, "sentinel", EXPECTED_VERSION, EXPECTED_VERSION)]
    for item in args.live:
        name, _, path = item.partition("=")
        if name not in by_name or not path:
            ap.error("--live wants VERSION=PATH with VERSION one of %s" % sorted(by_name))
        server, release = by_name[name]
        live.append((path, server, release, release))
    if not args.no_live:
        for binary, server, release, expected in live:
            check_live(binary, server, release, expected)
    first, newer, count = merge()
    text = render(first, newer, count)
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
