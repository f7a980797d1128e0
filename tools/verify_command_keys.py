#!/usr/bin/env python3
"""Record or check which arguments a real redis-server 7.0.15 takes as keys.

Usage:
    python3 tools/verify_command_keys.py            # check the fixture
    python3 tools/verify_command_keys.py --check    # the same
    python3 tools/verify_command_keys.py --record   # rewrite the fixture
    python3 tools/verify_command_keys.py --server redis-7.4=PATH [--record]

With --server VERSION=PATH (repeatable), every case (7.0's, and the sweep
over that server's own commands) also runs on the server binary PATH of that
newer release; the cases it answers otherwise than 7.0 are kept in
keys_newer.json (see tools/newer_fixtures.py). --skip-installed leaves the
installed server (and its fixture) out.

The fixture, src/command/testdata/keys.json, is a list of
{"argv": [...], "keys": [{"name": ..., "pos": int or null, "flags": [...]}]}
or {"argv": [...], "error": "..."}, strings being latin-1 (one char per
byte). It is what `COMMAND GETKEYSANDFLAGS <argv>` answers on a throwaway
server: that subcommand runs getKeysFromCommandWithSpecs(...,
GET_KEYSPEC_DEFAULT, ...), the very function the ACL check runs, so
`cargo test` checking command::keys() against every case ties the Rust code
to the server's answers. Its errors tell the other outcomes apart:
"The command has no key arguments" (doesCommandHaveKeys is false), "Invalid
arguments specified for command" (no keys found; an empty list instead when
the command has no_mandatory_keys), "Invalid number of arguments specified
for command" (arity), "Invalid command specified" (no such command).

The reply names keys, not positions: "pos" is the one index in argv[1:]
holding that name, or null when several do (the Rust test then compares
names). Most cases use distinct arguments so that positions are exact.

Two kinds of cases: hand-written ones for every key-spec shape, every getkeys
procedure and their edge cases (keyword searches, key counts that string2ll
and atoi read differently, NUL bytes), and a sweep over every command and
subcommand of the server's COMMAND INFO with distinct dummy arguments, at its
minimum argument count and with three more.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import newer_fixtures  # noqa: E402
from gen_command_table import (  # noqa: E402
    EXPECTED_VERSION, DATA_RELEASES, RELEASES, REPO_ROOT, Resp, parse_command, start_server, stop_server,
    version_name)

FIXTURE = os.path.join(REPO_ROOT, "src", "command", "testdata", "keys.json")


def b(s):
    return s.encode("latin-1") if isinstance(s, str) else s


def hand_cases():
    """argv lists (latin-1 str) for every shape and procedure."""
    geo = ["georadius", "g", "0", "0", "1", "km"]
    geom = ["georadiusbymember", "g", "m", "1", "km"]
    mig = ["migrate", "host", "6379"]
    out = [
        # index + range, lastkey 0
        ["get", "k"], ["strlen", "k"], ["append", "k", "v"], ["hset", "h", "f", "v"],
        ["hset", "h", "f1", "v1", "f2", "v2"], ["lpush", "l", "a", "b"],
        ["incr", "k"], ["getrange", "k", "0", "1"], ["expire", "k", "10"],
        ["xadd", "s", "*", "f", "v"], ["pfadd", "h", "a"], ["getex", "k", "EX", "1"],
        ["object", "encoding", "k"], ["object", "freq", "k"], ["object", "idletime", "k"],
        ["object", "refcount", "k"], ["memory", "usage", "k"],
        ["memory", "usage", "k", "SAMPLES", "5"], ["xinfo", "stream", "s"],
        ["xinfo", "stream", "s", "FULL", "COUNT", "2"], ["xinfo", "groups", "s"],
        ["xinfo", "consumers", "s", "g"], ["xgroup", "create", "s", "g", "$"],
        ["xgroup", "createconsumer", "s", "g", "c"], ["xgroup", "destroy", "s", "g"],
        ["xgroup", "setid", "s", "g", "0"], ["pfdebug", "getreg", "h"],
        ["bitfield_ro", "k", "GET", "u8", "0"], ["georadius_ro", "g", "0", "0", "1", "km"],
        ["georadius_ro", "g", "0", "0", "1", "km", "STORE", "x"],
        ["k", "k"],  # unknown command
        # several index specs
        ["lmove", "src", "dst", "LEFT", "RIGHT"], ["blmove", "src", "dst", "LEFT", "RIGHT", "0"],
        ["rpoplpush", "src", "dst"], ["brpoplpush", "src", "dst", "0"],
        ["smove", "src", "dst", "m"], ["copy", "src", "dst"],
        ["copy", "src", "dst", "DB", "1", "REPLACE"], ["rename", "src", "dst"],
        ["renamenx", "src", "dst"], ["lcs", "a", "b"], ["lcs", "a", "b", "LEN"],
        ["geosearchstore", "dst", "src", "FROMMEMBER", "m", "BYRADIUS", "1", "km"],
        ["bitop", "AND", "dst", "a", "b"], ["bitop", "NOT", "dst", "a"],
        ["sinterstore", "dst", "a", "b"], ["sunionstore", "dst", "a"],
        ["sdiffstore", "dst", "a", "b", "c"], ["zrangestore", "dst", "src", "0", "-1"],
        ["pfmerge", "dst", "a", "b"], ["pfmerge", "dst"],
        # range, lastkey -1 / -2, step 1 / 2
        ["del", "a"], ["del", "a", "b", "c", "d"], ["exists", "a", "b"], ["unlink", "a", "b"],
        ["touch", "a"], ["mget", "a", "b", "c"], ["pfcount", "a", "b"], ["watch", "a", "b"],
        ["sunion", "a", "b"], ["sinter", "a"], ["sdiff", "a", "b", "c"],
        ["del", "", "a\x00b", "\x00"], ["del", "a", "a"],
        ["mset", "a", "1", "b", "2"], ["mset", "a", "1", "b", "2", "c", "3"],
        ["mset", "a", "1", "b"], ["msetnx", "a", "1", "b", "2"],
        ["blpop", "a", "0"], ["blpop", "a", "b", "c", "0"], ["brpop", "a", "b", "0"],
        ["bzpopmin", "a", "b", "0"], ["bzpopmax", "a", "0"],
        # keynum: scripts and functions
        ["eval", "return 1", "0"], ["eval", "return 1", "0", "a", "b"],
        ["eval", "return 1", "1", "a"], ["eval", "return 1", "2", "a", "b", "x", "y"],
        ["eval", "return 1", "3", "a", "b"], ["eval", "return 1", "-1", "a"],
        ["eval", "return 1", "1abc", "a"], ["eval", "return 1", " 1", "a"],
        ["eval", "return 1", "+1", "a"], ["eval", "return 1", "01", "a"],
        ["eval", "return 1", "1\x00", "a"], ["eval", "return 1", "\t\n2", "a", "b"],
        ["eval", "return 1", "", "a"], ["eval", "return 1", "x", "a"],
        ["eval", "return 1", "4294967297", "a"], ["eval", "return 1", "4294967296", "a"],
        ["eval", "return 1", "2147483648", "a"], ["eval", "return 1", "-4294967295", "a"],
        ["eval", "return 1", "-4294967294", "a", "b"],
        ["eval", "return 1", "9223372036854775807", "a"],
        ["eval", "return 1", "9223372036854775808", "a"],
        ["eval", "return 1", "18446744073709551617", "a"],
        ["eval", "return 1", "-9223372036854775808", "a"],
        ["eval", "return 1", "-9223372036854775809", "a"],
        ["eval", "return 1", "00000000000000000001", "a"],
        ["eval", "return 1", "000000000000000000001", "a"],
        ["evalsha", "0" * 40, "1", "a"], ["evalsha", "0" * 40, "0"],
        ["eval_ro", "return 1", "2", "a", "b"], ["evalsha_ro", "0" * 40, "1", "a", "x"],
        ["fcall", "f", "0"], ["fcall", "f", "2", "a", "b", "x"], ["fcall", "f", "3", "a"],
        ["fcall_ro", "f", "1", "a"], ["fcall_ro", "f", "1x", "a"],
        # keynum: sorted sets, sets, lists
        ["zunionstore", "dst", "2", "a", "b"],
        ["zunionstore", "dst", "2", "a", "b", "WEIGHTS", "1", "2", "AGGREGATE", "MAX"],
        ["zunionstore", "dst", "0", "a"], ["zunionstore", "dst", "3", "a", "b"],
        ["zunionstore", "dst", "1x", "a", "b"], ["zinterstore", "dst", "1", "a"],
        ["zdiffstore", "dst", "2", "a", "b"], ["zdiffstore", "dst", " 2", "a", "b"],
        ["zunion", "2", "a", "b"], ["zunion", "2", "a", "b", "WITHSCORES"],
        ["zinter", "1", "a"], ["zinter", "3", "a", "b"], ["zdiff", "2", "a", "b"],
        ["zintercard", "2", "a", "b", "LIMIT", "1"], ["zintercard", "+2", "a", "b"],
        ["sintercard", "2", "a", "b"], ["sintercard", "1", "a", "LIMIT", "5"],
        ["sintercard", "0", "a"], ["sintercard", "2x", "a", "b"],
        ["lmpop", "2", "a", "b", "LEFT"], ["lmpop", "1", "a", "RIGHT", "COUNT", "2"],
        ["lmpop", "0", "a", "LEFT"], ["lmpop", "3", "a", "LEFT"],
        ["blmpop", "0", "2", "a", "b", "LEFT"], ["blmpop", "0", "1", "a", "LEFT", "COUNT", "2"],
        ["blmpop", "0", "x1", "a", "LEFT"],
        ["zmpop", "1", "z", "MIN"], ["zmpop", "2", "a", "b", "MAX", "COUNT", "3"],
        ["zmpop", "1 ", "z", "MIN"],
        ["bzmpop", "0", "2", "a", "b", "MAX"], ["bzmpop", "1", "1", "a", "MIN"],
        ["bzmpop", "0", "02", "a", "b", "MAX"],
        # SORT / SORT_RO (unknown specs: always the procedure)
        ["sort", "k"], ["sort", "k", "ALPHA", "DESC"],
        ["sort", "k", "BY", "w_*", "GET", "#", "GET", "o_*", "STORE", "dst"],
        ["sort", "k", "STORE", "a", "STORE", "b"], ["sort", "k", "LIMIT", "0", "store", "x"],
        ["sort", "k", "STORE"], ["sort", "k", "store\x00x", "dst"], ["sort", "k", "GET", "store", "x"],
        ["sort", "k", "BY", "store", "dst"], ["sort", "k", "STORE", "get", "x"],
        ["sort", "k", "StOrE", "dst", "LIMIT", "0", "1"], ["sort", "k", "limit", "store", "x", "y"],
        ["sort_ro", "k"], ["sort_ro", "k", "BY", "x", "GET", "y", "STORE", "z"],
        # MIGRATE (keyword spec marked incomplete: the procedure decides)
        mig + ["k", "0", "5000"], mig + ["", "0", "5000", "KEYS", "a", "b", "c"],
        mig + ["k", "0", "5000", "KEYS", "a", "b"], mig + ["", "0", "5000", "keys", "a"],
        mig + ["", "0", "5000", "COPY", "REPLACE", "AUTH", "pw", "KEYS", "a"],
        mig + ["", "0", "5000", "AUTH", "keys", "KEYS", "a"],
        mig + ["", "0", "5000", "AUTH2", "u", "keys", "KEYS", "a", "b"],
        mig + ["keys", "0", "5000"], mig + ["", "0", "5000", "KEYS"],
        mig + ["", "0", "5000", "COPY", "KeYs", "a"], mig + ["\x00", "0", "5000", "KEYS", "a"],
        mig + ["", "0", "5000", "keys\x00z", "a"], mig + ["k", "0", "5000", "COPY"],
        mig + ["", "0", "5000", "FOO", "KEYS", "a"],
        # XREAD / XREADGROUP (keyword spec with limit 2; the procedure on a misfit)
        ["xread", "STREAMS", "a", "0"], ["xread", "STREAMS", "a", "b", "0", "1"],
        ["xread", "COUNT", "1", "BLOCK", "0", "STREAMS", "a", "0"],
        ["xread", "streams", "a", "b", "0"], ["xread", "STREAMS", "streams", "0"],
        ["xread", "COUNT", "streams", "STREAMS", "a", "0"], ["xread", "BLOCK", "0", "STREAMS"],
        ["xread", "COUNT", "5", "STREAMS", "a"], ["xread", "STREAMS\x00x", "a", "0"],
        ["xread", "FOO", "STREAMS", "a", "0"], ["xread", "STREAMS", "a", "b", "c", "0", "1", "2"],
        ["xreadgroup", "GROUP", "g", "c", "STREAMS", "a", "0"],
        ["xreadgroup", "GROUP", "g", "c", "STREAMS", "a", "b", ">", ">"],
        ["xreadgroup", "GROUP", "g", "c", "COUNT", "1", "NOACK", "STREAMS", "a", "0"],
        ["xreadgroup", "GROUP", "streams", "c", "STREAMS", "a", "0"],
        ["xreadgroup", "GROUP", "g", "STREAMS", "STREAMS", "a", "0"],
        ["xreadgroup", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "a"],
        # GEORADIUS / GEORADIUSBYMEMBER (keyword specs for STORE / STOREDIST)
        geo, geo + ["STORE", "dst"], geo + ["STOREDIST", "dst"], geo + ["store", "a", "STOREDIST", "b"],
        geo + ["STORE"], geo + ["STORE", "STORE", "x"], geo + ["WITHDIST", "COUNT", "1", "STORE", "dst"],
        geo + ["STOREDIST", "a", "STORE", "b"], geom, geom + ["STORE", "dst"],
        geom + ["STOREDIST", "dst", "ASC"], ["georadius", "g", "0", "0", "1", "STORE", "dst"],
        # SET and BITFIELD (variable_flags: always the procedure)
        ["set", "k", "v"], ["set", "k", "v", "GET"], ["set", "k", "v", "EX", "10", "get"],
        ["set", "k", "v", "NX"], ["set", "k", "v", "GET\x00x"], ["set", "k", "get"],
        ["set", "k", "v", "gets"], ["set", "k", "v", "PX", "100", "KEEPTTL", "GeT"],
        ["set", "get", "v"],
        ["bitfield", "k"], ["bitfield", "k", "GET", "u8", "0"], ["bitfield", "k", "SET", "u8", "0", "1"],
        ["bitfield", "k", "INCRBY", "u8", "0", "1"], ["bitfield", "k", "OVERFLOW", "SAT", "GET", "u8", "0"],
        ["bitfield", "k", "GET", "u8"], ["bitfield", "k", "OVERFLOW"], ["bitfield", "k", "FOO"],
        ["bitfield", "k", "GET", "u8", "0", "SET", "u8", "0", "1"], ["bitfield", "k", "SET", "u8", "0"],
        ["bitfield", "k", "get\x00", "u8", "0"],
        # keyless, and shard channels (not_key specs)
        ["ping"],  # too short for COMMAND GETKEYSANDFLAGS (its own arity error)
        ["echo", "x"], ["client", "list"], ["config", "get", "x"], ["keys", "*"],
        ["scan", "0"], ["select", "0"], ["publish", "ch", "m"],
        ["subscribe", "a", "b"], ["psubscribe", "p*"], ["spublish", "ch", "m"],
        ["ssubscribe", "a", "b"], ["sunsubscribe", "a"], ["object", "help"], ["memory", "stats"],
        ["xinfo", "help"], ["command", "getkeys", "get", "k"], ["script", "flush"],
        # arity and lookup errors
        ["get"], ["get", "a", "b"], ["object", "encoding"], ["object", "nope", "k"], ["object"],
        ["xread", "STREAMS", "a"], ["lmove", "a", "b", "LEFT"], ["ping", "a", "b"],
        # what newer releases added or changed
        ["zrank", "z", "m", "WITHSCORE"],
        ["waitaof", "0", "0", "0"], ["wait", "0", "0"], ["client", "no-touch", "on"],
        ["hexpire", "h", "10", "FIELDS", "1", "f"], ["hexpire", "h", "10", "NX", "FIELDS", "2", "f", "g"],
        ["httl", "h", "FIELDS", "1", "f"], ["hpersist", "h", "FIELDS", "1", "f"],
        ["hgetall", "h"], ["script", "show", "x"], ["watch", "a"], ["multi", "x"],
        ["fcall", "f", "4294967297", "a"], ["zunion", "4294967297", "a"],
        ["lmpop", "4294967297", "a", "LEFT"], ["sintercard", "4294967297", "a"],
        ["eval_ro", "return 1", "4294967298", "a", "b"],
    ]
    return out


def sweep_cases(commands):
    """Every command and subcommand with distinct dummy arguments."""
    out = []
    for c in commands:
        specs = c["subs"] if c["subs"] else [c]
        for s in specs:
            words = s["name"].split("|")
            need = abs(s["arity"]) - len(words)
            for extra in (0, 3):
                n = need + extra
                if s["arity"] > 0 and extra:
                    continue
                argv = words + ["a%d" % i for i in range(1, n + 1)]
                # COMMAND GETKEYSANDFLAGS needs a command and an argument.
                if len(argv) >= 2:
                    out.append(argv)
    return out


class ServerError(Exception):
    pass


class ErrResp(Resp):
    """Resp, with error replies raised as ServerError(text without "-ERR ")."""

    def read(self):
        if self.buf[:1] == b"-" or (not self.buf and self._peek() == b"-"):
            line = self._line()
            raise ServerError(line[1:].decode("latin-1").removeprefix("ERR "))
        return super().read()

    def _peek(self):
        self._fill()
        return self.buf[:1]


def run(r, argv):
    """COMMAND GETKEYSANDFLAGS <argv> -> fixture entry (without argv)."""
    try:
        reply = r.call(b"COMMAND", b"GETKEYSANDFLAGS", *argv)
    except ServerError as e:
        return {"error": e.args[0]}
    keys = []
    for name, flags in reply:
        where = [i for i, a in enumerate(argv) if a == name and i > 0]
        keys.append({"name": name.decode("latin-1"),
                     "pos": where[0] if len(where) == 1 else None,
                     "flags": [f.decode() for f in flags]})
    return {"keys": keys}


def run_all(binary, expected_version, before=()):
    """The fixture entries of a throwaway server of `binary`: the argvs of
    `before` (entries), then the hand cases and the sweep over its commands
    that `before` lacks."""
    proc, port, tmpdir = start_server(binary)
    try:
        r = Resp(port)
        info = r.call("INFO", "server").decode()
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        version = (fields.get("valkey_version") or fields.get("redis_version", "")).strip()
        if version != expected_version:
            raise SystemExit("%s: expected %s, got %s" % (binary, expected_version, version))
        commands = sorted((parse_command(e) for e in r.call("COMMAND", "INFO") if e),
                          key=lambda c: c["name"])
        r.close()
        argvs = [[b(a) for a in e["argv"]] for e in before]
        seen = {tuple(a) for a in argvs}
        for argv in [[b(a) for a in argv] for argv in hand_cases()] + \
                [[a.encode() for a in argv] for argv in sweep_cases(commands)]:
            if not before or tuple(argv) not in seen:
                argvs.append(argv)
                seen.add(tuple(argv))
        results = []
        r = ErrResp(port)
        for argv in argvs:
            entry = {"argv": [a.decode("latin-1") for a in argv]}
            entry.update(run(r, argv))
            results.append(entry)
        r.close()
    finally:
        stop_server(proc, tmpdir)
    return results


def record_or_check(binary, record):
    results = run_all(binary, EXPECTED_VERSION)
    text = json.dumps(results, indent=0, ensure_ascii=True) + "\n"
    with_keys = sum(1 for e in results if e.get("keys"))
    ambiguous = sum(1 for e in results for k in e.get("keys", []) if k["pos"] is None)
    summary = ("%d cases (%d with keys, %d keys without a unique position)"
               % (len(results), with_keys, ambiguous))
    if record:
        os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
        with open(FIXTURE, "w") as f:
            f.write(text)
        print("recorded %s in %s" % (summary, FIXTURE))
        return 0, results
    with open(FIXTURE) as f:
        expected = json.load(f)
    if [e["argv"] for e in expected] != [r["argv"] for r in results]:
        print("case list differs from the fixture; run with --record")
        return 1, expected
    bad = 0
    for e, r in zip(expected, results):
        if e != r:
            bad += 1
            print("MISMATCH %r:\n  fixture %r\n  server  %r" % (e["argv"], e, r))
    print("%s, %d mismatches" % (summary, bad))
    return (1 if bad else 0), results


def record_or_check_newer(servers, base, record):
    """Runs 7.0's cases and each server's own sweep on each (version,
    binary); keeps or checks what differs from `base` (7.0's results)."""
    releases = {version_name(v): r for _, r, v in RELEASES}
    order = [version_name(v) for _, _, v in RELEASES]
    return newer_fixtures.record_or_check(
        FIXTURE, servers, base, record,
        lambda version, binary: run_all(binary, releases[version], base), order)


def main():
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--record", action="store_true")
    mode.add_argument("--check", action="store_true", help="the default")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--server", action="append", default=[], metavar="VERSION=PATH")
    ap.add_argument("--skip-installed", action="store_true")
    args = ap.parse_args()
    # The newer data servers: a Sentinel answers none of these cases.
    known = [version_name(v) for _, _, v in DATA_RELEASES[1:]]
    servers = newer_fixtures.parse_servers(args.server, known)
    if args.skip_installed:
        with open(FIXTURE) as f:
            status, base = 0, json.load(f)
    else:
        status, base = record_or_check(args.redis_server, args.record)
    if servers:
        status |= record_or_check_newer(servers, base, args.record)
    return status


if __name__ == "__main__":
    sys.exit(main())
