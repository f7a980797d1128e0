//! `resp::reply::ReplyFramer`: the same server bytes, fed whole, in the
//! chunks the input asks for, and byte by byte, must end frames at the same
//! offsets and fail the same way at the same offset. Every complete frame is
//! then read back with `FrameReader`, which must agree with the framer on
//! where each value ends (except where the framer is knowingly lenient: it
//! checks only the last byte of a payload's CRLF), and random `FrameReader`
//! calls on the frames and on the raw input must not panic. The fast path,
//! `whole_simple_reply`, must end the replies it reads where the framer
//! does.
//!
//! Input: `[ops] [n] [cut_1 .. cut_n] payload`; the cuts are chunk lengths
//! (0 is an empty chunk), what is left of the payload is the last chunk;
//! `ops` seeds the random `FrameReader` calls.
#![no_main]

use envoy_redis_auth::resp::parse_redis_int;
use envoy_redis_auth::resp::reply::{
    FrameReader, MAX_DEPTH, ReplyError, ReplyFramer, whole_simple_reply,
};
use envoy_redis_auth_fuzz::fnv1a_with;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (ops, rest) = match data.split_first() {
        Some((&ops, rest)) => (ops, rest),
        None => (0, data),
    };
    let (count, rest) = match rest.split_first() {
        Some((&count, rest)) => (usize::from(count), rest),
        None => (0, rest),
    };
    let (cuts, payload) = rest.split_at(count.min(rest.len()));

    let whole = frame(&[payload]);
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut tail = payload;
    for &cut in cuts {
        let (chunk, rest) = tail.split_at(usize::from(cut).min(tail.len()));
        chunks.push(chunk);
        tail = rest;
    }
    chunks.push(tail);
    let split = frame(&chunks);
    assert_eq!(
        whole,
        split,
        "chunks {:?} differ from the whole input",
        chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
    );
    let bytes: Vec<&[u8]> = payload.chunks(1).collect();
    assert_eq!(
        whole,
        frame(&bytes),
        "byte by byte differs from the whole input"
    );

    // The fast path: a run of replies whole_simple_reply reads from the
    // start must end where the framer ends them.
    let mut pos = 0;
    let mut ends = whole.ends.iter();
    while let Some(end) = whole_simple_reply(payload, pos) {
        assert_eq!(
            ends.next(),
            Some(&end),
            "whole_simple_reply ends a reply at {end}, the framer does not"
        );
        pos = end;
    }

    let mut start = 0;
    for &end in &whole.ends {
        let frame = &payload[start..end];
        read_back(frame);
        random_reads(frame, ops);
        start = end;
    }
    random_reads(payload, ops);
});

/// Where a stream's frames end, and how it failed.
#[derive(Debug, PartialEq, Eq)]
struct Framing {
    /// Offsets just past each complete frame.
    ends: Vec<usize>,
    /// The error, and the offset `advance` left `pos` at when it failed.
    error: Option<(ReplyError, usize)>,
    /// `at_frame_start()` after the last chunk.
    at_start: bool,
}

fn frame(chunks: &[&[u8]]) -> Framing {
    let mut framer = ReplyFramer::new();
    assert!(framer.at_frame_start());
    let mut framing = Framing {
        ends: Vec::new(),
        error: None,
        at_start: true,
    };
    let mut base = 0;
    for chunk in chunks {
        let mut pos = 0;
        if chunk.is_empty() {
            assert_eq!(framer.advance(chunk, &mut pos), Ok(false));
            assert_eq!(pos, 0);
        }
        while pos < chunk.len() {
            let before = pos;
            match framer.advance(chunk, &mut pos) {
                Ok(true) => {
                    assert!(pos > before, "a frame ended without consuming a byte");
                    assert!(pos <= chunk.len());
                    assert!(
                        framer.at_frame_start(),
                        "a frame ended, but not at a frame start"
                    );
                    framing.ends.push(base + pos);
                }
                Ok(false) => {
                    assert_eq!(pos, chunk.len(), "Ok(false) with input left");
                    assert!(!framer.at_frame_start(), "a partial frame at a frame start");
                }
                Err(error) => {
                    assert!(pos <= chunk.len());
                    assert!(!error.to_string().is_empty());
                    framing.error = Some((error, base + pos));
                    // The framer stays failed, with or without more input.
                    let mut again = pos;
                    assert_eq!(framer.advance(chunk, &mut again), Err(error));
                    assert_eq!(framer.advance(b"+OK\r\n", &mut 0), Err(error));
                    assert_eq!(framer.advance(b"", &mut 0), Err(error));
                    framing.at_start = framer.at_frame_start();
                    return framing;
                }
            }
        }
        base += chunk.len();
    }
    framing.at_start = framer.at_frame_start();
    framing
}

/// Reads a complete frame value by value with `FrameReader`, the way the
/// framer counts values, and checks that it ends exactly at the frame's
/// end. Stops without a verdict at what `FrameReader` cannot read (`!`, `=`)
/// and at a payload whose CRLF the framer did not check in full.
fn read_back(frame: &[u8]) {
    let mut reader = FrameReader::new(frame);
    let mut offset = 0usize;
    // Per open aggregate: values still to read, and whether it is an
    // attribute (whose annotated value belongs to the parent).
    let mut stack: Vec<(u64, bool)> = Vec::new();
    loop {
        assert!(!reader.is_done(), "the frame ended inside a value");
        let (kind, line) = {
            let mut probe = reader;
            probe
                .line()
                .unwrap_or_else(|| panic!("no line at offset {offset}"))
        };
        let header = 1 + line.len() + 2;
        let value_done = match kind {
            b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_' => {
                if kind == b':' {
                    let mut probe = reader;
                    assert_eq!(probe.integer(), parse_redis_int(line));
                }
                if kind == b'_' {
                    let mut probe = reader;
                    assert_eq!(probe.bulk(), Some(None));
                }
                assert_eq!(reader.line(), Some((kind, line)));
                offset += header;
                true
            }
            b'$' => {
                let length = parse_redis_int(line).expect("the framer checked the length");
                if length == -1 {
                    assert_eq!(reader.bulk(), Some(None));
                    offset += header;
                    true
                } else {
                    let length = usize::try_from(length).expect("the framer refuses < -1");
                    let data = offset + header;
                    let end = data + length;
                    if frame.get(end) != Some(&b'\r') {
                        return; // lenient: only the LF was checked
                    }
                    assert_eq!(reader.bulk(), Some(Some(&frame[data..end])));
                    offset = end + 2;
                    true
                }
            }
            b'!' | b'=' => return,
            b'*' | b'%' | b'~' | b'>' | b'|' => {
                let length = parse_redis_int(line).expect("the framer checked the length");
                assert_eq!(reader.aggregate(&[kind]), Some(length));
                offset += header;
                let count = u64::try_from(length).unwrap_or(0);
                let left = match kind {
                    b'%' | b'|' => count.saturating_mul(2),
                    _ => count,
                };
                if length == -1 {
                    assert_eq!(kind, b'*', "only * may be null");
                    true
                } else if left == 0 {
                    kind != b'|'
                } else {
                    assert!(stack.len() < MAX_DEPTH, "deeper than MAX_DEPTH");
                    stack.push((left, kind == b'|'));
                    false
                }
            }
            other => panic!("a frame holds type byte {other:#04x}"),
        };
        if value_done && close(&mut stack) {
            assert_eq!(offset, frame.len(), "the last value ends before the frame");
            assert!(
                reader.is_done(),
                "FrameReader has bytes left after the frame"
            );
            return;
        }
    }
}

/// Counts a finished value against the open aggregates; true when the
/// top-level value is complete.
fn close(stack: &mut Vec<(u64, bool)>) -> bool {
    loop {
        let Some((left, attribute)) = stack.last_mut() else {
            return true;
        };
        *left -= 1;
        if *left > 0 {
            return false;
        }
        let attribute = *attribute;
        stack.pop();
        if attribute {
            return false;
        }
    }
}

/// A few `FrameReader` calls chosen by `seed` and the input.
fn random_reads(bytes: &[u8], seed: u8) {
    let mut reader = FrameReader::new(bytes);
    let mut hash = fnv1a_with(u64::from(seed), bytes.get(..16).unwrap_or(bytes));
    for _ in 0..12 {
        hash = fnv1a_with(hash, &[seed]);
        match hash % 6 {
            0 => {
                let _ = reader.line();
            }
            1 => {
                let _ = reader.bulk();
            }
            2 => {
                let _ = reader.integer();
            }
            3 => {
                let _ = reader.aggregate(b"*>");
            }
            4 => {
                let _ = reader.aggregate(b"%~|");
            }
            _ => {
                let _ = reader.is_done();
            }
        }
    }
}
