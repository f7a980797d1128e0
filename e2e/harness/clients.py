"""Real Redis clients: redis-py, redis-cli, ioredis (through ioredis_runner.js).

Endpoints are anything with .host/.port (RedisServer, Envoy, RecordingRelay)
or a (host, port) tuple.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .paths import IOREDIS_RUNNER, tool


def _hostport(ep) -> tuple[str, int]:
    if isinstance(ep, tuple):
        return ep[0], int(ep[1])
    return ep.host, int(ep.port)


def _tls_files(tls) -> dict | None:
    """tls may be None, a RedisServer (TLS kind), or a dict with ca/cert/key/servername."""
    if tls is None or tls is False:
        return None
    if isinstance(tls, dict):
        return tls
    pki = getattr(tls, "pki", None)
    if pki is None:
        raise ValueError(f"cannot derive TLS settings from {tls!r}")
    d = {"ca": str(pki.ca_cert), "servername": pki.server_name}
    if getattr(tls, "mutual", False):
        d.update(cert=str(pki.client_cert), key=str(pki.client_key))
    return d


# ------------------------------------------------------------------ redis-py


def redis_py(
    endpoint,
    *,
    password: str | None = None,
    username: str | None = None,
    protocol: int = 2,
    decode_responses: bool = True,
    timeout: float = 5.0,
    tls=None,
    **kw,
):
    """A sync redis-py client (redis==8.x) with no retries.

    protocol=2 sends AUTH (if credentials), protocol=3 sends
    `HELLO 3 [AUTH user pass]`. NOTE: redis-py 8 defaults to RESP3; this
    wrapper defaults to 2, always explicit. redis-py also sends
    `CLIENT SETINFO LIB-NAME/LIB-VER` on connect (errors ignored).
    Retries are off so a dropped connection surfaces as an error instead of
    being silently redone on a new connection.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    host, port = _hostport(endpoint)
    t = _tls_files(tls)
    if t:
        kw.update(
            ssl=True,
            ssl_ca_certs=t.get("ca"),
            ssl_certfile=t.get("cert"),
            ssl_keyfile=t.get("key"),
            ssl_check_hostname=False,
        )
    return redis.Redis(
        host=host,
        port=port,
        password=password,
        username=username,
        protocol=protocol,
        decode_responses=decode_responses,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        **kw,
    )


# ------------------------------------------------------------------ redis-cli


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    argv: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def redis_cli(
    endpoint,
    *args: str,
    a: str | None = None,
    user: str | None = None,
    pass_: str | None = None,
    no_auth_warning: bool = True,
    resp3: bool = False,
    stdin: str | bytes | None = None,
    pipe: bool = False,
    raw: bool | None = None,
    tls=None,
    extra: Sequence[str] = (),
    timeout: float = 15.0,
) -> CliResult:
    """Run redis-cli against endpoint.

    a -> `-a`, user -> `--user`, pass_ -> `--pass`, resp3 -> `-3`.
    With no args and stdin given, redis-cli reads commands line by line from
    stdin ("stdin mode"); pipe=True uses `--pipe` (stdin is raw RESP).
    raw=True forces `--raw`, raw=False forces `--no-raw`; by default
    redis-cli itself picks raw output because stdout is not a tty (so errors
    print as "ERR ..." / "NOAUTH ..." without "(error)").
    Exit status: redis-cli 7.0 exits 0 even when the reply is an error (e.g.
    NOAUTH); check stdout. It exits 1 when it cannot connect or the
    connection drops.
    """
    host, port = _hostport(endpoint)
    argv = [tool("redis-cli"), "-h", host, "-p", str(port)]
    if a is not None:
        argv += ["-a", a]
    if user is not None:
        argv += ["--user", user]
    if pass_ is not None:
        argv += ["--pass", pass_]
    if no_auth_warning:
        argv.append("--no-auth-warning")
    if resp3:
        argv.append("-3")
    if raw is True:
        argv.append("--raw")
    elif raw is False:
        argv.append("--no-raw")
    t = _tls_files(tls)
    if t:
        argv += ["--tls", "--cacert", t["ca"], "--sni", t.get("servername", "redis.test")]
        if t.get("cert"):
            argv += ["--cert", t["cert"], "--key", t["key"]]
    if pipe:
        argv.append("--pipe")
    argv += list(extra)
    argv += [str(x) for x in args]
    if isinstance(stdin, str):
        stdin = stdin.encode()
    r = subprocess.run(
        argv,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
    )
    return CliResult(
        r.returncode,
        r.stdout.decode("utf-8", "replace"),
        r.stderr.decode("utf-8", "replace"),
        argv,
    )


# ------------------------------------------------------------------ node clients


def run_node_runner(script: Path | str, spec: dict, timeout: float) -> dict:
    """Run one of the Node runners (e2e/*_runner.js) with `spec` as JSON on
    stdin; returns the JSON object of its last output line."""
    r = subprocess.run(
        [tool("node"), str(script)],
        input=json.dumps(spec).encode(),
        capture_output=True,
        timeout=timeout,
    )
    out = r.stdout.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(out.splitlines()[-1]) if out else None
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise RuntimeError(
            f"{Path(script).name} failed (status {r.returncode}):\nstdout: {out[-2000:]}\n"
            f"stderr: {r.stderr.decode('utf-8', 'replace')[-2000:]}"
        )
    return doc


# ------------------------------------------------------------------ ioredis


@dataclass
class IoredisResult:
    connected: bool
    error: str | None  # connection-level error (connect/auth/ready check)
    results: list[dict]  # per command: {"ok": value} or {"error": message}
    events: list[str]  # ioredis 'error'/'end'/... events as text
    raw: dict

    @property
    def values(self) -> list[Any]:
        """The command values; raises AssertionError on any error."""
        if not self.connected:
            raise AssertionError(f"ioredis did not connect: {self.error}; events={self.events}")
        bad = [r for r in self.results if "error" in r]
        if bad:
            raise AssertionError(f"ioredis command errors: {bad}")
        return [r["ok"] for r in self.results]


def ioredis_run(
    endpoint,
    commands: Sequence[Sequence[Any]],
    *,
    username: str | None = None,
    password: str | None = None,
    db: int | None = None,
    tls=None,
    options: dict | None = None,
    pipeline: bool = False,
    timeout: float = 20.0,
) -> IoredisResult:
    """Run commands with ioredis (node e2e/ioredis_runner.js).

    ioredis sends `AUTH [user] pass` when given credentials and then `INFO`
    (its ready check, enableReadyCheck=true by default) before any command.
    Commands run one after another (or as one pipeline with pipeline=True).
    Buffers come back as strings; errors per command do not stop the rest.
    `options` are passed to `new Redis({...})` as is (e.g.
    {"enableReadyCheck": false}).
    """
    host, port = _hostport(endpoint)
    spec: dict[str, Any] = {
        "host": host,
        "port": port,
        "commands": [[str(c) if not isinstance(c, (str, int, float)) else c for c in cmd] for cmd in commands],
        "pipeline": pipeline,
        "timeoutMs": int(timeout * 1000) - 2000,
    }
    if username is not None:
        spec["username"] = username
    if password is not None:
        spec["password"] = password
    if db is not None:
        spec["db"] = db
    t = _tls_files(tls)
    if t:
        spec["tls"] = t
    if options:
        spec["options"] = options
    doc = run_node_runner(IOREDIS_RUNNER, spec, timeout)
    return IoredisResult(
        connected=bool(doc.get("connected")),
        error=doc.get("error"),
        results=doc.get("results", []),
        events=doc.get("events", []),
        raw=doc,
    )
