#!/usr/bin/env python3
"""Record or check what a real redis-server 7.0.15 replies, UNAUTHENTICATED,
to commands that fail lookup/arity (or are refused with NOAUTH).

Usage:
    python3 tools/verify_command_errors.py            # check the fixture
    python3 tools/verify_command_errors.py --record   # rewrite the fixture
    python3 tools/verify_command_errors.py --nul-collisions 5000
    python3 tools/verify_command_errors.py --server valkey-8.0=PATH [--record]

With --server VERSION=PATH (repeatable), the same cases also run on the
server binary PATH of that newer release; the cases it answers otherwise
than 7.0 are kept in unauthenticated_replies_newer.json (see
tools/newer_fixtures.py). --skip-installed leaves the installed server (and
its fixture) out.

The fixture, src/command/testdata/unauthenticated_replies.json, is a list of
{"argv": [...], "requirepass": bool, "reply": "...", "closed": bool}, strings
being latin-1 (one char per byte). `cargo test` checks that resolve() + write_error_reply() /
noauth_reply() produce exactly `reply` for every case, so recording
here and testing there ties the Rust code to the real server's bytes.

Each case runs on a fresh connection to `redis-server --requirepass ...`,
followed by a sentinel command, so "no reply" and "connection closed" are
observable too. Redis refuses more than 10 arguments (and bulks over 16384
bytes) from a client that still has to authenticate ("Protocol error:
unauthenticated multibulk length"), so cases with more arguments than that run
on a second server without a password ("requirepass": false); they are all
unknown commands, whose reply does not depend on authentication.
"""

import argparse
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import newer_fixtures  # noqa: E402
from gen_command_table import (  # noqa: E402
    REPO_ROOT, DATA_RELEASES, RELEASES, start_server, stop_server, version_name)

FIXTURE = os.path.join(REPO_ROOT, "src", "command", "testdata",
                       "unauthenticated_replies.json")
SENTINEL = [b"verify-sentinel"]
SENTINEL_REPLY = (b"-ERR unknown command 'verify-sentinel', "
                  b"with args beginning with: \r\n")


def b(s):
    return s.encode("latin-1") if isinstance(s, str) else s


def cases():
    """The argument vectors to try; bytes or latin-1 str."""
    long200 = "x" * 200
    out = [
        # unknown commands
        ["foo"], ["foo", "a", "b"], ["FoO", "A"], ["foo", ""], [""], ["", "a"],
        ["foo", "a\r\nb", "c\rd", "e\nf"], ["fo\r\no", "x"],
        ["foo\0bar", "x\0y", "\0z"], ["\0abc", "q"],
        ["n" * 127], ["n" * 128], ["n" * 129], ["n" * 300, "a"],
        ["foo", long200], ["foo", "a" * 124, "b"], ["foo", "a" * 125, "b"],
        ["foo", "a" * 123, "bcdef"], ["foo", "a" * 60, "b" * 60, "c" * 60],
        ["foo"] + ["abc"] * 50, ["foo"] + [str(i) for i in range(1000)],
        ["foo", "\0" * 10, "tail"], ["foo", "ab\0" + "c" * 200, "d"],
        ["foo", "z" * 20000], ["foo"] + ["a"] * 9, ["foo"] + ["a"] * 10,
        ["\xc3\xa9t\xe9", "\xff\xfe\x80"], ["foo", "'quoted'", "%s%n%d"],
        ["client|kill", "1"], ["config|get", "x"], ["get\0", "k"],
        ["GET\0x", "k"], ["get ", "k"], [" get", "k"], ["posts"], ["hostx"],
        ["host"], ["post:"],
        # unknown subcommands
        ["client", "foo"], ["cLiEnT", "FoO", "bar"], ["config", long200],
        ["client", "a\r\nb"], ["client", "x\0y"], ["client", ""],
        ["client", "list\0"], ["object", "help2"], ["xinfo", "nope", "a"],
        ["Command", "\xe9"], ["acl", "n" * 128], ["acl", "n" * 129],
        ["memory", "usage\0", "k"], ["script", "kill|x"],
        # arity
        ["get"], ["GET", "a", "b"], ["client"], ["CLIENT"], ["config"],
        ["config", "get"], ["CONFIG", "GET"], ["client", "kill"],
        ["CLIENT", "KILL"], ["command", "count", "x"], ["command", "getkeys"],
        ["exec", "x"], ["EXEC", "x", "y"], ["multi", "x"], ["discard", "1"],
        ["auth"], ["reset", "x"], ["quit\0", "x"], ["set", "k"],
        ["xgroup"], ["xgroup", "create", "a"], ["object", "freq"],
        ["pubsub", "numpat", "x"], ["function", "dump", "x"],
        ["debug"], ["module", "load"],
        # valid commands, refused by NOAUTH
        ["ping"], ["PING", "a", "b"], ["get", "a"], ["command"],
        ["command", "info"], ["client", "list", "extra"], ["acl", "cat"],
        ["exec"], ["multi"], ["config", "get", "x"], ["debug", "sleep", "0"],
        ["module", "list"], ["module", "load", "x"], ["MODULE", "UNLOAD", "x"],
        ["debug", "x"], ["client", "kill", "a", "b", "c"],
        ["subscribe", "ch"], ["eval", "return 1", "0"], ["select", "1"],
        # security guard (connection closed, no reply)
        ["post"], ["POST", "x"], ["Host:"], ["host:\0x"], ["post\0", "y"],
        ["HoSt:", "a"],
        # empty command (ignored, no reply)
        [],
        # no_auth commands that actually run
        ["auth", "wrong"], ["hello"], ["hello", "2", "auth", "default", "bad"],
        ["reset"], ["quit"],
        # ... and the errors of AUTH and HELLO, whose order changed in 7.2
        ["auth", "a", "b", "c"], ["auth", "default", "bad"], ["hello", "3"],
        ["hello", "4"], ["hello", "x"], ["hello", "1"], ["hello", "3", "foo"],
        ["hello", "3", "auth", "default"], ["hello", "3", "setname", "a b"],
        ["hello", "3", "auth", "default", "bad", "setname", "a b"],
        ["hello", "3", "setname", "a b", "auth", "default", "bad"],
        ["hello", "3", "auth", "default", "bad", "foo"],
        ["hello", "3", "auth", "default", "verify-secret", "foo"],
        ["hello", "3", "auth", "default", "verify-secret", "setname", "a b"],
        # what newer releases added or changed
        ["waitaof"], ["waitaof", "0", "0", "0"], ["wait", "0", "0"],
        ["client", "no-touch"], ["client", "no-touch", "on"], ["client", "setinfo", "a"],
        ["client", "capa", "redirect"], ["client", "capa"], ["cluster", "myshardid"],
        ["cluster", "slot-stats"], ["cluster", "slot-stats", "slotsrange", "0", "1"],
        ["script", "show", "x"], ["script", "show"], ["zrank", "k", "m", "withscore"],
        ["zrevrank", "k", "m", "withscore"], ["zrank", "k"],
        ["command", "getkeys", "get"], ["command", "getkeysandflags", "get"],
        ["hexpire", "k"], ["hexpire", "k", "10", "FIELDS", "1", "f"],
        ["httl", "k", "FIELDS", "1", "f"], ["hpersist", "k", "FIELDS", "1"],
        ["multi"], ["watch", "k"],
    ]
    return [[b(a) for a in argv] for argv in out]


def encode(argv):
    out = b"*%d\r\n" % len(argv)
    for a in argv:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def run_case(port, argv):
    """Returns (reply bytes before the sentinel's reply, connection closed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(encode(argv) + encode(SENTINEL))
    except OSError:
        pass
    data = b""
    closed = False
    while not data.endswith(SENTINEL_REPLY):
        try:
            chunk = sock.recv(1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            closed = True
            break
        data += chunk
    sock.close()
    if not closed:
        data = data[:-len(SENTINEL_REPLY)]
    return data, closed


def latin1(x):
    return x.decode("latin-1")


# Cases run on a server without a password.
OPEN_CASES = [[b"auth", b"x"], [b"auth", b"default", b"x"]]


def needs_open_server(argv):
    return len(argv) > 10 or any(len(a) > 16384 for a in argv) or argv in OPEN_CASES


def run_all(binary):
    """Every case on fresh throwaway servers of `binary`."""
    results = []
    locked = start_server(binary, ["--requirepass", "verify-secret"])
    try:
        open_ = start_server(binary)
        try:
            for argv in cases() + OPEN_CASES:
                requirepass = not needs_open_server(argv)
                port = locked[1] if requirepass else open_[1]
                reply, closed = run_case(port, argv)
                results.append({"argv": [latin1(a) for a in argv],
                                "requirepass": requirepass,
                                "reply": latin1(reply), "closed": closed})
        finally:
            stop_server(open_[0], open_[2])
    finally:
        stop_server(locked[0], locked[2])
    return results


def record_or_check(binary, record):
    results = run_all(binary)
    text = json.dumps(results, indent=1, ensure_ascii=True) + "\n"
    if record:
        os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
        with open(FIXTURE, "w") as f:
            f.write(text)
        print("recorded %d cases in %s" % (len(results), FIXTURE))
        return 0, results
    with open(FIXTURE) as f:
        expected = json.load(f)
    bad = 0
    if [e["argv"] for e in expected] != [r["argv"] for r in results]:
        print("case list differs from the fixture; run with --record")
        return 1, expected
    for e, r in zip(expected, results):
        if e != r and newer_fixtures.hash_dependent([b(x) for x in e["argv"]]):
            # A NUL-named command hit its namesake's hash bucket this time.
            print("ignored (hash-dependent) %r: server %r" % (e["argv"][:3], r["reply"]))
        elif e != r:
            bad += 1
            print("MISMATCH %r:\n  fixture %r\n  server  %r"
                  % (e["argv"][:3], (e["reply"], e["closed"]),
                     (r["reply"], r["closed"])))
    print("%d cases, %d mismatches" % (len(results), bad))
    return (1 if bad else 0), results


def record_or_check_newer(servers, base, record):
    """Runs every case on each (version, binary); keeps or checks what
    differs from `base` (7.0's results)."""
    order = [version_name(v) for _, _, v in RELEASES]
    return newer_fixtures.record_or_check(
        FIXTURE, servers, base, record, lambda _version, binary: run_all(binary), order)


def nul_collisions(binary, n):
    """How often does `GET\\0<suffix> k` resolve to GET? (see lookup_command)

    Redis hashes the whole name but compares names with strcasecmp, so a
    name with a NUL after "get" finds GET whenever it lands in GET's hash
    bucket: roughly 1 in the dict size, with a hash seed that is random per
    process. One command at a time: Debian's 7.0.15 carries the
    CVE-2025-21605 fix, which disconnects an unauthenticated client whose
    unread replies pile up.
    """
    proc, port, tmpdir = start_server(binary, ["--requirepass", "verify-secret"])
    hits = []
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        for i in range(n):
            sock.sendall(encode([b"get\0%d" % i, b"k"]))
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                data += chunk
            if data.startswith(b"-NOAUTH"):
                hits.append(i)
        sock.close()
    finally:
        stop_server(proc, tmpdir)
    print("%d of %d 'get\\0<n>' names resolved to GET (got NOAUTH): %s"
          % (len(hits), n, hits[:20]))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--nul-collisions", type=int, default=0, metavar="N")
    ap.add_argument("--server", action="append", default=[], metavar="VERSION=PATH")
    ap.add_argument("--skip-installed", action="store_true")
    args = ap.parse_args()
    if args.nul_collisions:
        return nul_collisions(args.redis_server, args.nul_collisions)
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
