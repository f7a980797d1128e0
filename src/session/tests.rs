//! Exact-byte tests of the session, with a small model server standing in
//! for Redis ([`crate::testkit`]). (The end-to-end tests in `e2e/` use a
//! real Redis and Envoy; these pin down the state machine itself, including
//! every chunking.)

use super::*;
use crate::resp::output::Verdict;
use crate::testkit::ModelRedis;
use marker::MarkerKey;
use pending::Pending;

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

/// A session wired to a model server; records both directions.
struct Rig {
    session: Session,
    server: ModelRedis,
    to_client: Vec<u8>,
    to_server: Vec<u8>,
    /// The first close the session asked for (after which the host closes).
    close: Close,
    paused: bool,
}

const KEY: [u8; KEY_LEN] = [0x5a; KEY_LEN];

fn apply(verdict: Verdict<'_>, input: &[u8], sink: &mut Vec<u8>) {
    match verdict {
        Verdict::Unchanged => sink.extend_from_slice(input),
        Verdict::Replace(bytes) => sink.extend_from_slice(bytes),
    }
}

impl Rig {
    fn new(config: Rc<Config>) -> Self {
        let mut server = ModelRedis::new(SERVER_PASSWORD);
        server.set_value(b"foo", b"bar");
        Self::with_server(config, server)
    }

    fn with_server(config: Rc<Config>, server: ModelRedis) -> Self {
        Self {
            session: Session::new(config, KEY),
            server,
            to_client: Vec::new(),
            to_server: Vec::new(),
            close: Close::No,
            paused: false,
        }
    }

    fn note_close(&mut self, close: Close) {
        if self.close == Close::No && matches!(close, Close::AfterWrite | Close::Now) {
            self.close = close;
        }
    }

    /// Sends client bytes in chunks of `chunk`, letting the server answer
    /// each chunk right away, and returns what the client received.
    fn send(&mut self, bytes: &[u8], chunk: usize) -> Vec<u8> {
        let before = self.to_client.len();
        for piece in bytes.chunks(chunk.max(1)) {
            let step = self.session.on_client_data(piece);
            let close = step.close;
            let mut upstream = Vec::new();
            let pause = step.pause;
            match pause {
                // Held by the host; the session releases it with its own bytes.
                Pause::Keep => {}
                Pause::Start => {
                    apply(step.verdict, piece, &mut upstream);
                    self.paused = true;
                }
                Pause::No => apply(step.verdict, piece, &mut upstream),
            }
            self.note_close(close);
            self.upstream(upstream, chunk);
        }
        self.to_client[before..].to_vec()
    }

    /// Hands bytes to the server and its replies back through the session,
    /// in the same chunking, following releases of held bytes.
    fn upstream(&mut self, mut upstream: Vec<u8>, chunk: usize) {
        while !upstream.is_empty() {
            self.to_server.extend_from_slice(&upstream);
            let replies = self.server.feed(&upstream);
            upstream.clear();
            for reply_piece in replies.chunks(chunk.max(1)) {
                let step = self.session.on_server_data(reply_piece);
                let close = step.close;
                if let Some(released) = step.release {
                    upstream.extend_from_slice(released);
                    self.paused = false;
                }
                apply(step.verdict, reply_piece, &mut self.to_client);
                self.note_close(close);
            }
        }
    }

    /// Delivers unsolicited server bytes (pub/sub messages).
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let step = self.session.on_server_data(bytes);
        apply(step.verdict, bytes, &mut got);
        self.to_client.extend_from_slice(&got);
        got
    }

    /// What reached the server, command by command.
    fn commands(&self) -> Vec<String> {
        self.server
            .received
            .iter()
            .map(|r| r.argv.iter().map(|a| text(a)).collect::<Vec<_>>().join(" "))
            .collect()
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
    for received in &rig.server.received {
        assert!(received.from_proxy, "{received:?}");
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
    assert_eq!(rig.close, Close::AfterWrite, "closed once the error is out");
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
    assert_eq!(rig.close, Close::AfterWrite);
}

#[test]
fn quit_and_reset_before_auth() {
    let (got, _) = exchange(standard(), b"RESET\r\nQUIT\r\nPING\r\n");
    assert_eq!(text(&got), "+RESET\r\n+OK\r\n");
}

#[test]
fn hello_with_auth_is_rewritten_without_credentials() {
    let (got, rig) = exchange(standard(), b"HELLO 3 AUTH alice alicepw SETNAME app\r\n");
    assert_eq!(
        text(&got),
        "%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n"
    );
    assert_eq!(rig.commands().last().unwrap(), "HELLO 3 SETNAME app");
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
                crate::command::ServerVersion::Redis70.texts().hello_noauth,
                replies::NOPROTO,
                replies::HELLO_BAD_VERSION,
                b"-ERR Syntax error in HELLO option 'AUTH'\r\n",
                replies::WRONGPASS,
                crate::command::ServerVersion::Redis70.texts().hello_noauth,
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
fn without_downstream_auth_goes_to_the_server() {
    // The proxy owns no identities: the server judges the client's AUTH.
    let config = config(r#"{"upstream": {"password": "server-secret"}}"#);
    let (got, rig) = exchange(
        config,
        b"GET foo\r\nAUTH x\r\nAUTH default anything\r\nAUTH server-secret\r\nHELLO 3 AUTH default x\r\n",
    );
    assert_eq!(
        text(&got),
        text(
            &[
                &b"$3\r\nbar\r\n"[..],
                replies::WRONGPASS,
                replies::WRONGPASS,
                replies::OK,
                replies::WRONGPASS,
            ]
            .concat()
        )
    );
    assert_eq!(rig.commands()[2], "AUTH x");
    assert_eq!(rig.commands().last().unwrap(), "HELLO 3 AUTH default x");
}

#[test]
fn auth_and_hello_auth_are_refused_inside_multi() {
    let (got, _) = exchange(
        standard(),
        b"AUTH client-pw\r\nMULTI\r\nGET foo\r\nAUTH client-pw\r\nEXEC\r\n",
    );
    // Like any command Redis refuses while queueing, it aborts the EXEC.
    assert_eq!(
        text(&got),
        "+OK\r\n+OK\r\n+QUEUED\r\n-ERR Command not allowed inside a transaction\r\n\
         -EXECABORT Transaction discarded because of previous errors.\r\n"
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
    assert_eq!(step.close, Close::Now);
}

#[test]
fn cross_protocol_attacks_close_without_reply() {
    // In one read, Redis drops the replies it has not written yet.
    let mut rig = Rig::new(standard());
    let got = rig.send(b"PING\r\nPOST / HTTP/1.1\r\nPING\r\n", 100);
    assert_eq!(text(&got), "");
    assert!(rig.server.closed);
    assert_eq!(rig.close, Close::AfterWrite);
    // A reply to an earlier read is written before the attack arrives.
    let mut rig = Rig::new(standard());
    let got = rig.send(b"PING\r\n", 100);
    let got = [got, rig.send(b"Host: x\r\nPING\r\n", 100)].concat();
    assert_eq!(text(&got), "-NOAUTH Authentication required.\r\n");
    assert_eq!(rig.close, Close::AfterWrite);
}

#[test]
fn suppressed_marker_replies_are_dropped_in_order() {
    // CLIENT REPLY SKIP suppresses the next reply: a local one too.
    let (got, _) = exchange(
        standard(),
        b"AUTH client-pw\r\nCLIENT REPLY SKIP\r\nAUTH wrong\r\nAUTH client-pw\r\n\
          CLIENT REPLY OFF\r\nAUTH x\r\nGET foo\r\nCLIENT REPLY ON\r\nAUTH y\r\n",
    );
    assert_eq!(
        text(&got),
        text(&[replies::OK, replies::OK, replies::OK, replies::WRONGPASS].concat())
    );
}

#[test]
fn a_large_command_the_fast_path_judged_is_not_kept() {
    // MSET's check reads every argument, values included: the fast path
    // copies them for the gate, and must not keep that copy afterwards.
    let config = config(
        r#"{"downstream": {"password": "client-pw", "users": ["user bob on >bobpw ~key:* +mset"]},
            "upstream": {"password": "server-secret"}}"#,
    );
    let mut rig = Rig::new(config);
    assert_eq!(text(&rig.send(b"AUTH bob bobpw\r\n", 100)), "+OK\r\n");
    let value = vec![b'v'; 60 * 1024];
    let mut mset = Vec::new();
    crate::resp::write_command(
        &mut mset,
        &[&b"MSET"[..], b"key:1", &value, b"key:2", &value],
    );
    let step = rig.session.on_client_data(&mset);
    assert_eq!(
        step.verdict,
        Verdict::Unchanged,
        "forwarded whole, untouched"
    );
    rig.session.trim();
    let held = rig.session.held_bytes();
    assert!(held <= 16 * 1024, "{held} bytes held after the chunk");
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

/// Multibulk commands, which the fast paths take when they lie whole in a
/// chunk: for users allowed everything and for a restricted one. (No
/// SUBSCRIBE: whether the session has seen its confirmation when a later
/// command comes depends on when the server answers, which the chunking
/// changes here.)
fn multibulk_strategy() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let words: &[&[&str]] = &[
        &["AUTH", "client-pw"],
        &["AUTH", "bob", "bobpw"],
        &["AUTH", "alice", "alicepw"],
        &["HELLO", "3"],
        &["HELLO", "2"],
        &["GET", "key:1"],
        &["get", "other"],
        &["SET", "key:1", "v"],
        &["SET", "other", "v"],
        &["MGET", "key:1", "key:2"],
        &["MGET", "key:1", "other"],
        &["DEL", "key:1"],
        &["PING"],
        &["ECHO", ""],
        &["SELECT", "0"],
        &["SELECT", "1"],
        &["CONFIG", "GET", "maxmemory"],
        &["CLIENT", "ID"],
        &["MULTI"],
        &["EXEC"],
        &["DISCARD"],
        &["RESET"],
        &["NOSUCH", "x"],
        &["GET"],
    ];
    proptest::sample::select(words).prop_map(|args| {
        let mut out = Vec::new();
        crate::resp::write_command(&mut out, args);
        out
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    #[test]
    fn the_fast_paths_change_nothing(
        commands in proptest::collection::vec(multibulk_strategy(), 1..16),
        restricted in proptest::prelude::any::<bool>(),
    ) {
        // Whole, the pipeline meets the fast paths; a byte at a time it
        // never does (no command or reply lies whole in one byte). Both must
        // give the client and the server the same bytes.
        let config = config(
            r#"{"downstream": {"password": "client-pw", "users": [
                    "user alice on >alicepw ~* &* +@all",
                    "user bob on >bobpw ~key:* &ch -@all +get +set +mget +ping +echo +select|0 +multi +exec +discard +reset +subscribe +hello +client|id"]},
                "upstream": {"password": "server-secret"}}"#,
        );
        let login: &[u8] = if restricted {
            b"*3\r\n$4\r\nAUTH\r\n$3\r\nbob\r\n$5\r\nbobpw\r\n"
        } else {
            b"*2\r\n$4\r\nAUTH\r\n$9\r\nclient-pw\r\n"
        };
        let input = [login, &commands.concat()].concat();
        let mut whole = Rig::new(config.clone());
        let whole_replies = whole.send(&input, input.len());
        let mut by_byte = Rig::new(config);
        let byte_replies = by_byte.send(&input, 1);
        proptest::prop_assert_eq!(text(&whole_replies), text(&byte_replies));
        proptest::prop_assert_eq!(text(&whole.to_server), text(&by_byte.to_server));
    }

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
        let mut session = Session::new(standard(), KEY);
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

#[test]
fn sync_waits_for_the_proxys_own_replies() {
    // SYNC as the first command: the proxy's AUTH goes first, and Redis
    // would refuse SYNC with that reply pending. It is held until a marker
    // behind the AUTH comes back, then released ahead of anything the
    // client sent meanwhile, and the stream turns raw.
    let mut rig = Rig::new(standard());
    let got = rig.send(b"AUTH client-pw\r\n", 100);
    assert_eq!(text(&got), "+OK\r\n");
    let mut rig = Rig::new(config(
        r#"{"downstream": {"users": ["user default on nopass ~* &* +@all"]},
            "upstream": {"password": "server-secret"}}"#,
    ));
    let step = rig.session.on_client_data(b"SYNC\r\n");
    assert_eq!(step.pause, Pause::Start);
    let mut first = Vec::new();
    apply(step.verdict, b"SYNC\r\n", &mut first);
    assert!(
        !text(&first).contains("SYNC"),
        "held back: {}",
        text(&first)
    );
    // The client's next bytes stay with the host while held.
    assert_eq!(rig.session.on_client_data(b"x").pause, Pause::Keep);
    let replies = rig.server.feed(&first);
    assert!(!rig.server.replicating);
    let step = rig.session.on_server_data(&replies);
    let released = step.release.map(<[u8]>::to_vec).unwrap();
    let mut got = Vec::new();
    apply(step.verdict, &replies, &mut got);
    assert_eq!(text(&got), "", "neither the AUTH reply nor the marker's");
    assert_eq!(text(&released), "SYNC\r\n");
    let stream = rig.server.feed(&released);
    assert!(rig.server.replicating);
    let step = rig.session.on_server_data(&stream);
    assert_eq!(step.verdict, Verdict::Unchanged, "raw from here");
    assert_eq!(
        rig.session.on_client_data(b"+ACK\r\n").verdict,
        Verdict::Unchanged
    );
}

#[test]
fn sync_is_held_until_the_server_has_taken_it() {
    // Nothing sent after SYNC passes unparsed before the server says yes.
    let mut rig = Rig::new(standard());
    rig.send(b"AUTH client-pw\r\n", 100);
    let got = rig.send(b"SYNC\r\nAUTH client-pw\r\n", 100);
    assert_eq!(text(&got), "+FULLRESYNC 0 0\r\n$3\r\nrdb");
    assert!(!rig.paused);
    // The model stopped parsing at SYNC; what followed went to it raw.
    assert!(text(&rig.to_server).ends_with("SYNC\r\nAUTH client-pw\r\n"));
}

#[test]
fn a_refused_sync_ends_the_connection_and_lets_nothing_after_it_through() {
    let mut rig = Rig::new(standard());
    rig.send(b"AUTH client-pw\r\nSUBSCRIBE ch\r\n", 100);
    // Redis refuses SYNC on a subscribed RESP2 connection; the AUTH behind it
    // was never parsed and must not reach the server.
    let got = rig.send(b"SYNC\r\nAUTH alice alicepw\r\n", 100);
    assert_eq!(
        text(&got),
        "-ERR Can't execute 'sync': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    assert_eq!(rig.close, Close::AfterWrite);
    assert!(!text(&rig.to_server).contains("alicepw"));
}

#[test]
fn local_replies_survive_a_server_that_refuses_everything() {
    // -LOADING, -BUSY, -MASTERDOWN: Redis checks them after a command's
    // existence, so the markers still get their unknown-command error.
    for refusal in [
        &b"-LOADING Redis is loading the dataset in memory\r\n"[..],
        b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n",
        b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
    ] {
        let mut server = ModelRedis::new(SERVER_PASSWORD);
        server.refusal = Some(refusal.to_vec());
        let mut rig = Rig::with_server(standard(), server);
        let got = rig.send(b"GET k\r\nAUTH wrong\r\nAUTH client-pw\r\nGET k\r\nAUTH client-pw\r\n", 100);
        assert_eq!(
            text(&got),
            text(
                &[
                    &b"-NOAUTH Authentication required.\r\n"[..],
                    replies::WRONGPASS,
                    replies::OK,
                    refusal,
                    replies::OK,
                ]
                .concat()
            )
        );
    }
}

#[test]
fn a_marker_reply_of_another_connection_is_just_a_reply() {
    let mut rig = Rig::new(standard());
    rig.send(b"AUTH client-pw\r\n", 100);
    // What another connection's marker reply would look like: passed on.
    let mut other = Pending::new(MarkerKey::new([1; KEY_LEN]));
    let mut command = Vec::new();
    other.send(&mut command, pending::Action::Barrier);
    let name = &command[command.iter().position(|&b| b == b'e').unwrap()..command.len() - 2];
    let forged = [
        &b"-ERR unknown command '"[..],
        name,
        b"', with args beginning with: \r\n",
    ]
    .concat();
    assert_eq!(rig.push(&forged), forged);
}

#[test]
fn after_the_last_reply_the_connection_is_closed() {
    let mut rig = Rig::new(standard());
    let got = rig.send(b"QUIT\r\n", 100);
    assert_eq!(text(&got), "+OK\r\n");
    assert_eq!(rig.close, Close::AfterWrite);
    // Whatever the client writes next is not read: close now.
    let step = rig.session.on_client_data(b"PING\r\n");
    assert_eq!(step.close, Close::Now);
    assert_eq!(step.verdict, Verdict::Replace(b""));
}

#[test]
fn pending_local_replies_are_bounded() {
    // A client whose replies never come back (CLIENT REPLY OFF, or a server
    // that stopped answering) cannot grow the queue without bound.
    let mut session = Session::new(standard(), KEY);
    let command = [
        &b"*2\r\n$6\r\nNOSUCH\r\n$200\r\n"[..],
        &[b'x'; 200],
        b"\r\n",
    ]
    .concat();
    let chunk = command.repeat(100);
    let mut closed = false;
    for _ in 0..100 {
        let step = session.on_client_data(&chunk);
        if step.close == Close::Now {
            closed = true;
            break;
        }
        assert!(session.held_bytes() < 2 * MAX_PENDING_REPLY_BYTES);
    }
    assert!(closed);
    assert!(
        session
            .drain_events()
            .any(|e| e == SessionEvent::TooManyPending)
    );
}

#[test]
fn deeply_nested_replies_pass() {
    let mut rig = Rig::new(standard());
    rig.send(b"AUTH client-pw\r\n", 100);
    let reply = [&b"*2\r\n".repeat(8000)[..], &b":1\r\n".repeat(8001)].concat();
    assert_eq!(rig.push(&reply), reply);
    assert_eq!(text(&rig.send(b"GET foo\r\n", 100)), "$3\r\nbar\r\n");
}

#[test]
fn a_server_that_closes_ends_the_connection() {
    let mut rig = Rig::new(standard());
    rig.send(b"AUTH client-pw\r\n", 100);
    assert_eq!(rig.session.on_server_closed(), Close::AfterWrite);
    // Nothing more goes to the server.
    let step = rig.session.on_client_data(b"GET foo\r\n");
    assert_eq!(step.verdict, Verdict::Replace(b""));
}

#[test]
fn a_skipped_error_before_closing_lets_nothing_of_ours_through() {
    // CLIENT REPLY SKIP takes the protocol error's reply, as in Redis; the
    // server's answer to the filter's QUIT must not take its place.
    let (got, rig) = exchange(
        standard(),
        b"AUTH client-pw\r\nCLIENT REPLY SKIP\r\n*1\r\n$x\r\n",
    );
    assert_eq!(text(&got), "+OK\r\n");
    assert!(rig.server.closed);
    assert_eq!(rig.close, Close::AfterWrite);
}

#[test]
fn the_first_step_of_closing_sets_a_deadline() {
    let mut session = Session::new(standard(), KEY);
    assert_eq!(session.on_client_data(b"QUIT\r\n").close, Close::Deadline);
}

#[test]
fn a_protocol_switch_while_subscribed_is_followed() {
    // RESP3 subscribers may run AUTH; after HELLO 2 they are RESP2
    // subscribers, which may not.
    let mut rig = Rig::new(standard());
    rig.send(b"HELLO 3 AUTH default client-pw\r\nSUBSCRIBE ch\r\n", 100);
    assert_eq!(text(&rig.send(b"AUTH client-pw\r\n", 100)), "+OK\r\n");
    rig.send(b"HELLO 2\r\n", 100);
    let got = rig.send(b"AUTH client-pw\r\n", 100);
    assert!(
        text(&got).ends_with(
            "-ERR Can't execute 'auth': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
        ),
        "{}",
        text(&got)
    );
}

#[test]
fn multi_refused_while_subscribed_is_no_transaction() {
    let mut rig = Rig::new(standard());
    rig.send(b"AUTH client-pw\r\nSUBSCRIBE ch\r\n", 100);
    rig.send(b"MULTI\r\nUNSUBSCRIBE ch\r\n", 100);
    assert_eq!(text(&rig.send(b"AUTH client-pw\r\n", 100)), "+OK\r\n");
}

#[test]
fn hello_options_are_compared_as_redis_compares_them() {
    // strcasecmp stops at a NUL: `AUTH\0x` is AUTH, and its password must
    // stay here.
    let (got, rig) = exchange(
        standard(),
        b"*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$6\r\nAUTH\x00x\r\n$5\r\nalice\r\n$7\r\nalicepw\r\n\
          *4\r\n$5\r\nHELLO\r\n$1\r\n2\r\n$9\r\nSETNAME\x00x\r\n$3\r\napp\r\n*1\r\n$4\r\nPING\r\n",
    );
    assert!(!text(&rig.to_server).contains("alicepw"));
    assert_eq!(rig.commands()[1], "HELLO 3");
    // A HELLO without AUTH is the server's to judge, as sent.
    assert_eq!(rig.commands()[2], "HELLO 2 SETNAME\0x app");
    assert!(text(&got).ends_with("+PONG\r\n"), "{}", text(&got));
    let (_, rig) = exchange(
        standard(),
        b"*7\r\n$5\r\nHELLO\r\n$1\r\n2\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$7\r\nalicepw\r\n\
          $8\r\nSETNAME\x00\r\n$3\r\napp\r\n",
    );
    assert_eq!(rig.commands().last().unwrap(), "HELLO 2 SETNAME app");
}

#[test]
fn replies_that_outgrow_redis_s_unauthenticated_limit_close() {
    // Redis frees a client that has not authenticated once one read's
    // replies pass 16 KiB, without writing them.
    let fits = b"PING\r\n".repeat(481);
    let (got, _) = exchange(standard(), &fits);
    assert_eq!(got.len(), 481 * 34);
    let mut rig = Rig::new(standard());
    let got = rig.send(&b"PING\r\n".repeat(482), 10_000);
    assert_eq!(text(&got), "");
    assert_eq!(rig.close, Close::AfterWrite);
}

fn restricted() -> Rc<Config> {
    config(
        r#"{"downstream": {"password": "client-pw", "users": [
            "user alice on >alicepw ~foo ~app:* &news:* +get +set +multi +exec +publish +ping",
            "user ro on >ropw ~* -@all +@read +acl|whoami"],
            "max_auth_failures": 0},
            "upstream": {"password": "server-secret"}}"#,
    )
}

#[test]
fn restricted_users_get_redis_denials_and_the_server_never_sees_them() {
    let (got, rig) = exchange(
        restricted(),
        b"AUTH alice alicepw\r\nGET foo\r\nGET secret\r\nDEL foo\r\n\
          *3\r\n$3\r\nSET\r\n$5\r\napp:1\r\n$1\r\nv\r\nGET app:1\r\n\
          PUBLISH news:a hi\r\nPUBLISH other hi\r\nCONFIG GET x\r\nNOSUCH a\r\nGET\r\nQUIT\r\n",
    );
    assert_eq!(
        text(&got),
        "+OK\r\n$3\r\nbar\r\n\
         -NOPERM this user has no permissions to access one of the keys used as arguments\r\n\
         -NOPERM this user has no permissions to run the 'del' command\r\n\
         +OK\r\n$1\r\nv\r\n\
         -ERR unknown command 'PUBLISH', with args beginning with: 'news:a' 'hi' \r\n\
         -NOPERM this user has no permissions to access one of the channels used as arguments\r\n\
         -NOPERM this user has no permissions to run the 'config|get' command\r\n\
         -ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n\
         -ERR wrong number of arguments for 'get' command\r\n\
         +OK\r\n"
    );
    let commands = rig.commands();
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("secret") && c.starts_with("GET"))
    );
    assert!(
        !commands
            .iter()
            .any(|c| c.starts_with("DEL") || c.starts_with("CONFIG"))
    );
}

#[test]
fn a_key_after_a_large_value_is_checked_and_the_value_streams() {
    // SET checks only its key: the value streams once the key is allowed.
    let value = vec![b'x'; 3 * 1024 * 1024];
    let mut command = Vec::new();
    crate::resp::write_command(&mut command, &[&b"SET"[..], b"app:big", &value]);
    let mut rig = Rig::new(restricted());
    rig.send(b"AUTH alice alicepw\r\n", 64);
    assert_eq!(text(&rig.send(&command, 64 * 1024)), "+OK\r\n");
    assert!(
        rig.session.held_bytes() < 256 * 1024,
        "{}",
        rig.session.held_bytes()
    );
    let mut denied = Vec::new();
    crate::resp::write_command(&mut denied, &[&b"SET"[..], b"secret", &value]);
    assert_eq!(
        text(&rig.send(&denied, 64 * 1024)),
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    );
}

#[test]
fn re_auth_switches_rules_and_a_failed_one_keeps_them() {
    let (got, _) = exchange(
        restricted(),
        b"AUTH ro ropw\r\nGET secret\r\nSET a b\r\nAUTH alice bad\r\nGET secret\r\n\
          AUTH alice alicepw\r\nGET secret\r\n",
    );
    assert_eq!(
        text(&got),
        "+OK\r\n$-1\r\n\
         -NOPERM this user has no permissions to run the 'set' command\r\n\
         -WRONGPASS invalid username-password pair or user is disabled.\r\n\
         $-1\r\n+OK\r\n\
         -NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    );
}

#[test]
fn acl_commands_answer_for_the_proxy_users() {
    let (got, rig) = exchange(
        restricted(),
        b"AUTH ro ropw\r\nACL WHOAMI\r\nACL USERS\r\nACL CAT\r\nACL SETUSER x\r\n\
          AUTH alice alicepw\r\nACL WHOAMI\r\n",
    );
    let text = text(&got);
    assert!(text.starts_with("+OK\r\n$2\r\nro\r\n"), "{text}");
    // ro has -@all +@read: ACL USERS and CAT are not @read.
    assert!(
        text.contains("-NOPERM this user has no permissions to run the 'acl|users' command"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "+OK\r\n-NOPERM this user has no permissions to run the 'acl|whoami' command\r\n"
        ),
        "{text}"
    );
    assert!(!rig.commands().iter().any(|c| c.starts_with("ACL")));
    let full = config(
        r#"{"downstream": {"users": ["user admin on >pw ~* &* +@all", "user b on nopass ~b:* +get"]},
            "upstream": {"password": "server-secret"}}"#,
    );
    let (got, rig) = exchange(
        full,
        b"AUTH admin pw\r\nACL USERS\r\nACL DRYRUN b get b:1\r\nACL DRYRUN b get c\r\n\
          ACL DRYRUN b set b:1 v\r\nACL DRYRUN nobody get x\r\nACL SETUSER b on\r\n\
          CONFIG SET requirepass x\r\nACL GETUSER nobody\r\nACL CAT nosuch\r\n",
    );
    assert_eq!(
        text_of(&got),
        "+OK\r\n*3\r\n$5\r\nadmin\r\n$1\r\nb\r\n$7\r\ndefault\r\n+OK\r\n\
         $50\r\nThis user has no permissions to access the 'c' key\r\n\
         $53\r\nThis user has no permissions to run the 'set' command\r\n\
         -ERR User 'nobody' not found\r\n\
         -ERR ACL SETUSER is not available through the proxy: users are defined in the proxy's configuration (downstream.users)\r\n\
         -ERR CONFIG SET requirepass and aclfile are not available through the proxy: it holds the server's credentials\r\n\
         $-1\r\n-ERR Unknown category 'nosuch'\r\n"
    );
    assert!(
        !rig.commands()
            .iter()
            .any(|c| c.starts_with("ACL") || c.starts_with("CONFIG"))
    );
}

fn text_of(bytes: &[u8]) -> String {
    text(bytes)
}

fn per_user_upstreams() -> Rc<Config> {
    config(
        r#"{"downstream": {"users": [
            "user alice on >alicepw ~* &* +@all",
            {"acl": "user bob on >bobpw ~* &* +@all", "upstream": {"password": "server-secret"}},
            {"acl": "user eve on >evepw ~* &* +@all", "upstream": {"password": "wrong"}}]},
            "upstream": {"password": "server-secret"}}"#,
    )
}

#[test]
fn a_user_with_its_own_server_identity_switches_the_server_connection() {
    let (got, rig) = exchange(
        per_user_upstreams(),
        b"AUTH alice alicepw\r\nGET foo\r\nAUTH bob bobpw\r\nGET foo\r\nAUTH bob bobpw\r\n\
          AUTH alice alicepw\r\nGET foo\r\n",
    );
    assert_eq!(
        text(&got),
        "+OK\r\n$3\r\nbar\r\n+OK\r\n$3\r\nbar\r\n+OK\r\n+OK\r\n$3\r\nbar\r\n"
    );
    let auths = rig
        .commands()
        .iter()
        .filter(|c| c.starts_with("AUTH"))
        .count();
    // The first AUTH, bob's, and back to the top-level one for alice (the
    // second AUTH as bob needs no switch).
    assert_eq!(auths, 3, "{:?}", rig.commands());
    assert!(!text(&rig.to_server).contains("bobpw"));
}

#[test]
fn a_rejected_server_identity_fails_that_client_clearly() {
    let (got, rig) = exchange(
        per_user_upstreams(),
        b"AUTH eve evepw\r\nSET pipelined 1\r\nGET foo\r\n",
    );
    let text = text(&got);
    assert_eq!(
        text,
        "-ERR envoy-redis-auth: the Redis server rejected the proxy's credentials: \
         WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    // Nothing after the AUTH ran under the identity the client left.
    assert!(
        !rig.commands()
            .iter()
            .any(|c| c.starts_with("SET") || c.starts_with("GET"))
    );
    assert_eq!(rig.close, Close::AfterWrite);
}

#[test]
fn a_denied_exec_ends_the_transaction_on_both_sides() {
    let config = config(
        r#"{"downstream": {"users": ["user m on >mpw ~* +multi +get"]},
            "upstream": {"password": "server-secret"}}"#,
    );
    let (got, rig) = exchange(
        config,
        b"AUTH m mpw\r\nMULTI\r\nGET foo\r\nSET foo x\r\nEXEC\r\nGET foo\r\n",
    );
    assert_eq!(
        text(&got),
        "+OK\r\n+OK\r\n+QUEUED\r\n\
         -NOPERM this user has no permissions to run the 'set' command\r\n\
         -EXECABORT Transaction discarded because of: NOPERM this user has no permissions to run the 'exec' command\r\n\
         $3\r\nbar\r\n"
    );
    assert!(
        rig.commands().iter().any(|c| c == "DISCARD"),
        "{:?}",
        rig.commands()
    );
    assert!(
        !rig.commands()
            .iter()
            .any(|c| c.starts_with("EXEC") || c.starts_with("SET"))
    );
}

#[test]
fn no_identity_switch_while_replies_are_off_or_skipped() {
    let (got, rig) = exchange(
        per_user_upstreams(),
        b"AUTH alice alicepw\r\nCLIENT REPLY SKIP\r\nAUTH bob bobpw\r\nECHO after\r\n\
          CLIENT REPLY OFF\r\nAUTH bob bobpw\r\nCLIENT REPLY ON\r\nACL WHOAMI\r\n",
    );
    assert_eq!(text(&got), "+OK\r\n$5\r\nafter\r\n+OK\r\n$5\r\nalice\r\n");
    let auths = rig
        .commands()
        .iter()
        .filter(|c| c.starts_with("AUTH"))
        .count();
    assert_eq!(auths, 1, "{:?}", rig.commands());
}

#[test]
fn the_configured_server_version_judges_and_words_the_replies() {
    let for_version = |version: &str| {
        config(&format!(
            r#"{{"server_version": "{version}", "downstream": {{"users": [
                "user alice on >alicepw ~app:* -@all +@hash +get"]}},
                "upstream": {{"password": "server-secret"}}}}"#
        ))
    };
    let input: &[u8] = b"HELLO 3\r\nAUTH alice alicepw\r\nDEL app:1\r\nGET secret\r\n\
                         HEXPIRE app:h 10 FIELDS 1 f\r\n";
    let (got, _) = exchange(for_version("redis-7.0"), input);
    let text_70 = text(&got);
    assert!(text_70.starts_with("-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user>"), "{text_70}");
    assert!(text_70.contains("-NOPERM this user has no permissions to run the 'del' command\r\n"));
    assert!(text_70.contains(
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    ));
    // 7.0 has no HEXPIRE.
    assert!(text_70.ends_with("-ERR unknown command 'HEXPIRE', with args beginning with: 'app:h' '10' 'FIELDS' '1' 'f' \r\n"), "{text_70}");
    let (got, rig) = exchange(for_version("redis-7.4"), input);
    let text_74 = text(&got);
    assert!(text_74.starts_with("-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user>"), "{text_74}");
    assert!(text_74.contains("-NOPERM User alice has no permissions to run the 'del' command\r\n"));
    assert!(text_74.contains("-NOPERM No permissions to access a key\r\n"));
    // 7.4's HEXPIRE is @hash, on an allowed key: it goes to the server.
    assert!(
        rig.commands().iter().any(|c| c.starts_with("HEXPIRE")),
        "{:?}",
        rig.commands()
    );
}

fn with_identities(require: bool) -> Rc<Config> {
    config(&format!(
        r#"{{"downstream": {{"users": [
            "user cart on resetpass ~cart:* +get +set +acl|whoami +reset",
            "user ops on >opspw ~* &* +@all",
            "user default on nopass ~* &* +@all"],
            "identities": {{"spiffe://cluster.local/ns/shop/sa/cart": "cart",
                           "spiffe://cluster.local/ns/ops/*": "ops"}},
            "require_identity": {require}}},
            "upstream": {{"password": "server-secret"}}}}"#
    ))
}

fn rig_as(config: Rc<Config>, peer: &[u8]) -> (Rig, Option<String>) {
    let mut rig = Rig::new(config);
    let user = rig.session.set_peer_identity(peer);
    (rig, user)
}

#[test]
fn a_mapped_identity_starts_as_its_user() {
    let (mut rig, user) = rig_as(
        with_identities(false),
        b"spiffe://cluster.local/ns/shop/sa/cart",
    );
    assert_eq!(user.as_deref(), Some("cart"));
    let got = rig.send(
        b"GET cart:1\r\nGET other\r\nACL WHOAMI\r\nAUTH ops wrong\r\nACL WHOAMI\r\n\
          AUTH ops opspw\r\nACL WHOAMI\r\nRESET\r\nACL WHOAMI\r\nGET other\r\n",
        7,
    );
    assert_eq!(
        text(&got),
        "$-1\r\n\
         -NOPERM this user has no permissions to access one of the keys used as arguments\r\n\
         $4\r\ncart\r\n\
         -WRONGPASS invalid username-password pair or user is disabled.\r\n\
         $4\r\ncart\r\n\
         +OK\r\n$3\r\nops\r\n\
         +RESET\r\n$4\r\ncart\r\n\
         -NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    );
    // A prefix.
    let (_, user) = rig_as(
        with_identities(false),
        b"spiffe://cluster.local/ns/ops/sa/admin",
    );
    assert_eq!(user.as_deref(), Some("ops"));
    // Nothing else is a pattern; an unmapped identity is nobody.
    let (_, user) = rig_as(
        with_identities(false),
        b"spiffe://cluster.local/ns/shop/sa/other",
    );
    assert_eq!(user, None);
}

#[test]
fn identities_only_admits_no_one_else() {
    // Without a mapped identity the default user's nopass does not let the
    // client in, and AUTH is refused.
    let (mut rig, user) = rig_as(with_identities(true), b"spiffe://elsewhere/x");
    assert_eq!(user, None);
    let got = rig.send(
        b"GET k\r\nAUTH ops opspw\r\nHELLO 3 AUTH ops opspw\r\nGET k\r\n",
        64,
    );
    assert_eq!(
        text(&got),
        format!(
            "-NOAUTH Authentication required.\r\n{0}{0}-NOAUTH Authentication required.\r\n",
            text(replies::IDENTITY_REQUIRED)
        )
    );
    assert!(
        rig.commands()
            .iter()
            .all(|c| c.starts_with("AUTH server-secret") || c.starts_with("era:")),
        "{:?}",
        rig.commands()
    );
    // A mapped one still works, and its AUTH too.
    let (mut rig, _) = rig_as(with_identities(true), b"spiffe://cluster.local/ns/ops/sa/a");
    assert_eq!(
        text(&rig.send(b"GET foo\r\nAUTH ops opspw\r\n", 64)),
        "$3\r\nbar\r\n+OK\r\n"
    );
}
