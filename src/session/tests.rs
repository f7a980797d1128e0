//! Exact-byte tests of the session, with a tiny scripted server standing in
//! for Redis. (The end-to-end tests in `e2e/` use a real Redis and Envoy;
//! these pin down the state machine itself, including every chunking.)

use super::*;
use crate::resp::output::Verdict;
use crate::resp::request::{Disposition, Event, RequestParser};

const SERVER_PASSWORD: &[u8] = b"server-secret";

fn config(json: &str) -> Rc<Config> {
    let parsed = crate::config::parse(json.as_bytes(), &|_| None).expect("valid config");
    Rc::new(parsed.config)
}

fn standard() -> Rc<Config> {
    config(
        r#"{"downstream": {"password": "client-pw", "users": ["user alice on >alicepw ~* &* +@all"],
            "max_auth_failures": 3},
            "upstream": {"password": "server-secret"}}"#,
    )
}

/// A scripted stand-in for Redis: parses what the session sends and answers
/// the few commands these tests use, the way Redis 7.0 does.
#[derive(Default)]
struct FakeRedis {
    parser: RequestParser,
    authenticated: bool,
    subscribed: i64,
    in_multi: bool,
    queued: usize,
    closed: bool,
    /// Every command received, for leak checks.
    received: Vec<Vec<Vec<u8>>>,
}

impl FakeRedis {
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut replies = Vec::new();
        let mut out = Output::default();
        out.begin();
        self.parser.begin_chunk();
        let mut pos = 0;
        loop {
            if self.closed {
                break;
            }
            match self.parser.next(bytes, &mut pos, &mut out, true) {
                Event::NeedMore => break,
                Event::Decide(_) => self.parser.decide(bytes, &mut out, Disposition::Collect),
                Event::Command(args) => {
                    let argv: Vec<Vec<u8>> = (0..args.argc())
                        .map(|i| args.get(i).unwrap().to_vec())
                        .collect();
                    self.received.push(argv.clone());
                    self.run(&argv, &mut replies);
                }
                Event::Empty | Event::Forwarded => {}
                Event::Error(_) => panic!("session sent malformed RESP"),
            }
        }
        self.parser.end_chunk(bytes);
        replies
    }

    fn run(&mut self, argv: &[Vec<u8>], out: &mut Vec<u8>) {
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        if !self.authenticated && !matches!(name.as_str(), "auth" | "quit") {
            if name.starts_with("era:") {
                unknown_command(&argv[0], out);
            } else {
                out.extend_from_slice(b"-NOAUTH Authentication required.\r\n");
            }
            return;
        }
        if self.in_multi && !matches!(name.as_str(), "exec" | "discard" | "multi") {
            if name.starts_with("era:") {
                unknown_command(&argv[0], out);
            } else {
                self.queued += 1;
                out.extend_from_slice(b"+QUEUED\r\n");
            }
            return;
        }
        match name.as_str() {
            "auth" => {
                if argv.last().map(Vec::as_slice) == Some(SERVER_PASSWORD) {
                    self.authenticated = true;
                    out.extend_from_slice(b"+OK\r\n");
                } else {
                    out.extend_from_slice(replies::WRONGPASS);
                }
            }
            "ping" if argv.len() == 2 => {
                if self.subscribed > 0 {
                    out.extend_from_slice(b"*2\r\n$4\r\npong\r\n");
                }
                crate::resp::write_bulk(out, &argv[1]);
            }
            "ping" => out.extend_from_slice(b"+PONG\r\n"),
            "quit" => {
                out.extend_from_slice(b"+OK\r\n");
                self.closed = true;
            }
            "get" => out.extend_from_slice(b"$3\r\nbar\r\n"),
            "echo" => crate::resp::write_bulk(out, &argv[1]),
            "reset" => {
                self.authenticated = false;
                self.subscribed = 0;
                self.in_multi = false;
                out.extend_from_slice(b"+RESET\r\n");
            }
            "hello" => out.extend_from_slice(b"%1\r\n$5\r\nproto\r\n:3\r\n"),
            "subscribe" => {
                for channel in &argv[1..] {
                    self.subscribed += 1;
                    out.extend_from_slice(b"*3\r\n$9\r\nsubscribe\r\n");
                    crate::resp::write_bulk(out, channel);
                    out.extend_from_slice(format!(":{}\r\n", self.subscribed).as_bytes());
                }
            }
            "multi" => {
                self.in_multi = true;
                self.queued = 0;
                out.extend_from_slice(b"+OK\r\n");
            }
            "exec" => {
                self.in_multi = false;
                out.extend_from_slice(format!("*{}\r\n", self.queued).as_bytes());
                for _ in 0..self.queued {
                    out.extend_from_slice(b"$3\r\nbar\r\n");
                }
            }
            other if other.starts_with("era:") => unknown_command(&argv[0], out),
            _ => out.extend_from_slice(b"+OK\r\n"),
        }
    }
}

fn unknown_command(name: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"-ERR unknown command '");
    out.extend_from_slice(name);
    out.extend_from_slice(b"', with args beginning with: \r\n");
}

/// A session wired to a fake server; records both directions.
struct Rig {
    session: Session,
    server: FakeRedis,
    to_client: Vec<u8>,
    to_server: Vec<u8>,
    closed_by_filter: bool,
}

fn apply(verdict: Verdict<'_>, input: &[u8], sink: &mut Vec<u8>) {
    match verdict {
        Verdict::Unchanged => sink.extend_from_slice(input),
        Verdict::Replace(bytes) => sink.extend_from_slice(bytes),
    }
}

impl Rig {
    fn new(config: Rc<Config>) -> Self {
        Self {
            session: Session::new(config, 0xfeed_face_cafe_beef),
            server: FakeRedis::default(),
            to_client: Vec::new(),
            to_server: Vec::new(),
            closed_by_filter: false,
        }
    }

    /// Sends client bytes in chunks of `chunk`, letting the server answer
    /// each chunk right away, and returns what the client received.
    fn send(&mut self, bytes: &[u8], chunk: usize) -> Vec<u8> {
        let before = self.to_client.len();
        for piece in bytes.chunks(chunk.max(1)) {
            let step = self.session.on_client_data(piece);
            self.closed_by_filter |= step.close;
            let mut upstream = Vec::new();
            apply(step.verdict, piece, &mut upstream);
            self.to_server.extend_from_slice(&upstream);
            if self.server.closed {
                continue;
            }
            let replies = self.server.feed(&upstream);
            // Hand the replies back in the same chunking.
            for reply_piece in replies.chunks(chunk.max(1)) {
                let step = self.session.on_server_data(reply_piece);
                self.closed_by_filter |= step.close;
                apply(step.verdict, reply_piece, &mut self.to_client);
            }
        }
        self.to_client[before..].to_vec()
    }

    /// Delivers unsolicited server bytes (pub/sub messages).
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let step = self.session.on_server_data(bytes);
        apply(step.verdict, bytes, &mut got);
        self.to_client.extend_from_slice(&got);
        got
    }
}

/// Runs the same exchange whole, byte by byte and in 3-byte chunks, and
/// checks the client sees the same bytes each time.
fn exchange(config: Rc<Config>, input: &[u8]) -> (Vec<u8>, Rig) {
    let mut whole = Rig::new(config.clone());
    let got = whole.send(input, input.len());
    for chunk in [1, 3] {
        let mut rig = Rig::new(config.clone());
        assert_eq!(
            String::from_utf8_lossy(&rig.send(input, chunk)),
            String::from_utf8_lossy(&got),
            "chunk size {chunk}"
        );
    }
    (got, whole)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn refuses_commands_before_auth_without_telling_the_server() {
    let (got, rig) = exchange(
        standard(),
        b"*2\r\n$3\r\nGET\r\n$6\r\nsecret\r\nSET k v\r\nFOO\r\n",
    );
    assert_eq!(
        text(&got),
        "-NOAUTH Authentication required.\r\n\
         -NOAUTH Authentication required.\r\n\
         -ERR unknown command 'FOO', with args beginning with: \r\n"
    );
    // The server saw the proxy's AUTH and markers, never the client's commands.
    for argv in &rig.server.received {
        let name = text(&argv[0]).to_ascii_lowercase();
        assert!(name == "auth" || name == "ping", "{argv:?}");
    }
    assert!(!text(&rig.to_server).contains("secret\r\n\r\n"));
}

#[test]
fn answers_auth_and_then_forwards() {
    let (got, rig) = exchange(
        standard(),
        b"AUTH client-pw\r\n*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n",
    );
    assert_eq!(text(&got), "+OK\r\n$3\r\nbar\r\n");
    assert!(rig.session.is_authenticated());
    assert!(!text(&rig.to_server).contains("client-pw"));
    assert!(text(&rig.to_server).starts_with("*2\r\n$4\r\nAUTH\r\n$13\r\nserver-secret\r\n"));
}

#[test]
fn named_users_and_wrong_passwords() {
    let (got, _) = exchange(
        standard(),
        b"AUTH alice wrong\r\nAUTH alice alicepw\r\nAUTH nobody x\r\nGET foo\r\n",
    );
    assert_eq!(
        text(&got),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n\
         +OK\r\n\
         -WRONGPASS invalid username-password pair or user is disabled.\r\n\
         $3\r\nbar\r\n",
        "a failed re-AUTH keeps the earlier identity"
    );
}

#[test]
fn closes_after_too_many_failures() {
    let (got, rig) = exchange(
        standard(),
        b"AUTH a\r\nAUTH b\r\nAUTH c\r\nAUTH client-pw\r\n",
    );
    assert_eq!(text(&got), text(&replies::WRONGPASS.repeat(3)));
    assert!(rig.server.closed, "QUIT was sent after the last error");
    assert!(!text(&rig.to_server).contains("client-pw"));
}

#[test]
fn protocol_errors_reply_then_close() {
    let (got, rig) = exchange(standard(), b"PING\r\n*1\r\n$x\r\nPING\r\n");
    assert_eq!(
        text(&got),
        "-NOAUTH Authentication required.\r\n-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(rig.server.closed);
}

#[test]
fn quit_and_reset_before_auth() {
    let (got, _) = exchange(standard(), b"RESET\r\nQUIT\r\nPING\r\n");
    assert_eq!(text(&got), "+RESET\r\n+OK\r\n");
}

#[test]
fn hello_with_auth_is_rewritten_without_credentials() {
    let (got, rig) = exchange(standard(), b"HELLO 3 AUTH alice alicepw SETNAME app\r\n");
    assert_eq!(text(&got), "%1\r\n$5\r\nproto\r\n:3\r\n");
    let last = rig.server.received.last().unwrap();
    assert_eq!(
        last.iter().map(|a| text(a)).collect::<Vec<_>>(),
        ["HELLO", "3", "SETNAME", "app"]
    );
    assert!(!text(&rig.to_server).contains("alicepw"));
}

#[test]
fn hello_errors_follow_redis() {
    let (got, _) = exchange(
        standard(),
        b"HELLO\r\nHELLO 4\r\nHELLO x\r\nHELLO 3 AUTH\r\nHELLO 3 AUTH alice bad\r\nHELLO 3 SETNAME a\\x20b\r\n",
    );
    assert_eq!(
        text(&got),
        text(
            &[
                replies::HELLO_NOAUTH,
                replies::NOPROTO,
                replies::HELLO_BAD_VERSION,
                b"-ERR Syntax error in HELLO option 'AUTH'\r\n",
                replies::WRONGPASS,
                replies::HELLO_NOAUTH,
            ]
            .concat()
        )
    );
}

#[test]
fn reset_logs_the_client_out_but_keeps_the_server_in() {
    let (got, rig) = exchange(
        standard(),
        b"AUTH client-pw\r\nRESET\r\nGET foo\r\nAUTH client-pw\r\nGET foo\r\n",
    );
    assert_eq!(
        text(&got),
        "+OK\r\n+RESET\r\n-NOAUTH Authentication required.\r\n+OK\r\n$3\r\nbar\r\n"
    );
    assert!(rig.server.authenticated);
}

#[test]
fn rejected_proxy_credentials_name_the_cause() {
    let config =
        config(r#"{"downstream": {"password": "client-pw"}, "upstream": {"password": "not-it"}}"#);
    let (got, _) = exchange(config, b"AUTH client-pw\r\nGET foo\r\n");
    let expected = "-ERR envoy-redis-auth: the Redis server rejected the proxy's credentials: \
                    WRONGPASS invalid username-password pair or user is disabled.\r\n";
    assert_eq!(text(&got), expected.repeat(2));
}

#[test]
fn without_downstream_auth_behaves_like_a_passwordless_redis() {
    let config = config(r#"{"upstream": {"password": "server-secret"}}"#);
    let (got, rig) = exchange(
        config,
        b"GET foo\r\nAUTH x\r\nAUTH default anything\r\nAUTH alice x\r\n",
    );
    assert_eq!(
        text(&got),
        text(
            &[
                &b"$3\r\nbar\r\n"[..],
                replies::AUTH_WITHOUT_PASSWORD,
                replies::OK,
                replies::WRONGPASS
            ]
            .concat()
        )
    );
    assert!(!text(&rig.to_server).contains("anything"));
}

#[test]
fn auth_and_hello_auth_are_refused_inside_multi() {
    let (got, _) = exchange(
        standard(),
        b"AUTH client-pw\r\nMULTI\r\nGET a\r\nAUTH client-pw\r\nEXEC\r\n",
    );
    assert_eq!(
        text(&got),
        "+OK\r\n+OK\r\n+QUEUED\r\n-ERR Command not allowed inside a transaction\r\n*1\r\n$3\r\nbar\r\n"
    );
}

#[test]
fn subscribed_resp2_connections_get_the_context_error_and_markers_still_match() {
    let mut rig = Rig::new(standard());
    rig.send(b"AUTH client-pw\r\nSUBSCRIBE ch\r\n", 100);
    let message = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";
    assert_eq!(rig.push(message), message);
    let got = rig.send(b"AUTH client-pw\r\n", 100);
    assert_eq!(
        text(&got),
        "-ERR Can't execute 'auth': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
}

#[test]
fn large_values_stream_untouched() {
    let mut rig = Rig::new(standard());
    rig.send(b"AUTH client-pw\r\n", 100);
    let mut command = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n".to_vec();
    command.resize(command.len() + 2_000_000, b'x');
    command.extend_from_slice(b"\r\n");
    let mut unchanged = 0;
    for piece in command.chunks(64 * 1024) {
        if rig.session.on_client_data(piece).verdict == Verdict::Unchanged {
            unchanged += 1;
        }
    }
    assert!(unchanged >= command.len() / (64 * 1024) - 1);
    let mut reply = b"$2000000\r\n".to_vec();
    reply.resize(reply.len() + 2_000_000, b'\r');
    reply.extend_from_slice(b"\r\n");
    let mut got = Vec::new();
    for piece in reply.chunks(64 * 1024) {
        apply(rig.session.on_server_data(piece).verdict, piece, &mut got);
    }
    assert_eq!(got, reply);
}

#[test]
fn non_resp_from_the_server_closes() {
    let mut rig = Rig::new(standard());
    rig.send(b"AUTH client-pw\r\n", 100);
    let step = rig.session.on_server_data(b"garbage\r\n");
    assert!(step.close);
}

#[test]
fn cross_protocol_attacks_close_without_reply() {
    let (got, rig) = exchange(standard(), b"PING\r\nPOST / HTTP/1.1\r\nPING\r\n");
    assert_eq!(text(&got), "-NOAUTH Authentication required.\r\n");
    assert!(rig.server.closed);
}

#[test]
fn suppressed_marker_replies_are_dropped_in_order() {
    // Simulate CLIENT REPLY OFF: the server never answers marker 0.
    let mut rig = Rig::new(standard());
    rig.send(b"AUTH client-pw\r\n", 100);
    let _ = rig
        .session
        .on_client_data(b"AUTH wrong\r\nAUTH client-pw\r\n");
    let mut got = Vec::new();
    let mut reply = Vec::new();
    crate::resp::write_bulk(&mut reply, b"era:feedfacecafebeef:2");
    let step = rig.session.on_server_data(&reply);
    apply(step.verdict, &reply, &mut got);
    assert_eq!(text(&got), "+OK\r\n");
}

fn command_strategy() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    prop_oneof![
        Just(b"AUTH client-pw\r\n".to_vec()),
        Just(b"AUTH alice alicepw\r\n".to_vec()),
        Just(b"AUTH wrong\r\n".to_vec()),
        Just(b"*2\r\n$4\r\nAUTH\r\n$9\r\nclient-pw\r\n".to_vec()),
        Just(b"HELLO 3 AUTH alice alicepw\r\n".to_vec()),
        Just(b"HELLO 2\r\n".to_vec()),
        Just(b"GET foo\r\n".to_vec()),
        Just(b"*2\r\n$4\r\nECHO\r\n$4\r\nab\r\n\r\n".to_vec()),
        Just(b"PING\r\n".to_vec()),
        Just(b"RESET\r\n".to_vec()),
        Just(b"MULTI\r\n".to_vec()),
        Just(b"EXEC\r\n".to_vec()),
        Just(b"NOSUCH x\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    #[test]
    fn pipelines_are_answered_the_same_in_any_chunking(
        commands in proptest::collection::vec(command_strategy(), 1..12),
        chunk in 1usize..17,
    ) {
        let input = commands.concat();
        let mut whole = Rig::new(standard());
        let expected = whole.send(&input, input.len());
        let mut rig = Rig::new(standard());
        proptest::prop_assert_eq!(text(&rig.send(&input, chunk)), text(&expected));
        for rig in [&whole, &rig] {
            let upstream = text(&rig.to_server);
            proptest::prop_assert!(!upstream.contains("client-pw"));
            proptest::prop_assert!(!upstream.contains("alicepw"));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        client in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        server in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        chunk in 1usize..9,
    ) {
        let mut session = Session::new(standard(), 1);
        for (c, s) in client.chunks(chunk).zip(server.chunks(chunk)) {
            let _ = session.on_client_data(c);
            let _ = session.on_server_data(s);
        }
        let _ = session.drain_events().count();
    }
}

#[test]
fn pushes_before_a_reset_keep_their_place() {
    let mut rig = Rig::new(standard());
    rig.send(b"AUTH client-pw\r\n", 100);
    // Client pipeline: ECHO, then RESET; the server answers the ECHO, pushes
    // a message, then answers RESET and the proxy's AUTH and marker.
    let step = rig.session.on_client_data(b"ECHO a\r\nRESET\r\n");
    let mut upstream = Vec::new();
    apply(step.verdict, b"ECHO a\r\nRESET\r\n", &mut upstream);
    let replies = rig.server.feed(&upstream);
    let push = b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";
    let echo_len = b"$1\r\na\r\n".len();
    let mut got = Vec::new();
    for piece in [&replies[..echo_len], &push[..], &replies[echo_len..]] {
        apply(rig.session.on_server_data(piece).verdict, piece, &mut got);
    }
    assert_eq!(text(&got), format!("$1\r\na\r\n{}+RESET\r\n", text(push)));
}
