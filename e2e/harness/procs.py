"""Processes, ports, readiness waits and guaranteed cleanup.

Every long-running process the harness starts is a `Proc`. Its stdout and
stderr go to one log file (appended to across restarts, with a header line per
start). A module-level registry stops every live `Proc` at interpreter exit,
and each child is also asked by the kernel (PR_SET_PDEATHSIG) to die with the
test process, so a killed pytest leaves nothing behind.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import random
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

__all__ = [
    "HarnessError",
    "ProcessDied",
    "StartupTimeout",
    "Proc",
    "wait_until",
    "free_port",
    "is_listening",
    "tail",
    "live_procs",
    "stop_all",
]


class HarnessError(RuntimeError):
    """Something in the rig itself went wrong (not the system under test)."""


class ProcessDied(HarnessError):
    """A process exited while we were waiting for it to become ready."""


class StartupTimeout(HarnessError):
    """A readiness condition did not become true in time."""


# --------------------------------------------------------------------------
# Log helpers


def tail(path: str | os.PathLike, lines: int = 60, max_bytes: int = 256 * 1024) -> str:
    """The last `lines` lines of a text file ('' if it does not exist)."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------
# Ports

# Ports are picked below Linux's default ephemeral range (32768-60999), so the
# outgoing connections of the tests themselves can never take a port between
# the moment we pick it and the moment a server binds it. Ports handed out in
# this process are never handed out twice.
_PORT_LO, _PORT_HI = 20000, 32000
_handed_out: set[int] = set()
_port_lock = threading.Lock()
_rng = random.Random(os.getpid() ^ time.time_ns())


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback TCP port that nothing listens on now and that this process
    has not handed out before."""
    with _port_lock:
        for _ in range(2000):
            port = _rng.randint(_PORT_LO, _PORT_HI)
            if port in _handed_out or is_listening(port):
                continue
            if _bindable(host, port):
                _handed_out.add(port)
                return port
    raise HarnessError("no free loopback port found")


def _listening_ports() -> set[int]:
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) > 3 and parts[3] == "0A":  # TCP_LISTEN
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def is_listening(port: int) -> bool:
    """True if some socket is in LISTEN state on `port`.

    Read from /proc/net/tcp, so checking does not open a connection (which
    would show up in Envoy's stats, in the filter, and in relay recordings).
    """
    return port in _listening_ports()


# --------------------------------------------------------------------------
# Waiting


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    procs: Iterable["Proc"] = (),
    interval: float = 0.005,
    max_interval: float = 0.05,
):
    """Poll `predicate` until it returns a truthy value, which is returned.

    Raises ProcessDied (with the log tail) if one of `procs` exits first, and
    StartupTimeout after `timeout` seconds.
    """
    procs = list(procs)
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        value = predicate()
        if value:
            return value
        for p in procs:
            if not p.alive:
                raise ProcessDied(
                    f"{p.name} exited with status {p.returncode} while waiting for {what}\n"
                    f"--- {p.log_path} (tail) ---\n{p.log_tail(40)}"
                )
        if time.monotonic() >= deadline:
            detail = "".join(f"\n--- {p.log_path} (tail) ---\n{p.log_tail(40)}" for p in procs)
            raise StartupTimeout(f"timed out after {timeout:.1f}s waiting for {what}{detail}")
        time.sleep(delay)
        delay = min(delay * 1.5, max_interval)


# --------------------------------------------------------------------------
# Processes

_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - non-Linux
    _prctl = None


def _child_setup() -> None:
    # Runs in the child between fork and exec: die when the parent dies.
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_registry: list["Proc"] = []
_registry_lock = threading.Lock()


class Proc:
    """One child process with its own log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: str | os.PathLike,
        env: dict[str, str | None] | None = None,
        cwd: str | os.PathLike | None = None,
    ):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = env
        self.cwd = cwd
        self.popen: subprocess.Popen | None = None
        self.starts = 0

    # -- lifecycle
    def start(self) -> "Proc":
        if self.alive:
            raise HarnessError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for k, v in (self.env or {}).items():
            if v is None:
                env.pop(k, None)  # None: make sure the child does NOT have it
            else:
                env[k] = v
        with self.log_path.open("ab") as log:
            log.write(
                f"=== [{time.strftime('%H:%M:%S')}] start #{self.starts + 1}: "
                f"{' '.join(self.argv)}\n".encode()
            )
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                preexec_fn=_child_setup,
                start_new_session=True,  # Ctrl-C reaches pytest, which cleans up
            )
        self.starts += 1
        with _registry_lock:
            if self not in _registry:
                _registry.append(self)
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit status."""
        p = self.popen
        if p is None:
            return None
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
            except ProcessLookupError:
                pass
        with _registry_lock:
            if self in _registry:
                _registry.remove(self)
        return p.returncode

    def kill(self) -> int | None:
        """SIGKILL and reap."""
        p = self.popen
        if p is None:
            return None
        if p.poll() is None:
            try:
                p.kill()
            except ProcessLookupError:
                pass
            p.wait(10)
        with _registry_lock:
            if self in _registry:
                _registry.remove(self)
        return p.returncode

    def wait_exit(self, timeout: float) -> int | None:
        """Wait for the process to exit on its own; None if still running."""
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    # -- state
    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    # -- logs
    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_text_since_last_start(self) -> str:
        text = self.log_text()
        idx = text.rfind("\n=== [")
        if text.startswith("=== [") and idx < 0:
            return text
        return text[idx + 1 :] if idx >= 0 else text

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def __repr__(self) -> str:
        state = "alive" if self.alive else f"exited({self.returncode})"
        return f"<Proc {self.name} pid={self.pid} {state} log={self.log_path}>"


def live_procs() -> list[Proc]:
    with _registry_lock:
        return [p for p in _registry if p.alive]


def stop_all() -> None:
    with _registry_lock:
        procs = list(_registry)
    for p in procs:
        try:
            p.stop(timeout=3)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(stop_all)


def _on_sigterm(signum, frame):  # pragma: no cover - signal path
    stop_all()
    raise SystemExit(128 + signum)


# A SIGTERM (CI timeout, `kill`) must still clean up. Only install if nobody
# else has, and only from the main thread.
if threading.current_thread() is threading.main_thread():
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)
