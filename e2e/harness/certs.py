"""A throw-away PKI made with the openssl CLI: a CA, a server certificate for
redis (SANs `redis.test`, `localhost`, 127.0.0.1), a client certificate, and a
client certificate from a second, untrusted CA. EC P-256 keys: fast to make.

Workload certificates (`Pki.workload(name)`), issued by the same CA the way
Istio's CA issues them to sidecars: a SPIFFE URI SAN and nothing else
(`WORKLOADS`: cart, admin, other, and near misses of the identities the
tests map), plus `nosan`, a client certificate with no subjectAltName at all.
They are made the first time they are asked for (`Pki.workload`), so a PKI
that never serves a workload costs nothing more."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

from .paths import tool

SERVER_NAME = "redis.test"
CLIENT_NAME = "client.test"

# name -> the URI SAN of that workload's certificate (None: no SAN at all).
WORKLOADS: dict[str, str | None] = {
    "cart": "spiffe://cluster.local/ns/shop/sa/cart",
    "admin": "spiffe://cluster.local/ns/ops/sa/admin",
    "other": "spiffe://cluster.local/ns/shop/sa/other",
    # Near misses: of the exact `.../sa/cart`, and of the prefix `.../ns/ops/`.
    "cart2": "spiffe://cluster.local/ns/shop/sa/cart2",
    "opsns": "spiffe://cluster.local/ns/ops",
    "nosan": None,
}


@dataclass(frozen=True)
class Workload:
    """A client certificate issued by the PKI's CA to one workload."""

    name: str
    uri: str | None  # its URI SAN (None: the certificate has no SAN)
    cert: Path
    key: Path
    ca_cert: Path  # the CA that issued it (and the server's)


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca_cert: Path  # a CA nobody trusts
    rogue_client_cert: Path  # signed by rogue_ca_cert
    rogue_client_key: Path
    server_name: str = SERVER_NAME
    client_name: str = CLIENT_NAME

    def workload(self, name: str, uri: str | None = ..., serial: int | None = None) -> Workload:
        """The client certificate of workload `name` (see WORKLOADS; another
        name needs `uri`, None for no SAN), issued by the CA on first use
        (EKU clientAuth, CN `<name>.workload.test`)."""
        if uri is ...:
            if name not in WORKLOADS:
                raise KeyError(f"unknown workload {name!r}: pass uri=")
            uri = WORKLOADS[name]
        base = f"workload-{name}"
        cert, key = self.dir / f"{base}.crt", self.dir / f"{base}.key"
        with _ISSUE_LOCK:
            if not cert.exists():
                if serial is None:
                    serial = 2000 + len(list(self.dir.glob("workload-*.crt")))
                _make_leaf(self.dir, base, "ca", f"{name}.workload.test",
                           f"URI:{uri}" if uri else None, "clientAuth", serial)  # fmt: skip
                key.chmod(0o600)
        return Workload(name=name, uri=uri, cert=cert, key=key, ca_cert=self.ca_cert)


_ISSUE_LOCK = Lock()


def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(
        [tool("openssl"), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{r.stderr}")


_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _make_ca(d: Path, name: str, cn: str) -> None:
    _openssl(
        "req", "-x509", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.crt",
        "-days", "30", "-subj", f"/CN={cn}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip


def _make_leaf(d: Path, name: str, ca: str, cn: str, san: str | None, eku: str, serial: int) -> None:
    _openssl("req", "-new", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={cn}", cwd=d)  # fmt: skip
    ext = d / f"{name}.ext"
    ext.write_text(
        f"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        f"extendedKeyUsage={eku}\n" + (f"subjectAltName={san}\n" if san else "")
    )
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-set_serial", str(serial), "-days", "30", "-extfile", ext.name, "-out", f"{name}.crt",
        cwd=d,
    )  # fmt: skip
    (d / f"{name}.csr").unlink()


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    _make_ca(d, "ca", "envoy-redis-auth e2e CA")
    _make_ca(d, "rogue-ca", "untrusted e2e CA")
    _make_leaf(d, "server", "ca", SERVER_NAME,
               f"DNS:{SERVER_NAME},DNS:localhost,IP:127.0.0.1", "serverAuth", 1001)  # fmt: skip
    _make_leaf(d, "client", "ca", CLIENT_NAME, f"DNS:{CLIENT_NAME}", "clientAuth", 1002)
    _make_leaf(d, "rogue-client", "rogue-ca", CLIENT_NAME, f"DNS:{CLIENT_NAME}", "clientAuth", 1003)
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return Pki(
        dir=d,
        ca_cert=d / "ca.crt",
        ca_key=d / "ca.key",
        server_cert=d / "server.crt",
        server_key=d / "server.key",
        client_cert=d / "client.crt",
        client_key=d / "client.key",
        rogue_ca_cert=d / "rogue-ca.crt",
        rogue_client_cert=d / "rogue-client.crt",
        rogue_client_key=d / "rogue-client.key",
    )
