"""Real clients through real Envoy with the filter: once authenticated, the
stream is Redis's own (pub/sub, RESP3 pushes, MULTI/EXEC, blocking commands,
large and binary values, pipelines)."""

from __future__ import annotations

import os
import threading
import time

import pytest
import redis

from harness import ioredis_run, raw_exchange, redis_cli, redis_py
from harness.resp import command as C

CLIENT_PASSWORD = "testredis123!"
CONFIG = {
    "downstream": {
        "password": CLIENT_PASSWORD,
        "users": ["user alice on >alicepw ~* &* +@all"],
        "max_auth_failures": 3,
    },
    "upstream": {"password": {"env": "REDIS_PASSWORD"}},
}


@pytest.fixture
def envoy(redis_password, envoy_factory):
    return envoy_factory(
        redis_password, plugin_config=CONFIG, host_env={"REDIS_PASSWORD": redis_password.password}
    )


def test_redis_cli(envoy):
    assert redis_cli(envoy, "SET", "foo", "bar", a=CLIENT_PASSWORD).lines == ["OK"]
    assert redis_cli(envoy, "GET", "foo", a=CLIENT_PASSWORD).lines == ["bar"]
    assert redis_cli(envoy, "GET", "foo", user="alice", pass_="alicepw").lines == ["bar"]
    assert redis_cli(envoy, "GET", "foo", a=CLIENT_PASSWORD, resp3=True).lines == ["bar"]
    unauthenticated = redis_cli(envoy, "GET", "foo")
    assert "NOAUTH Authentication required." in unauthenticated.stdout
    wrong = redis_cli(envoy, "GET", "foo", a="testredis")
    assert "WRONGPASS" in wrong.stdout + wrong.stderr
    # The seed-000 session: the server's password is useless to the client.
    session = redis_cli(envoy, stdin="AUTH testredis\nAUTH testredis123!\nGET foo\n")
    assert [line for line in session.lines if line] == [
        "WRONGPASS invalid username-password pair or user is disabled.",
        "OK",
        "bar",
    ]


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_data_path(envoy, protocol):
    c = redis_py(envoy, password=CLIENT_PASSWORD, protocol=protocol, decode_responses=False)
    big = os.urandom(8 * 1024 * 1024 + 7)
    assert c.set("big", big)
    assert c.get("big") == big
    tricky = b"\r\n+OK\r\n$-1\r\n*1\r\n" * 1000
    assert c.set("tricky", tricky) and c.get("tricky") == tricky
    pipe = c.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"p{i}", i)
        pipe.get(f"p{i}")
    results = pipe.execute()
    assert results[1::2] == [str(i).encode() for i in range(2000)]
    tx = c.pipeline(transaction=True)
    tx.incr("counter").incr("counter").get("counter")
    assert tx.execute() == [1, 2, b"2"]


def test_sixteen_mebibyte_value_byte_for_byte(envoy):
    c = redis_py(envoy, password=CLIENT_PASSWORD, decode_responses=False)
    value = bytes(range(256)) * (16 * 4096)
    assert c.set("sixteen", value)
    assert c.strlen("sixteen") == len(value)
    assert c.get("sixteen") == value


def test_resp2_pubsub(envoy):
    subscriber = redis_py(envoy, password=CLIENT_PASSWORD, protocol=2)
    publisher = redis_py(envoy, username="alice", password="alicepw", protocol=2)
    pubsub = subscriber.pubsub()
    pubsub.subscribe("news")
    pubsub.psubscribe("n*")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    assert pubsub.get_message(timeout=5)["type"] == "psubscribe"
    assert publisher.publish("news", "hello") == 2
    kinds = {pubsub.get_message(timeout=5)["type"], pubsub.get_message(timeout=5)["type"]}
    assert kinds == {"message", "pmessage"}
    pubsub.ping("still-here")
    assert pubsub.get_message(timeout=5)["data"] == "still-here"
    pubsub.close()


def test_resp3_pushes(envoy):
    subscriber = redis_py(envoy, username="alice", password="alicepw", protocol=3)
    publisher = redis_py(envoy, password=CLIENT_PASSWORD, protocol=3)
    pubsub = subscriber.pubsub()
    pubsub.subscribe("resp3")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    publisher.publish("resp3", "pushed")
    message = pubsub.get_message(timeout=5)
    assert message["type"] == "message" and message["data"] == "pushed"
    # RESP3 allows normal commands on a subscribed connection: replies and
    # pushes interleave, and the filter's own replies still land in order.
    raw = raw_exchange(
        envoy,
        C("HELLO", "3", "AUTH", "alice", "alicepw")
        + C("SUBSCRIBE", "resp3")
        + C("AUTH", "alice", "nope")
        + C("ECHO", "x"),
        until_replies=4,
    )
    assert raw.replies[2].startswith("WRONGPASS")
    assert raw.replies[3] == b"x"


def test_blocking_commands(envoy):
    blocked = redis_py(envoy, password=CLIENT_PASSWORD, timeout=10)
    pusher = redis_py(envoy, password=CLIENT_PASSWORD)
    result = {}

    def pop():
        result["value"] = blocked.blpop(["queue"], timeout=5)

    t = threading.Thread(target=pop)
    t.start()
    time.sleep(0.3)
    pusher.rpush("queue", "job")
    t.join(10)
    assert result["value"] == ("queue", "job")
    # A local reply queued behind a blocked command waits its turn.
    raw = raw_exchange(envoy, C("AUTH", CLIENT_PASSWORD) + C("BLPOP", "q2", "1") + C("AUTH", "bad"), until_replies=3, timeout=10)
    assert raw.replies[1] is None
    assert raw.replies[2].startswith("WRONGPASS")


def test_ioredis_with_username_and_password(envoy):
    result = ioredis_run(
        envoy,
        [["set", "ioredis", "works"], ["get", "ioredis"], ["incr", "n"]],
        username="alice",
        password="alicepw",
    )
    assert result.values == ["OK", "works", 1]
    failed = ioredis_run(envoy, [["get", "ioredis"]], username="alice", password="wrong")
    assert not failed.connected
    assert any("WRONGPASS" in event for event in failed.events)
    pipelined = ioredis_run(envoy, [["set", "a", "1"], ["get", "a"]], password=CLIENT_PASSWORD, pipeline=True)
    assert pipelined.values == ["OK", "1"]


def test_brute_force_is_cut_off(envoy):
    raw = raw_exchange(envoy, C("AUTH", "a") + C("AUTH", "b") + C("AUTH", "c") + C("AUTH", CLIENT_PASSWORD))
    assert [r.split(" ")[0] for r in raw.replies] == ["WRONGPASS"] * 3
    assert raw.closed
    envoy.wait_stat("wasmcustom.redis_auth.auth_failure_limit_closed", 1)
    assert envoy.counter("wasmcustom.redis_auth.auth_failure") >= 3
    # Failures on other connections do not add up.
    for _ in range(2):
        raw = raw_exchange(envoy, C("AUTH", "a") + C("AUTH", "b") + C("PING"), until_replies=3)
        assert not raw.closed


def test_concurrent_connections_across_workers(envoy):
    errors = []

    def worker(n):
        try:
            login = {"password": CLIENT_PASSWORD} if n % 2 else {"username": "alice", "password": "alicepw"}
            c = redis_py(envoy, **login)
            for i in range(50):
                assert c.set(f"w{n}:{i}", i)
                assert c.get(f"w{n}:{i}") == str(i)
        except Exception as e:  # noqa: BLE001 - collect for the assertion
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


def test_unauthenticated_redis_py_gets_noauth(envoy):
    c = redis_py(envoy)
    with pytest.raises(redis.exceptions.AuthenticationError):
        c.get("foo")
