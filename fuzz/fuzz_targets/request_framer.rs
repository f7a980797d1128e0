//! `resp::request::RequestParser`: the same client bytes, fed whole, in the
//! chunks the input asks for, and byte by byte, with the client
//! authenticated and not, must give the same events and hand on the same
//! bytes; and the commands the fast path (`whole_command`) reads must be
//! the ones the parser reads. Modelled on `drive`/`every_chunking` in src/resp/request.rs's
//! tests.
//!
//! Input: `[policy] [n] [cut_1 .. cut_n] payload`
//! - `policy & 3`: 0 forward every command, 1 collect every command, 2 decide
//!   by a hash of the command's head (seeded by `policy >> 2`), 3 decide by
//!   the command's position (bit `k % 6` of `policy >> 2`; if bit 5 is set,
//!   every third `Decide` is left unanswered, which the parser must treat as
//!   forwarding);
//! - the cuts are chunk lengths (0 is an empty chunk); what is left of the
//!   payload after them is the last chunk.
#![no_main]

use envoy_redis_auth::resp::output::{Output, Verdict};
use envoy_redis_auth::resp::request::{
    Disposition, Event, Head, INLINE_MAX, NAME_MAX, ProtocolError, RETAINED_ARGS_MAX,
    RequestParser, whole_command,
};
use envoy_redis_auth_fuzz::fnv1a_with;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let case = Case::parse(data);
    for authenticated in [true, false] {
        check(&case, authenticated);
    }
});

struct Case<'a> {
    policy: u8,
    cuts: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Case<'a> {
    fn parse(data: &'a [u8]) -> Self {
        let (policy, rest) = match data.split_first() {
            Some((&policy, rest)) => (policy, rest),
            None => (0, data),
        };
        let (count, rest) = match rest.split_first() {
            Some((&count, rest)) => (usize::from(count), rest),
            None => (0, rest),
        };
        let (cuts, payload) = rest.split_at(count.min(rest.len()));
        Case {
            policy,
            cuts,
            payload,
        }
    }

    /// The payload in the chunks the cuts ask for.
    fn chunks(&self) -> Vec<&'a [u8]> {
        let mut chunks = Vec::with_capacity(self.cuts.len() + 1);
        let mut rest = self.payload;
        for &cut in self.cuts {
            let (chunk, tail) = rest.split_at(usize::from(cut).min(rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        chunks.push(rest);
        chunks
    }

    /// Whether the caller "forgets" to answer the `ordinal`-th `Decide` (a
    /// caller bug the parser must survive by forwarding): in policy 3, when
    /// bit 5 of the seed is set, every third command.
    fn skips(&self, ordinal: usize) -> bool {
        self.policy & 3 == 3 && (self.policy >> 2) & 0x20 != 0 && ordinal % 3 == 2
    }

    /// The decision for the `ordinal`-th command offered, whose head is `head`.
    fn decide(&self, head: &Head, ordinal: usize) -> Disposition {
        let seed = self.policy >> 2;
        let collect = match self.policy & 3 {
            0 => false,
            1 => true,
            2 => {
                let mut hash = fnv1a_with(u64::from(seed), head.name.unwrap_or(b"<long>"));
                hash = fnv1a_with(hash, &(head.argc as u64).to_le_bytes());
                hash = fnv1a_with(hash, &[u8::from(head.inline)]);
                hash & 1 == 1
            }
            _ => (seed >> (ordinal % 6)) & 1 == 1,
        };
        if collect {
            Disposition::Collect
        } else {
            Disposition::Forward
        }
    }
}

/// What a parser did with a whole stream.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    events: Vec<Record>,
    /// Every byte handed on, chunk after chunk.
    forwarded: Bytes,
    /// `is_idle()` after the last chunk (when no error stopped the run).
    idle: Option<bool>,
}

#[derive(Debug, PartialEq, Eq)]
enum Record {
    Empty,
    Decide {
        name: Option<Bytes>,
        argc: usize,
        inline: bool,
        disposition: Disposition,
    },
    Command {
        argc: usize,
        /// Retained bytes of each argument, and whether it is whole.
        args: Vec<Option<(Bytes, bool)>>,
    },
    Forwarded,
    Error(ProtocolError),
}

/// Bytes, shown short: a failure message must stay readable.
#[derive(PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = &self.0[..self.0.len().min(48)];
        write!(f, "{} bytes \"{}\"", self.0.len(), shown.escape_ascii())?;
        if shown.len() < self.0.len() {
            write!(f, "...")?;
        }
        Ok(())
    }
}

fn check(case: &Case, authenticated: bool) {
    let payload = case.payload;
    let whole = drive(case, &[payload], authenticated);
    let chunks = case.chunks();
    let split = drive(case, &chunks, authenticated);
    let bytes: Vec<&[u8]> = payload.chunks(1).collect();
    let by_byte = drive(case, &bytes, authenticated);
    if reads_decide(payload) {
        // A line longer than INLINE_MAX: like Redis, whose verdict depends
        // on where its 16 KiB reads fall, the parser's depends on the chunks
        // (until INLINE_MAX + REDIS_READ_LEN, refused however split).
        return;
    }
    assert_eq!(
        whole,
        split,
        "chunks {:?} (authenticated: {authenticated}) differ from the whole input",
        chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
    );
    assert_eq!(
        whole, by_byte,
        "byte by byte (authenticated: {authenticated}) differs from the whole input"
    );

    // No lookahead: more input never changes what was already reported.
    let mut padded = payload.to_vec();
    padded.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let longer = drive(case, &[&padded], authenticated);
    assert_eq!(
        longer.events.get(..whole.events.len()),
        Some(&whole.events[..]),
        "appending a PING changed earlier events (authenticated: {authenticated})"
    );

    // Forwarding everything for an authenticated client hands on a prefix
    // of the input, in order: nothing is dropped, reordered or invented.
    if authenticated && case.policy & 3 == 0 {
        assert!(
            payload.starts_with(&whole.forwarded.0),
            "forward-all output is not a prefix of the input"
        );
    }
    // The fast path: the commands whole_command reads one after another
    // from the start are the ones the parser offers and forwards, in order,
    // with the same names and counts.
    if authenticated && case.policy & 3 == 0 {
        let mut pos = 0;
        let mut events = whole.events.iter();
        while let Some(command) = whole_command(payload, pos) {
            match (events.next(), events.next()) {
                (
                    Some(Record::Decide {
                        name: Some(name),
                        argc,
                        inline: false,
                        ..
                    }),
                    Some(Record::Forwarded),
                ) => {
                    assert_eq!(name.0, command.name, "whole_command read another name");
                    assert_eq!(*argc, command.argc, "whole_command read another count");
                }
                other => panic!("whole_command read a command the parser did not: {other:?}"),
            }
            pos = command.end;
        }
    }
    // A collected command's bytes are never handed on.
    if case.policy & 3 == 1 && !authenticated {
        assert!(
            whole.forwarded.0.is_empty(),
            "collect-all, unauthenticated, handed bytes on"
        );
    }
}

/// Whether some line of `payload` (between line feeds) is longer than
/// `INLINE_MAX`, so that where the reads fall decides its fate.
fn reads_decide(payload: &[u8]) -> bool {
    payload
        .split(|&b| b == b'\n')
        .any(|line| line.len() > INLINE_MAX)
}

/// The reply for a protocol error is one RESP error line, whatever byte it
/// quotes: it must not break the client's framing.
fn check_error_reply(error: ProtocolError) {
    let mut reply = Vec::new();
    error.reply(&mut reply);
    assert!(reply.starts_with(b"-ERR Protocol error: "), "{reply:?}");
    assert!(reply.ends_with(b"\r\n"), "{reply:?}");
    let body = &reply[..reply.len() - 2];
    assert!(
        !body.contains(&b'\r') && !body.contains(&b'\n'),
        "{reply:?}"
    );
    assert!(!error.as_str().is_empty());
}

/// Feeds `chunks` through a new parser, like the host would.
fn drive(case: &Case, chunks: &[&[u8]], authenticated: bool) -> Run {
    let mut parser = RequestParser::new();
    let mut out = Output::default();
    let mut run = Run {
        events: Vec::new(),
        forwarded: Bytes(Vec::new()),
        idle: None,
    };
    let mut ordinal = 0usize;
    for chunk in chunks {
        out.begin();
        parser.begin_chunk();
        let mut pos = 0;
        let mut failed = false;
        loop {
            let before = pos;
            let event = parser.next(chunk, &mut pos, &mut out, authenticated);
            assert!(
                before <= pos && pos <= chunk.len(),
                "pos went from {before} to {pos} in a chunk of {}",
                chunk.len()
            );
            match event {
                Event::NeedMore => {
                    assert_eq!(pos, chunk.len(), "NeedMore with input left");
                    break;
                }
                Event::Empty => run.events.push(Record::Empty),
                Event::Decide(head) => {
                    let skipped = case.skips(ordinal);
                    let disposition = if skipped {
                        Disposition::Forward
                    } else {
                        case.decide(&head, ordinal)
                    };
                    ordinal += 1;
                    if let Some(name) = head.name {
                        assert!(name.len() <= NAME_MAX, "a name longer than NAME_MAX");
                    }
                    run.events.push(Record::Decide {
                        name: head.name.map(|name| Bytes(name.to_vec())),
                        argc: head.argc,
                        inline: head.inline,
                        disposition,
                    });
                    if !skipped {
                        parser.decide(chunk, &mut out, disposition);
                    }
                }
                Event::Command(args) => {
                    let argc = args.argc();
                    let shown = (0..argc.min(RETAINED_ARGS_MAX + 1))
                        .map(|i| {
                            let bytes = args.get(i)?;
                            let whole = args.is_whole(i);
                            assert_eq!(args.whole(i).is_some(), whole);
                            Some((Bytes(bytes.to_vec()), whole))
                        })
                        .collect();
                    run.events.push(Record::Command { argc, args: shown });
                }
                Event::Forwarded => run.events.push(Record::Forwarded),
                Event::Error(error) => {
                    check_error_reply(error);
                    run.events.push(Record::Error(error));
                    // The parser stays failed.
                    let mut again = pos;
                    match parser.next(chunk, &mut again, &mut out, authenticated) {
                        Event::Error(same) => assert_eq!(same, error, "error changed"),
                        other => panic!("after {error:?}, next() gave {other:?}"),
                    }
                    failed = true;
                    break;
                }
            }
        }
        parser.end_chunk(chunk);
        match out.finish(chunk) {
            Verdict::Unchanged => run.forwarded.0.extend_from_slice(chunk),
            Verdict::Replace(bytes) => run.forwarded.0.extend_from_slice(bytes),
        }
        if failed {
            return run;
        }
    }
    run.idle = Some(parser.is_idle());
    run
}
