"""Real Envoy processes with a bootstrap rendered from Python.

Listener (free port) filter chain, mode "tcp_proxy" (the default):
    [envoy.filters.network.wasm (our filter), only if plugin_config is given]
    envoy.filters.network.tcp_proxy -> cluster "redis" -> upstream host:port
mode "redis_proxy": Envoy's native envoy.filters.network.redis_proxy instead.

The cluster optionally originates TLS with an UpstreamTlsContext, the way an
Istio DestinationRule `tls.mode: SIMPLE|MUTUAL` does. The listener optionally
terminates TLS with a DownstreamTlsContext (`downstream_tls=DownstreamTls...`):
with `DownstreamTls.mutual(pki)` it requires a client certificate and checks
it against the CA, the shape of an Istio sidecar's inbound chain under
PeerAuthentication STRICT; the filters (wasm, then tcp_proxy) run behind it
and see the peer certificate (`connection.uri_san_peer_certificate`).

`bypass_sources=["127.0.1.0/24", ...]` adds a first filter chain, chosen by
the connection's source address, that has only tcp_proxy: connections from
those addresses never meet the filter. That is the mesh's node-to-node path
(a Redis pod's own outbound sidecar has no filter) for Redis Cluster
replication and Sentinel, whose servers bind their outgoing connections to
such an address (`bind-source-addr`).

Envoy runs with --disable-hot-restart (so any number of Envoys can run at
once without --base-id juggling or /dev/shm leftovers) and --concurrency 2.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from . import yamlout
from .certs import Pki, SERVER_NAME
from .paths import envoy_binary
from .procs import HarnessError, Proc, free_port, is_listening, wait_until

ROOT_ID = "envoy_redis_auth"
PLUGIN_NAME = "envoy_redis_auth"
WASM_RUNTIME = "envoy.wasm.runtime.v8"
CLUSTER = "redis"
LISTENER = "redis_listener"
STAT_PREFIX = "redis"

FAILURE_POLICIES = ("FAIL_CLOSED", "FAIL_RELOAD", "FAIL_OPEN", "UNSPECIFIED")


def _hostport(ep) -> tuple[str, int]:
    if isinstance(ep, tuple):
        return ep[0], int(ep[1])
    return ep.host, int(ep.port)


@dataclass
class UpstreamTls:
    """`envoy.transport_sockets.tls` UpstreamTlsContext for the cluster."""

    ca_file: Path | str | None = None  # trusted CA (validation_context.trusted_ca)
    sni: str | None = SERVER_NAME
    client_cert: Path | str | None = None  # MUTUAL: tls_certificates
    client_key: Path | str | None = None
    verify_san: Sequence[str] = ()  # match_typed_subject_alt_names (DNS, exact)

    @classmethod
    def simple(cls, pki: Pki, sni: str | None = SERVER_NAME, verify_san: bool = True) -> "UpstreamTls":
        """Like DestinationRule `tls: {mode: SIMPLE, caCertificates, sni, subjectAltNames}`."""
        return cls(ca_file=pki.ca_cert, sni=sni, verify_san=[pki.server_name] if verify_san else [])

    @classmethod
    def mutual(cls, pki: Pki, sni: str | None = SERVER_NAME, verify_san: bool = True,
               client_cert=None, client_key=None) -> "UpstreamTls":  # fmt: skip
        """Like DestinationRule `tls: {mode: MUTUAL, clientCertificate, privateKey, ...}`."""
        return cls(
            ca_file=pki.ca_cert,
            sni=sni,
            verify_san=[pki.server_name] if verify_san else [],
            client_cert=client_cert or pki.client_cert,
            client_key=client_key or pki.client_key,
        )

    def render(self) -> dict:
        common: dict[str, Any] = {}
        if self.ca_file:
            vc: dict[str, Any] = {"trusted_ca": {"filename": str(self.ca_file)}}
            if self.verify_san:
                vc["match_typed_subject_alt_names"] = [
                    {"san_type": "DNS", "matcher": {"exact": s}} for s in self.verify_san
                ]
            common["validation_context"] = vc
        if self.client_cert:
            common["tls_certificates"] = [
                {
                    "certificate_chain": {"filename": str(self.client_cert)},
                    "private_key": {"filename": str(self.client_key)},
                }
            ]
        ctx: dict[str, Any] = {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": common,
        }
        if self.sni:
            ctx["sni"] = self.sni
        return {"name": "envoy.transport_sockets.tls", "typed_config": ctx}


@dataclass
class DownstreamTls:
    """`envoy.transport_sockets.tls` DownstreamTlsContext for the listener's
    filter chain: the server certificate Envoy presents, and, with `ca_file`,
    the CA client certificates must chain to (`validation_context.trusted_ca`);
    `require_client_certificate` refuses a handshake without one."""

    cert_file: Path | str
    key_file: Path | str
    ca_file: Path | str | None = None
    require_client_certificate: bool = True
    verify_uri_san_prefix: Sequence[str] = ()  # match_typed_subject_alt_names (URI, prefix)
    alpn: Sequence[str] = ()
    min_version: str | None = "TLSv1_2"

    @classmethod
    def mutual(cls, pki: Pki, **kw) -> "DownstreamTls":
        """Client certificates required, issued by the PKI's CA (Istio's
        inbound mTLS: the mesh CA is the trusted CA)."""
        return cls(cert_file=pki.server_cert, key_file=pki.server_key, ca_file=pki.ca_cert, **kw)

    @classmethod
    def simple(cls, pki: Pki, **kw) -> "DownstreamTls":
        """Server certificate only: no client certificate asked for."""
        kw.setdefault("require_client_certificate", False)
        return cls(cert_file=pki.server_cert, key_file=pki.server_key, ca_file=None, **kw)

    def render(self) -> dict:
        common: dict[str, Any] = {
            "tls_certificates": [
                {
                    "certificate_chain": {"filename": str(self.cert_file)},
                    "private_key": {"filename": str(self.key_file)},
                }
            ],
        }
        if self.min_version:
            common["tls_params"] = {"tls_minimum_protocol_version": self.min_version}
        if self.alpn:
            common["alpn_protocols"] = list(self.alpn)
        if self.ca_file:
            vc: dict[str, Any] = {"trusted_ca": {"filename": str(self.ca_file)}}
            if self.verify_uri_san_prefix:
                vc["match_typed_subject_alt_names"] = [
                    {"san_type": "URI", "matcher": {"prefix": s}} for s in self.verify_uri_san_prefix
                ]
            common["validation_context"] = vc
        ctx: dict[str, Any] = {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": common,
            "require_client_certificate": self.require_client_certificate,
        }
        return {"name": "envoy.transport_sockets.tls", "typed_config": ctx}


def wasm_filter(
    wasm_path: Path | str,
    plugin_config: str | Mapping | None,
    *,
    vm_env: Mapping[str, str] | None = None,
    host_env_keys: Sequence[str] = (),
    failure_policy: str = "FAIL_CLOSED",
    root_id: str = ROOT_ID,
    vm_id: str = ROOT_ID,
    name: str = PLUGIN_NAME,
) -> dict:
    """The `envoy.filters.network.wasm` filter entry for our plugin."""
    if failure_policy not in FAILURE_POLICIES:
        raise ValueError(f"failure_policy must be one of {FAILURE_POLICIES}")
    if plugin_config is None:
        value = ""
    elif isinstance(plugin_config, str):
        value = plugin_config
    else:
        value = json.dumps(plugin_config)
    vm_config: dict[str, Any] = {
        "vm_id": vm_id,
        "runtime": WASM_RUNTIME,
        "code": {"local": {"filename": str(wasm_path)}},
    }
    env: dict[str, Any] = {}
    if vm_env:
        env["key_values"] = dict(vm_env)
    if host_env_keys:
        env["host_env_keys"] = list(host_env_keys)
    if env:
        vm_config["environment_variables"] = env
    return {
        "name": "envoy.filters.network.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": root_id,
                "vm_config": vm_config,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": value,
                },
                "failure_policy": failure_policy,
            },
        },
    }


@dataclass
class StartResult:
    """What happened when Envoy was started with a config that may be rejected."""

    accepted: bool
    returncode: int | None  # None if Envoy is still running
    log: str  # the log of this start only
    reason: str = ""

    @property
    def rejected(self) -> bool:
        return not self.accepted

    def error_lines(self) -> list[str]:
        """Log lines at level error/critical."""
        return [l for l in self.log.splitlines() if "][error][" in l or "][critical][" in l]


@dataclass
class EnvoyOptions:
    """Everything that shapes one Envoy's bootstrap (see Envoy.__init__)."""

    upstream: tuple[str, int]
    mode: str = "tcp_proxy"
    plugin_config: str | Mapping | None = None
    wasm_path: Path | str | None = None
    host_env: Mapping[str, str] = field(default_factory=dict)
    host_env_keys: Sequence[str] = ()
    vm_env: Mapping[str, str] = field(default_factory=dict)
    failure_policy: str = "FAIL_CLOSED"
    root_id: str = ROOT_ID
    vm_id: str = ROOT_ID
    upstream_tls: UpstreamTls | None = None
    downstream_tls: DownstreamTls | None = None  # the listener's transport_socket
    bypass_sources: Sequence[str] = ()  # CIDRs whose connections skip the filter
    connect_timeout: str = "2s"
    tcp_proxy: Mapping[str, Any] = field(default_factory=dict)
    cluster: Mapping[str, Any] = field(default_factory=dict)
    listener: Mapping[str, Any] = field(default_factory=dict)
    redis_downstream_password: str | None = None  # redis_proxy mode
    redis_upstream_password: str | None = None  # redis_proxy mode
    redis_proxy: Mapping[str, Any] = field(default_factory=dict)
    concurrency: int = 2
    log_level: str = "warning"  # keeps the start-up banner out of the logs
    component_log_level: str | None = "wasm:debug"
    extra_args: Sequence[str] = ()


class Envoy:
    """One Envoy process. Create with `Envoy(run_dir, upstream, ...)`, then
    `.start()` (raises if it does not come up) or `.try_start()` (for configs
    that may be rejected)."""

    def __init__(
        self,
        run_dir: Path,
        upstream,
        *,
        name: str = "envoy",
        port: int | None = None,
        admin_port: int | None = None,
        dir: Path | None = None,
        **options,
    ):
        """run_dir: logs and config go to run_dir/<name>-<port>/ (or `dir`).
        upstream: RedisServer, relay, Envoy or (host, port). port/admin_port:
        fixed ports (default: free ones). options: see EnvoyOptions."""
        self.name = name
        self.opts = EnvoyOptions(upstream=_hostport(upstream), **options)
        self._check_opts()
        self.host = "127.0.0.1"
        self._fixed_ports = port is not None
        self.port = port or free_port()  # the listener clients connect to
        self.admin_port = admin_port or free_port()
        self.dir = Path(dir) if dir else Path(run_dir) / f"{name}-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "envoy.yaml"
        self.proc: Proc | None = None

    # ------------------------------------------------------------ config
    def _check_opts(self) -> None:
        o = self.opts
        if o.mode not in ("tcp_proxy", "redis_proxy"):
            raise ValueError("mode must be tcp_proxy or redis_proxy")
        if o.plugin_config is not None and o.mode != "tcp_proxy":
            raise ValueError("the wasm filter goes with mode=tcp_proxy")
        if o.plugin_config is not None and not o.wasm_path:
            raise ValueError("plugin_config given without wasm_path")

    @property
    def addr(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def has_wasm(self) -> bool:
        return self.opts.plugin_config is not None

    def render(self) -> dict:
        """The bootstrap as a dict (written as YAML by write_config)."""
        o = self.opts
        filters: list[dict] = []
        if o.mode == "tcp_proxy":
            if self.has_wasm:
                filters.append(
                    wasm_filter(
                        o.wasm_path,
                        o.plugin_config,
                        vm_env=o.vm_env,
                        host_env_keys=list(dict.fromkeys([*o.host_env.keys(), *o.host_env_keys])),
                        failure_policy=o.failure_policy,
                        root_id=o.root_id,
                        vm_id=o.vm_id,
                    )
                )
            filters.append(
                {
                    "name": "envoy.filters.network.tcp_proxy",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        "stat_prefix": STAT_PREFIX,
                        "cluster": CLUSTER,
                        **o.tcp_proxy,
                    },
                }
            )
        else:
            rp: dict[str, Any] = {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy",
                "stat_prefix": STAT_PREFIX,
                "settings": {"op_timeout": "5s"},
                "prefix_routes": {"catch_all_route": {"cluster": CLUSTER}},
            }
            if o.redis_downstream_password is not None:
                rp["downstream_auth_passwords"] = [{"inline_string": o.redis_downstream_password}]
            rp.update(o.redis_proxy)
            filters.append({"name": "envoy.filters.network.redis_proxy", "typed_config": rp})

        host, port = o.upstream
        cluster: dict[str, Any] = {
            "name": CLUSTER,
            "type": "STATIC",
            "connect_timeout": o.connect_timeout,
            "load_assignment": {
                "cluster_name": CLUSTER,
                "endpoints": [
                    {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}
                ],
            },
        }
        if o.upstream_tls is not None:
            cluster["transport_socket"] = o.upstream_tls.render()
        if o.mode == "redis_proxy" and o.redis_upstream_password is not None:
            cluster["typed_extension_protocol_options"] = {
                "envoy.filters.network.redis_proxy": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions",
                    "auth_password": {"inline_string": o.redis_upstream_password},
                }
            }
        cluster.update(o.cluster)

        chain: dict[str, Any] = {"filters": filters}
        chains = [chain]
        if o.bypass_sources:
            bypass: dict[str, Any] = {
                "filter_chain_match": {"source_prefix_ranges": [_cidr(c) for c in o.bypass_sources]},
                "filters": [f for f in filters if f["name"] != "envoy.filters.network.wasm"],
            }
            chains.insert(0, bypass)
        if o.downstream_tls is not None:
            for c in chains:
                c["transport_socket"] = o.downstream_tls.render()
        listener: dict[str, Any] = {
            "name": LISTENER,
            "address": {"socket_address": {"address": self.host, "port_value": self.port}},
            "filter_chains": chains,
        }
        listener.update(o.listener)
        return {
            "admin": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": self.admin_port}},
            },
            "static_resources": {"listeners": [listener], "clusters": [cluster]},
        }

    def write_config(self) -> Path:
        self.config_path.write_text(yamlout.dump(self.render()))
        return self.config_path

    def argv(self) -> list[str]:
        o = self.opts
        argv = [
            envoy_binary(),
            "-c", str(self.config_path),
            "--concurrency", str(o.concurrency),
            "--disable-hot-restart",
            "--drain-time-s", "0",
            "-l", o.log_level,
        ]  # fmt: skip
        if o.component_log_level:
            argv += ["--component-log-level", o.component_log_level]
        return argv + list(o.extra_args)

    def validate(self) -> tuple[bool, str]:
        """`envoy --mode validate` (also loads the wasm and runs on_configure)."""
        self.write_config()
        env = dict(os.environ)
        for k, v in self._env().items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        r = subprocess.run(
            [*self.argv(), "--mode", "validate"], capture_output=True, text=True, timeout=60, env=env
        )
        return r.returncode == 0, r.stdout + r.stderr

    # ------------------------------------------------------------ lifecycle
    def _env(self) -> dict[str, str | None]:
        # Keys listed in host_env_keys but not given a value are removed from
        # Envoy's environment, so "variable missing" tests mean what they say.
        env: dict[str, str | None] = {k: None for k in self.opts.host_env_keys}
        env.update(self.opts.host_env)
        return env

    def _spawn(self) -> Proc:
        self.write_config()
        if self.proc is None:
            self.proc = Proc(self.name, self.argv(), self.dir / "envoy.log", env=self._env())
        else:
            self.proc.argv = self.argv()
            self.proc.env = self._env()
        return self.proc.start()

    def _is_ready(self) -> bool:
        if not is_listening(self.admin_port):
            return False
        status, body = self.admin_get("/ready", timeout=1.0)
        return status == 200 and body.strip() == "LIVE" and is_listening(self.port)

    def _listener_failed(self) -> bool:
        if not is_listening(self.admin_port):
            return False
        try:
            return self.counter("listener_manager.listener_create_failure") > 0
        except (OSError, HarnessError):
            return False

    def try_start(self, timeout: float = 30.0) -> StartResult:
        """Start and wait until Envoy is serving (accepted) or has refused the
        config (exited, or reports a failed listener). A rejected Envoy is
        stopped; an accepted one keeps running."""
        for _attempt in range(3):
            proc = self._spawn()

            def outcome():
                if not proc.alive:
                    return "exited"
                try:
                    if self._is_ready():
                        return "ready"
                    if self._listener_failed():
                        return "listener_failed"
                except OSError:
                    pass
                return None

            what = wait_until(outcome, timeout, f"{self.name} to start or fail")
            log = proc.log_text_since_last_start()
            if what == "ready":
                return StartResult(True, None, log, "ready")
            if what == "exited" and "Address already in use" in log and proc.starts == 1 and not self._fixed_ports:
                # Lost a race for a port: new ports, try again.
                self.port, self.admin_port = free_port(), free_port()
                self.proc = None
                continue
            proc.stop()
            log = proc.log_text_since_last_start()
            return StartResult(False, proc.returncode if what == "exited" else None, log, what)
        raise HarnessError(f"{self.name}: could not get free ports after 3 attempts")

    def start(self, timeout: float = 30.0) -> "Envoy":
        """Start and wait until ready; raise with the log if Envoy fails."""
        r = self.try_start(timeout)
        if not r.accepted:
            raise HarnessError(
                f"{self.name} did not start ({r.reason}, exit status {r.returncode}); "
                f"config {self.config_path}\n--- log ---\n{_last_lines(r.log, 40)}"
            )
        return self

    def stop(self) -> int | None:
        return self.proc.stop() if self.proc else None

    def restart(self, timeout: float = 30.0, **changes) -> "Envoy":
        """Stop, apply option changes (e.g. plugin_config=...), start again
        on the same ports. Stats start from zero again."""
        self.stop()
        for k, v in changes.items():
            if not hasattr(self.opts, k):
                raise TypeError(f"unknown Envoy option {k!r}")
            setattr(self.opts, k, v)
        self._check_opts()
        r = self.try_start(timeout)
        if not r.accepted:
            raise HarnessError(f"{self.name} did not restart ({r.reason})\n{_last_lines(r.log, 40)}")
        return self

    def try_restart(self, timeout: float = 30.0, **changes) -> StartResult:
        """Like restart, but returns a StartResult instead of raising."""
        self.stop()
        for k, v in changes.items():
            if not hasattr(self.opts, k):
                raise TypeError(f"unknown Envoy option {k!r}")
            setattr(self.opts, k, v)
        self._check_opts()
        return self.try_start(timeout)

    @property
    def alive(self) -> bool:
        return bool(self.proc and self.proc.alive)

    @property
    def log_path(self) -> Path:
        return self.dir / "envoy.log"

    def log_text(self) -> str:
        return self.proc.log_text() if self.proc else ""

    def log_tail(self, lines: int = 60) -> str:
        return self.proc.log_tail(lines) if self.proc else ""

    def wait_log(self, pattern: str, timeout: float = 10.0) -> re.Match:
        """Wait until regex `pattern` matches a line logged since the last
        start; return the match."""
        rx = re.compile(pattern)
        box: list[re.Match] = []

        def found():
            text = self.proc.log_text_since_last_start() if self.proc else ""
            m = rx.search(text)
            if m:
                box.append(m)
            return m is not None

        wait_until(found, timeout, f"{self.name} log line matching {pattern!r}")
        return box[0]

    # ------------------------------------------------------------ admin
    def admin_get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        return self._admin("GET", path, timeout)

    def admin_post(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        return self._admin("POST", path, timeout)

    def _admin(self, method: str, path: str, timeout: float) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def stats(self, filter: str | None = None) -> dict[str, int]:
        """Counters and gauges from /stats as {name: value}; `filter` is a
        regex Envoy applies to names (e.g. r"^wasmcustom\\.")."""
        path = "/stats"
        if filter:
            from urllib.parse import quote

            path += "?filter=" + quote(filter)
        status, body = self.admin_get(path)
        if status != 200:
            raise HarnessError(f"GET {path} -> {status}: {body[:200]}")
        out: dict[str, int] = {}
        for line in body.splitlines():
            name, sep, value = line.rpartition(": ")
            if sep and re.fullmatch(r"-?\d+", value.strip()):
                out[name] = int(value)
        return out

    def wasm_stats(self) -> dict[str, int]:
        """The filter's own metrics (`define_metric` -> `wasmcustom.<name>`)."""
        return self.stats(filter=r"^wasmcustom\.")

    def counter(self, name: str, default: int = 0) -> int:
        """One counter or gauge by exact name (`default` if absent)."""
        return self.stats(filter="^" + re.escape(name) + "$").get(name, default)

    def wait_stat(
        self, name: str, predicate: Callable[[int], bool] | int, timeout: float = 10.0
    ) -> int:
        """Wait until stat `name` satisfies `predicate` (or equals an int)."""
        pred = (lambda v: v == predicate) if isinstance(predicate, int) else predicate
        box: list[int] = []

        def check():
            v = self.counter(name)
            box[:] = [v]
            return pred(v)

        try:
            wait_until(check, timeout, f"stat {name}", procs=[self.proc] if self.proc else [])
        except HarnessError as e:
            raise HarnessError(f"{e}\nlast value of {name}: {box[0] if box else None}") from None
        return box[0]

    def __repr__(self) -> str:
        return f"<Envoy {self.name} :{self.port} admin :{self.admin_port} -> {self.opts.upstream}>"


def _cidr(cidr: str) -> dict:
    address, _, length = cidr.partition("/")
    return {"address_prefix": address, "prefix_len": int(length or 32)}


def _last_lines(text: str, n: int) -> str:
    return "\n".join(text.splitlines()[-n:])


def wait_ready(admin_port: int, listener_port: int, timeout: float = 30.0, pid: int | None = None) -> None:
    """For scripts (./dev up): wait until an Envoy's admin says LIVE and its
    listener is bound, without opening a connection to the listener. With
    `pid`, fail as soon as that process is gone."""

    def ready():
        if pid is not None:
            try:
                os.kill(pid, 0)
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().split(") ", 1)[1].startswith("Z"):
                        raise HarnessError(f"Envoy (pid {pid}) exited")
            except ProcessLookupError:
                raise HarnessError(f"Envoy (pid {pid}) exited") from None
        if not is_listening(admin_port):
            return False
        conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=1)
        try:
            conn.request("GET", "/ready")
            r = conn.getresponse()
            return r.status == 200 and r.read().strip() == b"LIVE" and is_listening(listener_port)
        except OSError:
            return False
        finally:
            conn.close()

    wait_until(ready, timeout, f"Envoy admin :{admin_port} LIVE and listener :{listener_port} bound")
