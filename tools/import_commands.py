#!/usr/bin/env python3
"""Digest a server release's command definitions into tools/commands/.

Usage (one-off, when a server release is added or bumped; needs no network
once the sources are on disk):

    python3 tools/import_commands.py redis 7.2.6 --git-dir PATH
    python3 tools/import_commands.py valkey 8.0.1 --src DIR
    python3 tools/import_commands.py sentinel 7.0.15 --src DIR --commit SHA
    python3 tools/import_commands.py --all --redis-git-dir P --valkey-git-dir Q

PATH is a clone (bare or not) of github.com/redis/redis or
github.com/valkey-io/valkey that has the release tag; DIR is an extracted
source tree. --all re-imports every release in RELEASES below. The digest,
tools/commands/<server>-<version>.json, is what tools/gen_command_table.py
builds src/command/table.rs from: CI never needs the sources.

A digest holds, for every command and subcommand the release's
src/commands/*.json define (sentinel-only ones left out), exactly what
COMMAND INFO reports, plus what it hides. The `sentinel` digests are the
same release's commands as Redis Sentinel has them (redis-server
--sentinel): only those flagged SENTINEL or ONLY_SENTINEL, as
populateCommandStructure (server.c) keeps them in sentinel mode. Each
digest holds:

- "arity";
- "flags": COMMAND INFO's flag names, with `movablekeys` derived from the key
  specs as populateCommandLegacyRangeSpec (server.c) derives it, and the two
  hidden flags may_replicate and protected;
- "acl": ACL categories, the JSON "acl_categories" plus the implicit ones of
  setImplicitACLCategories (server.c);
- "keys": the legacy [first, last, step] of COMMAND INFO, derived from the
  key specs (populateCommandLegacyRangeSpec);
- "key_specs": the JSON key specs, normalized (no notes);
- "getkeys": the JSON "get_keys_function", if any;
- "channels": [flags, start, count] from commands_with_channels in db.c.

Those derivations are this script's, so the script also checks that the C
functions they mirror (and the ones src/command/keys.rs mirrors) are ones it
knows, by a hash of their text with comments and layout taken out (KNOWN_C).
A release where one of them changed fails with the function's name: read the
change, follow it here or in keys.rs, and add the hash with a note.

The digest for redis 7.0.15 is also compared with the live server's COMMAND
INFO by `tools/gen_command_table.py --check`, which ties the derivations to a
real server.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGEST_DIR = os.path.join(REPO_ROOT, "tools", "commands")

# The releases the table knows, in ServerVersion order (src/command/version.rs):
# (server, release tag, ServerVersion variant).
RELEASES = [
    ("redis", "7.0.15", "Redis70"),
    ("redis", "7.2.6", "Redis72"),
    ("redis", "7.4.1", "Redis74"),
    ("valkey", "7.2.7", "Valkey72"),
    ("valkey", "8.0.1", "Valkey80"),
    # Redis Sentinel of that Redis release (made from the redis sources).
    ("sentinel", "7.0.15", "Sentinel70"),
]
# The data servers (what a redis-server or valkey-server answers; the
# verify_* tools record and check their replies): every release but
# Sentinel's. DATA_RELEASES[0] is the installed redis 7.0.15.
DATA_RELEASES = [r for r in RELEASES if r[0] != "sentinel"]

# COMMAND INFO's flag names, in addReplyFlagsForCommand order, then the two
# it hides; the bit order of CommandFlags (src/command/mod.rs).
VISIBLE_FLAGS = [
    "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript",
    "blocking", "loading", "stale", "skip_monitor", "skip_slowlog", "asking",
    "fast", "no_auth", "no_mandatory_keys", "no_async_loading", "no_multi",
    "movablekeys", "allow_busy",
]
HIDDEN_FLAGS = ["may_replicate", "protected"]
FLAG_ORDER = VISIBLE_FLAGS + HIDDEN_FLAGS
# JSON command_flags with no CommandFlags bit: where the command exists
# (sentinel), or what only cluster and modules care about.
IGNORED_JSON_FLAGS = {"SENTINEL", "ONLY_SENTINEL", "TOUCHES_ARBITRARY_KEYS"}

# Key-spec flags in KeyFlags bit order (src/command/keyspec.rs).
KEY_FLAGS = [
    "RO", "RW", "OW", "RM", "ACCESS", "UPDATE", "INSERT", "DELETE",
    "NOT_KEY", "INCOMPLETE", "VARIABLE_FLAGS",
]

# ACL categories in ACLCommandCategories order (acl.c); the same in every
# release here (7.4 and Valkey 8 let modules add more, which none do here).
ACL_CATEGORIES = [
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
    "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
    "blocking", "dangerous", "connection", "transaction", "scripting",
]

CHANNEL_FLAGS = ["PATTERN", "PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE"]

# The C functions whose behaviour the digest or src/command/ mirrors, by
# file, with the hash (see c_functions) of every version of them that was
# reviewed, and what that version means here. Every getkeys procedure a JSON
# get_keys_function names is checked the same way (KNOWN_GETKEYS).
ALL = "redis 7.0.15, 7.2.6, 7.4.1; valkey 7.2.7, 8.0.1"
KNOWN_C = {
    "src/server.c": {
        # The digest's derivations.
        "setImplicitACLCategories": {"c6bac2e77344": ALL},
        "populateCommandLegacyRangeSpec": {"30a3b40760f9": ALL},
        # command::resolve.
        "commandCheckExistence": {"812d0bea6d40": ALL},
        "commandCheckArity": {
            "5e8c272fd948": "redis 7.0.15, 7.2.6, 7.4.1; valkey 7.2.7",
            "1e0db5224419": "valkey 8.0.1: takes (cmd, argc) instead of the client; same test",
        },
        "isContainerCommandBySds": {"c1ce5777cf68": ALL},
        "lookupSubcommand": {"b900736b6b40": ALL},
        "lookupCommandLogic": {"a6d269c8cc4e": ALL},
    },
    "src/db.c": {
        # command::keys and friends.
        "getKeysUsingKeySpecs": {
            "43d432dec60a": "redis 7.0.15: int arithmetic, last = first + (int)numkeys - 1",
            "e1dba31d84b3": "redis 7.2.6, valkey 7.2.7: as 7.0, plus an assertion",
            "ce157ecde148": "redis 7.4.1: long arithmetic, last = first + (long)numkeys - 1 "
                            "(keys.rs: KeynumWidth::Long)",
            "c9b8b466990e": "valkey 8.0.1: as 7.2, the panic text names the server",
        },
        "getKeysFromCommandWithSpecs": {"a86e51bd451f": ALL},
        "doesCommandHaveKeys": {"3504a9a8ead0": ALL},
        "getChannelsFromCommand": {"0cf125ecb3d0": ALL},
        "doesCommandHaveChannelsWithFlags": {"cefe0e158f52": ALL},
        "genericGetKeys": {"f574ec084a25": ALL},
    },
}

# The getkeys procedures (db.c) keys.rs implements, as reviewed.
KNOWN_GETKEYS = {
    "bitfieldGetKeys": {"db12286011c0": ALL},
    "blmpopGetKeys": {"1f312d763819": ALL},
    "evalGetKeys": {"49e37dfb4df9": ALL},
    "functionGetKeys": {"6ee78ada62a9": ALL},
    "georadiusGetKeys": {"ea91c6813945": ALL},
    "lmpopGetKeys": {"5ba60bc0d9bc": ALL},
    "migrateGetKeys": {"e1fd1d7bb326": ALL},
    "setGetKeys": {"389636286c3d": ALL},
    "sintercardGetKeys": {"1ba8aa815308": ALL},
    "sortGetKeys": {"ba01fdc96ffc": ALL},
    "sortROGetKeys": {"74ec60fc232d": ALL},
    "xreadGetKeys": {"47599e6651d4": ALL},
    "zmpopGetKeys": {"3058598d6ea9": ALL},
    "zunionInterDiffGetKeys": {"62112cd813b7": ALL},
    "zunionInterDiffStoreGetKeys": {"ca30b4be8da5": ALL},
}


# ------------------------------------------------------------------ sources

class GitSource:
    """Files of one tag of a git repository (bare or not)."""

    def __init__(self, git_dir, tag):
        self.git_dir, self.tag = git_dir, tag
        self.commit = self._git("rev-parse", tag + "^{commit}").strip()

    def _git(self, *args):
        return subprocess.run(["git", "--git-dir", self.git_dir, *args], check=True,
                              capture_output=True, text=True).stdout

    def list(self, folder, suffix):
        out = self._git("ls-tree", "--name-only", self.commit, folder + "/")
        return sorted(p for p in out.splitlines() if p.endswith(suffix))

    def read(self, path):
        return self._git("show", "%s:%s" % (self.commit, path))


class DirSource:
    """Files of an extracted source tree."""

    def __init__(self, root):
        self.root, self.commit = root, None

    def list(self, folder, suffix):
        return sorted(os.path.relpath(p, self.root)
                      for p in glob.glob(os.path.join(self.root, folder, "*" + suffix)))

    def read(self, path):
        with open(os.path.join(self.root, path)) as f:
            return f.read()


# ------------------------------------------------------- C function checks

def c_functions(text):
    """{name: hash} of the top-level function definitions in C `text`, the
    hash taken over the text without comments, layout, and the renames
    Valkey made (redisCommand -> serverCommand, redisAssert -> serverAssert)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    out = {}
    for m in re.finditer(r"^[A-Za-z][^\n;{}()]*?\b(\w+)\s*\(([^;{}]*?)\)\s*\{", text, re.M):
        i, depth = m.end(), 1
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body = re.sub(r"\s+", " ", text[m.start():i])
        body = body.replace("redisCommand", "serverCommand").replace("redisAssert", "serverAssert")
        body = re.sub(r'" "', "", body)  # "a" "b" is "ab"
        body = re.sub(r" ?([(){}\[\];,=<>!+\-*/|&?:.]) ?", r"\1", body)
        out[m.group(1)] = hashlib.sha256(body.encode()).hexdigest()[:12]
    return out


def check_c(src, label, procs):
    """Every function of KNOWN_C (and every getkeys procedure in `procs`)
    must have a reviewed hash; returns the problems."""
    problems = []
    wanted = {f: dict(fns) for f, fns in KNOWN_C.items()}
    for proc in procs:
        wanted["src/db.c"].setdefault(proc, KNOWN_GETKEYS.get(proc, {}))
    for path, fns in wanted.items():
        found = c_functions(src.read(path))
        for name, known in fns.items():
            h = found.get(name)
            if h is None:
                problems.append("%s: %s not found in %s" % (label, name, path))
            elif h not in known:
                problems.append("%s: %s (%s) is %s, not a reviewed version %s"
                                % (label, name, path, h, sorted(known)))
    return problems


# --------------------------------------------------------------- the digest

def norm_key_spec(where, ks):
    """A src/commands/*.json key spec -> the normalized shape (no notes)."""
    flags = ks.get("flags", [])
    for f in flags:
        if f not in KEY_FLAGS:
            raise SystemExit("%s: unknown key-spec flag %r" % (where, f))
    flags = sorted(set(flags), key=KEY_FLAGS.index)
    (bs_type, bs), = ks["begin_search"].items()
    (fk_type, fk), = ks["find_keys"].items()
    if bs_type == "index":
        begin = {"index": {"pos": bs["pos"]}}
    elif bs_type == "keyword":
        begin = {"keyword": {"keyword": bs["keyword"], "startfrom": bs["startfrom"]}}
    elif bs_type == "unknown":
        begin = {"unknown": None}
    else:
        raise SystemExit("%s: unknown begin_search %r" % (where, bs_type))
    if fk_type == "range":
        find = {"range": {"lastkey": fk["lastkey"], "step": fk["step"], "limit": fk["limit"]}}
    elif fk_type == "keynum":
        find = {"keynum": {"keynumidx": fk["keynumidx"], "firstkey": fk["firstkey"],
                           "step": fk["step"]}}
    elif fk_type == "unknown":
        find = {"unknown": None}
    else:
        raise SystemExit("%s: unknown find_keys %r" % (where, fk_type))
    return {"flags": flags, "begin_search": begin, "find_keys": find}


def implicit_categories(flags, cats):
    """setImplicitACLCategories (server.c)."""
    cats = set(cats)
    if "write" in flags:
        cats.add("write")
    if "readonly" in flags and "scripting" not in cats:
        cats.add("read")
    if "admin" in flags:
        cats |= {"admin", "dangerous"}
    if "pubsub" in flags:
        cats.add("pubsub")
    if "fast" in flags:
        cats.add("fast")
    if "blocking" in flags:
        cats.add("blocking")
    if "fast" not in cats:
        cats.add("slow")
    return sorted(cats, key=ACL_CATEGORIES.index)


def legacy_range(specs):
    """populateCommandLegacyRangeSpec (server.c) and addReplyCommandInfo:
    (COMMAND INFO's first, last, step; whether it sets movablekeys)."""
    def index_range(ks):
        return "index" in ks["begin_search"] and "range" in ks["find_keys"]

    def as_int(u):  # (unsigned) -> int
        return u - (1 << 32) if u & (1 << 31) else u

    if not specs:
        return (0, 0, 0), False
    if len(specs) == 1 and index_range(specs[0]):
        ks = specs[0]
        pos = ks["begin_search"]["index"]["pos"]
        rng = ks["find_keys"]["range"]
        last = rng["lastkey"] + pos if rng["lastkey"] >= 0 else rng["lastkey"]
        return (pos, last, rng["step"]), "INCOMPLETE" in ks["flags"]
    movable = False
    first, last, prev_last = 2**31 - 1, 0, 0
    for ks in specs:
        if not index_range(ks):
            movable = True
            continue
        pos = ks["begin_search"]["index"]["pos"]
        rng = ks["find_keys"]["range"]
        if rng["step"] != 1 or (prev_last and prev_last != pos - 1):
            movable = True
            continue
        if "INCOMPLETE" in ks["flags"]:
            movable = True
        first = min(first, pos)
        abs_last = rng["lastkey"] + pos if rng["lastkey"] >= 0 else rng["lastkey"]
        last = as_int(max(last & 0xFFFFFFFF, abs_last & 0xFFFFFFFF))
        prev_last = last
    if first == 2**31 - 1:
        return (0, 0, 0), True
    # The legacy spec keeps lastkey relative; COMMAND INFO makes it absolute.
    return (first, last, 1), movable


def read_channels(db_c):
    """commands_with_channels (db.c) -> {C function: [flags, start, count]}."""
    m = re.search(r"ChannelSpecs commands_with_channels\[\] = \{(.*?)\n\};", db_c, re.S)
    if not m:
        raise SystemExit("commands_with_channels not found in db.c")
    table = {}
    for fn, flags, start, count in re.findall(
            r"\{(\w+),\s*([A-Z_| ]+),\s*(-?\d+),\s*(-?\d+)\}", m.group(1)):
        names = [f.strip()[len("CMD_CHANNEL_"):] for f in flags.split("|")]
        if any(n not in CHANNEL_FLAGS for n in names):
            raise SystemExit("commands_with_channels: unknown flag in %r" % flags)
        table[fn] = [sorted(names, key=CHANNEL_FLAGS.index), int(start), int(count)]
    return table


def read_categories(acl_c):
    """The category names of ACLCommandCategories (7.0, 7.2) or
    ACLDefaultCommandCategories (7.4, Valkey 8), in order."""
    m = re.search(r"ACL(?:Default)?CommandCategories\[\]\s*=\s*\{(.*?)\n\};", acl_c, re.S)
    if not m:
        raise SystemExit("the ACL category table was not found in acl.c")
    return re.findall(r'\{\s*"(\w+)"', m.group(1))


def read_visible_flags(server_c):
    m = re.search(r"void addReplyFlagsForCommand\(.*?\n\}", server_c, re.S)
    if not m:
        raise SystemExit("addReplyFlagsForCommand not found in server.c")
    listed = re.sub(r"/\*.*?\*/", "", m.group(0), flags=re.S)
    return re.findall(r'\{CMD_\w+,\s*"(\w+)"\}', listed)


def digest(src, server, version):
    files = src.list("src/commands", ".json")
    if not files:
        raise SystemExit("%s %s: no src/commands/*.json" % (server, version))
    label = "%s %s" % (server, version)
    problems = []

    reported = read_visible_flags(src.read("src/server.c"))
    # addReplyFlagsForCommand leaves may_replicate and protected out (and
    # the sentinel flags, and TOUCHES_ARBITRARY_KEYS).
    if reported != VISIBLE_FLAGS:
        problems.append("%s: COMMAND INFO flags are %s" % (label, reported))
    cats = read_categories(src.read("src/acl.c"))
    if cats != ACL_CATEGORIES:
        problems.append("%s: ACL categories are %s" % (label, cats))
    channels_by_fn = read_channels(src.read("src/db.c"))

    sentinel = server == "sentinel"
    infos = {}
    for path in files:
        for name, info in json.loads(src.read(path)).items():
            flags = info.get("command_flags", [])
            if sentinel and "SENTINEL" not in flags and "ONLY_SENTINEL" not in flags:
                continue
            if not sentinel and "ONLY_SENTINEL" in flags:
                continue
            full = name.lower()
            if "container" in info:
                full = info["container"].lower() + "|" + full
            if full in infos:
                problems.append("%s: %s defined twice" % (label, full))
            infos[full] = info
    procs = sorted({i["get_keys_function"] for i in infos.values() if "get_keys_function" in i})
    problems += check_c(src, label, procs)

    commands = []
    fn_to_cmd = {}
    for full in sorted(infos):
        info = infos[full]
        where = "%s %s" % (label, full)
        flags = []
        for f in info.get("command_flags", []):
            if f in IGNORED_JSON_FLAGS:
                continue
            if f.lower() not in FLAG_ORDER or f.lower() == "movablekeys":
                problems.append("%s: unknown command flag %r" % (where, f))
                continue
            flags.append(f.lower())
        specs = [norm_key_spec(where, k) for k in info.get("key_specs", [])]
        keys, movable = legacy_range(specs)
        if movable:
            flags.append("movablekeys")
        json_cats = [c.lower() for c in info.get("acl_categories", [])]
        for c in json_cats:
            if c not in ACL_CATEGORIES:
                problems.append("%s: unknown ACL category %r" % (where, c))
        entry = {
            "name": full,
            "arity": info["arity"],
            "flags": sorted(set(flags), key=FLAG_ORDER.index),
            "acl": implicit_categories(flags, [c for c in json_cats if c in ACL_CATEGORIES]),
            "keys": list(keys),
        }
        if specs:
            entry["key_specs"] = specs
        if "get_keys_function" in info:
            entry["getkeys"] = info["get_keys_function"]
        if "function" in info:
            fn_to_cmd[info["function"]] = entry
        commands.append(entry)
    for fn, spec in channels_by_fn.items():
        if fn not in fn_to_cmd:
            if sentinel:
                continue  # e.g. SPUBLISH: not a Sentinel command
            problems.append("%s: commands_with_channels: no command runs %s" % (label, fn))
            continue
        fn_to_cmd[fn]["channels"] = spec
    names = {c["name"] for c in commands}
    for c in commands:
        if "|" in c["name"] and c["name"].split("|")[0] not in names:
            problems.append("%s: %s has no container" % (label, c["name"]))
    if problems:
        raise SystemExit("\n".join(problems))
    return {
        "server": server,
        "version": version,
        "commit": src.commit,
        "acl_categories": cats,
        "commands": commands,
    }


def render(d):
    """The digest as JSON with one command per line (reviewable diffs)."""
    head = {k: v for k, v in d.items() if k != "commands"}
    lines = ["{"]
    for k, v in head.items():
        lines.append("  %s: %s," % (json.dumps(k), json.dumps(v)))
    lines.append('  "commands": [')
    for i, c in enumerate(d["commands"]):
        sep = "," if i + 1 < len(d["commands"]) else ""
        lines.append("    " + json.dumps(c, separators=(", ", ": ")) + sep)
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def digest_path(server, version):
    return os.path.join(DIGEST_DIR, "%s-%s.json" % (server, version))


def load_digest(server, version):
    with open(digest_path(server, version)) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("server", nargs="?", choices=["redis", "valkey", "sentinel"])
    ap.add_argument("version", nargs="?")
    ap.add_argument("--git-dir", help="a clone of the server's repository")
    ap.add_argument("--src", help="an extracted source tree instead")
    ap.add_argument("--commit", help="with --src: the commit the tree is, for the digest")
    ap.add_argument("--all", action="store_true", help="every release in RELEASES")
    ap.add_argument("--redis-git-dir")
    ap.add_argument("--valkey-git-dir")
    ap.add_argument("--hashes", action="store_true",
                    help="print the hashes of the checked C functions and exit")
    args = ap.parse_args()

    if args.all:
        jobs = []
        for server, version, _ in RELEASES:
            git_dir = args.valkey_git_dir if server == "valkey" else args.redis_git_dir
            if not git_dir:
                ap.error("--all needs --redis-git-dir and --valkey-git-dir")
            jobs.append((server, version, GitSource(git_dir, version)))
    else:
        if not args.server or not args.version or bool(args.git_dir) == bool(args.src):
            ap.error("give SERVER VERSION and one of --git-dir / --src (or --all)")
        src = GitSource(args.git_dir, args.version) if args.git_dir else DirSource(args.src)
        if args.commit:
            if args.git_dir:
                ap.error("--commit goes with --src")
            src.commit = args.commit
        jobs = [(args.server, args.version, src)]

    if args.hashes:
        for server, version, src in jobs:
            for path, fns in KNOWN_C.items():
                found = c_functions(src.read(path))
                for name in fns:
                    print("%s %s %s %s %s" % (server, version, path, name, found.get(name)))
        return 0
    os.makedirs(DIGEST_DIR, exist_ok=True)
    for server, version, src in jobs:
        text = render(digest(src, server, version))
        path = digest_path(server, version)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        print("wrote %s" % os.path.relpath(path, REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
