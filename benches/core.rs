//! Micro-benchmarks of the native core: `./dev microbench` (that is,
//! `cargo bench --bench core -- [criterion args]`).
//!
//! - `request_framing` / `reply_framing`: our framers ([`RequestParser`]
//!   driven as the session drives it, [`ReplyFramer::advance`]) against the
//!   published `redis-protocol` crate decoding every frame of the same bytes:
//!   `redis_protocol` is its `decode` (owned frames, what its users get),
//!   `redis_protocol_range` its `decode_range` (frames as byte ranges, no
//!   copies: the closer match to a framer, which copies nothing either).
//! - `session`: whole [`Session`] round trips of a 64-command pipeline and
//!   its replies, for the filter's three benchmarked configurations.
//! - `command_lookup` and `acl_check`: the command table and the ACL verdict.
//!
//! Every corpus is checked once before it is measured (frame counts, and
//! that the session forwards the pipeline and its replies unchanged), so a
//! benchmark cannot quietly measure an error path.

// Benches are not VM code: a panic here only fails the run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use envoy_redis_auth::acl::{Argv, Permissions, Scratch};
use envoy_redis_auth::command::{self, ServerVersion};
use envoy_redis_auth::config;
use envoy_redis_auth::resp::output::{Output, Verdict};
use envoy_redis_auth::resp::reply::{ReplyFramer, whole_simple_reply};
use envoy_redis_auth::resp::request::{Disposition, Event, RequestParser, whole_command};
use envoy_redis_auth::resp::{write_command, write_error};
use envoy_redis_auth::session::{KEY_LEN, Session};
use redis_protocol::resp2::types::OwnedFrame as Resp2Frame;
use redis_protocol::{resp2, resp3};

/// Commands (or replies) per pipeline.
const PIPELINE: usize = 64;

/// Modest times: the machine is shared with other benchmarks, and the whole
/// run should stay within a few minutes.
fn configured() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

// ------------------------------------------------------------ corpora

/// One benchmark input: `frames` top-level commands or replies.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    frames: usize,
}

fn value(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + ((i + seed) % 26) as u8).collect()
}

fn key(prefix: &str, i: usize) -> Vec<u8> {
    format!("{prefix}:{i:04}").into_bytes()
}

fn pipeline(command: impl Fn(usize, &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..PIPELINE {
        command(i, &mut out);
    }
    out
}

fn set_pipeline(value_len: usize) -> Vec<u8> {
    pipeline(|i, out| write_command(out, &[&b"SET"[..], &key("key", i), &value(value_len, i)]))
}

fn request_cases() -> Vec<Case> {
    let mixed = pipeline(|i, out| {
        let k = key("key", i);
        match i % 6 {
            0 => write_command(
                out,
                &[
                    &b"HSET"[..],
                    &key("hash", i),
                    b"name",
                    b"alice",
                    b"email",
                    b"alice@example.com",
                    b"visits",
                    b"42",
                ],
            ),
            1 => write_command(
                out,
                &[
                    &b"LPUSH"[..],
                    &key("list", i),
                    b"one",
                    b"two",
                    b"three",
                    b"four",
                ],
            ),
            2 => {
                let keys: Vec<Vec<u8>> = (0..5).map(|j| key("key", i + j)).collect();
                let mut args: Vec<&[u8]> = vec![b"MGET"];
                args.extend(keys.iter().map(Vec::as_slice));
                write_command(out, &args);
            }
            3 => write_command(out, &[&b"EXPIRE"[..], &k, b"300"]),
            4 => write_command(out, &[&b"INCRBY"[..], &key("counter", i), b"7"]),
            _ => write_command(
                out,
                &[
                    &b"ZADD"[..],
                    &key("zset", i),
                    b"1",
                    b"a",
                    b"2.5",
                    b"b",
                    b"10",
                    b"c",
                ],
            ),
        }
    });
    let inline = pipeline(|i, out| {
        out.extend_from_slice(b"SET ");
        out.extend_from_slice(&key("key", i));
        out.push(b' ');
        out.extend_from_slice(&value(16, i));
        out.extend_from_slice(b"\r\n");
    });
    vec![
        Case {
            name: "set_16B",
            bytes: set_pipeline(16),
            frames: PIPELINE,
        },
        Case {
            name: "get",
            bytes: pipeline(|i, out| write_command(out, &[&b"GET"[..], &key("key", i)])),
            frames: PIPELINE,
        },
        Case {
            name: "set_1KiB",
            bytes: set_pipeline(1024),
            frames: PIPELINE,
        },
        Case {
            name: "mixed",
            bytes: mixed,
            frames: PIPELINE,
        },
        Case {
            name: "inline",
            bytes: inline,
            frames: PIPELINE,
        },
    ]
}

fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Reply cases, and whether each is RESP3 (decoded by `resp3`, else `resp2`).
fn reply_cases() -> Vec<(Case, bool)> {
    let nested = pipeline(|i, out| {
        // An XRANGE-style entry: [id, [field, value, field, value]], and a nil.
        out.extend_from_slice(b"*3\r\n");
        bulk(out, format!("1700000000000-{i}").as_bytes());
        out.extend_from_slice(b"*4\r\n");
        bulk(out, b"sensor");
        bulk(out, &value(8, i));
        bulk(out, b"reading");
        out.extend_from_slice(format!(":{}\r\n", i * 37).as_bytes());
        out.extend_from_slice(b"$-1\r\n");
    });
    let resp3 = pipeline(|i, out| match i % 3 {
        // HGETALL in RESP3: a map, one value an array.
        0 => {
            out.extend_from_slice(b"%3\r\n");
            out.extend_from_slice(b"+name\r\n");
            bulk(out, &value(12, i));
            out.extend_from_slice(b"+score\r\n,3.25\r\n");
            out.extend_from_slice(b"+tags\r\n*2\r\n+a\r\n+b\r\n");
        }
        // SMEMBERS in RESP3: a set.
        1 => {
            out.extend_from_slice(b"~4\r\n");
            for j in 0..4 {
                bulk(out, &key("member", i + j));
            }
        }
        // A pub/sub message push.
        _ => {
            out.extend_from_slice(b">3\r\n");
            bulk(out, b"message");
            bulk(out, b"news");
            bulk(out, &value(24, i));
        }
    });
    vec![
        (
            Case {
                name: "ok",
                bytes: pipeline(|_, out| out.extend_from_slice(b"+OK\r\n")),
                frames: PIPELINE,
            },
            false,
        ),
        (
            Case {
                name: "integer",
                bytes: pipeline(|i, out| {
                    out.extend_from_slice(format!(":{}\r\n", i * 1009).as_bytes())
                }),
                frames: PIPELINE,
            },
            false,
        ),
        (
            Case {
                name: "bulk_16B",
                bytes: pipeline(|i, out| bulk(out, &value(16, i))),
                frames: PIPELINE,
            },
            false,
        ),
        (
            Case {
                name: "bulk_1KiB",
                bytes: pipeline(|i, out| bulk(out, &value(1024, i))),
                frames: PIPELINE,
            },
            false,
        ),
        (
            Case {
                name: "nested_array",
                bytes: nested,
                frames: PIPELINE,
            },
            false,
        ),
        (
            Case {
                name: "resp3_map_set_push",
                bytes: resp3,
                frames: PIPELINE,
            },
            true,
        ),
    ]
}

// ------------------------------------------------------------ our framers

/// One chunk through the request parser exactly as `session/client.rs`
/// drives it for an authenticated client whose commands are all forwarded.
/// Returns the commands forwarded.
fn frame_requests(parser: &mut RequestParser, out: &mut Output, input: &[u8]) -> usize {
    out.begin();
    parser.begin_chunk();
    let mut pos = 0;
    let mut forwarded = 0;
    loop {
        match parser.next(input, &mut pos, out, true) {
            Event::NeedMore => break,
            Event::Decide(_) => parser.decide(input, out, Disposition::Forward),
            Event::Forwarded => forwarded += 1,
            Event::Empty => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    parser.end_chunk(input);
    assert_eq!(out.finish(input), Verdict::Unchanged);
    forwarded
}

/// The fast path's framing of a chunk of whole commands
/// (`request::whole_command`, as `session/client.rs` runs it); the commands
/// read, or fewer if it declines some (then it is not compared).
fn frame_whole_requests(input: &[u8]) -> usize {
    let mut pos = 0;
    let mut commands = 0;
    while let Some(command) = whole_command(input, pos) {
        pos = command.end;
        commands += 1;
    }
    commands
}

/// The fast path's framing of a chunk of whole non-aggregate replies
/// (`reply::whole_simple_reply`, as `session/server.rs` runs it).
fn frame_whole_replies(input: &[u8]) -> usize {
    let mut pos = 0;
    let mut replies = 0;
    while let Some(end) = whole_simple_reply(input, pos) {
        pos = end;
        replies += 1;
    }
    replies
}

/// Benchmarks a fast path on `case`, beside the general framer, where it
/// reads the whole case.
fn compare_fast(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    case: &Case,
    fast: fn(&[u8]) -> usize,
) {
    if fast(&case.bytes) != case.frames {
        eprintln!("note: the fast path declines {} (skipped)", case.name);
        return;
    }
    group.bench_with_input(
        BenchmarkId::new("ours_fast_path", case.name),
        &case.bytes,
        |b, input| {
            b.iter(|| fast(black_box(input)));
        },
    );
}

/// One chunk of replies through the reply framer (as `session/server.rs`
/// calls it). Returns the replies that ended.
fn frame_replies(framer: &mut ReplyFramer, input: &[u8]) -> usize {
    let mut pos = 0;
    let mut frames = 0;
    while pos < input.len() {
        if framer.advance(input, &mut pos).unwrap() {
            frames += 1;
        }
    }
    frames
}

// ------------------------------------------------------------ the reference

type Decoder = fn(&[u8]) -> Option<usize>;

/// Decodes every frame of `input` with `decode` (which returns the bytes it
/// used); `None` if it cannot.
fn decode_all(input: &[u8], decode: Decoder) -> Option<usize> {
    let mut pos = 0;
    let mut frames = 0;
    while pos < input.len() {
        pos += decode(&input[pos..])?;
        frames += 1;
    }
    Some(frames)
}

fn resp2_owned(buf: &[u8]) -> Option<usize> {
    let (frame, used) = resp2::decode::decode(buf).ok()??;
    black_box(frame);
    Some(used)
}

fn resp2_range(buf: &[u8]) -> Option<usize> {
    let (frame, used) = resp2::decode::decode_range(buf).ok()??;
    black_box(frame);
    Some(used)
}

fn resp3_owned(buf: &[u8]) -> Option<usize> {
    let (frame, used) = resp3::decode::complete::decode(buf).ok()??;
    black_box(frame);
    Some(used)
}

fn resp3_range(buf: &[u8]) -> Option<usize> {
    let (frame, used) = resp3::decode::complete::decode_range(buf).ok()??;
    black_box(frame);
    Some(used)
}

/// Benchmarks `case` with ours and both reference decoders, side by side.
/// A decoder that cannot read the case (RESP2's has no inline commands) is
/// left out, with a note.
fn compare(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    case: &Case,
    ours: &mut dyn FnMut(&[u8]) -> usize,
    references: [(&str, Decoder); 2],
) {
    group.throughput(Throughput::Elements(case.frames as u64));
    assert_eq!(ours(&case.bytes), case.frames, "ours on {}", case.name);
    group.bench_with_input(
        BenchmarkId::new("ours", case.name),
        &case.bytes,
        |b, input| {
            b.iter(|| ours(black_box(input)));
        },
    );
    for (label, decode) in references {
        match decode_all(&case.bytes, decode) {
            Some(frames) => assert_eq!(frames, case.frames, "{label} on {}", case.name),
            None => {
                eprintln!("note: {label} cannot decode {} (skipped)", case.name);
                continue;
            }
        }
        group.bench_with_input(
            BenchmarkId::new(label, case.name),
            &case.bytes,
            |b, input| {
                b.iter(|| decode_all(black_box(input), decode));
            },
        );
    }
}

fn request_framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_framing");
    let mut parser = RequestParser::new();
    let mut out = Output::default();
    for case in request_cases() {
        compare(
            &mut group,
            &case,
            &mut |input| frame_requests(&mut parser, &mut out, input),
            [
                ("redis_protocol", resp2_owned),
                ("redis_protocol_range", resp2_range),
            ],
        );
        compare_fast(&mut group, &case, frame_whole_requests);
    }
    group.finish();
}

fn reply_framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply_framing");
    let mut framer = ReplyFramer::new();
    for (case, is_resp3) in reply_cases() {
        let references: [(&str, Decoder); 2] = if is_resp3 {
            [
                ("redis_protocol", resp3_owned),
                ("redis_protocol_range", resp3_range),
            ]
        } else {
            [
                ("redis_protocol", resp2_owned),
                ("redis_protocol_range", resp2_range),
            ]
        };
        compare(
            &mut group,
            &case,
            &mut |input| frame_replies(&mut framer, input),
            references,
        );
        compare_fast(&mut group, &case, frame_whole_replies);
    }
    group.finish();
}

// ------------------------------------------------------------ sessions

const KEY: [u8; KEY_LEN] = [0x5a; KEY_LEN];

fn applied(verdict: &Verdict<'_>, input: &[u8]) -> Vec<u8> {
    match verdict {
        Verdict::Unchanged => input.to_vec(),
        Verdict::Replace(bytes) => bytes.to_vec(),
    }
}

/// What a Redis 7.0 would answer to the commands the session sends while
/// connecting: `+OK` to `AUTH`, the unknown-command error to a marker.
fn serve(mut commands: &[u8]) -> Vec<u8> {
    let mut replies = Vec::new();
    while !commands.is_empty() {
        let (frame, used) = resp2::decode::decode(commands).unwrap().unwrap();
        commands = &commands[used..];
        let Resp2Frame::Array(args) = frame else {
            panic!("not a command: {frame:?}");
        };
        let Some(Resp2Frame::BulkString(name)) = args.first() else {
            panic!("no command name");
        };
        if name.eq_ignore_ascii_case(b"auth") {
            replies.extend_from_slice(b"+OK\r\n");
        } else if name.starts_with(b"era:") {
            let mut text = b"ERR unknown command '".to_vec();
            text.extend_from_slice(name);
            text.extend_from_slice(b"', with args beginning with: ");
            write_error(&mut replies, &text);
        } else {
            panic!("unexpected command {}", String::from_utf8_lossy(name));
        }
    }
    replies
}

/// A session through its connection exchange: the client's `hello` (an
/// `AUTH`, or nothing) and the server's replies to what the session sent
/// for it (the proxy's `AUTH`, the marker of the local `+OK`).
fn connected(json: &str, hello: &[u8]) -> Session {
    let parsed = config::parse(json.as_bytes(), &|_| None).expect("valid config");
    let mut session = Session::new(Rc::new(parsed.config), KEY);
    if !hello.is_empty() {
        let upstream = applied(&session.on_client_data(hello).verdict, hello);
        session.trim();
        let replies = serve(&upstream);
        let to_client = applied(&session.on_server_data(&replies).verdict, &replies);
        session.trim();
        assert_eq!(to_client, b"+OK\r\n", "{json}");
    }
    assert!(session.is_authenticated(), "{json}");
    session.drain_events().for_each(drop);
    session
}

/// One round trip: the pipeline to the server, its replies to the client.
fn round_trip(session: &mut Session, requests: &[u8], replies: &[u8]) -> (usize, usize) {
    let sent = match session.on_client_data(requests).verdict {
        Verdict::Unchanged => requests.len(),
        Verdict::Replace(bytes) => bytes.len(),
    };
    let received = match session.on_server_data(replies).verdict {
        Verdict::Unchanged => replies.len(),
        Verdict::Replace(bytes) => bytes.len(),
    };
    session.trim();
    session.drain_events().for_each(drop);
    (sent, received)
}

fn session(c: &mut Criterion) {
    let requests = set_pipeline(16);
    let replies = pipeline(|_, out| out.extend_from_slice(b"+OK\r\n"));
    let cases = [
        (
            "auth",
            r#"{"downstream": {"password": "client-pw"}, "upstream": {"password": "server-secret"}}"#,
            &b"AUTH client-pw\r\n"[..],
        ),
        ("passthrough", "{}", &b""[..]),
        (
            "acl_restricted",
            r#"{"downstream": {"users": ["user app on >app-pw ~key:* -@all +get +set"]},
                "upstream": {"password": "server-secret"}}"#,
            &b"AUTH app app-pw\r\n"[..],
        ),
    ];
    let mut group = c.benchmark_group("session");
    group.throughput(Throughput::Elements(PIPELINE as u64));
    for (name, json, hello) in cases {
        let mut session = connected(json, hello);
        // Pass-through: the first chunk is the pipeline itself; check a
        // second round trip too (the one the benchmark repeats).
        for _ in 0..2 {
            let mut upstream = Vec::new();
            let step = session.on_client_data(&requests);
            upstream.extend_from_slice(&applied(&step.verdict, &requests));
            assert_eq!(upstream, requests, "{name}: the pipeline goes on unchanged");
            let step = session.on_server_data(&replies);
            assert_eq!(
                applied(&step.verdict, &replies),
                replies,
                "{name}: the replies come back unchanged"
            );
            session.trim();
            let events: Vec<_> = session.drain_events().collect();
            assert!(events.is_empty(), "{name}: {events:?}");
        }
        group.bench_function(BenchmarkId::new("set_16B_round_trip", name), |b| {
            b.iter(|| round_trip(&mut session, black_box(&requests), black_box(&replies)));
        });
    }
    group.finish();
}

// ------------------------------------------------------------ lookups and ACLs

fn command_lookup(c: &mut Criterion) {
    let names: [&[u8]; 12] = [
        b"get",
        b"SET",
        b"hset",
        b"HGetAll",
        b"xadd",
        b"CLIENT",
        b"mget",
        b"Expire",
        b"zadd",
        b"evalsha",
        b"nosuchcommand",
        b"GETX",
    ];
    let found = names
        .iter()
        .filter(|name| command::lookup_command_for(name, ServerVersion::Redis70).is_some())
        .count();
    assert_eq!(found, 10);
    let mut group = c.benchmark_group("command_lookup");
    group.throughput(Throughput::Elements(names.len() as u64));
    group.bench_function("mixed_case_12_names", |b| {
        b.iter(|| {
            for name in names {
                black_box(command::lookup_command_for(
                    black_box(name),
                    ServerVersion::Redis70,
                ));
            }
        });
    });
    group.finish();
}

fn acl_check(c: &mut Criterion) {
    let parsed = config::parse(
        br#"{"downstream": {"users": [
            "user admin on >admin-pw ~* &* +@all",
            "user app on >app-pw ~key:* ~counter:* -@all +get +set +mget"]}}"#,
        &|_| None,
    )
    .expect("valid config");
    let users = parsed.config.users();
    let permissions = |name: &[u8]| -> &Permissions {
        users.permissions_of(Some(users.find(name).expect("user")))
    };
    let commands: [(&str, Vec<&[u8]>); 3] = [
        ("get", vec![b"GET", b"key:0001"]),
        ("set", vec![b"SET", b"key:0001", b"0123456789abcdef"]),
        (
            "mget",
            vec![
                b"MGET",
                b"key:0001",
                b"key:0002",
                b"counter:7",
                b"key:0004",
                b"key:0005",
            ],
        ),
    ];
    let mut group = c.benchmark_group("acl_check");
    group.throughput(Throughput::Elements(commands.len() as u64));
    for user in ["admin", "app"] {
        let permissions = permissions(user.as_bytes());
        let resolved: Vec<_> = commands
            .iter()
            .map(|(name, argv)| (command::resolve(argv).expect(name), argv.as_slice()))
            .collect();
        let mut scratch = Scratch::default();
        for (spec, args) in &resolved {
            let argv = Argv {
                args,
                whole: |_| true,
            };
            assert!(
                permissions.check(spec, &argv, &mut scratch).is_ok(),
                "{user}"
            );
        }
        group.bench_function(BenchmarkId::new("get_set_mget", user), |b| {
            b.iter(|| {
                for (spec, args) in &resolved {
                    let argv = Argv {
                        args: black_box(args),
                        whole: |_| true,
                    };
                    black_box(permissions.check(spec, &argv, &mut scratch)).ok();
                }
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = core;
    config = configured();
    targets = request_framing, reply_framing, session, command_lookup, acl_check
}
criterion_main!(core);
