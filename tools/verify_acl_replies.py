#!/usr/bin/env python3
"""Record or check what real servers answer to the ACL commands the proxy
answers itself (ACL GETUSER, LIST, USERS, WHOAMI, CAT, DRYRUN, LOG) and to
HELLO with AUTH / SETNAME options.

Usage:
    python3 tools/verify_acl_replies.py                 # check (installed 7.0.15)
    python3 tools/verify_acl_replies.py --record
    python3 tools/verify_acl_replies.py --server redis-7.2=PATH ... [--record]

The fixture, src/acl/testdata/acl_replies.json, holds the corpus (USERS,
LOG_EVENTS) and one line per (server, case): {"server", "kind", "argv",
"reply"} with latin-1 strings, every case for redis-7.0 and, for a newer
release, only the cases whose answer differs from 7.0's (compared after
7.0's hash order is taken out, see hash_order_normalised). Kinds:

- "acl": argv sent by the default user (RESP2) after `ACL SETUSER` of every
  line of USERS; "acl3": the same after `HELLO 3`. `ACL CAT <category>` is
  answered in the server's dict order, which changes with its hash seed: its
  entry has "sorted": true and the reply's elements sorted.
- "log": `ACL LOG` (RESP2 and RESP3, argv says which) after LOG_EVENTS ran
  in order; the values of age-seconds, client-info, timestamp-created and
  timestamp-last-updated are replaced by 0, "ci", 0, 0.
- "hello": argv sent on a new connection, then "whoami" and "getname" the
  replies to ACL WHOAMI and CLIENT GETNAME after it.

`cargo test` builds the same users in the filter's core for each version and
compares (src/session/acl_commands.rs, src/session/auth.rs). With --server
VERSION=PATH the newer release's binary PATH is run too; its lines replace
that version's on --record. Without --server only redis-7.0's lines are
recorded or checked.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import newer_fixtures  # noqa: E402
from gen_command_table import (  # noqa: E402
    DATA_RELEASES, RELEASES, REPO_ROOT, start_server, stop_server, version_name)
from verify_noperm_replies import Raw as _Raw  # noqa: E402

FIXTURE = os.path.join(REPO_ROOT, "src", "acl", "testdata", "acl_replies.json")
SECRET = "verify-secret"

# ACL SETUSER <name> <rules...>; the filter builds `user <name> <rules...>`.
USERS = [
    ["alice", "on", ">alicepw", "~k*", "&ch*", "+get", "+set", "+publish",
     "+subscribe", "+multi", "+exec", "+config|get", "+acl|whoami", "+client|getname"],
    ["bob", "on", ">bobpw", "+multi", "+ping"],
    ["cats", "on", "nopass", "+@read", "-@dangerous", "+@write", "~app:*", "%R~ro:*",
     "%W~wo:*"],
    ["subs", "on", ">a", ">b", ">c", "+@all", "-config", "+config|get", "-debug"],
    ["firsts", "on", ">x", "-@all", "+select|0", "+select|1", "+SELECT|0",
     "+client|setname", "+Get", "-get"],
    ["sels", "on", ">x", "+get", "~a", "(~b +set &ch)", "(+@read %R~r*)"],
    ["resets", "on", ">x", "+@all", "~*", "&*", "reset", "+ping"],
    ["all", "on", "nopass", "allcommands", "allkeys", "allchannels"],
    ["offs", "off", ">x", "resetpass", "nocommands", "+@hash", "-hget"],
    ["cats2", "on", ">x", "+@all", "-@all", "+@string", "-@write", "+incr"],
    ["mixed", "on", ">x", "+config", "-config|set", "+acl|whoami", "-acl",
     "+@connection"],
    ["skip", "on", ">x", "skip-sanitize-payload", "+get"],
    ["san", "on", ">x", "sanitize-payload", "+get"],
    ["keys", "on", ">x", "~a", "~a", "%R~a", "%W~b", "~b", "&c", "&c", "resetkeys",
     "~z", "%RW~y"],
    ["upper", "on", ">x", "+GET", "+Config|Get", "-@ALL", "+@READ", "-CLIENT|KILL"],
    ["clients", "on", ">x", "+client", "-client|kill", "+client|kill", "-client",
     "+client|list"],
    ["negs", "on", ">x", "-get", "-@read", "+@read", "-set"],
    ["npass", "on", ">x", "nopass", ">y", "<y"],
    ["pw", "on", ">p1", ">p2", ">p1", "#" + "a" * 64],
    ["chans", "on", ">x", "resetchannels", "&a*", "&b", "allchannels"],
    ["merge", "on", ">x", "%R~a", "%W~a", "%W~b", "~c", "%R~c", "&x", "resetchannels", "&y"],
    ["dbg", "on", ">x", "-@all", "+debug|object", "+DEBUG|Sleep", "+select|DB", "+select|db"],
    ["flush", "on", ">x", "-@all", "+@all", "-@dangerous", "+flushall", "-@keyspace",
     "+del"],
    ["clears", "on", ">x", "+get", "(+set ~s)", "clearselectors", "(+@all -@all +get ~g)",
     "(~* &* +@all -@admin)"],
    ["subfirst", "on", ">x", "+@all", "-client", "+client|id", "+client|info", "-client|id",
     "-@connection"],
]

ACL_CASES = [["acl", "getuser", u[0]] for u in USERS] + [
    ["acl", "getuser", "default"],
    ["acl", "getuser", "nosuch"],
    ["acl", "list"],
    ["acl", "users"],
    ["acl", "whoami"],
    ["acl", "cat"],
] + [["acl", "cat", c] for c in (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
    "dangerous", "connection", "transaction", "scripting")] + [
    ["acl", "cat", "READ"],
    ["acl", "cat", "nosuchcat"],
    ["acl", "cat", "a", "b"],
    ["acl", "dryrun", "alice", "get", "k1"],
    ["acl", "dryrun", "alice", "get", "x"],
    ["acl", "dryrun", "sels", "set", "b", "v"],
    ["acl", "dryrun", "sels", "set", "a", "v"],
    ["acl", "dryrun", "sels", "get", "b"],
    ["acl", "dryrun", "sels", "publish", "ch", "m"],
    ["acl", "dryrun", "merge", "get", "a"],
    ["acl", "dryrun", "merge", "set", "c", "v"],
    ["acl", "dryrun", "dbg", "debug", "object", "k"],
    ["acl", "dryrun", "dbg", "debug", "sleep", "0"],
    ["acl", "dryrun", "dbg", "debug", "reload"],
    ["acl", "dryrun", "subfirst", "client", "info"],
    ["acl", "dryrun", "subfirst", "client", "id"],
    ["acl", "dryrun", "clears", "get", "g"],
    ["acl", "dryrun", "clears", "set", "s", "v"],
    ["acl", "dryrun", "offs", "hset", "h", "f", "v"],
    ["acl", "dryrun", "default", "flushall"],
    ["acl", "dryrun", "sels", "get", "r1"],
    ["acl", "dryrun", "firsts", "select", "0"],
    ["acl", "dryrun", "firsts", "select", "2"],
    ["acl", "dryrun", "nosuch", "get", "x"],
    ["acl", "dryrun", "alice", "nosuchcmd"],
    ["acl", "dryrun", "alice", "get"],
    ["acl", "log", "x"],
    ["acl", "log", "1", "2"],
    ["acl", "whoami", "x"],
    ["acl", "users", "x"],
    ["acl", "list", "x"],
    ["acl", "getuser"],
    ["acl", "getuser", "alice", "x"],
    ["acl", "dryrun", "alice"],
    ["acl", "dryrun", "alice", "config"],
    ["acl", "dryrun", "alice", "config", "nosuchsub"],
    ["acl", "dryrun", "alice", "CONFIG", "GET", "x"],
    ["acl", "dryrun", "alice", "Config", "Set", "x", "y"],
    ["acl", "dryrun", "alice", "mget", "k1", "x"],
    ["acl", "dryrun", "alice", "subscribe", "ch1", "other"],
    ["acl", "dryrun", "subs", "config", "set", "x", "y"],
    ["acl", "dryrun", "subs", "debug", "sleep", "0"],
    ["acl", "dryrun", "cats", "keys", "*"],
    ["acl", "dryrun", "cats", "sort_ro", "ro:1"],
    ["acl", "dryrun", "cats", "set", "ro:1", "v"],
    ["acl", "dryrun", "cats", "get", "wo:1"],
    ["acl", "dryrun", "cats", "copy", "ro:1", "wo:1"],
    ["acl", "dryrun", "cats", "copy", "wo:1", "ro:1"],
    ["acl", "cat", "Read"],
    ["acl", "cat", "read\0x"],
    ["acl", "log", "reset", "x"],
]
ACL3_CASES = [["acl", "getuser", u] for u in ("alice", "sels", "cats", "clears")] + [
    ["acl", "getuser", "nosuch"],
    ["acl", "list"],
    ["acl", "users"],
    ["acl", "whoami"],
    ["acl", "cat"],
    ["acl", "dryrun", "alice", "get", "x"],
]

# (user, argv, reason, object, in multi): run in order, each denied.
LOG_EVENTS = [
    ("alice", ["del", "k"], "command", "del", False),
    ("alice", ["del", "k"], "command", "del", False),
    ("alice", ["get", "x"], "key", "x", False),
    ("alice", ["publish", "other", "m"], "channel", "other", False),
    ("alice", ["config", "set", "maxmemory", "1"], "command", "config|set", False),
    ("alice", ["AUTH", "alice", "wrong"], "auth", "AUTH", False),
    ("nosuch", ["auth", "nosuch", "wrong"], "auth", "auth", False),
    ("alice", ["del", "k"], "command", "del", False),
    ("alice", ["del", "k"], "command", "del", True),
]

HELLO_CASES = [
    ["hello", "3", "auth", "alice", "alicepw", "badopt"],
    ["hello", "3", "auth", "alice", "wrong", "badopt"],
    ["hello", "3", "auth", "alice", "wrong", "setname", "bad name"],
    ["hello", "3", "setname", "bad name", "auth", "alice", "alicepw"],
    ["hello", "3", "auth", "alice", "alicepw", "setname", "bad name"],
    ["hello", "3", "auth", "alice", "wrong", "auth", "alice", "alicepw"],
    ["hello", "3", "auth", "alice", "alicepw", "auth", "alice", "wrong"],
    ["hello", "3", "auth", "alice", "alicepw", "auth", "bob", "bobpw"],
    ["hello", "3", "setname", "nm", "auth", "alice", "wrong"],
    ["hello", "2", "auth", "alice", "alicepw", "setname", "nm"],
    ["hello", "2", "setname", "n1", "auth", "alice", "alicepw", "setname", "n2"],
    ["hello", "3", "setname", "nm"],
    ["hello", "3", "auth", "alice"],
    ["hello", "3", "auth", "alice", "wrong", "setname"],
    ["hello", "4", "auth", "alice", "wrong"],
    ["hello", "x", "auth", "alice", "alicepw"],
    ["hello", "3", "AUTH", "default", SECRET, "SETNAME", "ok"],
]

NORMALISED = {b"age-seconds": None, b"client-info": b"$2\r\nci\r\n",
              b"timestamp-created": b":0\r\n", b"timestamp-last-updated": b":0\r\n"}


def parse(buf, i=0):
    """One RESP element of buf at i -> (raw bytes, children or None, next i)."""
    end = buf.index(b"\r\n", i) + 2
    head = buf[i:end]
    kind = head[:1]
    if kind in (b"$", b"=", b"!") and int(head[1:-2]) >= 0:
        n = int(head[1:-2])
        return buf[i:end + n + 2], None, end + n + 2
    if kind in (b"*", b"%", b"~", b">", b"|"):
        n = int(head[1:-2]) * (2 if kind in (b"%", b"|") else 1)
        kids, j = [], end
        for _ in range(max(n, 0)):
            raw, sub, j = parse(buf, j)
            kids.append((raw, sub))
        return buf[i:j], (head, kids), j
    return head, None, end


def bulk_text(raw):
    return raw[raw.index(b"\r\n") + 2:-2] if raw[:1] == b"$" else None


def normalise(raw, sub):
    """Replaces the time- and client-dependent values of ACL LOG entries."""
    if sub is None:
        return raw
    head, kids = sub
    out = [head]
    replace_next = None
    for k_raw, k_sub in kids:
        if replace_next is not None:
            out.append(replace_next)
            replace_next = None
            continue
        text = bulk_text(k_raw)
        if text in NORMALISED:
            fixed = NORMALISED[text]
            if fixed is None:  # a double: RESP3 ',' or a RESP2 bulk
                fixed = b",0\r\n" if head[:1] == b"%" else b"$1\r\n0\r\n"
            replace_next = fixed
        out.append(normalise(k_raw, k_sub))
    return b"".join(out)


def sort_elements(reply):
    raw, sub, _ = parse(reply)
    head, kids = sub
    return head + b"".join(sorted(k for k, _ in kids))


class Raw(_Raw):
    """Whole replies of any RESP2/RESP3 type, as the bytes sent."""

    def reply(self):
        while True:
            try:
                raw, _sub, end = parse(self.buf)
            except (ValueError, IndexError):
                self._need(len(self.buf) + 1)
                continue
            if end > len(self.buf):
                self._need(end)
                continue
            self.buf = self.buf[end:]
            return raw


def hash_order_normalised(text):
    """Redis 7.0 lists single-command rules in its command dict's order,
    which changes with the hash seed: each run of them is sorted, in every
    line (the Rust test does the same)."""
    lines = []
    for line in text.split("\r\n"):
        tokens = line.split(" ")

        def single(t):
            return t[:1] in ("+", "-") and len(t) > 1 and t[1:2] != "@"
        i = 0
        while i < len(tokens):
            if not single(tokens[i]):
                i += 1
                continue
            start = i
            while i < len(tokens) and single(tokens[i]) and "(" not in tokens[i]:
                closes = tokens[i].endswith(")")
                i += 1
                if closes:
                    break
            run = tokens[start:i]
            closes = run[-1].endswith(")")
            if closes:
                run[-1] = run[-1][:-1]
            run.sort()
            if closes:
                run[-1] += ")"
            tokens[start:i] = run
        lines.append(" ".join(tokens))
    return "\r\n".join(lines)


def normalised_70(entries):
    return [dict(e, reply=hash_order_normalised(e["reply"])) for e in entries]


def enc(argv):
    return [a.encode("latin-1") for a in argv]


def dec(b):
    return b.decode("latin-1")


def authed(port, user=b"default", password=SECRET.encode()):
    c = Raw(port)
    assert c.call([b"auth", user, password]) == b"+OK\r\n"
    return c


def run_all(binary):
    proc, port, tmpdir = start_server(binary, ["--requirepass", SECRET])
    out = []
    try:
        admin = authed(port)
        for user in USERS:
            reply = admin.call([b"acl", b"setuser"] + enc(user))
            assert reply == b"+OK\r\n", (user, reply)
        for argv in ACL_CASES:
            reply = admin.call(enc(argv))
            entry = {"kind": "acl", "argv": argv}
            if argv[:2] == ["acl", "cat"] and len(argv) == 3 and reply[:1] == b"*":
                reply = sort_elements(reply)
                entry["sorted"] = True
            entry["reply"] = dec(reply)
            out.append(entry)
        resp3 = authed(port)
        resp3.call([b"hello", b"3"])
        for argv in ACL3_CASES:
            out.append({"kind": "acl3", "argv": argv, "reply": dec(resp3.call(enc(argv)))})
        # The ACL log.
        assert admin.call([b"acl", b"log", b"reset"]) == b"+OK\r\n"
        alice = authed(port, b"alice", b"alicepw")
        in_multi = False
        for user, argv, _reason, _obj, multi in LOG_EVENTS:
            if multi and not in_multi:
                assert alice.call([b"multi"]) == b"+OK\r\n"
                in_multi = True
            reply = alice.call(enc(argv))
            assert reply[:1] == b"-", (argv, reply)
        if in_multi:
            alice.call([b"exec"])
        for conn, label in ((admin, "2"), (resp3, "3")):
            raw, sub, _ = parse(conn.call([b"acl", b"log"]) + b"")
            out.append({"kind": "log", "argv": ["acl", "log", "resp" + label],
                        "reply": dec(normalise(raw, sub))})
            for count in ("2", "0", "-1", "100"):
                raw, sub, _ = parse(conn.call([b"acl", b"log", count.encode()]))
                out.append({"kind": "log", "argv": ["acl", "log", count, "resp" + label],
                            "reply": dec(normalise(raw, sub))})
        # HELLO.
        for argv in HELLO_CASES:
            c = Raw(port)
            reply = c.call(enc(argv))
            entry = {"kind": "hello", "argv": argv,
                     "reply": dec(reply) if reply[:1] == b"-" else "<hello map>",
                     "whoami": dec(c.call([b"acl", b"whoami"])),
                     "getname": dec(c.call([b"client", b"getname"]))}
            out.append(entry)
            c.sock.close()
    finally:
        stop_server(proc, tmpdir)
    return out


def case_key(entry):
    return json.dumps([entry["kind"], entry["argv"]])


def differences(base, results):
    """The entries of `results` (a newer release's) that 7.0's `base` does
    not have with the same answer, 7.0's hash order set aside."""
    by_key = {case_key(e): e for e in normalised_70(base)}
    return [r for r in results if by_key.get(case_key(r)) != dict(r, reply=hash_order_normalised(r["reply"]))]


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
        stored = {"results": []}
    by_version = {}
    for e in stored["results"]:
        e = dict(e)
        by_version.setdefault(e.pop("server"), []).append(e)
    status = 0
    base = None
    for version, binary in servers:
        results = run_all(binary)
        if version == "redis-7.0":
            base = results
        else:
            results = differences(base, results)
        if args.record:
            by_version[version] = results
            continue
        expected = by_version.get(version, [])
        if version == "redis-7.0":
            expected, results = normalised_70(expected), normalised_70(results)
        bad = newer_fixtures.compare(version, expected, results)
        print("%s: %d cases, %s mismatches" % (version, len(results), bad))
        status |= 1 if bad != 0 else 0
    if args.record:
        order = [version_name(v) for _, _, v in RELEASES]
        lines = [json.dumps(dict({"server": v}, **e), ensure_ascii=True)
                 for v in order for e in by_version.get(v, [])]
        events = [json.dumps(list(e)) for e in LOG_EVENTS]
        with open(FIXTURE, "w") as f:
            f.write('{"secret": %s,\n"users": [\n%s\n],\n"log_events": [\n%s\n],\n'
                    '"results": [\n%s\n]}\n' % (
                        json.dumps(SECRET),
                        ",\n".join(json.dumps(u) for u in USERS),
                        ",\n".join(events), ",\n".join(lines)))
        print("wrote %s" % FIXTURE)
    return status


if __name__ == "__main__":
    sys.exit(main())
