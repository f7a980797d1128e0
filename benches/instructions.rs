//! Instruction counts of the filter's hot paths, for `valgrind --tool=callgrind`
//! (run by `./dev instructions`, which prints the table).
//!
//! Wall-clock timing on a shared 2-core machine swings from run to run;
//! instruction counts do not: the same binary given the same input executes
//! the same instructions. Each scenario here is one steady-state round trip of
//! an authenticated connection, as Envoy drives the session: one client chunk
//! holding `depth` pipelined commands (`on_client_data`), then one server
//! chunk holding their replies (`on_server_data`), then `trim`.
//!
//! `instructions <scenario> <iterations>` sets the scenario up (configuration,
//! the connection's `AUTH` exchange against the model server), runs
//! `iterations` round trips and exits. `./dev instructions` runs every
//! scenario twice under callgrind, with a few iterations and with many, and
//! divides the difference by the extra commands: setup and process start
//! cancel out, and what remains is the cost of one command and its reply.
//!
//! These are native x86-64 instructions of the same Rust code the `.wasm`
//! is compiled from (same profile: `opt-level = "s"`, LTO), so they rank
//! changes to the core; V8's code for the `.wasm` differs in constant
//! factors, and Envoy's own work (host calls, sockets) is not counted here
//! (`bench/run.py` measures that).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // a benchmark driver, not VM code

use std::hint::black_box;
use std::rc::Rc;

use envoy_redis_auth::config::{self, Config};
use envoy_redis_auth::resp::output::Verdict;
use envoy_redis_auth::session::{KEY_LEN, Session};
use envoy_redis_auth::testkit::ModelRedis;

const SERVER_PASSWORD: &str = "bench-server-pw";
const CLIENT_PASSWORD: &str = "bench-client-pw";

/// The configurations of `bench/run.py`'s filter targets.
fn configuration(kind: &str) -> (String, Option<&'static str>) {
    let upstream = format!(r#""upstream": {{"password": "{SERVER_PASSWORD}"}}"#);
    match kind {
        // No authentication configured: the filter only frames.
        "passthrough" => ("{}".to_owned(), None),
        // Client AUTH answered by the filter, server AUTH injected.
        "auth" => (
            format!(r#"{{"downstream": {{"password": "{CLIENT_PASSWORD}"}}, {upstream}}}"#),
            Some("*2\r\n$4\r\nAUTH\r\n$15\r\nbench-client-pw\r\n"),
        ),
        // A user whose every command is checked (command allow-list, key
        // patterns), as bench/run.py's filter_acl.
        "acl" => (
            format!(
                r#"{{"downstream": {{"password": "{CLIENT_PASSWORD}", "users": ["user bench on >bench-acl-pw ~key:* ~counter:* -@all +set +get +ping +config|get"]}}, {upstream}}}"#
            ),
            Some("*3\r\n$4\r\nAUTH\r\n$5\r\nbench\r\n$12\r\nbench-acl-pw\r\n"),
        ),
        _ => panic!("unknown configuration {kind:?}"),
    }
}

fn apply(verdict: Verdict<'_>, input: &[u8]) -> Vec<u8> {
    match verdict {
        Verdict::Unchanged => input.to_vec(),
        Verdict::Replace(bytes) => bytes.to_vec(),
    }
}

/// A session past its `AUTH` exchange, driven through the model server.
fn authenticated(config: Rc<Config>, auth: Option<&str>) -> Session {
    let mut session = Session::new(config, [0x5a; KEY_LEN]);
    // Pass-through sends no AUTH of its own: a server without a password.
    let password = if auth.is_some() { SERVER_PASSWORD } else { "" };
    let mut server = ModelRedis::new(password.as_bytes());
    let first = auth.unwrap_or("*1\r\n$4\r\nPING\r\n").as_bytes();
    let upstream = apply(session.on_client_data(first).verdict, first);
    session.trim();
    let replies = server.feed(&upstream);
    let to_client = apply(session.on_server_data(&replies).verdict, &replies);
    session.trim();
    assert!(
        to_client == b"+OK\r\n" || to_client == b"+PONG\r\n",
        "setup failed: {:?}",
        String::from_utf8_lossy(&to_client)
    );
    assert!(session.is_authenticated());
    session
}

/// One pipelined chunk of `depth` commands and the chunk of their replies,
/// as redis-benchmark sends them (`key:__rand_int__`, 16-byte values).
fn pipeline(test: &str, depth: usize) -> (Vec<u8>, Vec<u8>) {
    let value = [b'x'; 16];
    let mut requests = Vec::new();
    let mut replies = Vec::new();
    for i in 0..depth {
        let key = format!("key:{:012}", 100_000 + i);
        match test {
            "set" => {
                requests.extend_from_slice(
                    format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$16\r\n", key.len()).as_bytes(),
                );
                requests.extend_from_slice(&value);
                requests.extend_from_slice(b"\r\n");
                replies.extend_from_slice(b"+OK\r\n");
            }
            "get" => {
                requests.extend_from_slice(
                    format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes(),
                );
                replies.extend_from_slice(b"$16\r\n");
                replies.extend_from_slice(&value);
                replies.extend_from_slice(b"\r\n");
            }
            _ => panic!("unknown test {test:?}"),
        }
    }
    (requests, replies)
}

/// The measured loop: kept out of line so that it is one function in the
/// profile.
#[inline(never)]
fn round_trips(session: &mut Session, requests: &[u8], replies: &[u8], iterations: usize) {
    for _ in 0..iterations {
        let step = session.on_client_data(black_box(requests));
        assert!(
            step.verdict == Verdict::Unchanged,
            "the chunk was not passed through unchanged"
        );
        session.trim();
        let step = session.on_server_data(black_box(replies));
        assert!(
            step.verdict == Verdict::Unchanged,
            "the replies were not passed through unchanged"
        );
        session.trim();
    }
}

fn main() {
    // `cargo bench` and `cargo test --benches` add flags of their own
    // (`--bench`): without a scenario, every one runs a few times, as a
    // check that they still set up and pass their chunks through.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    match &args[..] {
        [] => {
            for kind in ["passthrough", "auth", "acl"] {
                for test in ["set", "get"] {
                    run(&format!("{kind}-{test}-16"), 3);
                }
            }
        }
        [scenario, iterations] => run(scenario, iterations.parse().expect("iterations")),
        _ => {
            eprintln!(
                "usage: instructions <passthrough|auth|acl>-<set|get>-<depth> <iterations>\n  e.g. instructions auth-set-16 1000"
            );
            std::process::exit(2);
        }
    }
}

fn run(scenario: &str, iterations: usize) {
    let parts: Vec<&str> = scenario.split('-').collect();
    let [kind, test, depth] = parts[..] else {
        panic!("scenario must be <configuration>-<test>-<depth>: {scenario:?}");
    };
    let depth: usize = depth.parse().expect("depth");
    let (json, auth) = configuration(kind);
    let parsed = config::parse(json.as_bytes(), &|_| None).expect("configuration");
    let mut session = authenticated(Rc::new(parsed.config), auth);
    let (requests, replies) = pipeline(test, depth);
    round_trips(&mut session, &requests, &replies, iterations);
}
