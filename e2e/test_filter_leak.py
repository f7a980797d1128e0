"""Nothing a client sends before authenticating, and no client credential,
may reach the server. A recording relay between Envoy and Redis sees every
byte Envoy sends upstream."""

from __future__ import annotations

import pytest

from harness import raw_exchange, redis_py, resp
from harness.resp import command as C

CLIENT_PASSWORD = "client-secret-7f3a"
ALICE_PASSWORD = "alice-secret-91bc"
CONFIG = {
    "downstream": {
        "password": CLIENT_PASSWORD,
        "users": [f"user alice on >{ALICE_PASSWORD} ~* &* +@all"],
        "max_auth_failures": 0,
    },
    "upstream": {"password": {"env": "REDIS_PASSWORD"}},
}

# Distinctive strings the client sends before it is authenticated.
PRE_AUTH = [
    C("SET", "leak-key-1", "leak-value-1"),
    C("AUTH", "wrong-password-1"),
    C("AUTH", "alice", "wrong-password-2"),
    C("HELLO", "3", "AUTH", "alice", "wrong-password-3"),
    b"GET leak-inline-4\r\n",
    C("CLIENT", "SETNAME", "leak-name-5"),
    C("EVAL", "return 'leak-script-6'", "0"),
    C("HELLO", "3", "AUTH", "leak-user-7"),
    C("AUTH", "leak-a", "leak-b", "leak-c"),
]
SECRETS = [
    b"leak-key-1",
    b"leak-value-1",
    b"wrong-password-1",
    b"wrong-password-2",
    b"wrong-password-3",
    b"leak-inline-4",
    b"leak-name-5",
    b"leak-script-6",
    b"leak-user-7",
    b"leak-a",
    b"leak-b",
    b"leak-c",
    CLIENT_PASSWORD.encode(),
    ALICE_PASSWORD.encode(),
]


@pytest.fixture
def rig(redis_password, relay_factory, envoy_factory):
    relay = relay_factory(redis_password)
    envoy = envoy_factory(relay, plugin_config=CONFIG, host_env={"REDIS_PASSWORD": redis_password.password})
    return envoy, relay, redis_password


def upstream_commands(relay) -> list[list[bytes]]:
    """Every command Envoy sent to Redis, decoded."""
    commands = []
    for conn in relay.connections:
        commands += resp.parse_all(conn.to_server)
    return commands


def assert_no_secret(relay):
    sent = relay.to_server()
    for secret in SECRETS:
        assert secret not in sent, f"{secret!r} reached the server"


@pytest.mark.parametrize("chunking", ["whole", "byte"])
def test_pre_auth_commands_and_client_credentials_never_reach_redis(rig, chunking):
    envoy, relay, server = rig
    payload = (
        b"".join(PRE_AUTH)
        + C("AUTH", CLIENT_PASSWORD)
        + C("HELLO", "3", "AUTH", "alice", ALICE_PASSWORD, "SETNAME", "app")
        + C("AUTH", "alice", ALICE_PASSWORD)
        + C("AUTH", "alice", "wrong-password-2")
        + C("ECHO", "after-auth")
    )
    result = raw_exchange(envoy, payload, chunking, until_replies=len(PRE_AUTH) + 5)
    assert result.replies[-1] == b"after-auth"
    relay.wait_to_server(lambda sent: b"after-auth" in sent)
    assert_no_secret(relay)
    # Before the client's AUTH, the server saw only the proxy's own commands.
    commands = upstream_commands(relay)
    names = [c[0].upper() for c in commands]
    first_client = names.index(b"HELLO")
    for command in commands[:first_client]:
        name = command[0].upper()
        if name == b"AUTH":
            assert command[1:] == [server.password.encode()]
        else:
            # A marker: an unknown command named era:<id>:<mac>.
            assert len(command) == 1 and name.startswith(b"ERA:"), command
    # The HELLO went on without its credentials.
    assert commands[first_client] == [b"HELLO", b"3", b"SETNAME", b"app"]


def test_protocol_errors_before_auth_send_nothing_of_the_client(rig):
    envoy, relay, _ = rig
    result = raw_exchange(envoy, C("SET", "leak-key-1", "x") + b"*2\r\n$3\r\nGET\r\n$x\r\nleak-value-1\r\n")
    assert result.closed
    relay.wait_closed()
    assert_no_secret(relay)


def test_real_client_logins_do_not_leak(rig):
    envoy, relay, _ = rig
    c = redis_py(envoy, password=CLIENT_PASSWORD, protocol=2)
    assert c.set("k", "v") and c.get("k") == "v"
    c3 = redis_py(envoy, username="alice", password=ALICE_PASSWORD, protocol=3)
    assert c3.ping()
    relay.wait_connections(2)
    assert_no_secret(relay)
