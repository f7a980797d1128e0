"""The hostile-input corpus of test_filter_hostile.py.

Each `Case` is raw bytes a client might send: malformed, truncated,
oversized, another protocol, random. The test sends each one to real Redis
and through the filter and compares. Everything here is deterministic
(seeded), except the TLS ClientHello, which is real and made once per run.

Facts about Redis 7.0 the cases lean on (networking.c, server.c):
- a command starting with `*` is multibulk, anything else inline;
- line ends are found with `strchr`, which stops at a NUL: a NUL before the
  `\\n` of an inline line (or the `\\r` of a length line) means the line
  never ends, until the buffer passes 64 KiB and "too big ..." closes;
- lengths go through `string2ll`: no `+`, no spaces, no leading zeros,
  at most 20 characters; `*` counts <= 0 are empty commands, `*` above
  INT_MAX and `$` below 0 or above proto-max-bulk-len (512 MiB) are
  protocol errors; before AUTH, at most 10 arguments of at most 16 KiB;
- the byte after a length line's `\\r` and the two bytes after a bulk are
  skipped unchecked;
- error messages print names and arguments with `%s` (cut at a NUL) and turn
  CR/LF into spaces; `POST` and `Host:` (compared with `strcasecmp`, so also
  cut at a NUL) close at once without flushing this read's replies;
- HELLO compares its options with `strcasecmp` too.
"""

from __future__ import annotations

import random
import ssl
from dataclasses import dataclass

from harness.resp import command as C

CLIENT_PASSWORD = "testredis123!"
ALICE_PASSWORD = "alicepw"
ALICE = f"user alice on >{ALICE_PASSWORD} ~* &* +@all"


@dataclass(frozen=True)
class Case:
    name: str
    payload: bytes
    # Offset where a `POST`/`Host:` command begins: sent byte by byte, the
    # test pauses there if anything comes before it (the client's AUTH
    # included), so that Redis has written the earlier replies (it would drop
    # them if they shared a read).
    attack_at: int | None = None
    # Redis logs the client in somewhere in this input: commands after that
    # legitimately reach the server.
    logs_in: bool = False
    # After AUTH, a client password in this input is data Redis does not take
    # as a credential (a word of an unknown command): it may reach the server.
    password_as_data: bool = False

    @property
    def id(self) -> str:
        return self.name


def attack(name: str, before: bytes, attack_bytes: bytes, **kw) -> Case:
    return Case(name, before + attack_bytes, attack_at=len(before), **kw)


def _rng(seed: int) -> random.Random:
    return random.Random(f"envoy-redis-auth hostile corpus {seed}")


def random_bytes(seed: int, n: int, *, no_nul: bool = False) -> bytes:
    rng = _rng(seed)
    lo = 1 if no_nul else 0
    return bytes(rng.randint(lo, 255) for _ in range(n))


def random_text(seed: int, n: int, *, quotes: bool = True) -> bytes:
    """Printable ASCII and line ends; with `quotes`, a fair share of quotes
    and backslashes (which soon make an unbalanced inline line)."""
    rng = _rng(seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     \t\r\n\n\r\n$*:+-_%~#,(!=|>"
    if quotes:
        alphabet += b"\"\"''\\\\"
    return bytes(rng.choice(alphabet) for _ in range(n))


def random_resp_tokens(seed: int, n: int) -> bytes:
    """Random sequences of RESP-looking tokens."""
    rng = _rng(seed)
    tokens = [b"*", b"$", b"\r\n", b"\r", b"\n", b"1", b"2", b"4", b"-1", b"0", b"PING", b"ECHO",
              b"AUTH", b"HELLO", b"3", b" ", b"x", b"10", b"99999999999999999999", b"+", b":"]  # fmt: skip
    out = bytearray()
    while len(out) < n:
        out += rng.choice(tokens)
    return bytes(out[:n])


# A valid pipeline to mutate (nothing in it changes the server's data).
_VALID = C("PING") + C("ECHO", "hello") + C("AUTH", "wrong") + C("HELLO", "2") + C("PING", "x")


def mutated(seed: int, flips: int) -> bytes:
    """_VALID with `flips` bytes replaced, inserted or deleted."""
    rng = _rng(seed)
    data = bytearray(_VALID)
    for _ in range(flips):
        i = rng.randrange(len(data))
        op = rng.choice(("replace", "insert", "delete"))
        byte = rng.choice(b"*$\r\n-+0123456789 \x00xA")
        if op == "replace":
            data[i] = byte
        elif op == "insert":
            data.insert(i, byte)
        else:
            del data[i]
    return bytes(data)


def tls_client_hello(server_name: str = "redis.test") -> bytes:
    """A real TLS ClientHello, as Python's ssl module would send it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[:1] == b"\x16", hello[:16]
    return hello


# Every byte as a one-byte inline command, except those that end or split
# the line, start a quoted string or a multibulk (each has a case of its own).
_ONE_BYTE_COMMANDS = b"".join(
    bytes([b]) + b"\r\n" for b in range(1, 256) if b not in b"\r\n\t\x0b\x0c \"'*"
)
TLS_HELLO = tls_client_hello()
PING = C("PING")

CORPUS: list[Case] = [
    # ---------------------------------------------------------- truncated frames (then close)
    Case("truncated in the arguments", b"*3\r\n$3\r\nSET\r\n$1\r\nk"),
    Case("truncated in a payload", b"*1\r\n$4\r\nPIN"),
    Case("truncated after the count's CR", b"*1\r"),
    Case("truncated before a payload's trailer", b"*1\r\n$4\r\nPING\r"),
    Case("truncated inline line", b"PING"),
    Case("truncated after a valid command", PING + b"*2\r\n$4\r\nECHO\r\n$5\r\nab"),
    Case("a lone star", b"*"),
    # ---------------------------------------------------------- lengths
    Case("negative count", b"*-5\r\n" + PING),
    Case("count overflows long long", b"*99999999999999999999\r\n" + PING),
    Case("count above INT_MAX", b"*2147483648\r\n" + PING),
    Case("count of INT_MAX", b"*2147483647\r\n$4\r\nECHO\r\n"),
    Case("count of LLONG_MIN", b"*-9223372036854775808\r\n" + PING),
    Case("count below LLONG_MIN", b"*-9223372036854775809\r\n" + PING),
    Case("count with plus", b"*+1\r\n$4\r\nPING\r\n"),
    Case("count with spaces", b"* 1\r\n$4\r\nPING\r\n"),
    Case("count with trailing space", b"*1 \r\n$4\r\nPING\r\n"),
    Case("count with leading zero", b"*01\r\n$4\r\nPING\r\n"),
    Case("count of -0 and 00", b"*-0\r\n*00\r\n"),
    Case("empty count", b"*\r\n"),
    Case("empty commands", b"*0\r\n*-1\r\n*0\r\n" + PING),
    Case("bulk length -2", b"*1\r\n$-2\r\n"),
    Case("bulk length -1", b"*2\r\n$4\r\nECHO\r\n$-1\r\n"),
    Case("bulk length overflows", b"*1\r\n$9223372036854775808\r\n"),
    Case("bulk length above proto-max-bulk-len", b"*1\r\n$536870913\r\n"),
    Case("bulk length with plus", b"*1\r\n$+4\r\nPING\r\n"),
    Case("bulk length with leading zero", b"*1\r\n$04\r\nPING\r\n"),
    Case("bulk length with space", b"*1\r\n$ 4\r\nPING\r\n"),
    Case("empty bulk length", b"*1\r\n$\r\n"),
    Case("bulk shorter than its payload", b"*1\r\n$3\r\nPING\r\n"),
    Case("unchecked bulk trailer", b"*1\r\n$4\r\nPINGxy" + C("ECHO", "after")),
    Case("unchecked count line byte", b"*1\rX$4\r\nPING\r\n"),
    Case("eleven arguments", b"*11\r\n" + b"$1\r\nx\r\n" * 11),
    Case("ten arguments of 16 KiB", b"*10\r\n" + (b"$16384\r\n" + b"y" * 16384 + b"\r\n") * 10),
    Case("argument of 16 KiB + 1", b"*2\r\n$4\r\nECHO\r\n$16385\r\n" + b"z" * 16385 + b"\r\n"),
    # ---------------------------------------------------------- nesting
    Case("nested arrays", b"*1\r\n" * 10000),
    Case("an array inside a command", b"*2\r\n*1\r\n$4\r\nPING\r\n$1\r\nx\r\n"),
    Case("a bulk after the star line", b"*1\r\n:1\r\n"),
    # ---------------------------------------------------------- RESP3 (and RESP2 reply) types from a client
    Case("resp3 map", b"%1\r\n+key\r\n+value\r\n"),
    Case("resp3 set", b"~2\r\n$4\r\nPING\r\n$4\r\nPING\r\n"),
    Case("resp3 push", b">2\r\n+message\r\n+x\r\n"),
    Case("resp3 scalars", b"#t\r\n_\r\n,1.5\r\n(12345678901234567890\r\n"),
    Case("resp3 blob error and verbatim", b"!5\r\nERR x\r\n=9\r\ntxt:hello\r\n"),
    Case("resp3 attribute before a command", b"|1\r\n+key\r\n+val\r\n" + PING),
    Case("reply types as commands", b"+PING\r\n-ERR x\r\n:1\r\n$4\r\nPING\r\n"),
    # ---------------------------------------------------------- NUL bytes
    Case("NUL in a command name", b"*1\r\n$7\r\nFOO\x00BAR\r\n"),
    Case("NUL in arguments", C("FOO", b"a\x00b", b"\x00c")),
    Case("NUL in an inline line", b"PI\x00NG\r\nPING\r\n"),
    Case("NUL after a command", PING + b"\x00" + PING),
    Case("NUL in the count line", b"*1\x00\r\n$4\r\nPING\r\n"),
    Case("NUL in a bulk length line", b"*1\r\n$4\x00\r\nPING\r\n"),
    Case("NUL in a payload", C("ECHO", b"\x00\x00\r\n\x00")),
    attack("NUL after POST", b"", b"*1\r\n$6\r\nPOST\x00x\r\n"),
    Case("NUL after QUIT", b"*1\r\n$6\r\nQUIT\x00x\r\n" + PING),
    Case("NUL in a password", C("AUTH", CLIENT_PASSWORD.encode() + b"\x00") + C("AUTH", b"\x00")),
    Case("NUL in a username", C("AUTH", b"alice\x00", ALICE_PASSWORD) + C("HELLO", "3", "AUTH", b"alice\x00", ALICE_PASSWORD)),
    Case("NUL in HELLO's version", C("HELLO", b"3\x00", "AUTH", "alice", ALICE_PASSWORD)),
    Case(
        "NUL in HELLO's AUTH option",
        C("HELLO", "3", b"AUTH\x00x", "alice", ALICE_PASSWORD) + PING,
        logs_in=True,
    ),
    Case(
        "NUL in HELLO's SETNAME option",
        C("HELLO", "2", "AUTH", "alice", ALICE_PASSWORD, b"SETNAME\x00", "name") + PING,
        logs_in=True,
    ),
    # ---------------------------------------------------------- lone CR / LF
    Case("lone CR in an inline line", b"PING\rPING\r\n"),
    Case("LF-only inline lines", b"PING\nECHO x\n"),
    Case("LF ends the count line", b"*1\n$4\r\nPING\r\n"),
    Case("LF ends a bulk length line", b"*1\r\n$4\nPING\r\n"),
    Case("CR CR LF after the count", b"*1\r\r\n$4\r\nPING\r\n"),
    Case("blank lines", b"\r\r\r\n\n\n \r\n\t\r\n" + PING),
    Case("CR LF in names and arguments", C("A\r\nB", "x\r\ny") + C("ECHO", "\r\n") + C("y" * 126 + "\r\nzz")),
    Case("quoted CR in an inline argument", b'ECHO "a\rb"\r\nECHO \'c\rd\'\r\n'),
    # ---------------------------------------------------------- TLS and HTTP on the plaintext port
    Case("TLS ClientHello", TLS_HELLO),
    attack("HTTP GET with Host", b"GET / HTTP/1.1\r\n", b"Host: example.com\r\nAccept: */*\r\n\r\n"),
    attack("HTTP POST", b"", b"POST / HTTP/1.1\r\nHost: redis\r\nContent-Length: 6\r\n\r\nPING\r\n"),
    Case("HTTP GET without Host", b"GET /index.html HTTP/1.0\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"),
    Case("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    attack("POST after commands", PING + b"ECHO hi\r\n", b"post /x HTTP/1.1\r\n" + PING),
    attack("Host as a multibulk command", C("ECHO", "first"), C("host:", "x") + PING),
    attack("HOST: alone", b"", b"HOST:\r\n"),
    # ---------------------------------------------------------- long lines (PROTO_INLINE_MAX_SIZE is 64 KiB)
    Case("inline line of 64 KiB - 1", b"x" * 65535 + b"\r\n" + PING),
    Case("inline line of 64 KiB, LF only", b"E" * 65536 + b"\n" + PING),
    Case("64 KiB + 1 without a line end", b"x" * 65537),
    # Redis reads at most its query buffer's free space at a time (16 KiB,
    # then about as much as it holds), so it measures a line that has no end
    # yet at least once between 64 KiB and about 200 KiB: longer lines are
    # always refused, whatever the timing.
    Case("inline line of 1 MiB, unterminated", b"x" * (1 << 20)),
    Case("inline line of 512 KiB", b"x" * (1 << 19) + b"\r\n" + PING),
    Case("count line of 512 KiB", b"*" + b"1" * (1 << 19) + b"\r\n"),
    Case("bulk length line of 512 KiB", b"*1\r\n$" + b"2" * (1 << 19) + b"\r\n"),
    Case("inline line of 1 MiB with a NUL", b"AUTH \x00" + b"p" * (1 << 20) + b"\r\n"),
    # ---------------------------------------------------------- random (seeded)
    Case("random bytes, 64", random_bytes(1, 64)),
    Case("random bytes, 3000", random_bytes(2, 3000)),
    Case("random bytes without NUL, 600", random_bytes(3, 600, no_nul=True)),
    Case("random bytes without NUL, 5000", random_bytes(4, 5000, no_nul=True)),
    Case("random text, 1500", random_text(5, 1500)),
    Case("random text without quotes, 3000", random_text(6, 3000, quotes=False)),
    Case("random text without quotes, 400", random_text(12, 400, quotes=False)),
    Case("random RESP tokens, 400", random_resp_tokens(7, 400)),
    Case("random RESP tokens, 2500", random_resp_tokens(8, 2500)),
    Case("mutated pipeline 1", mutated(9, 3)),
    Case("mutated pipeline 2", mutated(10, 6)),
    Case("mutated pipeline 3", mutated(11, 12)),
    Case("every byte as a command", _ONE_BYTE_COMMANDS),
    # ---------------------------------------------------------- malformed AUTH / HELLO
    Case("AUTH without arguments", C("AUTH") + b"AUTH\r\n" + b"auth \r\n"),
    Case("AUTH with three arguments", C("AUTH", "a", "b", "c") + C("AUTH", "alice", ALICE_PASSWORD, "x")),
    Case("AUTH with ten arguments", C("AUTH", *["p"] * 9)),
    Case("AUTH with empty arguments", C("AUTH", "") + C("AUTH", "", "") + C("AUTH", "default", "")),
    Case("AUTH with a 16 KiB password", C("AUTH", "p" * 16384)),
    Case("AUTH with a 20 KiB password", C("AUTH", "p" * 20000)),
    Case("AUTH with binary passwords", C("AUTH", b"\xff\xfe\x80") + C("AUTH", "alice", b"alicepw\r\n")),
    Case("AUTH inline with double quotes", b'AUTH "testredis123!"\r\n' + PING, logs_in=True),
    Case("AUTH inline with single quotes", b"auth 'testredis123!'\r\n" + PING, logs_in=True),
    Case("AUTH inline with an escape", b'AUTH "testredis123\\x21"\r\n' + PING, logs_in=True),
    Case("AUTH inline, quote not closed", b'AUTH "testredis123!\r\n' + PING),
    Case("AUTH inline, text after the quote", b'AUTH "testredis123!"x\r\n' + PING),
    Case("AUTH inline, quote inside a word", b'AUTH testredis123!"\r\n' + PING),
    Case("AUTH inline with tabs", b"AUTH\talice\talicepw\r\n" + PING, logs_in=True),
    # sdssplitargs skips any isspace() between words but ends a word only at
    # space, tab, CR, LF or NUL: this is one unknown command, not AUTH.
    Case("AUTH inline with vertical tab and form feed", b"AUTH\x0balice\x0calicepw\r\n" + PING, password_as_data=True),
    Case("vertical tab and form feed around a command", b"\x0b\x0cPING\x0c\r\n\x0bPING\r\n"),
    Case("AUTH with the username in capitals", C("AUTH", "ALICE", ALICE_PASSWORD) + C("AUTH", "DEFAULT", CLIENT_PASSWORD)),
    Case("HELLO AUTH without credentials", C("HELLO", "3", "AUTH") + C("HELLO", "3", "AUTH", "alice")),
    Case("HELLO AUTH without a version", C("HELLO", "AUTH", "alice", ALICE_PASSWORD)),
    Case("HELLO AUTH with empty credentials", C("HELLO", "3", "AUTH", "", "") + C("HELLO", "", "AUTH", "alice", ALICE_PASSWORD)),
    Case("HELLO with huge versions", C("HELLO", "99999999999999999999") + C("HELLO", "-9223372036854775808") + C("HELLO", "3.0")),
    # Redis 7.0 runs each AUTH option as it parses it: the first one logs
    # in, even though the reply to the HELLO is the second one's WRONGPASS.
    Case("HELLO AUTH twice, the last wrong", C("HELLO", "3", "AUTH", "alice", ALICE_PASSWORD, "AUTH", "alice", "bad") + PING, logs_in=True),
    Case("HELLO AUTH twice, the first wrong", C("HELLO", "2", "AUTH", "alice", "bad", "AUTH", "alice", ALICE_PASSWORD) + PING),
    Case("HELLO AUTH, SETNAME missing", C("HELLO", "2", "AUTH", "alice", ALICE_PASSWORD, "SETNAME")),
    Case("HELLO AUTH, lower case options", C("hello", "2", "auth", "alice", ALICE_PASSWORD, "setname", "n") + PING, logs_in=True),
    Case("HELLO AUTH inline with quotes", b'HELLO 2 AUTH "alice" \'alicepw\' SETNAME ""\r\n' + PING, logs_in=True),
    Case("HELLO with binary options", C("HELLO", "3", b"\xff", b"\x00") + C("HELLO", "3", "SETNAME", b"a\x00b")),
    # Smuggling: a login Redis accepts must be seen as one, or the filter
    # would pass a client password on to the server.
    Case("AUTH behind unchecked trailers", b"*2\r\n$4\r\nAUTHxx$13\r\ntestredis123!yy" + PING, logs_in=True),
    Case("AUTH behind the count line's unchecked byte", b"*2\rX$4\r\nAUTH\r\n$13\r\ntestredis123!\r\n" + PING, logs_in=True),
    Case("AUTH inline after blanks", b" \t\x0b\x0cAUTH testredis123!\r\n" + PING, logs_in=True),
    Case("AUTH inline split by a lone CR", b"AUTH\rtestredis123!\r\n" + PING, logs_in=True),
    Case("AUTH inline, name quoted with an escape", b'"AU\\x54h" "testredis123!"\r\n' + PING, logs_in=True),
    Case("HELLO inline, option quoted with an escape", b'HELLO 2 "\\x41uth" alice alicepw\r\n' + PING, logs_in=True),
    # (Many or long options before AUTH, past what the filter keeps, are a
    # documented difference: see test_filter_hostile.py.)
    # Marker-looking commands: the filter's markers are unknown commands
    # `era:<id>:<mac>`; a client's own must get Redis's answer, unswapped.
    Case("forged markers", C("era:0:" + "0" * 24) + C("era:1:" + "ab" * 12) + C("ERA:2:" + "ff" * 12, "x") + PING),
    Case("empty command names", C("") + C("", "x") + b'""\r\n' + PING),
    Case("100000 empty commands", b"*0\r\n" * 100000 + PING),
    Case("200000 blank lines", b"\r\n" * 200000 + PING),
    # ---------------------------------------------------------- pipelines mixing valid and invalid frames
    Case("valid then invalid count", PING + C("ECHO", "x") + b"*x\r\n" + PING),
    Case(
        "login, then garbage",
        C("AUTH", "wrong") + C("AUTH", CLIENT_PASSWORD) + C("ECHO", "in") + b"*1\r\n$-5\r\n" + PING,
        logs_in=True,
    ),
    Case("empty frames between commands", PING + b"*0\r\n\r\n*-1\r\n   \r\n" + C("ECHO", "x") + b"\n" + PING),
    Case("inline and multibulk, then unbalanced quotes", b"ECHO a\r\n" + PING + b'ECHO "x\r\n' + PING),
    Case("unknown commands, then a bulk longer than its length", C("NOSUCH") + b"nosuch2 a b\r\n" + b"*1\r\n$3\r\nabcd\r\n" + PING),
    attack("login, then POST in the same write", C("AUTH", CLIENT_PASSWORD) + PING, b"POST / HTTP/1.1\r\n", logs_in=True),
]

_names = [c.name for c in CORPUS]
assert len(set(_names)) == len(_names), "case names must be unique"
