"""pytest fixtures for the end-to-end tests (see e2e/README.md).

Function-scoped (stopped after each test):
  scope            harness.Scope for this test (logs in .e2e-run/<session>/<test>/)
  redis_factory    redis_factory(kind="plain"|"password"|"acl"|"tls"|"mtls", **kw) -> RedisServer
  envoy_factory    envoy_factory(upstream, plugin_config=None, **kw) -> Envoy (started, ready)
  envoy_try_start  envoy_try_start(upstream, **kw) -> (Envoy, StartResult)
  envoy_rejects    envoy_rejects(upstream, **kw) -> log text (asserts Envoy refused the config)
  relay_factory    relay_factory(upstream) -> RecordingRelay
  registry_factory registry_factory(name="registry") -> Registry (docker-registry on loopback)
  redis_plain, redis_password, redis_acl, redis_tls, redis_mtls   one server each
Session-scoped (shared, for start-up cost or long-lived fixtures):
  e2e_run, pki, wasm_path, session_scope, session_redis_factory, session_envoy_factory,
  null_wasm, null_wasm_rejecting (hand-made pass-through proxy-wasm modules)

On a failing test, the tails of the logs of every process the test started
(and of session processes) are attached to the report, and their paths are
listed in .e2e-run/<session>/failed-logs.txt.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import harness
from harness import Run, Scope
from harness.paths import WASM_PATH, envoy_binary, wasm_problem
from harness.registry import Registry, start_registry

_SCOPE_KEY = pytest.StashKey[Scope]()
_REGISTRIES_KEY = pytest.StashKey[list[Registry]]()
_session: dict[str, object] = {}


def pytest_report_header(config):
    lines = []
    try:
        out = subprocess.run([envoy_binary(), "--version"], capture_output=True, text=True, timeout=10)
        lines.append("envoy: " + out.stdout.strip().split("version:")[-1].strip())
    except (OSError, subprocess.SubprocessError) as e:
        lines.append(f"envoy: unavailable ({e})")
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=10)
        lines.append("redis-server: " + out.stdout.strip())
    except (OSError, subprocess.SubprocessError) as e:
        lines.append(f"redis-server: unavailable ({e})")
    problem = wasm_problem()
    lines.append(f"wasm: {WASM_PATH} ({'OK' if problem is None else problem})")
    return lines


# ------------------------------------------------------------------ session


@pytest.fixture(scope="session")
def e2e_run() -> Run:
    run = Run.create()
    _session["run"] = run
    return run


@pytest.fixture(scope="session")
def pki(e2e_run: Run) -> harness.Pki:
    """Session CA + server cert (SAN redis.test, localhost, 127.0.0.1) +
    client cert + a client cert from an untrusted CA."""
    return e2e_run.pki


def _require_wasm() -> Path:
    problem = wasm_problem()
    if problem is not None:
        msg = f"wasm filter not usable: {problem}"
        if os.environ.get("E2E_REQUIRE_WASM") == "1":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return WASM_PATH


@pytest.fixture(scope="session")
def wasm_path() -> Path:
    """The release wasm. Skips (fails if E2E_REQUIRE_WASM=1) when it is
    missing or still a stub without proxy_abi_version exports."""
    return _require_wasm()


@pytest.fixture(scope="session")
def null_wasm(e2e_run: Run) -> Path:
    """A do-nothing proxy-wasm module (pass-through, on_configure -> true):
    checks the wasm filter block and wasm plumbing without our filter."""
    p = e2e_run.dir / "null-filter.wasm"
    p.write_bytes(harness.null_filter_wasm(configure_ok=True))
    return p


@pytest.fixture(scope="session")
def null_wasm_rejecting(e2e_run: Run) -> Path:
    """Like null_wasm, but proxy_on_configure returns false (config rejected)."""
    p = e2e_run.dir / "null-filter-rejecting.wasm"
    p.write_bytes(harness.null_filter_wasm(configure_ok=False))
    return p


# A panic in the filter kills the VM for every connection on its worker:
# whatever else a test checks, its Envoys must never log one.
# (A test that breaks a module on purpose says so with
# @pytest.mark.vm_failure_expected.)
_VM_FAILURE = ("panicked at", "Uncaught RuntimeError")


def _vm_failures(s: Scope) -> list[str]:
    found = []
    for e in s.envoys:
        for line in e.log_text().splitlines():
            if any(marker in line for marker in _VM_FAILURE):
                found.append(f"{e.log_path}: {line.strip()}")
    return found


def _fail_on_vm_failures(s: Scope) -> None:
    found = _vm_failures(s)
    if found:
        pytest.fail("the wasm VM failed:\n" + "\n".join(found[:20]), pytrace=False)


@pytest.fixture(scope="session")
def session_scope(e2e_run: Run):
    s = e2e_run.scope("session")
    _session["scope"] = s
    yield s
    try:
        _fail_on_vm_failures(s)
    finally:
        s.close()


# ------------------------------------------------------------------ per test


@pytest.fixture
def scope(e2e_run: Run, request) -> Scope:
    s = e2e_run.scope(request.node.nodeid.split("/")[-1])
    request.node.stash[_SCOPE_KEY] = s
    yield s
    try:
        if request.node.get_closest_marker("vm_failure_expected") is None:
            _fail_on_vm_failures(s)
    finally:
        s.close()


def _envoy_factory(s: Scope):
    def make(upstream, plugin_config=None, **kw) -> harness.Envoy:
        if plugin_config is not None and kw.get("wasm_path") is None:
            kw["wasm_path"] = _require_wasm()
        return s.envoy(upstream, plugin_config=plugin_config, **kw)

    return make


@pytest.fixture
def redis_factory(scope: Scope):
    """redis_factory(kind="plain", *, password=None, acl_users=None,
    extra_conf=(), name=None) -> RedisServer (ready)."""
    return scope.redis


@pytest.fixture
def envoy_factory(scope: Scope):
    """envoy_factory(upstream, plugin_config=None, *, host_env={}, vm_env={},
    host_env_keys=(), failure_policy="FAIL_CLOSED", upstream_tls=None,
    mode="tcp_proxy"|"redis_proxy", start=True, ...) -> Envoy (ready).
    plugin_config (dict or JSON string) adds our wasm filter."""
    return _envoy_factory(scope)


@pytest.fixture
def envoy_try_start(scope: Scope):
    """envoy_try_start(upstream, **envoy_kw) -> (Envoy, StartResult)."""

    def go(upstream, plugin_config=None, **kw):
        if plugin_config is not None and kw.get("wasm_path") is None:
            kw["wasm_path"] = _require_wasm()
        return scope.envoy_try_start(upstream, plugin_config=plugin_config, **kw)

    return go


@pytest.fixture
def envoy_rejects(scope: Scope):
    """envoy_rejects(upstream, **envoy_kw) -> log text of the failed start.
    Fails the test if Envoy accepts the config."""

    def go(upstream, plugin_config=None, **kw):
        if plugin_config is not None and kw.get("wasm_path") is None:
            kw["wasm_path"] = _require_wasm()
        return scope.envoy_rejects(upstream, plugin_config=plugin_config, **kw)

    return go


@pytest.fixture
def relay_factory(scope: Scope):
    """relay_factory(upstream, name="relay") -> RecordingRelay (started)."""
    return scope.relay


@pytest.fixture
def registry_factory(scope: Scope, request):
    """registry_factory(name="registry") -> Registry: Debian's docker-registry
    on a free loopback port (plain HTTP, no auth), storage in the scope's
    directory; ready, stopped at the end of the test."""

    def make(name: str = "registry") -> Registry:
        reg = start_registry(scope.dir, name=name)
        scope.closers.append(reg.stop)
        request.node.stash.setdefault(_REGISTRIES_KEY, []).append(reg)
        return reg

    return make


@pytest.fixture
def redis_plain(scope: Scope) -> harness.RedisServer:
    return scope.redis("plain")


@pytest.fixture
def redis_password(scope: Scope) -> harness.RedisServer:
    """requirepass harness.DEFAULT_SERVER_PASSWORD ("ServerSecretPass")."""
    return scope.redis("password")


@pytest.fixture
def redis_acl(scope: Scope) -> harness.RedisServer:
    """`user default off`, `user appuser on >SuperSecretPass ~* &* +@all`;
    .username/.password are appuser's."""
    return scope.redis("acl")


@pytest.fixture
def redis_tls(scope: Scope) -> harness.RedisServer:
    return scope.redis("tls")


@pytest.fixture
def redis_mtls(scope: Scope) -> harness.RedisServer:
    return scope.redis("mtls")


# ------------------------------------------------------------------ session variants


@pytest.fixture(scope="session")
def session_redis_factory(session_scope: Scope):
    return session_scope.redis


@pytest.fixture(scope="session")
def session_envoy_factory(session_scope: Scope):
    return _envoy_factory(session_scope)


# ------------------------------------------------------------------ failure reports


def _describe(scope: Scope, lines: int) -> list[tuple[str, str]]:
    sections = []
    for p in scope.procs():
        state = "running" if p.alive else f"exited with {p.returncode}"
        sections.append((f"{p.name} log tail ({state}): {p.log_path}", p.log_tail(lines)))
    for r in scope.relays:
        parts = []
        for c in r.connections:
            parts.append(
                f"conn {c.id}: to_server={c.to_server[:400]!r} to_client={c.to_client[:400]!r} "
                f"first_eof={c.first_eof} upstream_error={c.upstream_error}"
            )
        sections.append((f"{r.name} recordings ({r.upstream[0]}:{r.upstream[1]})", "\n".join(parts) or "(no connections)"))
    return sections


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    files: list[Path] = []
    s = item.stash.get(_SCOPE_KEY, None)
    if s is not None:
        for title, text in _describe(s, 50):
            rep.sections.append((title, text))
        files += s.log_files()
    for reg in item.stash.get(_REGISTRIES_KEY, []):
        state = "running" if reg.alive else f"exited with {reg.proc.returncode}"
        rep.sections.append((f"{reg.name} log tail ({state}): {reg.log_path}", reg.proc.log_tail(30)))
        files.append(reg.log_path)
    sess = _session.get("scope")
    if isinstance(sess, Scope) and sess.procs():
        for title, text in _describe(sess, 20):
            rep.sections.append(("session " + title, text))
        files += sess.log_files()
    run = _session.get("run")
    if isinstance(run, Run) and files:
        with (run.dir / "failed-logs.txt").open("a") as f:
            f.write(f"# {item.nodeid} ({rep.when})\n")
            for p in files:
                f.write(f"{p}\n")
