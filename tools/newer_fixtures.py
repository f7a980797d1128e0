"""Fixtures of the newer server releases, kept as differences from 7.0's.

tools/verify_command_errors.py and tools/verify_command_keys.py record what
the installed redis-server 7.0.15 answers in a fixture (checked by CI).
Given `--server VERSION=PATH` (a binary of a newer release, e.g. one built
from the release tag), they also run every case on it and keep, in a second
fixture (`<fixture>_newer.json`), only the cases whose answer there differs
from 7.0's, or that 7.0's fixture does not have: one line per case, with a
"server" field naming the ServerVersion (`redis-7.4`, `valkey-8.0`, ...).
The Rust tests read 7.0's fixture with those lines laid over it.

Those binaries are not needed by CI: the newer fixtures are recorded once,
when a release is added, and re-checked by whoever has the binaries.
"""

import json
import os


def parse_servers(items, known):
    """`VERSION=PATH` arguments -> [(version, path)]; `known` are the
    accepted version names."""
    out = []
    for item in items:
        name, _, path = item.partition("=")
        if name not in known or not path:
            raise SystemExit("--server wants VERSION=PATH, VERSION one of %s" % sorted(known))
        out.append((name, path))
    return out


def key(entry):
    return json.dumps(entry["argv"])


def hash_dependent(argv):
    """Whether the answer to `argv` may depend on the server's random hash
    seed: a command or subcommand name with a NUL byte is found when it
    lands in the bucket of the name before its NUL (the dicts hash the whole
    name but compare with strcasecmp), which for a small subcommand dict
    happens about once in its size. Such answers differ between runs, not
    between releases."""
    return any(("\0" if isinstance(a, str) else b"\0") in a for a in argv[:2])


def differences(base, results):
    """The entries of `results` that `base` (7.0's entries) does not have
    exactly (same argv, same answer), hash-dependent ones left out."""
    by_argv = {key(e): e for e in base}
    return [r for r in results
            if by_argv.get(key(r)) != r and not hash_dependent(r["argv"])]


def newer_path(fixture):
    root, ext = os.path.splitext(fixture)
    return root + "_newer" + ext


def load(fixture):
    """{version: [entry]} from the newer fixture (empty if there is none)."""
    try:
        with open(newer_path(fixture)) as f:
            entries = json.load(f)
    except FileNotFoundError:
        return {}
    out = {}
    for e in entries:
        e = dict(e)
        out.setdefault(e.pop("server"), []).append(e)
    return out


def store(fixture, by_version, order):
    """Writes the newer fixture, versions in `order`, one entry a line."""
    lines = []
    for version in order:
        for e in by_version.get(version, []):
            lines.append(json.dumps(dict({"server": version}, **e), ensure_ascii=True))
    with open(newer_path(fixture), "w") as f:
        f.write("[\n" + ",\n".join(lines) + "\n]\n")
    return newer_path(fixture)


def compare(label, expected, results):
    """Prints the mismatches between two entry lists (same argv order);
    returns how many there are, or None when the case lists differ."""
    if [e["argv"] for e in expected] != [r["argv"] for r in results]:
        print("%s: case list differs from the fixture; run with --record" % label)
        return None
    bad = 0
    for e, r in zip(expected, results):
        if e != r:
            bad += 1
            print("%s MISMATCH %r:\n  fixture %r\n  server  %r"
                  % (label, e["argv"][:4], e, r))
    return bad


def record_or_check(fixture, servers, base, record, run, order):
    """Runs `run(version, binary)` (every case, on one server) for each
    (version, binary) of `servers`; keeps (`record`) or checks what differs
    from `base` (7.0's results) in `fixture`'s newer-release file, whose
    versions are written in `order`. Returns the exit status."""
    stored = load(fixture)
    status = 0
    for version, binary in servers:
        diff = differences(base, run(version, binary))
        if record:
            stored[version] = diff
            print("%s: %d cases differ from 7.0" % (version, len(diff)))
            continue
        bad = compare(version, stored.get(version, []), diff)
        print("%s: %d cases differ from 7.0, %s mismatches" % (version, len(diff), bad))
        status |= 1 if bad != 0 else 0
    if record:
        print("wrote %s" % store(fixture, stored, order))
    return status

