"""Just enough RESP2/RESP3 for tests: encode commands, split and decode replies.

Decoded values: simple string -> Simple(str), error -> Error(str),
integer -> int, bulk -> bytes, null -> None, array/set/push -> list
(push as Push(list)), map -> dict (or list of pairs if keys are unhashable),
double -> float, boolean -> bool, big number -> int, verbatim -> bytes.
Attributes (`|`) are skipped. This is a test helper, not the filter's parser.
"""

from __future__ import annotations


class Simple(str):
    """A RESP simple string (`+OK`)."""


class Error(str):
    """A RESP error (`-ERR ...` / `!` blob error)."""

    @property
    def code(self) -> str:
        return self.split(" ", 1)[0]


class Push(list):
    """A RESP3 push (`>`) frame."""


class Incomplete(Exception):
    pass


def command(*args) -> bytes:
    """Encode one command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def commands(*cmds) -> bytes:
    """Encode several commands back to back (a pipeline)."""
    return b"".join(command(*c) for c in cmds)


def _line(buf: bytes, pos: int) -> tuple[bytes, int]:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete
    return buf[pos:end], end + 2


def _parse(buf: bytes, pos: int):
    if pos >= len(buf):
        raise Incomplete
    t = buf[pos : pos + 1]
    line, pos = _line(buf, pos + 1)
    if t == b"+":
        return Simple(line.decode("utf-8", "replace")), pos
    if t == b"-":
        return Error(line.decode("utf-8", "replace")), pos
    if t == b":":
        return int(line), pos
    if t in (b"$", b"!", b"="):
        n = int(line)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            raise Incomplete
        data = buf[pos : pos + n]
        pos += n + 2
        if t == b"!":
            return Error(data.decode("utf-8", "replace")), pos
        return data, pos
    if t in (b"*", b"~", b">"):
        n = int(line)
        if n < 0:
            return None, pos
        items = []
        for _ in range(n):
            v, pos = _parse_value(buf, pos)
            items.append(v)
        return (Push(items) if t == b">" else items), pos
    if t == b"%":
        n = int(line)
        pairs = []
        for _ in range(n):
            k, pos = _parse_value(buf, pos)
            v, pos = _parse_value(buf, pos)
            pairs.append((k, v))
        try:
            return dict(pairs), pos
        except TypeError:
            return pairs, pos
    if t == b"_":
        return None, pos
    if t == b",":
        return float(line), pos
    if t == b"#":
        return line == b"t", pos
    if t == b"(":
        return int(line), pos
    if t == b"|":
        n = int(line)
        for _ in range(2 * n):
            _, pos = _parse_value(buf, pos)
        return _ATTR, pos
    raise ValueError(f"bad RESP type byte {t!r} at offset {pos}")


_ATTR = object()


def _parse_value(buf: bytes, pos: int):
    v, pos = _parse(buf, pos)
    while v is _ATTR:  # an attribute annotates the value that follows it
        v, pos = _parse(buf, pos)
    return v, pos


def parse_one(buf: bytes, pos: int = 0):
    """(value, next_pos), or raise Incomplete."""
    return _parse_value(buf, pos)


def split_replies(buf: bytes) -> tuple[list, bytes]:
    """Decode every complete top-level reply; return (values, leftover)."""
    values, pos = [], 0
    while pos < len(buf):
        try:
            v, pos2 = _parse_value(buf, pos)
        except Incomplete:
            break
        values.append(v)
        pos = pos2
    return values, buf[pos:]


def parse_all(buf: bytes) -> list:
    """Decode all replies; raise if bytes are left over."""
    values, rest = split_replies(buf)
    if rest:
        raise Incomplete(f"{len(rest)} trailing bytes: {rest[:60]!r}")
    return values


def count_replies(buf: bytes) -> int:
    """Number of complete top-level replies (pushes included) in buf."""
    return len(split_replies(buf)[0])
