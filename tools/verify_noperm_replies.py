#!/usr/bin/env python3
"""Record or check what real servers answer when an ACL refuses a command.

Usage:
    python3 tools/verify_noperm_replies.py                 # check (installed 7.0.15)
    python3 tools/verify_noperm_replies.py --record
    python3 tools/verify_noperm_replies.py --server redis-7.2=PATH ... [--record]

The fixture, src/command/testdata/noperm_replies.json, is a list of
{"server": VERSION, "user": ..., "argv": [...], "reply": "..."} (latin-1
strings): each argv sent, after AUTH as "user", on a throwaway server with
the users below, and the exact bytes of the reply. `cargo test` checks
command::write_noperm_reply and command::write_dryrun_denial against it
(src/command/errors.rs). With --server VERSION=PATH the newer release's
binary PATH is run too; its entries replace that version's in the fixture on
--record. Without --server only the installed server's (redis-7.0) entries
are recorded or checked.
"""

import argparse
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import newer_fixtures  # noqa: E402
from gen_command_table import (  # noqa: E402
    DATA_RELEASES, RELEASES, REPO_ROOT, start_server, stop_server, version_name)

FIXTURE = os.path.join(REPO_ROOT, "src", "command", "testdata", "noperm_replies.json")

USERS = [
    ["alice", "on", ">alicepw", "~k*", "&ch*", "+get", "+set", "+publish",
     "+subscribe", "+multi", "+exec", "+config|get"],
    ["bob", "on", ">bobpw", "+multi", "+ping"],
]

# (user, [argv, ...]): the argvs run in order on one connection.
CASES = [
    ("alice", [["del", "k"]]),
    ("alice", [["set", "x", "v"]]),
    ("alice", [["get", "x\0y"]]),
    ("alice", [["config", "set", "maxmemory", "1"]]),
    ("alice", [["publish", "other", "m"]]),
    ("alice", [["subscribe", "ch1", "other"]]),
    ("alice", [["multi"], ["del", "k"], ["exec"]]),
    ("bob", [["multi"], ["exec"]]),
    ("bob", [["exec"]]),
    ("default", [["acl", "dryrun", "alice", "del", "k"]]),
    ("default", [["acl", "dryrun", "alice", "config", "set", "maxmemory", "1"]]),
    ("default", [["acl", "dryrun", "alice", "set", "x", "v"]]),
    ("default", [["acl", "dryrun", "alice", "set", "x\0y", "v"]]),
    ("default", [["acl", "dryrun", "alice", "publish", "other", "m"]]),
    ("default", [["acl", "dryrun", "alice", "publish", "o\0ch", "m"]]),
    ("default", [["acl", "dryrun", "alice", "get", "k"]]),
    ("default", [["acl", "dryrun", "bob", "exec"]]),
]


def encode(argv):
    out = b"*%d\r\n" % len(argv)
    for a in argv:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Raw:
    """Replies as the exact bytes the server sent (simple types, bulks,
    and flat arrays of them)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._need(len(self.buf) + 1)
        i = self.buf.index(b"\r\n") + 2
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def reply(self):
        line = self._line()
        if line[:1] == b"$" and int(line[1:-2]) >= 0:
            n = int(line[1:-2]) + 2
            self._need(n)
            body, self.buf = self.buf[:n], self.buf[n:]
            return line + body
        if line[:1] in (b"*", b">"):
            return line + b"".join(self.reply() for _ in range(int(line[1:-2])))
        return line

    def call(self, argv):
        self.sock.sendall(encode(argv))
        return self.reply()


def run_all(binary):
    proc, port, tmpdir = start_server(binary, ["--requirepass", "verify-secret"])
    out = []
    try:
        admin = Raw(port)
        assert admin.call([b"auth", b"verify-secret"]) == b"+OK\r\n"
        for user in USERS:
            reply = admin.call([b"acl", b"setuser"] + [w.encode() for w in user])
            assert reply == b"+OK\r\n", reply
        for user, argvs in CASES:
            c = Raw(port)
            password = {"default": "verify-secret", "alice": "alicepw", "bob": "bobpw"}[user]
            assert c.call([b"auth", user.encode(), password.encode()]) == b"+OK\r\n"
            for argv in argvs:
                argv = [a.encode("latin-1") for a in argv]
                out.append({"user": user, "argv": [a.decode("latin-1") for a in argv],
                            "reply": c.call(argv).decode("latin-1")})
            c.sock.close()
    finally:
        stop_server(proc, tmpdir)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--server", action="append", default=[], metavar="VERSION=PATH")
    args = ap.parse_args()
    # The newer data servers: a Sentinel answers none of these cases.
    known = [version_name(v) for _, _, v in DATA_RELEASES[1:]]
    servers = [("redis-7.0", args.redis_server)] + newer_fixtures.parse_servers(args.server, known)
    try:
        with open(FIXTURE) as f:
            stored = json.load(f)
    except FileNotFoundError:
        stored = []
    by_version = {}
    for e in stored:
        e = dict(e)
        by_version.setdefault(e.pop("server"), []).append(e)
    status = 0
    for version, binary in servers:
        results = run_all(binary)
        if args.record:
            by_version[version] = results
            continue
        bad = newer_fixtures.compare(version, by_version.get(version, []), results)
        print("%s: %d cases, %s mismatches" % (version, len(results), bad))
        status |= 1 if bad != 0 else 0
    if args.record:
        order = [version_name(v) for _, _, v in RELEASES]
        lines = [json.dumps(dict({"server": v}, **e), ensure_ascii=True)
                 for v in order for e in by_version.get(v, [])]
        with open(FIXTURE, "w") as f:
            f.write("[\n" + ",\n".join(lines) + "\n]\n")
        print("wrote %s" % FIXTURE)
    return status


if __name__ == "__main__":
    sys.exit(main())
