#!/usr/bin/env python3
"""Package the filter's wasm as OCI images that Istio's WasmPlugin fetches
(`url: oci://...`), reproducibly and without a container daemon.

Two images are written into one OCI image layout (target/oci/envoy-redis-auth/):

  compat  (ref "compat", the one to use): an ordinary OCI image whose single
          layer is a tar+gzip holding `plugin.wasm`; the "compat" variant of
          the Wasm image spec, accepted by every Istio version with Wasm
          support and storable in any registry.
  spec    (ref "spec"): the Wasm artifact ("oci") variant: config and first
          layer are the runtime-config JSON
          (application/vnd.module.wasm.config.v1+json), second layer the raw
          wasm (application/vnd.module.wasm.content.layer.v1+wasm). Istio
          requires exactly these two layers for this variant.

Reproducible: the bytes depend on the wasm's bytes only (and zlib's deflate).
The tar and the gzip framing are written by hand, not by tarfile/gzip, whose
headers vary between Python releases: the tar entry has mtime 0, uid/gid 0,
no user/group names, mode 0644; the gzip stream has no timestamp, no file
name and a fixed OS byte. Every JSON document is written with sorted keys and
no whitespace, with `created` 1970-01-01T00:00:00Z.

Pushing uses `skopeo copy --preserve-digests oci:<layout>:<ref> docker://<dest>`
and fails if the registry reports a different digest than the one built.

Standard library only. See oci/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WASM = REPO_ROOT / "target" / "wasm32-wasip1" / "release" / "envoy_redis_auth.wasm"
DEFAULT_OUT = REPO_ROOT / "target" / "oci"
IMAGE_NAME = "envoy-redis-auth"
ROOT_ID = "envoy_redis_auth"

# Media types.
OCI_LAYOUT_VERSION = "1.0.0"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
WASM_CONTENT_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"

# Annotations.
REF_NAME = "org.opencontainers.image.ref.name"
TITLE = "org.opencontainers.image.title"
VARIANT = "module.wasm.image/variant"

PLUGIN_FILE = "plugin.wasm"  # the file name Istio's compat fetcher looks for
EPOCH = "1970-01-01T00:00:00Z"
VARIANTS = ("compat", "spec")


class OciError(Exception):
    pass


# ------------------------------------------------------------------ deterministic encodings


def canonical_json(obj) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one byte string per document."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _octal(value: int, width: int) -> bytes:
    """A ustar numeric field: zero-padded octal digits and a NUL."""
    digits = f"{value:o}".encode()
    if len(digits) > width - 1:
        raise OciError(f"{value} does not fit a {width}-byte tar field")
    return digits.rjust(width - 1, b"0") + b"\0"


def deterministic_tar(name: str, data: bytes) -> bytes:
    """A POSIX ustar archive holding one regular file, written by hand so that
    no byte depends on the host or the Python version (tarfile's headers
    changed between releases): mtime 0, uid/gid 0, empty user and group names,
    mode 0644, then the end-of-archive marker (two zero blocks)."""
    raw_name = name.encode()
    if len(raw_name) > 100:
        raise OciError(f"tar entry name too long: {name!r}")
    header = b"".join(
        [
            raw_name.ljust(100, b"\0"),  # name
            _octal(0o644, 8),  # mode
            _octal(0, 8),  # uid
            _octal(0, 8),  # gid
            _octal(len(data), 12),  # size
            _octal(0, 12),  # mtime
            b" " * 8,  # chksum, while summing
            b"0",  # typeflag: regular file
            b"\0" * 100,  # linkname
            b"ustar\0",  # magic
            b"00",  # version
            b"\0" * 32,  # uname
            b"\0" * 32,  # gname
            _octal(0, 8),  # devmajor
            _octal(0, 8),  # devminor
            b"\0" * 155,  # prefix
            b"\0" * 12,  # pad to 512
        ]
    )
    assert len(header) == 512
    chksum = f"{sum(header):06o}".encode() + b"\0 "
    header = header[:148] + chksum + header[156:]
    padding = b"\0" * (-len(data) % 512)
    return header + data + padding + b"\0" * 1024


def deterministic_gzip(data: bytes) -> bytes:
    """RFC 1952 gzip written by hand, so that no header field depends on the
    host or the Python version: MTIME 0, no FNAME, XFL 2 (level 9), OS 255
    (unknown). The deflate stream is zlib's at level 9, memLevel 8."""
    co = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY)
    body = co.compress(data) + co.flush()
    header = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x02\xff"
    trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return header + body + trailer


# ------------------------------------------------------------------ images


@dataclass
class Image:
    variant: str
    manifest: bytes
    blobs: dict[str, bytes]  # digest -> bytes, config and layers

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def _descriptor(media_type: str, data: bytes, annotations: dict | None = None) -> dict:
    d = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if annotations:
        d["annotations"] = annotations
    return d


def abi_versions(wasm: bytes) -> list[str]:
    """The proxy-wasm ABI versions the module exports (proxy_abi_version_X_Y_Z)."""
    return sorted({m.decode() for m in re.findall(rb"proxy_abi_version_\d+_\d+_\d+", wasm)})


def check_wasm(wasm: bytes, path: Path) -> None:
    if len(wasm) < 8 or wasm[:4] != b"\0asm":
        raise OciError(f"{path} is not a wasm module (no \\0asm header)")
    if not abi_versions(wasm):
        raise OciError(f"{path} exports no proxy_abi_version_*: not a proxy-wasm module (run ./dev build)")


def compat_image(wasm: bytes) -> Image:
    layer_tar = deterministic_tar(PLUGIN_FILE, wasm)
    layer = deterministic_gzip(layer_tar)
    config = canonical_json(
        {
            "architecture": "wasm",
            "os": "wasip1",
            "created": EPOCH,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer_tar)]},
            "history": [{"created": EPOCH, "created_by": "tools/oci-image.sh (plugin.wasm)"}],
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config),
            "layers": [_descriptor(OCI_LAYER_TAR_GZIP, layer)],
            "annotations": {VARIANT: "compat", TITLE: IMAGE_NAME},
        }
    )
    return Image("compat", manifest, {sha256_digest(config): config, sha256_digest(layer): layer})


def runtime_config(wasm: bytes) -> bytes:
    return canonical_json(
        {"type": "envoy_proxy", "abiVersions": abi_versions(wasm), "config": {"rootIds": [ROOT_ID]}}
    )


def spec_image(wasm: bytes) -> Image:
    rc = runtime_config(wasm)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(WASM_CONFIG, rc),
            "layers": [
                _descriptor(WASM_CONFIG, rc, {TITLE: "runtime-config.json"}),
                _descriptor(WASM_CONTENT_LAYER, wasm, {TITLE: PLUGIN_FILE}),
            ],
            "annotations": {TITLE: IMAGE_NAME},
        }
    )
    return Image("spec", manifest, {sha256_digest(rc): rc, sha256_digest(wasm): wasm})


def build_images(wasm: bytes) -> list[Image]:
    return [compat_image(wasm), spec_image(wasm)]


def write_layout(layout: Path, images: list[Image]) -> None:
    """Write an OCI image layout (oci-layout, index.json, blobs/sha256/...)
    holding `images`, each named by its variant (ref.name). The directory is
    replaced whole, so no stale blob survives."""
    layout = layout.resolve()
    layout.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{layout.name}.", dir=layout.parent))
    try:
        blobs_dir = tmp / "blobs" / "sha256"
        blobs_dir.mkdir(parents=True)
        blobs: dict[str, bytes] = {}
        for img in images:
            blobs.update(img.blobs)
            blobs[img.digest] = img.manifest
        for digest, data in sorted(blobs.items()):
            (blobs_dir / digest.split(":", 1)[1]).write_bytes(data)
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [_descriptor(OCI_MANIFEST, img.manifest, {REF_NAME: img.variant}) for img in images],
        }
        (tmp / "index.json").write_bytes(canonical_json(index))
        (tmp / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
        for p in [tmp, *tmp.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        if layout.exists():
            shutil.rmtree(layout)
        tmp.rename(layout)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ push


def parse_destination(ref: str) -> tuple[str, str]:
    """`[docker://|oci://]HOST[:PORT]/REPO:TAG` -> (registry host, normalized
    reference without a scheme). A tag is required (no silent `latest`)."""
    for prefix in ("docker://", "oci://"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
    if "/" not in ref:
        raise OciError(f"push destination {ref!r}: expected HOST[:PORT]/REPOSITORY:TAG")
    host, rest = ref.split("/", 1)
    if "@" in rest:
        raise OciError(f"push destination {ref!r}: push to a tag, not a digest")
    if ":" not in rest.rsplit("/", 1)[-1]:
        raise OciError(f"push destination {ref!r}: give a tag (HOST/REPOSITORY:TAG)")
    return host, ref


def is_loopback(host: str) -> bool:
    h = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    return h == "localhost" or h == "::1" or re.fullmatch(r"127\.\d+\.\d+\.\d+", h) is not None


def skopeo() -> str:
    found = shutil.which("skopeo")
    if not found:
        raise OciError("skopeo not found: run tools/oci-image.sh --install-deps (or ./dev setup)")
    return found


def push(layout: Path, image: Image, dest: str, *, insecure: bool = False, authfile: str | None = None) -> str:
    """Copy `image` from the layout to `dest` with skopeo; return the digest the
    registry now serves (checked to be the built one)."""
    host, ref = parse_destination(dest)
    tls_verify = not (insecure or is_loopback(host))
    with tempfile.TemporaryDirectory(prefix="oci-push-") as td:
        digestfile = Path(td) / "digest"
        argv = [
            skopeo(),
            # The policy governs trust in the *source*: here the image we just built.
            "--insecure-policy",
            "copy",
            "--quiet",
            "--preserve-digests",
            f"--dest-tls-verify={'true' if tls_verify else 'false'}",
            "--digestfile",
            str(digestfile),
        ]
        if authfile:
            argv += ["--dest-authfile", authfile]
        argv += [f"oci:{layout}:{image.variant}", f"docker://{ref}"]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise OciError(f"skopeo copy to {ref} failed ({r.returncode}):\n{r.stderr.strip() or r.stdout.strip()}")
        pushed = digestfile.read_text().strip()
    if pushed != image.digest:
        raise OciError(f"the registry stored {ref} as {pushed}, not the built {image.digest}")
    return pushed


# ------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="tools/oci-image.sh",
        description="Build the filter's OCI images (compat and spec variants) into an OCI "
        "layout, reproducibly, and optionally push them with skopeo.",
        epilog="tools/oci-image.sh --install-deps installs skopeo and docker-registry (apt). See oci/README.md.",
    )
    ap.add_argument("--wasm", type=Path, default=DEFAULT_WASM, help="the module (default: the release build)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: target/oci)")
    ap.add_argument("--push", metavar="HOST/REPO:TAG", help="push the compat image (the one for WasmPlugin url: oci://...)")
    ap.add_argument("--push-spec", metavar="HOST/REPO:TAG", help="push the spec (Wasm artifact) variant")
    ap.add_argument("--insecure", action="store_true",
                    help="plain HTTP / no TLS verification for a non-loopback registry (loopback needs no flag)")
    ap.add_argument("--authfile", help="registry credentials file (default: skopeo's, see `skopeo login`)")
    ap.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    args = ap.parse_args(argv)

    try:
        for dest in (args.push, args.push_spec):
            if dest:
                parse_destination(dest)  # refuse a bad destination before building
        if not args.wasm.is_file():
            raise OciError(f"{args.wasm} does not exist: run ./dev build")
        wasm = args.wasm.read_bytes()
        check_wasm(wasm, args.wasm)
        images = build_images(wasm)
        layout = (args.out / IMAGE_NAME).resolve()
        write_layout(layout, images)
        by_variant = {img.variant: img for img in images}
        summary: dict = {
            "wasm": str(args.wasm),
            "wasm_sha256": hashlib.sha256(wasm).hexdigest(),
            "layout": str(layout),
            "images": {
                v: {"digest": img.digest, "source": f"oci:{layout}:{v}"} for v, img in by_variant.items()
            },
            "pushed": {},
        }
        for variant, dest in (("compat", args.push), ("spec", args.push_spec)):
            if dest:
                digest = push(layout, by_variant[variant], dest, insecure=args.insecure, authfile=args.authfile)
                _, ref = parse_destination(dest)
                summary["pushed"][variant] = {"ref": ref, "digest": digest}
    except OciError as e:
        print(f"oci-image: {e}", file=sys.stderr)
        return 1

    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    print(f"wasm:   {summary['wasm']} (sha256 {summary['wasm_sha256']})")
    print(f"layout: {layout}")
    for v, info in summary["images"].items():
        print(f"  {v:<6} {info['digest']}  ({info['source']})")
    for v, info in summary["pushed"].items():
        print(f"pushed {v}: {info['ref']} ({info['digest']})")
        if v == "compat":
            repo = info["ref"].rsplit(":", 1)[0]
            print(f"  WasmPlugin url: oci://{info['ref']}   (pinned: oci://{repo}@{info['digest']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
