#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets, fuzz/corpus/<target>/seed-*.

    python3 fuzz/seeds/make_corpus.py            # rewrite the seed-* files
    python3 fuzz/seeds/make_corpus.py --capture  # first re-record captures/

Seeds come from the cases below (the protocol-error inputs of
e2e/test_filter_differential.py among them), from filter-config/*.json, and
from real traffic in fuzz/seeds/captures/: redis-benchmark and redis-cli
(RESP2 and RESP3) talking to a local redis-server through a recording relay.
`--capture` records that traffic again (needs redis-server, redis-cli and
redis-benchmark; everything listens on 127.0.0.1 only and stops by itself).

Only seed-* files are rewritten: inputs added to fuzz/corpus/ by hand are
kept. The framer targets read a small header before the payload (see each
target's doc comment); the seeds carry one, with a few chunk cuts.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FUZZ = HERE.parent
ROOT = FUZZ.parent
CAPTURES = HERE / "captures"
CORPUS = FUZZ / "corpus"


def C(*args) -> bytes:
    """A command as a RESP array of bulk strings."""
    out = b"*%d\r\n" % len(args)
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


# ------------------------------------------------------------ request_framer

AUTH = C("AUTH", "testredis123!")

REQUESTS: dict[str, bytes] = {
    # e2e/test_filter_differential.py CASES: protocol errors and close cases.
    "proto-invalid-multibulk-length": b"*x\r\n" + C("PING"),
    "proto-invalid-bulk-length": b"*1\r\n$x\r\n",
    "proto-negative-bulk-length": b"*1\r\n$-1\r\n",
    "proto-expected-dollar": b"*1\r\nx\r\n",
    "proto-unbalanced-quotes": b'SET "a b\r\n',
    "proto-closing-quote-not-followed-by-space": b'SET "a"b\r\n',
    "proto-unauthenticated-multibulk-length": b"*11\r\n",
    "proto-unauthenticated-bulk-length": b"*1\r\n$16385\r\n",
    # ("too big inline request", b"x" * 70000, is in fuzz/findings/: the
    # request_framer target reports a split-dependence for it.)
    "proto-errors-after-replies": C("PING") + C("AUTH", "bad") + b"*1\r\n$x\r\n" + C("PING"),
    "proto-error-after-auth": AUTH + C("PING") + b"*1\r\nx\r\n" + C("PING"),
    "cross-protocol-post": b"POST / HTTP/1.1\r\nHost: redis\r\n\r\n",
    "cross-protocol-host": b"Host: example.com\r\n" + C("PING"),
    # More of the differential CASES.
    "noauth": C("GET", "k") + C("PING") + C("MULTI") + C("EXEC"),
    "noauth-inline": b"SET k v\r\nping\r\n",
    "unknown-command-long": C("X" * 200, "y" * 200, "z"),
    "empty-commands": b"\r\n*0\r\n   \r\n" + C("PING"),
    "auth-forms": C("AUTH") + C("AUTH", "a", "b", "c") + C("AUTH", "wrong") + C("AUTH", "")
    + C("AUTH", "alice", "alicepw") + b"auth testredis123!\r\nping\r\n",
    "hello-forms": C("HELLO") + C("HELLO", "3") + C("HELLO", "4") + C("HELLO", "three")
    + C("HELLO", "3", "AUTH", "alice") + C("HELLO", "3", "AUTH", "alice", "alicepw", "SETNAME", "app")
    + C("HELLO", "2", "AUTH", "default", "testredis123!", "BOGUS"),
    "quit-reset": AUTH + C("RESET") + C("PING") + C("QUIT") + C("PING"),
    "pipelined-mixture": C("GET", "a") + C("AUTH", "bad") + AUTH + C("ECHO", "ok") + C("RESET") + C("GET", "a"),
    "multi-exec": AUTH + C("MULTI") + C("ECHO", "a") + C("AUTH", "x") + C("EXEC"),
    "subscribe": AUTH + C("SUBSCRIBE", "diff-a", "diff-b") + C("PING") + C("UNSUBSCRIBE", "diff-b", "diff-a"),
    "binary-payload": AUTH + C("ECHO", b"\r\n+OK\r\n$-1\r\n\x00\xff"),
    "authenticated-bulk-limits": AUTH + C("ECHO", "x" * 20000),
    "inline-quoting": AUTH + b'ECHO "a\\x41\\n\\q"\r\nECHO \'it\\\'s\'\r\n',
    # Parser corners (src/resp/request.rs tests).
    "inline-sdssplitargs": b'  set  a   b \r\nset "a b" \'c d\'\r\necho "\\x41\\n\\q"\r\n'
    b"echo 'it\\'s'\r\necho \"\"\r\na\rb\r\na\x0bb\r\nping\n",
    "inline-bad-quotes": b"echo \"abc\r\necho 'abc\r\n",
    "unchecked-bytes": b"*1\rX$4\rYPINGzz",
    "nul-stalls-line": b"*1\x00\r\n$4\r\nPING\r\n",
    "nul-stalls-inline": b"PING\x00\n" + b"a" * 100,
    "multibulk-limits": b"*2147483648\r\n",
    "multibulk-leading-zero": b"*01\r\n",
    "multibulk-empty-count": b"*\r\n",
    "bulk-too-long": b"*1\r\n$536870913\r\n",
    "bulk-empty-line": b"*1\r\n\r\n",
    "ten-args-unauthenticated": C(*(["MSET"] + ["k"] * 9)),
    "long-name": C("x" * 33, "y"),
    "long-first-arg-unauthenticated": b"*10\r\n$16384\r\n" + b"v" * 64,
    "negative-count": b"*-1\r\n*-5\r\n" + C("PING"),
    "auth-long-password": C("AUTH", "p" * 300),
    "blocking-and-pubsub": AUTH + C("BLPOP", "q", "0") + C("PSUBSCRIBE", "news.*") + C("PUNSUBSCRIBE"),
    "sync": AUTH + C("SYNC") + b"garbage\r\n",
    "client-reply-off": AUTH + C("CLIENT", "REPLY", "OFF") + C("PING") + C("CLIENT", "REPLY", "ON"),
    # Past the 64 KiB line limit (fuzzing itself stays below it): a NUL keeps
    # the line from ending, so these are refused however they are split.
    "nul-stalls-inline-too-big": b"PING\x00\n" + b"a" * 65537,
    "nul-stalls-count-too-big": b"*1\x00\r\n" + b"a" * 65537,
    "nul-stalls-bulk-line-too-big": b"*1\r\n$1\x00\r\n" + b"a" * 65537,
    # More arguments than are retained (1024), and one longer than is
    # retained (64 KiB): `is_whole` turns false.
    "many-args": b"*1100\r\n" + b"$0\r\n\r\n" * 1100,
    "collect-capped-arg": C("AUTH", "p" * 65546),
}

# ------------------------------------------------------------ reply_framer

REPLIES: dict[str, bytes] = {
    "resp2-basic": b"+OK\r\n-ERR no\r\n:42\r\n$3\r\nfoo\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n"
    b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n$7\r\n\r\n+OK\r\n\r\n",
    "resp3-basic": b"%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n~1\r\n,1.5\r\n"
    b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n_\r\n#t\r\n(123\r\n!3\r\nerr\r\n"
    b"=7\r\ntxt:abc\r\n%0\r\n",
    "resp3-attributes": b"|1\r\n+ttl\r\n:3\r\n$2\r\nok\r\n|0\r\n+x\r\n*1\r\n|1\r\n+a\r\n+b\r\n:5\r\n"
    b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n*2\r\n:2039123\r\n:9543892\r\n"
    b"*2\r\n|1\r\n+a\r\n|1\r\n+b\r\n+c\r\n+d\r\n+e\r\n",
    "nesting-at-limit": b"*1\r\n" * 256 + b":1\r\n",
    "nesting-too-deep": b"*1\r\n" * 257 + b":1\r\n",
    "nesting-mixed": (b"%1\r\n+k\r\n~1\r\n>1\r\n|1\r\n+a\r\n+b\r\n*1\r\n") * 20 + b"_\r\n" + b":0\r\n" * 20,
    "bad-type-byte": b"+OK\r\nx\r\n",
    "missing-lf": b"+OK\rX",
    "bad-lengths": b"$abc\r\n",
    "negative-length": b"$-2\r\n",
    "map-null": b"%-1\r\n",
    "streamed": b"$?\r\n;4\r\nHell\r\n;0\r\n",
    "streamed-aggregate": b"*?\r\n:1\r\n.\r\n",
    "bulk-bad-trailer": b"$3\r\nfooXY",
    "bulk-lenient-trailer": b"$3\r\nfooX\n+OK\r\n",
    "length-too-long": b"*123456789012345678901\r\n",
    "large-bulk-header": b"$5000000\r\n" + b"x" * 200,
    "marker-replies": b"+era:0123456789abcdef\r\n$20\r\nera:0123456789abcdef\r\n"
    b"-ERR unknown command 'era:0123456789abcdef', with args beginning with: \r\n",
    "subscribe-confirmations": b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
    b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
    "integers": b":0\r\n:-1\r\n:9223372036854775807\r\n:-9223372036854775808\r\n:01\r\n:abc\r\n",
}

# ------------------------------------------------------------ config

MARKER_LINE = "user fuzzuser on >$M ~* &* +@all"

CONFIGS: dict[str, str] = {
    "readme-example": json.dumps({
        "downstream": {"password": "testredis123!", "users": ["user alice on >alicepw ~* &* +@all"],
                       "max_auth_failures": 5},
        "upstream": {"username": "appuser", "password": {"env": "REDIS_PASSWORD"}},
    }),
    "planted-everywhere": json.dumps({
        "downstream": {"password": "$M", "users": ["$U", "user rot on >$M >other #$H ~* &* +@all"],
                       "max_auth_failures": 0},
        "upstream": {"username": "$E", "password": "$B"},
    }),
    "planted-forms": json.dumps({"downstream": {"password": "$I", "users": ["$B:" + MARKER_LINE.replace("fuzzuser", "b"),
                                                                             "$E:" + MARKER_LINE.replace("fuzzuser", "e"),
                                                                             "$I:" + MARKER_LINE.replace("fuzzuser", "i"),
                                                                             {"base64": "x"}]},
                                 "upstream": {"password": "$ENL"}}),
    "planted-newlines": json.dumps({"downstream": {"password": "$MNL"}, "upstream": {"password": "$BNL"}}),
    "planted-env-acl": json.dumps({"downstream": {"users": ["$EACL"]}, "upstream": {"password": "$E"}}),
    "planted-as-env-name": json.dumps({"upstream": {"password": {"env": "$M"}}}),
    "planted-as-base64": json.dumps({"upstream": {"password": {"base64": "$M"}}}),
    "planted-narrower": json.dumps({"downstream": {"users": ["user bob on >$M ~app:* &* +@all"]}}),
    "planted-command-rule": json.dumps({"downstream": {"users": ["user bob on >$M ~* &* +@all +get"]}}),
    "planted-bad-rule": json.dumps({"downstream": {"users": ["user bob on >$M %Q~x &* +@all"]}}),
    "planted-remove": json.dumps({"downstream": {"users": ["user bob on <$M ~* &* +@all"]}}),
    "planted-remove-hash": json.dumps({"downstream": {"users": ["user bob on !$HU ~* &* +@all"]}}),
    "planted-duplicate-user": json.dumps({"downstream": {"users": ["user bob on >$M ~* &* +@all",
                                                                   "user bob on #$H ~* &* +@all"]}}),
    "planted-default-conflict": json.dumps({"downstream": {"password": "$M",
                                                           "users": ["user default on >$M ~* &* +@all"]}}),
    "planted-username": json.dumps({"upstream": {"username": "$M", "password": "$M"}}),
    "planted-warnings": json.dumps({"downstream": {"password": "p", "users": [
        "user off1 off >$M ~* &* +@all", "user nopw on ~* &* +@all skip-sanitize-payload"]}}),
    "planted-wrong-types": json.dumps({"downstream": {"password": ["$M"], "users": "$U",
                                                      "max_auth_failures": "$M"}}),
    "planted-unknown-field": '{"upstream": {"password": {"inline": "$M", "base64": "$B"}}}',
    "duplicate-fields": '{"downstream": {"password": "a", "password": "$M"}}',
    "duplicate-secret-forms": '{"upstream": {"password": {"env": "A", "env": "B"}}}',
    "unknown-fields": '{"downstrem": {}, "a\\u0001": 1, "": 2}',
    "odd-key": '{"upstream": {"password": {"pass word!": "x"}}}',
    "empty": "",
    "empty-object": "{}",
    "invalid-json": '{"downstream": {"password": "x",}}',
    "numbers": '{"downstream": {"password": "p", "max_auth_failures": -1}}',
    "float": '{"downstream": {"password": "p", "max_auth_failures": 1.5e3}}',
    "big-number": '{"downstream": {"password": "p", "max_auth_failures": 4294967296}}',
    "bad-base64": '{"upstream": {"password": {"base64": "dGVzd HJlZGlz"}}}',
    "base64-non-utf8-username": '{"upstream": {"password": "p", "username": {"base64": "/w=="}}}',
    "binary-password": '{"upstream": {"password": {"base64": "AA0K/w=="}}}',
    "users-from-secrets": '{"downstream": {"users": [{"base64": "dXNlciD/"}, {"env": "ALICE"}, 42]}}',
    "hashed-upper": '{"downstream": {"users": ["user app on #6C904C5190E8B45C2F0AF062EEFDB2F5B41CE3809B0E6B5BC50AAFDD60B290D8 ~* &* +@all"]}}',
    "deep-nesting": "[" * 200 + "]" * 200,
    "escapes": '{"downstream": {"password": "\\u00a7\\ud83d\\ude00\\n"}}',
    "user-default-line": json.dumps({"downstream": {"users": ["user default on >$M ~* &* +@all",
                                                              "user alice on nopass ~* &* +@all"]}}),
    # The size limits (longer than -max_len: exercised by the replay).
    "password-too-long": json.dumps({"downstream": {"password": "p" * 4097}}),
    "inline-too-long": json.dumps({"upstream": {"password": {"inline": "p" * 4097}}}),
    "base64-too-long": json.dumps({"upstream": {"password": {"base64": "cHBw" * 1366}}}),
    "username-too-long": json.dumps({"upstream": {"password": "p", "username": "u" * 4097}}),
    "too-many-users": json.dumps({"downstream": {"users": [""] * 1001}}),
}

# ------------------------------------------------------------ acl_line

# The hash filter-config/hashed-client-passwords.json uses.
H = "6c904c5190e8b45c2f0af062eefdb2f5b41ce3809b0e6b5bc50aafdd60b290d8"

ACL_LINES: dict[str, str] = {
    "full": "user alice on >alicepw ~* &* +@all",
    "keywords": "user bob on nopass allkeys allchannels allcommands",
    "hash": f"user app on #{H} ~* &* +@all",
    "rotation": "user rot on >old >new <old ~* &* +@all",
    "planted": "user fuzzuser on >$M ~* &* +@all",
    "planted-hash": "user fuzzuser on #$H ~* &* +@all",
    "planted-hash-upper": "user fuzzuser on #$HU !$HU ~* &* +@all",
    "planted-remove-missing": "user fuzzuser on <$M ~* &* +@all",
    "planted-narrower": "user fuzzuser on >$M ~app:* %R~x &news +@all",
    "planted-command": "user fuzzuser on >$M ~* &* +@all -debug +@read",
    "planted-bad-key": "user fuzzuser on >$M %X~x ~a\tb",
    "planted-selector": "user fuzzuser on >$M (~x +get) ~* &* +@all",
    "planted-after-all": "user fuzzuser on >$M ~* ~x &* &y +@all",
    "planted-unknown-category": "user fuzzuser on >$M +@nosuch",
    "planted-reset": "user fuzzuser >$M on reset resetpass resetkeys resetchannels nocommands",
    "planted-off": "user fuzzuser off >$M ~* &* +@all",
    "planted-empty-password": "user fuzzuser on > ~* &* +@all",
    "bad-hash": "user x on #abc !xyz ~* &* +@all",
    "not-a-user-line": "alice on >a",
    "empty-username": "user  on",
    "control-username": "user a\x01b on",
    "line-break": "user a on\nuser b on",
    "spaces-and-tabs": "  user\ta on  \t>p\t ~*\r &* +@all \r\n",
    "unknown-rule": "user a on secretwithoutsigil ~* &* +@all",
    "sanitize": "user a on nopass ~* &* +@all sanitize-payload skip-sanitize-payload clearselectors",
    "key-permissions": "user a on nopass %RW~* %R~a %W~b %~c &* +@all",
    "too-many-passwords": "user a on " + " ".join(f">p{i}" for i in range(101)) + " ~* &* +@all",
    # The size limits (longer than -max_len: exercised by the replay).
    "password-too-long": "user a on >" + "p" * 4097 + " ~* &* +@all",
    "removed-password-too-long": "user a on <" + "q" * 4097 + " ~* &* +@all",
    "username-too-long": "user " + "u" * 4097 + " on nopass ~* &* +@all",
}


# ------------------------------------------------------------ capture


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """A TCP relay on loopback that records each connection's two streams."""

    def __init__(self, upstream: int):
        self.upstream = upstream
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.sessions: list[tuple[bytearray, bytearray]] = []
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            session = (bytearray(), bytearray())
            with self.lock:
                self.sessions.append(session)
            for src, dst, buf in ((client, server, session[0]), (server, client, session[1])):
                t = threading.Thread(target=self._pump, args=(src, dst, buf), daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def _pump(src, dst, buf):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def take(self) -> list[tuple[bytes, bytes]]:
        """The sessions so far (waiting for their streams to settle)."""
        time.sleep(0.3)
        with self.lock:
            out = [(bytes(a), bytes(b)) for a, b in self.sessions]
            self.sessions.clear()
        return out

    def close(self):
        self.sock.close()


def raw_session(port: int, payload: bytes, settle: float = 0.3) -> None:
    """Sends `payload`, reads whatever comes back until quiet, closes."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(payload)
        s.settimeout(settle)
        try:
            while s.recv(65536):
                pass
        except (socket.timeout, ConnectionError):
            pass


def capture() -> None:
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if shutil.which(tool) is None:
            sys.exit(f"--capture needs {tool}")
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="fuzz-capture-"))
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work), "--enable-debug-command", "local"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        relay = Relay(port)
        cli = ["redis-cli", "-p", str(relay.port)]
        captures: dict[str, list[tuple[bytes, bytes]]] = {}

        subprocess.run(["redis-benchmark", "-p", str(relay.port), "-n", "20", "-P", "4", "-c", "1", "-d", "16",
                        "-t", "ping,set,get,incr,lpush,rpush,lpop,sadd,hset,spop,zadd,lrange_100,mset", "-q"],
                       check=True, stdout=subprocess.DEVNULL)
        captures["redis-benchmark"] = relay.take()

        subprocess.run(["redis-benchmark", "-3", "-p", str(relay.port), "-n", "8", "-P", "4", "-c", "1",
                        "-t", "ping,set,get,hset,lrange_100", "-q"], check=True, stdout=subprocess.DEVNULL)
        captures["redis-benchmark-resp3"] = relay.take()

        # One connection per command: fed commands on stdin, redis-cli
        # would first fetch COMMAND DOCS (170 KB of reply).
        commands = [
            "SET k v", "GET k", "GET nosuch", "HSET h a 1 b 2", "HGETALL h", "SADD s x y", "SMEMBERS s",
            "ZADD z 1 a 2.5 b", "ZRANGE z 0 -1 WITHSCORES", "XADD st 1-1 f v", "XRANGE st - +",
            "INCRBYFLOAT f 1.5", "EXISTS k h", "TYPE h", "LPUSH h x", "CLIENT INFO", "NOSUCH cmd", "GET",
            "CONFIG GET maxmemory*", "COMMAND INFO get hello", "COMMAND DOCS auth", "ECHO '\\x00\\r\\n'",
        ]
        for proto, name in (("-2", "redis-cli-resp2"), ("-3", "redis-cli-resp3")):
            for command in commands:
                subprocess.run(cli + [proto] + shlex.split(command), check=True, stdout=subprocess.DEVNULL)
            captures[name] = relay.take()

        raw_session(relay.port, C("HELLO", "3") + C("CLIENT", "TRACKING", "ON") + C("GET", "k")
                    + C("SET", "k", "w") + C("PING") + C("MULTI") + C("INCR", "n") + C("LPUSH", "h", "x")
                    + C("EXEC"))
        captures["tracking-multi"] = relay.take()

        # Every RESP3 type Redis can send, attributes and pushes included
        # (redis-cli cannot print attributes or big numbers: a raw connection asks).
        kinds = ["attrib", "push", "bignum", "verbatim", "map", "set", "double", "true", "false", "null",
                 "string", "integer", "array"]
        debug = b"".join(C("DEBUG", "PROTOCOL", kind) for kind in kinds)
        raw_session(relay.port, C("HELLO", "3") + debug)
        raw_session(relay.port, debug)
        raw_session(relay.port, C("SUBSCRIBE", "ch1", "ch2") + C("PSUBSCRIBE", "c*") + C("PING") + C("PING", "x"))
        raw_session(relay.port, C("HELLO", "3") + C("SUBSCRIBE", "ch1") + C("PING") + C("UNSUBSCRIBE", "ch1"))
        raw_session(relay.port, b"PING\r\nSET a \"b c\"\r\nGET a\r\nECHO 'it\\'s'\r\n*0\r\n\r\n"
                    + C("ECHO", b"\x00\r\n\xff") + C("CLIENT", "REPLY", "OFF") + C("PING")
                    + C("CLIENT", "REPLY", "ON") + C("PING"))
        captures["raw-sessions"] = relay.take()
        relay.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)

    CAPTURES.mkdir(parents=True, exist_ok=True)
    for old in CAPTURES.glob("*.bin"):
        old.unlink()
    for name, sessions in captures.items():
        requests = b"".join(s[0] for s in sessions)
        replies = b"".join(s[1] for s in sessions)
        (CAPTURES / f"{name}.requests.bin").write_bytes(requests)
        (CAPTURES / f"{name}.replies.bin").write_bytes(replies)
        print(f"captured {name}: {len(sessions)} connections, "
              f"{len(requests)} request bytes, {len(replies)} reply bytes")


# ------------------------------------------------------------ writing


def framer_header(first: int, payload: bytes, index: int) -> bytes:
    """`[first] [n] [cuts]`: a few cuts of varied sizes, 0 included."""
    sizes = [1, 2, 3, 5, 0, 7, 13, 64, 4, 1, 255]
    cuts = []
    left = len(payload)
    i = index
    while left > 0 and len(cuts) < 12:
        cut = sizes[i % len(sizes)]
        i += 1
        cuts.append(cut)
        left -= cut
    return bytes([first, len(cuts)]) + bytes(cuts)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-")


def write(target: str, seeds: dict[str, bytes]) -> int:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("seed-*"):
        old.unlink()
    total = 0
    for name, data in seeds.items():
        (folder / f"seed-{slug(name)}").write_bytes(data)
        total += len(data)
    print(f"{target}: {len(seeds)} seeds, {total} bytes")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture", action="store_true", help="re-record captures/ first")
    args = parser.parse_args()
    if args.capture:
        capture()

    requests = dict(REQUESTS)
    replies = dict(REPLIES)
    for path in sorted(CAPTURES.glob("*.requests.bin")):
        requests["capture-" + path.name.removesuffix(".requests.bin")] = path.read_bytes()
    for path in sorted(CAPTURES.glob("*.replies.bin")):
        replies["capture-" + path.name.removesuffix(".replies.bin")] = path.read_bytes()

    # request_framer: policies 0 (forward), 1 (collect), 2 and 3 (mixed).
    request_seeds = {}
    for index, (name, payload) in enumerate(requests.items()):
        policy = [0, 1, 2 | (0x15 << 2), 3 | (0x2A << 2)][index % 4]
        request_seeds[name] = framer_header(policy, payload, index) + payload
    reply_seeds = {
        name: framer_header(index & 0xFF, payload, index) + payload
        for index, (name, payload) in enumerate(replies.items())
    }
    config_seeds = {name: text.encode() for name, text in CONFIGS.items()}
    for path in sorted((ROOT / "filter-config").glob("*.json")):
        text = path.read_text()
        config_seeds["filter-config-" + path.stem] = text.encode()
        planted = re.sub(r'"password": "[^"]*"', '"password": "$M"', text)
        planted = re.sub(r'"env": "REDIS_PASSWORD"', '"env": "FUZZ_MARKER"', planted)
        planted = re.sub(r">([^ \"]+)", ">$M", planted)
        planted = re.sub(r"#[0-9a-f]{64}", "#$H", planted)
        config_seeds["filter-config-planted-" + path.stem] = planted.encode()
    acl_seeds = {name: line.encode() for name, line in ACL_LINES.items()}

    total = write("request_framer", request_seeds)
    total += write("reply_framer", reply_seeds)
    total += write("config", config_seeds)
    total += write("acl_line", acl_seeds)
    print(f"total: {total} bytes")


if __name__ == "__main__":
    main()
