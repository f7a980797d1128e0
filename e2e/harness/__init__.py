"""End-to-end test rig for envoy-redis-auth: real Envoy, real redis-server,
real clients. See e2e/README.md for the API and an example test."""

from . import resp
from .certs import WORKLOADS, Pki, Workload, make_pki
from .clients import CliResult, IoredisResult, ioredis_run, redis_cli, redis_py
from .envoy import DownstreamTls, Envoy, StartResult, UpstreamTls, wasm_filter
from .nullwasm import null_filter_wasm
from .paths import REPO_ROOT, RUN_ROOT, WASM_PATH, envoy_binary, wasm_problem
from .procs import (
    HarnessError,
    Proc,
    ProcessDied,
    StartupTimeout,
    free_port,
    is_listening,
    tail,
    wait_until,
)
from .raw import RawResult, chunk, differential, raw_exchange
from .redis_server import (
    ACL_PASSWORD,
    ACL_USER,
    DEFAULT_SERVER_PASSWORD,
    RedisServer,
    start_redis,
)
from .registry import Registry, RegistryClient, start_registry
from .relay import RecordingRelay, RelayConn
from .scope import Run, Scope

__all__ = [
    "ACL_PASSWORD", "ACL_USER", "DEFAULT_SERVER_PASSWORD", "CliResult", "DownstreamTls", "Envoy",
    "HarnessError", "IoredisResult", "Pki", "Proc", "ProcessDied", "REPO_ROOT",
    "RUN_ROOT", "RawResult", "RecordingRelay", "RedisServer", "Registry", "RegistryClient",
    "RelayConn", "Run",
    "Scope", "StartResult", "StartupTimeout", "UpstreamTls", "WASM_PATH", "chunk",
    "differential", "envoy_binary", "free_port", "ioredis_run", "is_listening",
    "WORKLOADS", "Workload", "make_pki", "null_filter_wasm", "raw_exchange", "redis_cli", "redis_py", "resp", "start_redis",
    "start_registry",
    "tail", "wait_until", "wasm_filter", "wasm_problem",
]  # fmt: skip
