"""Bad configurations are refused by Envoy with one log line that names the
field and the reason, and secrets never appear in the log."""

from __future__ import annotations

import json
import re

import pytest

SECRET = "s3cret-never-logged"

BAD = [
    ("unknown field", {"downstream": {"pasword": SECRET}}, r"downstream: unknown field 'pasword'"),
    ("wrong type", {"downstream": {"password": 12}}, r"downstream\.password: "),
    ("empty password", {"downstream": {"password": ""}}, r"downstream\.password: must not be empty"),
    (
        "missing env var",
        {"upstream": {"password": {"env": "NOT_SET_ANYWHERE"}}},
        r"upstream\.password: environment variable NOT_SET_ANYWHERE is not set",
    ),
    ("bad base64", {"upstream": {"password": {"base64": "%%%"}}}, r"upstream\.password: 'base64' is not valid base64"),
    (
        "unknown command in a rule",
        {"downstream": {"users": [f"user bob on >{SECRET} ~app:* +nosuch"]}},
        r"downstream\.users\[0\]: user 'bob': rule 4: Error in ACL SETUSER modifier '\+nosuch': "
        r"Unknown command or category name in ACL",
    ),
    (
        "pattern after allkeys",
        {"downstream": {"users": [f"user bob on >{SECRET} ~* ~app:*"]}},
        r"user 'bob': rule 4: Error in ACL SETUSER modifier '~app:\*': Adding a pattern after the \*",
    ),
    (
        "unbalanced selector",
        {"downstream": {"users": [f"user bob on >{SECRET} (~app:* +get"]}},
        r"user 'bob': rule 3: .*Unmatched parenthesis in acl selector",
    ),
    (
        "default user twice",
        {"downstream": {"password": SECRET, "users": [f"user default on >{SECRET} ~* &* +@all"]}},
        r"downstream\.users\[0\]: user 'default' is defined here and by downstream\.password",
    ),
    ("unknown ACL rule", {"downstream": {"users": [f"user bob on {SECRET} ~* &* +@all"]}}, r"rule 2: Error in ACL SETUSER modifier \(not shown: it may hold a password\): Syntax error"),
    ("not json", "{not json", r"config: "),
    ("empty", "", r"config: the configuration is empty"),
]


@pytest.mark.parametrize("name,config,message", BAD, ids=[b[0] for b in BAD])
def test_envoy_refuses_bad_configuration(redis_password, envoy_rejects, name, config, message):
    text = config if isinstance(config, str) else json.dumps(config)
    log = envoy_rejects(redis_password, plugin_config=text)
    lines = [l for l in log.splitlines() if "envoy-redis-auth: invalid configuration" in l]
    assert len(lines) == 1, log[-3000:]
    assert re.search(message, lines[0]), lines[0]
    assert SECRET not in log


def test_valid_examples_start(redis_password, envoy_factory):
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent / "filter-config"
    for path in sorted(root.glob("*.json")):
        envoy = envoy_factory(
            redis_password,
            plugin_config=path.read_text(),
            # acl-users.json: one user has its own server identity.
            host_env={"REDIS_PASSWORD": redis_password.password, "BATCH_SERVER_PASSWORD": "batch-pw"},
            name=f"example-{path.stem}",
        )
        envoy.wait_log(r"envoy-redis-auth: configured")
        envoy.stop()
