"""Redis's own test suite (the Tcl tests of the installed redis-server's
source package, which ./dev setup extracts into .cache/redis-src/), run one
unit at a time against an external endpoint, such as an Envoy in front of a
redis-server:

    run = run_unit("unit/pubsub", envoy, scope.dir)
    run.tests             # {"PUBLISH/SUBSCRIBE basics": "ok", ...}
    run.passed            # the names of the tests that passed
    run.details[name]     # what the suite printed about a failed test
    run.errors            # failures that name no test (a [TIMEOUT], ...)
    run.log_path          # the suite's whole output

A unit runs as `tclsh tests/test_helper.tcl --host H --port P --single
unit/<name> --durable` from the source tree. Against an external server the
suite ignores the tests tagged external:skip; --durable turns an error that
is not an assertion (a closed connection, an I/O error) into a failure of
that test, or of the block of tests it happened in, and goes on with the
next one instead of abandoning the unit.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .paths import REPO_ROOT, tool
from .procs import HarnessError, Proc, free_port

SOURCE_CACHE = REPO_ROOT / ".cache" / "redis-src"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A line the suite's test server prints about a test or about the run. What
# follows an [err] or [exception] line, up to the next such line, is its detail.
_STATUS = re.compile(r"^\[(ok|err|exception|skip|ignore|TIMEOUT|ready|\d+/\d+ done)\]: ?(.*)$")
_ELAPSED = re.compile(r"^(.*) \(\d+ ms\)$")
_ERR_NAME = re.compile(r"^(.*) in tests/\S+\.tcl$")
_IN_PROGRESS = re.compile(r"=> \(IN PROGRESS\) (.*)$")
# The reasons an [ignore] line gives after the name (tags_acceptable).
_IGNORE_REASON = re.compile(r"^(.*): (Tag: .*|Not supported .*|large memory flag not provided)$")
# When a name is reported twice (the same test in a loop), the worse status stands.
_RANK = {"err": 3, "ok": 2, "skip": 1, "ignore": 0}


def source_dir() -> Path:
    """The source tree of the installed redis-server's package ($E2E_REDIS_SRC,
    else .cache/redis-src/redis-<version>/, the directory ./dev setup fills)."""
    if os.environ.get("E2E_REDIS_SRC"):
        d = Path(os.environ["E2E_REDIS_SRC"])
    else:
        try:
            version = subprocess.run(
                ["dpkg-query", "-W", "-f=${source:Version}", "redis-server"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
        except (OSError, subprocess.CalledProcessError) as e:
            raise HarnessError(f"cannot tell the installed redis-server's package version: {e}") from e
        d = SOURCE_CACHE / f"redis-{version.split(':', 1)[-1]}"
    if not (d / "tests" / "test_helper.tcl").is_file():
        raise HarnessError(f"no Redis test suite in {d}: run ./dev setup")
    return d


@dataclass
class UnitRun:
    unit: str
    tests: dict[str, str]  # test name -> ok | err | skip | ignore
    details: dict[str, str]  # failed test -> what the suite printed about it
    errors: list[str]  # failures that name no test: errors between tests, exceptions, timeouts
    seconds: float
    log_path: Path
    output: str = field(repr=False)

    @property
    def passed(self) -> set[str]:
        return {name for name, status in self.tests.items() if status == "ok"}

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def parse(unit: str, output: str, seconds: float, log_path: Path) -> UnitRun:
    """The per-test results in the suite's output (ANSI colours removed)."""
    tests: dict[str, str] = {}
    details: dict[str, str] = {}
    errors: list[str] = []

    def record(name: str, status: str, detail: str | None = None) -> None:
        if _RANK[status] >= _RANK.get(tests.get(name, "ignore"), 0):
            tests[name] = status
        if detail is not None:
            details[name] = (details.get(name, "") + "\n" + detail).strip()

    def settle(status: str, block: list[str]) -> None:
        """An [err], [exception] or [TIMEOUT] line and the detail lines under it."""
        text = "\n".join(block).rstrip()
        named = _ERR_NAME.match(block[0].split(": ", 1)[1]) if status == "err" else None
        if named:
            record(named.group(1), "err", text)
            return
        errors.append(text)
        for line in block:  # a [TIMEOUT] names the test it gave up on
            hung = _IN_PROGRESS.search(line)
            if hung:
                record(hung.group(1), "err", text)

    open_status, block = "", []
    for line in output.splitlines():
        m = _STATUS.match(line)
        if m is None and line.strip() != "The End":
            block.append(line)
            continue
        if open_status:
            settle(open_status, block)
        open_status, block = "", [line]
        if m is None:
            continue  # The End: the summary under it repeats the failures
        status, data = m.groups()
        if status == "ok":
            em = _ELAPSED.match(data)
            record(em.group(1) if em else data, "ok")
        elif status == "skip":
            record(data, "skip")
        elif status == "ignore":
            im = _IGNORE_REASON.match(data)
            record(im.group(1) if im else data, "ignore")
        elif status in ("err", "exception", "TIMEOUT"):
            open_status = status
    if open_status:
        settle(open_status, block)
    return UnitRun(unit, tests, details, errors, seconds, log_path, output)


def run_unit(
    unit: str,
    endpoint,
    out_dir: Path,
    *,
    name: str | None = None,
    test_timeout: int = 60,
    timeout: float = 300,
    skip: Iterable[str] = (),
) -> UnitRun:
    """Run one unit of the suite (e.g. "unit/pubsub") against `endpoint`
    (anything with .host/.port, or a (host, port) tuple). The output is kept
    in out_dir/<name>.log (default name: redis-suite-<unit>). `test_timeout`:
    the suite gives up after that many seconds in which no test started or
    ended; `timeout`: the whole unit's limit, after which it is killed;
    `skip`: names of tests not to run (the suite's --skiptest)."""
    host, port = endpoint if isinstance(endpoint, tuple) else (endpoint.host, endpoint.port)
    name = name or "redis-suite-" + unit.replace("/", "_")
    # The suite's own test server listens on the first free port of the 32
    # below --baseport (by default 21079, the same for every run): start
    # that range at a port free_port handed out, so that runs side by side
    # do not collide.
    baseport = free_port() + 32
    argv = [
        tool("tclsh"), "tests/test_helper.tcl", "--host", host, "--port", str(port),
        "--single", unit, "--durable", "--timeout", str(test_timeout),
        "--baseport", str(baseport),
    ]  # fmt: skip
    for test in skip:
        argv += ["--skiptest", test]
    proc = Proc(name, argv, out_dir / f"{name}.log", cwd=source_dir())
    started = time.monotonic()
    proc.start()
    try:
        returncode = proc.wait_exit(timeout)
    finally:
        # The suite's test server starts its test client as a separate
        # process; the group goes with it, whether it finished or not.
        _kill_group(proc)
    seconds = time.monotonic() - started
    output = _ANSI.sub("", proc.log_text_since_last_start())
    if returncode is None:
        output += f"\n[TIMEOUT]: killed after {timeout:.0f}s\n"
    return parse(unit, output, seconds, proc.log_path)


def _kill_group(proc: Proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.kill()
