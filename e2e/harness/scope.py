"""Sessions and scopes: where runtime files go and who cleans up what.

A `Run` is one test session: `.e2e-run/<YYYYmmdd-HHMMSS>-<pid>/`, holding the
session PKI and one subdirectory per `Scope`. A `Scope` creates redis
servers, Envoys and relays (all logs under its directory) and stops them all
on `close()`. pytest fixtures wrap these (see e2e/conftest.py); scripts and
benchmarks can use them directly:

    with Run.create() as run, run.scope("bench") as s:
        redis = s.redis("password")
        envoy = s.envoy(redis, plugin_config={...}, host_env={...})
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from .certs import Pki, make_pki
from .envoy import Envoy, StartResult
from .paths import RUN_ROOT, WASM_PATH
from .procs import Proc
from .redis_server import RedisServer, start_redis
from .relay import RecordingRelay

KEEP_SESSIONS = 5


def _slug(s: str, limit: int = 80) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_")
    return s[-limit:] or "scope"


class Run:
    def __init__(self, dir: Path):
        self.dir = dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._pki: Pki | None = None

    @classmethod
    def create(cls, root: Path = RUN_ROOT) -> "Run":
        root.mkdir(parents=True, exist_ok=True)
        _prune(root)
        d = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        return cls(d)

    @property
    def pki(self) -> Pki:
        if self._pki is None:
            self._pki = make_pki(self.dir / "pki")
        return self._pki

    def scope(self, name: str) -> "Scope":
        return Scope(self, name)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        pass


def _prune(root: Path) -> None:
    """Keep only the newest KEEP_SESSIONS session directories."""
    sessions = sorted(
        (p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"\d{8}-\d{6}-\d+", p.name)),
        key=lambda p: p.name,
    )
    for old in sessions[:-KEEP_SESSIONS]:
        shutil.rmtree(old, ignore_errors=True)


class Scope:
    """Creates processes under run.dir/<name>/ and stops them on close()."""

    def __init__(self, run: Run, name: str):
        self.run = run
        self.name = name
        self.dir = run.dir / _slug(name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.redises: list[RedisServer] = []
        self.envoys: list[Envoy] = []
        self.relays: list[RecordingRelay] = []
        self.closers: list[Any] = []

    # -- factories
    def redis(self, kind: str = "plain", **kw) -> RedisServer:
        """Start a redis-server: kind in plain|password|acl|tls|mtls (see
        redis_server.start_redis for the keyword arguments)."""
        if kind in ("tls", "mtls"):
            kw.setdefault("pki", self.run.pki)
        r = start_redis(self.dir, kind, **kw)
        self.redises.append(r)
        return r

    def envoy(self, upstream, *, start: bool = True, wasm_path: Path | str | None = None, **kw) -> Envoy:
        """An Envoy in front of `upstream` (RedisServer, relay, or (host, port)),
        started and ready unless start=False. plugin_config=... adds our wasm
        filter (wasm_path defaults to the release build). See envoy.EnvoyOptions."""
        if kw.get("plugin_config") is not None and wasm_path is None:
            wasm_path = WASM_PATH
        if wasm_path is not None:
            kw["wasm_path"] = wasm_path
        e = Envoy(self.dir, upstream, name=kw.pop("name", "envoy"), **kw)
        self.envoys.append(e)
        if start:
            e.start()
        return e

    def envoy_try_start(self, upstream, **kw) -> tuple[Envoy, StartResult]:
        """Start an Envoy whose config may be rejected; returns (envoy, result).
        If accepted, the envoy keeps running (stopped at scope close)."""
        e = self.envoy(upstream, start=False, **kw)
        return e, e.try_start()

    def envoy_rejects(self, upstream, **kw) -> str:
        """Assert Envoy REJECTS this config; return the log text of the attempt."""
        e, r = self.envoy_try_start(upstream, **kw)
        if r.accepted:
            raise AssertionError(
                f"Envoy accepted a config that should be rejected; log:\n{r.log[-3000:]}"
            )
        return r.log

    def relay(self, upstream, name: str = "relay") -> RecordingRelay:
        """A started recording relay in front of `upstream`."""
        host, port = (upstream if isinstance(upstream, tuple) else (upstream.host, upstream.port))
        r = RecordingRelay(host, port, name=name).start()
        self.relays.append(r)
        return r

    # -- introspection
    def procs(self) -> list[Proc]:
        out: list[Proc] = [r.proc for r in self.redises]
        out += [e.proc for e in self.envoys if e.proc is not None]
        return out

    def log_files(self) -> list[Path]:
        return [p.log_path for p in self.procs() if p.log_path.exists()]

    # -- cleanup
    def close(self) -> None:
        for e in self.envoys:
            e.stop()
        for r in self.relays:
            r.close()
        for r in self.redises:
            r.stop()
        for c in self.closers:
            try:
                c()
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self) -> "Scope":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
