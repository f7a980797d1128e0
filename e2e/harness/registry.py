"""A real container registry on loopback: Debian's `docker-registry`
(distribution 2.8) on a free port, with its storage in a directory of the
scope, plus a small client for the registry HTTP API (standard library only).

    reg = start_registry(scope.dir)          # ready: GET /v2/ answers 200
    reg.ref("envoy-redis-auth", "t1")        # "127.0.0.1:PORT/envoy-redis-auth:t1"
    m = reg.client().manifest("envoy-redis-auth", "t1")
    reg.stop()

Plain HTTP on 127.0.0.1 only; no auth. The registry's log (one JSON-ish line
per request at level info) is `reg.log_path`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .procs import HarnessError, Proc, free_port, is_listening, wait_until

REGISTRY_BIN = os.environ.get("E2E_REGISTRY_BIN", "/usr/bin/docker-registry")

# What a pull client such as Istio's (go-containerregistry) accepts.
MANIFEST_ACCEPT = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Manifest:
    """A manifest as served: raw bytes, Content-Type, Docker-Content-Digest."""

    raw: bytes
    content_type: str
    digest_header: str
    doc: dict = field(init=False)

    def __post_init__(self):
        self.doc = json.loads(self.raw)

    @property
    def digest(self) -> str:
        """The digest of the bytes as served (what a client must verify)."""
        return "sha256:" + hashlib.sha256(self.raw).hexdigest()


class RegistryClient:
    """The parts of the distribution API a pull needs, over plain HTTP."""

    def __init__(self, host: str, port: int, timeout: float = 10):
        self.host, self.port, self.timeout = host, port, timeout

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            body = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, body)
        finally:
            conn.close()

    def get(self, path: str, headers: dict[str, str] | None = None, *, redirects: int = 3) -> Response:
        r = self.request("GET", path, headers)
        while r.status in (301, 302, 307, 308) and redirects > 0:
            loc = r.headers.get("location", "")
            if loc.startswith(f"http://{self.host}:{self.port}/"):
                loc = loc[len(f"http://{self.host}:{self.port}") :]
            if not loc.startswith("/"):
                raise HarnessError(f"registry redirected {path} off the registry: {loc!r}")
            r = self.request("GET", loc, headers)
            redirects -= 1
        return r

    def ping(self) -> bool:
        try:
            return self.get("/v2/").status == 200
        except OSError:
            return False

    def manifest(self, name: str, reference: str, accept=MANIFEST_ACCEPT) -> Manifest:
        r = self.get(f"/v2/{name}/manifests/{reference}", {"Accept": ", ".join(accept)})
        if r.status != 200:
            raise HarnessError(f"GET manifest {name}:{reference}: HTTP {r.status} {r.body[:300]!r}")
        return Manifest(r.body, r.headers.get("content-type", ""), r.headers.get("docker-content-digest", ""))

    def blob(self, name: str, digest: str) -> bytes:
        r = self.get(f"/v2/{name}/blobs/{digest}")
        if r.status != 200:
            raise HarnessError(f"GET blob {name}@{digest}: HTTP {r.status} {r.body[:300]!r}")
        return r.body

    def tags(self, name: str) -> list[str]:
        r = self.get(f"/v2/{name}/tags/list")
        if r.status != 200:
            raise HarnessError(f"GET tags of {name}: HTTP {r.status} {r.body[:300]!r}")
        return sorted(r.json().get("tags") or [])


class Registry:
    """A `docker-registry serve` process on 127.0.0.1:<free port>."""

    def __init__(self, base_dir: Path, name: str = "registry"):
        self.name = name
        self.dir = Path(base_dir) / name
        self.storage = self.dir / "storage"
        self.config_path = self.dir / "config.yml"
        self.log_path = self.dir / f"{name}.log"
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc = Proc(name, [REGISTRY_BIN, "serve", str(self.config_path)], self.log_path)

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def ref(self, repository: str, tag_or_digest: str) -> str:
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.addr}/{repository}{sep}{tag_or_digest}"

    def client(self) -> RegistryClient:
        return RegistryClient(self.host, self.port)

    def _write_config(self) -> None:
        self.storage.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: no quoting questions for the paths.
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.addr, "secret": "e2e-not-a-secret"},
        }
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def start(self, timeout: float = 15) -> "Registry":
        if not (os.path.isfile(REGISTRY_BIN) and os.access(REGISTRY_BIN, os.X_OK)):
            raise HarnessError(f"{REGISTRY_BIN} not found: run ./dev setup (tools/oci-image.sh --install-deps)")
        self._write_config()
        self.proc.start()
        client = self.client()
        wait_until(lambda: is_listening(self.port) and client.ping(), timeout,
                   f"{self.name} on {self.addr} to answer GET /v2/", procs=[self.proc])
        return self

    def stop(self) -> None:
        self.proc.stop()

    @property
    def alive(self) -> bool:
        return self.proc.alive

    def log_text(self) -> str:
        return self.proc.log_text()

    def __repr__(self) -> str:
        return f"<Registry {self.addr} {self.proc!r}>"


def start_registry(base_dir: Path, name: str = "registry") -> Registry:
    """Start a loopback registry with storage under base_dir/name/; ready on return."""
    return Registry(base_dir, name).start()
