"""Real `redis-server` processes on free loopback ports.

Kinds (the `kind` argument of `start_redis`):
  plain     no auth
  password  `requirepass <password>` (default password: DEFAULT_SERVER_PASSWORD)
  acl       aclfile: `user default off` + `user appuser on >SuperSecretPass ~* &* +@all`
  tls       TLS only (`port 0`, `tls-port N`), server cert from the session CA,
            client certificates not required (`tls-auth-clients no`)
  mtls      TLS only, client certificate required (`tls-auth-clients yes`)
TLS kinds may add a password (`password=`) or ACL users (`acl_users=`).
With `acl_users`, `.client()` logs in as the first user that is not
`default` (with its first `>password`), or as `username=` with `password=`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .certs import Pki
from .procs import HarnessError, Proc, ProcessDied, free_port, is_listening, wait_until
from .paths import tool

DEFAULT_SERVER_PASSWORD = "ServerSecretPass"
ACL_USER = "appuser"
ACL_PASSWORD = "SuperSecretPass"
DEFAULT_ACL_USERS = ("user default off", f"user {ACL_USER} on >{ACL_PASSWORD} ~* &* +@all")

KINDS = ("plain", "password", "acl", "tls", "mtls")


def _conf_quote(s: str) -> str:
    """A redis.conf double-quoted string (sdssplitargs escapes)."""
    escaped = s.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return '"' + escaped + '"'


@dataclass
class RedisServer:
    name: str
    host: str
    port: int
    kind: str
    dir: Path
    proc: Proc
    password: str | None = None  # requirepass, or the ACL user's password
    username: str | None = None  # ACL user to log in as (None: default user)
    tls: bool = False
    mutual: bool = False
    pki: Pki | None = None
    conf_lines: list[str] = field(default_factory=list)

    # -- addressing
    @property
    def addr(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def log_path(self) -> Path:
        return self.proc.log_path

    @property
    def ca_file(self) -> Path | None:
        return self.pki.ca_cert if (self.tls and self.pki) else None

    def ssl_context(self, client_cert: bool | None = None) -> ssl.SSLContext | None:
        """A client SSLContext trusting the session CA (and presenting the
        session client certificate if `client_cert`, default: if mTLS)."""
        if not self.tls or self.pki is None:
            return None
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        if client_cert if client_cert is not None else self.mutual:
            ctx.load_cert_chain(str(self.pki.client_cert), str(self.pki.client_key))
        return ctx

    # -- lifecycle
    @property
    def alive(self) -> bool:
        return self.proc.alive

    def stop(self) -> None:
        """SIGTERM (redis closes its clients) and wait."""
        self.proc.stop()

    def kill(self) -> None:
        """SIGKILL: connections die without redis saying anything."""
        self.proc.kill()

    def start(self, timeout: float = 15.0) -> "RedisServer":
        """Start again after stop()/kill(), same port and config (empty data)."""
        before = self.proc.log_text().count("Ready to accept connections")
        self.proc.start()
        wait_until(
            lambda: is_listening(self.port)
            and self.proc.log_text().count("Ready to accept connections") > before,
            timeout,
            f"{self.name} on port {self.port}",
            procs=[self.proc],
        )
        return self

    def log_text(self) -> str:
        return self.proc.log_text()

    def log_tail(self, lines: int = 60) -> str:
        return self.proc.log_tail(lines)

    # -- direct access (bypassing any proxy), for setup and assertions
    def client(self, **kw):
        """A redis-py client connected straight to this server with its
        real credentials (RESP2 unless protocol= is given)."""
        from .clients import redis_py

        kw.setdefault("password", self.password)
        kw.setdefault("username", self.username)
        if self.tls:
            kw.setdefault("tls", self)
        return redis_py(self, **kw)

    def __repr__(self) -> str:
        return f"<RedisServer {self.name} {self.kind} {self.host}:{self.port}>"


def start_redis(
    run_dir: Path,
    kind: str = "plain",
    *,
    name: str | None = None,
    password: str | None = None,
    acl_users: Sequence[str] | None = None,
    pki: Pki | None = None,
    extra_conf: Sequence[str] = (),
    timeout: float = 15.0,
    username: str | None = None,
    port: int | None = None,
) -> RedisServer:
    """Start a redis-server of `kind` and wait until it accepts connections.

    `username` (with `password`): the ACL user `.client()` logs in as, instead
    of the first `acl_users` user that is not `default`. `port`: this port
    (no retry on another one) instead of a free one."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    tls = kind in ("tls", "mtls")
    if tls and pki is None:
        raise ValueError("TLS redis needs a pki")
    if kind == "password" and password is None:
        password = DEFAULT_SERVER_PASSWORD
    if kind == "acl" and acl_users is None:
        acl_users = DEFAULT_ACL_USERS
    if acl_users and username is None:
        # Log in as the first user that is not "default", if any.
        for line in acl_users:
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "user" and parts[1] != "default":
                username = parts[1]
                pw = [p[1:] for p in parts[2:] if p.startswith(">")]
                if password is None and pw:
                    password = pw[0]
                break

    last_err: Exception | None = None
    fixed_port = port
    for _attempt in range(3):
        port = fixed_port or free_port()
        sname = name or f"redis-{kind}"
        d = run_dir / f"{sname}-{port}"
        d.mkdir(parents=True, exist_ok=True)
        conf = [
            "bind 127.0.0.1",
            "daemonize no",
            'logfile ""',
            f"dir {_conf_quote(str(d))}",
            'save ""',
            "appendonly no",
            "protected-mode no",
            "enable-debug-command local",
        ]
        if tls:
            conf += [
                "port 0",
                f"tls-port {port}",
                f"tls-cert-file {_conf_quote(str(pki.server_cert))}",
                f"tls-key-file {_conf_quote(str(pki.server_key))}",
                f"tls-ca-cert-file {_conf_quote(str(pki.ca_cert))}",
                f"tls-auth-clients {'yes' if kind == 'mtls' else 'no'}",
            ]
        else:
            conf.append(f"port {port}")
        if acl_users:
            aclfile = d / "users.acl"
            aclfile.write_text("".join(f"{u}\n" for u in acl_users))
            conf.append(f"aclfile {_conf_quote(str(aclfile))}")
        elif password is not None and kind != "plain":
            conf.append(f"requirepass {_conf_quote(password)}")
        conf += list(extra_conf)
        conf_path = d / "redis.conf"
        conf_path.write_text("\n".join(conf) + "\n")
        proc = Proc(sname, [tool("redis-server"), str(conf_path)], d / "redis.log", cwd=d)
        proc.start()
        try:
            wait_until(
                lambda: is_listening(port) and "Ready to accept connections" in proc.log_text(),
                timeout,
                f"{sname} on port {port}",
                procs=[proc],
            )
        except ProcessDied as e:
            proc.stop()
            last_err = e
            if "Address already in use" in proc.log_text() and fixed_port is None:
                continue  # lost a race for the port: pick another
            raise
        except Exception:
            proc.stop()
            raise
        return RedisServer(
            name=sname,
            host="127.0.0.1",
            port=port,
            kind=kind,
            dir=d,
            proc=proc,
            password=password if kind != "plain" else None,
            username=username,
            tls=tls,
            mutual=kind == "mtls",
            pki=pki if tls else None,
            conf_lines=conf,
        )
    raise HarnessError(f"could not start redis after 3 attempts: {last_err}")
