"""The filter's OCI image (tools/oci-image.sh, oci/README.md): built
reproducibly without a container daemon, pushed to a real registry
(Debian's docker-registry on loopback) with skopeo, pulled back with skopeo
and over the registry HTTP API, and checked the way Istio's image fetcher
(istio-agent, pkg/wasm/imagefetcher.go) reads it.

The Istio-like reader below is written from Istio's fetcher, not from our
builder: it shares no code with tools/oci_image.py.
"""

from __future__ import annotations

import filecmp
import gzip
import hashlib
import io
import json
import os
import posixpath
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness import HarnessError, REPO_ROOT

TOOL = REPO_ROOT / "tools" / "oci-image.sh"
REPO = "envoy-redis-auth"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ Istio's fetcher, in Python


class FetchError(Exception):
    pass


def _plugin_from_tar_gz(blob: bytes) -> bytes:
    """extractWasmPluginBinary: gunzip, walk the tar, return the first entry
    whose base name is plugin.wasm."""
    try:
        raw = gzip.decompress(blob)
    except (OSError, EOFError) as e:
        raise FetchError(f"failed to parse layer as tar.gz: {e}") from e
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for member in tar:
            if posixpath.basename(member.name) == "plugin.wasm":
                f = tar.extractfile(member)
                if f is None:
                    raise FetchError("plugin.wasm is not a regular file")
                return f.read()
    raise FetchError("plugin.wasm not found in the archive")


def istio_fetch(manifest_raw: bytes, get_blob) -> tuple[str, bytes]:
    """What istio-agent does with a pulled manifest: returns (variant, wasm).
    get_blob(descriptor) -> bytes; every blob is checked against its digest
    and size, as go-containerregistry does while reading."""
    m = json.loads(manifest_raw)

    def blob(desc: dict) -> bytes:
        data = get_blob(desc)
        if sha(data) != desc["digest"] or len(data) != desc["size"]:
            raise FetchError(f"blob {desc['digest']} does not match its descriptor")
        return data

    layers = m.get("layers") or []
    if m.get("mediaType") == DOCKER_MANIFEST:
        if not layers:
            raise FetchError("number of layers must be greater than zero")
        if layers[-1]["mediaType"] != DOCKER_LAYER:
            raise FetchError(f"invalid media type {layers[-1]['mediaType']} (expect {DOCKER_LAYER})")
        return "docker", _plugin_from_tar_gz(blob(layers[-1]))
    errors = []
    # compat: the last layer is an OCI tar+gzip holding plugin.wasm
    try:
        if not layers:
            raise FetchError("number of layers must be greater than zero")
        if layers[-1]["mediaType"] != OCI_LAYER:
            raise FetchError(f"invalid media type {layers[-1]['mediaType']} (expect {OCI_LAYER})")
        return "compat", _plugin_from_tar_gz(blob(layers[-1]))
    except FetchError as e:
        errors.append(f"could not parse as compat variant: {e}")
    # oci (spec) variant: exactly two layers, one of them the raw wasm
    try:
        if len(layers) != 2:
            raise FetchError(f"number of layers must be 2 but got {len(layers)}")
        wasm_layers = [l for l in layers if l["mediaType"] == WASM_LAYER]
        if not wasm_layers:
            raise FetchError(f"could not find the layer of type {WASM_LAYER}")
        return "spec", blob(wasm_layers[0])
    except FetchError as e:
        errors.append(f"could not parse as oci variant: {e}")
    raise FetchError("the given image is in invalid format as an OCI image: " + "; ".join(errors))


def istio_accepts(manifest_raw: bytes, get_blob) -> tuple[str, bytes]:
    """istio_fetch plus the final check of istio-agent's cache (Wasm magic)."""
    variant, wasm = istio_fetch(manifest_raw, get_blob)
    if len(wasm) < 8 or wasm[:4] != b"\0asm":
        raise FetchError("fetched Wasm binary is invalid")
    return variant, wasm


# ------------------------------------------------------------------ strict checks of our images


def check_compat(manifest_raw: bytes, get_blob, wasm: bytes) -> None:
    """The compat image, stricter than Istio: one layer, one tar entry."""
    m = json.loads(manifest_raw)
    assert m["schemaVersion"] == 2
    assert m["mediaType"] == OCI_MANIFEST
    assert m["config"]["mediaType"] == OCI_CONFIG
    assert m["annotations"]["module.wasm.image/variant"] == "compat"
    assert len(m["layers"]) == 1, m["layers"]
    layer_desc = m["layers"][0]
    assert layer_desc["mediaType"] == OCI_LAYER
    blobs = {}
    for desc in [m["config"], layer_desc]:
        data = get_blob(desc)
        assert sha(data) == desc["digest"], desc
        assert len(data) == desc["size"], desc
        blobs[desc["digest"]] = data
    layer = blobs[layer_desc["digest"]]
    # gzip: no timestamp, no file name (FLG 0), so the bytes depend on the content only
    assert layer[:3] == b"\x1f\x8b\x08"
    assert layer[3] == 0, "gzip FLG must be 0 (no FNAME/FCOMMENT/FEXTRA)"
    assert layer[4:8] == b"\0\0\0\0", "gzip MTIME must be 0"
    raw = gzip.decompress(layer)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        members = tar.getmembers()
        assert [x.name for x in members] == ["plugin.wasm"]
        (e,) = members
        assert e.isreg() and e.size == len(wasm)
        assert (e.mtime, e.uid, e.gid, e.uname, e.gname, e.mode) == (0, 0, 0, "", "", 0o644)
        assert tar.extractfile(e).read() == wasm
    config = json.loads(blobs[m["config"]["digest"]])
    assert config["rootfs"] == {"type": "layers", "diff_ids": [sha(raw)]}
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert (config["os"], config["architecture"]) == ("wasip1", "wasm")
    assert istio_accepts(manifest_raw, get_blob) == ("compat", wasm)


def check_spec(manifest_raw: bytes, get_blob, wasm: bytes) -> None:
    """The spec (Wasm artifact) image: wasm config media type, the runtime
    config and the raw wasm as the two layers Istio requires."""
    m = json.loads(manifest_raw)
    assert m["schemaVersion"] == 2
    assert m["mediaType"] == OCI_MANIFEST
    assert m["config"]["mediaType"] == WASM_CONFIG
    assert [l["mediaType"] for l in m["layers"]] == [WASM_CONFIG, WASM_LAYER]
    for desc in [m["config"], *m["layers"]]:
        data = get_blob(desc)
        assert sha(data) == desc["digest"] and len(data) == desc["size"], desc
    assert get_blob(m["layers"][1]) == wasm
    rc = json.loads(get_blob(m["config"]))
    assert rc["type"] == "envoy_proxy"
    assert "proxy_abi_version_0_2_1" in rc["abiVersions"]
    assert istio_accepts(manifest_raw, get_blob) == ("spec", wasm)


# ------------------------------------------------------------------ helpers


def run_tool(*args, env=None, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(TOOL), *map(str, args)], capture_output=True, text=True, env=env, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{TOOL.name} {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}{r.stdout}")
    return r


def build(wasm: Path, out: Path, *extra, env=None) -> dict:
    return json.loads(run_tool("--json", "--wasm", wasm, "--out", out, *extra, env=env).stdout)


def skopeo(*args) -> str:
    exe = shutil.which("skopeo")
    if exe is None:
        raise HarnessError("skopeo not found: run ./dev setup (tools/oci-image.sh --install-deps)")
    r = subprocess.run([exe, "--insecure-policy", *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r.stdout


class Layout:
    """Read an OCI image layout directory (independently of the builder)."""

    def __init__(self, path: Path):
        self.path = path
        self.index = json.loads((path / "index.json").read_text())

    def blob(self, digest: str) -> bytes:
        algo, hexd = digest.split(":", 1)
        return (self.path / "blobs" / algo / hexd).read_bytes()

    def manifest(self, ref: str) -> bytes:
        (d,) = [m for m in self.index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref]
        raw = self.blob(d["digest"])
        assert sha(raw) == d["digest"] and len(raw) == d["size"]
        return raw

    def get_blob(self, desc: dict) -> bytes:
        return self.blob(desc["digest"])


def with_custom_section(wasm: bytes, payload: bytes) -> bytes:
    """The same module plus a custom section (still a valid module)."""
    name = b"oci-test"
    content = bytes([len(name)]) + name + payload
    assert len(content) < 128  # one-byte LEB128 size
    return wasm + bytes([0, len(content)]) + content


# ------------------------------------------------------------------ tests


def test_image_digest_is_reproducible(wasm_path: Path, scope):
    """Same wasm bytes -> same image digests and byte-identical layouts, whatever
    the input file's path, mtime, mode, the time zone or the umask; other
    wasm bytes -> other digests."""
    a = build(wasm_path, scope.dir / "a")

    copy = scope.dir / "elsewhere" / "renamed.wasm"
    copy.parent.mkdir()
    copy.write_bytes(wasm_path.read_bytes())
    os.utime(copy, (1_234_567_890, 1_234_567_890))
    copy.chmod(0o600)
    env = dict(os.environ, TZ="Asia/Kolkata", SOURCE_DATE_EPOCH="1700000000")
    old_umask = os.umask(0o077)
    try:
        b = build(copy, scope.dir / "b", env=env)
    finally:
        os.umask(old_umask)

    assert a["images"]["compat"]["digest"] == b["images"]["compat"]["digest"]
    assert a["images"]["spec"]["digest"] == b["images"]["spec"]["digest"]
    la, lb = Path(a["layout"]), Path(b["layout"])
    files_a = sorted(p.relative_to(la) for p in la.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(lb) for p in lb.rglob("*") if p.is_file())
    assert files_a == files_b
    match, mismatch, errors = filecmp.cmpfiles(la, lb, files_a, shallow=False)
    assert (mismatch, errors) == ([], [])

    # Rebuilding in place gives the same layout again (and leaves no stale blob).
    again = build(wasm_path, scope.dir / "a")
    assert again["images"] == a["images"]
    assert sorted(p.relative_to(la) for p in la.rglob("*") if p.is_file()) == files_a

    other = scope.dir / "other.wasm"
    other.write_bytes(with_custom_section(wasm_path.read_bytes(), b"1"))
    c = build(other, scope.dir / "c")
    assert c["images"]["compat"]["digest"] != a["images"]["compat"]["digest"]
    assert c["images"]["spec"]["digest"] != a["images"]["spec"]["digest"]


def test_layout_holds_both_variants_as_istio_reads_them(wasm_path: Path, scope):
    info = build(wasm_path, scope.dir / "oci")
    wasm = wasm_path.read_bytes()
    layout = Layout(Path(info["layout"]))
    assert json.loads((layout.path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    refs = sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in layout.index["manifests"])
    assert refs == ["compat", "spec"]
    compat = layout.manifest("compat")
    assert sha(compat) == info["images"]["compat"]["digest"]
    check_compat(compat, layout.get_blob, wasm)
    spec = layout.manifest("spec")
    assert sha(spec) == info["images"]["spec"]["digest"]
    check_spec(spec, layout.get_blob, wasm)

    # A second, independent reader of the layer: GNU tar and gzip.
    (layer_desc,) = json.loads(compat)["layers"]
    layer = layout.path / "blobs" / "sha256" / layer_desc["digest"].split(":", 1)[1]
    listing = subprocess.run(["tar", "--numeric-owner", "--full-time", "-tvzf", str(layer)],
                             capture_output=True, text=True, check=True)
    assert listing.stdout.split() == ["-rw-r--r--", "0/0", str(len(wasm)), "1970-01-01", "00:00:00", "plugin.wasm"]
    assert listing.stderr == ""
    extracted = subprocess.run(["tar", "-xzOf", str(layer), "plugin.wasm"], capture_output=True, check=True)
    assert extracted.stdout == wasm


def test_push_and_pull_back_through_a_real_registry(wasm_path: Path, scope, registry_factory):
    reg = registry_factory()
    wasm = wasm_path.read_bytes()
    info = build(wasm_path, scope.dir / "oci",
                 "--push", reg.ref(REPO, "t1"), "--push-spec", reg.ref(REPO, "t1-spec"))
    built = {v: i["digest"] for v, i in info["images"].items()}
    assert {v: p["digest"] for v, p in info["pushed"].items()} == built

    # -- the registry HTTP API, as a pull client speaks it
    api = reg.client()
    assert api.get("/v2/").status == 200
    assert api.tags(REPO) == ["t1", "t1-spec"]
    for tag, variant, check in (("t1", "compat", check_compat), ("t1-spec", "spec", check_spec)):
        m = api.manifest(REPO, tag)
        assert m.content_type == OCI_MANIFEST
        assert m.digest == m.digest_header == built[variant]
        by_digest = api.manifest(REPO, built[variant])
        assert by_digest.raw == m.raw
        check(m.raw, lambda d: api.blob(REPO, d["digest"]), wasm)

    # -- skopeo: to a dir: copy and to an OCI layout
    src = f"docker://{reg.ref(REPO, 't1')}"
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", src))
    assert inspected["Digest"] == built["compat"]
    assert (inspected["Os"], inspected["Architecture"]) == ("wasip1", "wasm")

    pulled = scope.dir / "pulled-dir"
    skopeo("copy", "--quiet", "--src-tls-verify=false", "--preserve-digests", src, f"dir:{pulled}")
    raw = (pulled / "manifest.json").read_bytes()
    assert sha(raw) == built["compat"]
    check_compat(raw, lambda d: (pulled / d["digest"].split(":", 1)[1]).read_bytes(), wasm)

    pulled_oci = scope.dir / "pulled-oci"
    for tag, variant in (("t1", "compat"), ("t1-spec", "spec")):
        skopeo("copy", "--quiet", "--src-tls-verify=false", "--preserve-digests",
               f"docker://{reg.ref(REPO, tag)}", f"oci:{pulled_oci}:{variant}")
    layout = Layout(pulled_oci)
    check_compat(layout.manifest("compat"), layout.get_blob, wasm)
    check_spec(layout.manifest("spec"), layout.get_blob, wasm)
    assert {v: sha(layout.manifest(v)) for v in ("compat", "spec")} == built


def test_istio_reader_rejects_what_istio_rejects(wasm_path: Path, scope):
    """The checks above can fail: images Istio's fetcher refuses are refused."""
    info = build(wasm_path, scope.dir / "oci")
    layout = Layout(Path(info["layout"]))
    compat = json.loads(layout.manifest("compat"))
    spec = json.loads(layout.manifest("spec"))

    def mutated(doc, **changes) -> bytes:
        d = json.loads(json.dumps(doc))
        for path, value in changes.items():
            obj = d
            keys = path.split("__")
            for k in keys[:-1]:
                obj = obj[int(k)] if k.isdigit() else obj[k]
            obj[keys[-1]] = value
        return json.dumps(d).encode()

    # An uncompressed tar layer: neither variant (Istio's own test case).
    with pytest.raises(FetchError, match=r"invalid media type application/vnd.oci.image.layer.v1.tar \(expect"):
        istio_accepts(mutated(compat, layers__0__mediaType="application/vnd.oci.image.layer.v1.tar"), layout.get_blob)
    # A Docker manifest needs the Docker layer media type.
    with pytest.raises(FetchError, match="expect application/vnd.docker.image.rootfs.diff.tar.gzip"):
        istio_accepts(mutated(compat, mediaType=DOCKER_MANIFEST), layout.get_blob)
    # The spec variant with only the wasm layer: Istio wants exactly two layers.
    one_layer = json.loads(json.dumps(spec))
    one_layer["layers"] = one_layer["layers"][1:]
    with pytest.raises(FetchError, match="number of layers must be 2 but got 1"):
        istio_accepts(json.dumps(one_layer).encode(), layout.get_blob)
    # A layer whose bytes do not match its digest.
    with pytest.raises(FetchError, match="does not match its descriptor"):
        istio_accepts(layout.manifest("compat"), lambda d: layout.get_blob(d) + b"\0")
    # A tar.gz without plugin.wasm.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        ti = tarfile.TarInfo("filter.wasm")
        ti.size = 8
        tar.addfile(ti, io.BytesIO(b"\0asm\x01\0\0\0"))
    other = buf.getvalue()
    wrong = mutated(compat, layers__0__digest=sha(other), layers__0__size=len(other))
    with pytest.raises(FetchError, match="plugin.wasm not found in the archive"):
        istio_accepts(wrong, lambda d: other if d["digest"] == sha(other) else layout.get_blob(d))


def test_tool_refuses_bad_input(wasm_path: Path, scope, registry_factory):
    stub = scope.dir / "stub.wasm"
    stub.write_bytes(b"\0asm\x01\0\0\0")
    r = run_tool("--wasm", stub, "--out", scope.dir / "oci", check=False)
    assert r.returncode == 1 and "not a proxy-wasm module" in r.stderr
    r = run_tool("--wasm", scope.dir / "missing.wasm", "--out", scope.dir / "oci", check=False)
    assert r.returncode == 1 and "does not exist" in r.stderr
    reg = registry_factory()
    r = run_tool("--wasm", wasm_path, "--out", scope.dir / "oci", "--push", f"{reg.addr}/{REPO}", check=False)
    assert r.returncode == 1 and "give a tag" in r.stderr
    assert reg.client().get(f"/v2/{REPO}/tags/list").status == 404  # nothing was pushed
