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

Each command gets a dense id (top-level commands in name order, each followed
by its subcommands), its Redis 7 key specifications (COMMAND INFO element 9,
normalized to the shape src/commands/*.json uses, so that a later reader of
other servers' JSON files yields the same data), the native getkeys_proc it
falls back to, and its channel arguments.

Three things COMMAND INFO does not tell, listed here by hand from the Redis
7.0 sources and re-verified against them with --redis-src:
- the hidden flags MAY_REPLICATE and PROTECTED (addReplyFlagsForCommand in
  server.c leaves them out on purpose), from the JSON "command_flags";
- which commands have a getkeys_proc, from the JSON "get_keys_function";
- the channel arguments, from commands_with_channels in db.c (matched to
  commands through the JSON "function").
With --redis-src the key specs from COMMAND INFO are also compared with the
JSON "key_specs". Without --redis-src, a source tree of EXPECTED_VERSION under
.cache/redis-src/ (what ./dev setup extracts) is used when there is one.

Regenerating for a newer Redis: install it, set EXPECTED_VERSION, update the
lists above from its src/commands/*.json and db.c (--redis-src points out
every difference), run this script, then `cargo test --lib command` (its
tests pin counts and known entries that a new version may change) and
tools/verify_command_keys.py --record.
"""

import argparse
import difflib
import glob
import json
import os
import re
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

# Key-spec flags, as src/commands/*.json spells them (COMMAND INFO writes
# access/update/insert/delete/not_key/incomplete/variable_flags in lower
# case; normalized to these). Bit order of KeyFlags in src/command/keyspec.rs;
# the Rust constant is the name (KeyFlags::NOT_KEY).
KEY_FLAGS = [
    "RO", "RW", "OW", "RM", "ACCESS", "UPDATE", "INSERT", "DELETE",
    "NOT_KEY", "INCOMPLETE", "VARIABLE_FLAGS",
]

# Commands whose keys Redis 7.0.15 can also find by code (the getkeys_proc in
# commands.c), by full command name. The value is the C function; GETKEYS_ENUM
# maps it to the GetKeys variant in src/command/keyspec.rs. BZMPOP really uses
# blmpopGetKeys (db.c's bzmpopGetKeys is unused; both are the same).
GETKEYS_PROCS = {
    "bitfield": "bitfieldGetKeys",
    "blmpop": "blmpopGetKeys",
    "bzmpop": "blmpopGetKeys",
    "eval": "evalGetKeys",
    "eval_ro": "evalGetKeys",
    "evalsha": "evalGetKeys",
    "evalsha_ro": "evalGetKeys",
    "fcall": "functionGetKeys",
    "fcall_ro": "functionGetKeys",
    "georadius": "georadiusGetKeys",
    "georadiusbymember": "georadiusGetKeys",
    "lmpop": "lmpopGetKeys",
    "migrate": "migrateGetKeys",
    "set": "setGetKeys",
    "sintercard": "sintercardGetKeys",
    "sort": "sortGetKeys",
    "sort_ro": "sortROGetKeys",
    "xread": "xreadGetKeys",
    "xreadgroup": "xreadGetKeys",
    "zdiff": "zunionInterDiffGetKeys",
    "zdiffstore": "zunionInterDiffStoreGetKeys",
    "zinter": "zunionInterDiffGetKeys",
    "zintercard": "zunionInterDiffGetKeys",
    "zinterstore": "zunionInterDiffStoreGetKeys",
    "zmpop": "zmpopGetKeys",
    "zunion": "zunionInterDiffGetKeys",
    "zunionstore": "zunionInterDiffStoreGetKeys",
}

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

# commands_with_channels (db.c): command -> (CMD_CHANNEL_* flags, start,
# count), count -1 meaning every argument from start on. ChannelFlags in
# src/command/keyspec.rs; the Rust constant is the name.
CHANNEL_FLAGS = ["PATTERN", "PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE"]
CHANNEL_SPECS = {
    "subscribe": (["SUBSCRIBE"], 1, -1),
    "ssubscribe": (["SUBSCRIBE"], 1, -1),
    "unsubscribe": (["UNSUBSCRIBE"], 1, -1),
    "sunsubscribe": (["UNSUBSCRIBE"], 1, -1),
    "psubscribe": (["PATTERN", "SUBSCRIBE"], 1, -1),
    "punsubscribe": (["PATTERN", "UNSUBSCRIBE"], 1, -1),
    "publish": (["PUBLISH"], 1, 1),
    "spublish": (["PUBLISH"], 1, 1),
}

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


def by_full_name(commands):
    by_name = {}
    for c in commands:
        by_name[c["name"]] = c
        for s in c["subs"]:
            by_name[s["name"]] = s
    return by_name


def add_hand_listed(commands):
    """Adds what COMMAND INFO does not tell (see the module docs)."""
    by_name = by_full_name(commands)
    for flag, names in HIDDEN_FLAGS.items():
        for n in names:
            if n not in by_name:
                raise SystemExit("hidden flag %s: no command %r" % (flag, n))
            by_name[n]["flags"].append(flag)
    for c in by_name.values():
        c["flags"].sort(key=FLAG_ORDER.index)
    for n, proc in GETKEYS_PROCS.items():
        if n not in by_name:
            raise SystemExit("getkeys_proc %s: no command %r" % (proc, n))
        if proc not in GETKEYS_ENUM:
            raise SystemExit("getkeys_proc %s has no GetKeys variant" % proc)
        by_name[n]["getkeys"] = proc
    for n, (flags, start, count) in CHANNEL_SPECS.items():
        if n not in by_name:
            raise SystemExit("channel spec: no command %r" % n)
        if any(f not in CHANNEL_FLAGS for f in flags) or start < 1 or count < -1 or count == 0:
            raise SystemExit("channel spec of %s: bad %r" % (n, (flags, start, count)))
        by_name[n]["channels"] = (sorted(flags, key=CHANNEL_FLAGS.index), start, count)


def assign_ids(commands):
    """Dense ids in the order of the generated table: each top-level command
    (by name), then its subcommands (by name)."""
    next_id = 0
    for c in commands:
        for spec in [c] + c["subs"]:
            spec["id"] = next_id
            next_id += 1
    if next_id > 65535:
        raise SystemExit("%d commands do not fit u16 ids" % next_id)
    return next_id


# ------------------------------------------------------- the source cross-check

def json_key_spec(where, ks):
    """A src/commands/*.json key spec -> the normalized shape (no notes)."""
    flags = sort_key_flags(where, ks.get("flags", []))
    (bs_type, bs), = ks["begin_search"].items()
    (fk_type, fk), = ks["find_keys"].items()
    if bs_type == "index":
        begin = {"index": {"pos": bs["pos"]}}
    elif bs_type == "keyword":
        begin = {"keyword": {"keyword": bs["keyword"], "startfrom": bs["startfrom"]}}
    else:
        begin = {bs_type: None}
    if fk_type == "range":
        find = {"range": {"lastkey": fk["lastkey"], "step": fk["step"],
                          "limit": fk["limit"]}}
    elif fk_type == "keynum":
        find = {"keynum": {"keynumidx": fk["keynumidx"], "firstkey": fk["firstkey"],
                           "step": fk["step"]}}
    else:
        find = {fk_type: None}
    return {"flags": flags, "begin_search": begin, "find_keys": find}


def read_json_commands(src_dir):
    """src/commands/*.json -> {full name: info}, without the commands only
    redis-sentinel has (ONLY_SENTINEL)."""
    files = sorted(glob.glob(os.path.join(src_dir, "src", "commands", "*.json")))
    if not files:
        raise SystemExit("no command JSON files under %s/src/commands" % src_dir)
    out = {}
    for path in files:
        with open(path) as f:
            doc = json.load(f)
        for name, info in doc.items():
            if "ONLY_SENTINEL" in info.get("command_flags", []):
                continue
            full = name.lower()
            if "container" in info:
                full = info["container"].lower() + "|" + full
            out[full] = info
    return out


def read_channel_table(src_dir):
    """commands_with_channels in src/db.c -> {C function: (flags, start, count)}."""
    with open(os.path.join(src_dir, "src", "db.c")) as f:
        text = f.read()
    m = re.search(r"ChannelSpecs commands_with_channels\[\] = \{(.*?)\n\};", text, re.S)
    if not m:
        raise SystemExit("commands_with_channels not found in db.c")
    table = {}
    for fn, flags, start, count in re.findall(
            r"\{(\w+),\s*([A-Z_| ]+),\s*(-?\d+),\s*(-?\d+)\}", m.group(1)):
        names = [f.strip()[len("CMD_CHANNEL_"):] for f in flags.split("|")]
        table[fn] = (sorted(names, key=CHANNEL_FLAGS.index), int(start), int(count))
    return table


def check_against_source(src_dir, commands):
    """Everything listed by hand, and the key specs, against the sources."""
    info = read_json_commands(src_dir)
    by_name = by_full_name(commands)
    problems = []
    if sorted(info) != sorted(by_name):
        problems.append("commands: JSON-only %s, server-only %s" % (
            sorted(set(info) - set(by_name)), sorted(set(by_name) - set(info))))
    found = {flag: [] for flag in HIDDEN_FLAGS}
    procs = {}
    for full, i in info.items():
        for flag in i.get("command_flags", []):
            if flag.lower() in found:
                found[flag.lower()].append(full)
        if "get_keys_function" in i:
            procs[full] = i["get_keys_function"]
        if full in by_name:
            specs = [json_key_spec(full, k) for k in i.get("key_specs", [])]
            if specs != by_name[full]["key_specs"]:
                problems.append("%s: key specs differ:\n  json   %s\n  server %s"
                                % (full, specs, by_name[full]["key_specs"]))
    for flag, names in HIDDEN_FLAGS.items():
        if sorted(found[flag]) != sorted(names):
            problems.append("hidden flag %s: source says %s, script says %s"
                            % (flag, sorted(found[flag]), sorted(names)))
    if procs != GETKEYS_PROCS:
        problems.append("getkeys_proc: source says %s, script says %s"
                        % (sorted(procs.items()), sorted(GETKEYS_PROCS.items())))
    by_function = {i["function"]: full for full, i in info.items() if "function" in i}
    channels = {}
    for fn, spec in read_channel_table(src_dir).items():
        if fn not in by_function:
            problems.append("commands_with_channels: no command runs %s" % fn)
            continue
        channels[by_function[fn]] = spec
    if channels != CHANNEL_SPECS:
        problems.append("channels: db.c says %s, script says %s"
                        % (sorted(channels.items()), sorted(CHANNEL_SPECS.items())))
    if problems:
        raise SystemExit("the sources in %s disagree:\n%s" % (src_dir, "\n".join(problems)))


def default_redis_src():
    """The source tree ./dev setup extracts, when it is there."""
    found = sorted(glob.glob(os.path.join(
        REPO_ROOT, ".cache", "redis-src", "redis-%s*" % EXPECTED_VERSION, "src", "commands")))
    return os.path.dirname(os.path.dirname(found[0])) if found else None


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


def entry(c, subs_ref):
    flags = ", ".join("F::" + f.upper() for f in c["flags"])
    cats = ", ".join("C::" + k.upper() for k in sorted(c["cats"], key=ACL_CATEGORIES.index))
    first, last, step = c["keys"]
    out = "    cmd(%d, %s, %d, &[%s], &[%s], (%d, %d, %d), %s)" % (
        c["id"], rust_str(c["name"]), c["arity"], flags, cats, first, last, step, subs_ref)
    if c["key_specs"]:
        out += ".key_specs(&[%s])" % ", ".join(render_key_spec(k) for k in c["key_specs"])
    if c["getkeys"]:
        out += ".getkeys(G::%s)" % GETKEYS_ENUM[c["getkeys"]]
    if c["channels"]:
        flags, start, count = c["channels"]
        out += ".channels(&[%s], %d, %s)" % (
            ", ".join("CH::" + f for f in flags), start,
            "None" if count == -1 else "Some(%d)" % count)
    return out + ","


def render(version, commands, count):
    body = []
    body.append("/// The Redis version this table was generated from.")
    body.append("pub const REDIS_VERSION: &str = %s;" % rust_str(version))
    body.append("")
    body.append("/// How many commands and subcommands the table has: every")
    body.append("/// [`CommandSpec::id`] is below this.")
    body.append("pub const COMMAND_COUNT: usize = %d;" % count)
    body.append("")
    body.append("/// Every top-level command, sorted by (lowercase) name.")
    body.append("pub static COMMANDS: &[CommandSpec] = &[")
    for c in commands:
        ref = "SUB_" + ident(c["name"]) if c["subs"] else "&[]"
        body.append(entry(c, ref))
    body.append("];")
    for c in commands:
        if not c["subs"]:
            continue
        body.append("")
        body.append("static SUB_%s: &[CommandSpec] = &[" % ident(c["name"]))
        for s in c["subs"]:
            body.append(entry(s, "&[]"))
        body.append("];")
    body = "\n".join(body) + "\n"

    # Import only what the body uses: an unused import fails clippy.
    def used(names):
        return [n for n in names if re.search(r"(?<![\w:])%s\b" % re.escape(n.split(" as ")[-1]), body)]
    keyspec = used(["BeginSearch as BS", "ChannelFlags as CH", "FindKeys as FK",
                    "GetKeys as G", "KeyFlags as K", "index", "keynum", "keyword",
                    "ks", "range"])
    out = []
    out.append("// @generated by tools/gen_command_table.py from the COMMAND INFO of")
    out.append("// redis-server %s. Do not edit by hand." % version)
    out.append("//")
    out.append("// Regenerate: python3 tools/gen_command_table.py")
    out.append("// Verify:     python3 tools/gen_command_table.py --check")
    out.append("//")
    out.append("// MAY_REPLICATE and PROTECTED are hidden by COMMAND INFO, and getkeys_proc and")
    out.append("// the channel arguments are not in it: they come from the generator's lists")
    out.append("// (checked against src/commands/*.json and db.c with --redis-src).")
    out.append("")
    out.append("use super::keyspec::{%s};" % ", ".join(keyspec))
    out.append("use super::{AclCategories as C, CommandFlags as F, CommandSpec, cmd};")
    out.append("")
    return "\n".join(out) + "\n" + body


def generate(binary, src_dir):
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
    names = [c["name"] for c in commands]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate command names")
    if src_dir:
        check_against_source(src_dir, commands)
    add_hand_listed(commands)
    count = assign_ids(commands)
    return render(version, commands, count)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--redis-src", default=None,
                    help="Redis source tree to cross-check against (default: "
                         ".cache/redis-src/redis-%s*/ if present)" % EXPECTED_VERSION)
    ap.add_argument("--output", default=DEFAULT_OUTPUT)
    args = ap.parse_args()

    src_dir = args.redis_src or default_redis_src()
    if src_dir:
        print("cross-checking against %s" % src_dir, file=sys.stderr)
    text = generate(args.redis_server, src_dir)
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
