//! Server reply framing, RESP2 and RESP3.
//!
//! [`ReplyFramer`] finds where each top-level reply (or push) ends in the
//! byte stream a server sends, without holding any of it: the caller routes
//! the bytes it consumed. Simple lines are scanned for `\r\n`, length-prefixed
//! payloads are skipped by length, aggregates are tracked with a stack of
//! remaining element counts. Anything that is not well-formed RESP is an
//! error, since after it the filter can no longer tell replies apart.
//!
//! Nesting costs memory only where it must: an aggregate that is the last
//! element of its parent takes the parent's place on the stack (they end
//! together), so a chain like Lua's self-referencing tables (`*1 *1 *1 …`,
//! about 8,000 levels before Redis gives up) uses one entry. Other nesting
//! takes 8 bytes a level, up to [`MAX_DEPTH`] levels.
//!
//! [`FrameReader`] reads the small, complete frames the caller chose to keep
//! (at most a few hundred bytes) to recognise the replies the filter itself
//! asked for and subscription confirmations.

/// Deepest nesting of aggregates that are not their parent's last element.
/// Redis's Lua conversion stops at about 8,000 levels of any shape.
pub const MAX_DEPTH: usize = 16_384;
/// The stack's capacity kept between frames; a deeper frame's is released.
const KEEP_STACK: usize = 64;
/// Marks an [`Open`] entry as an attribute (`|`).
const ATTRIBUTE: u64 = 1 << 63;
/// Elements an aggregate may announce (twice its length for maps).
const MAX_ELEMENTS: u64 = ATTRIBUTE - 1;

/// The server sent something that is not RESP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    UnknownType(u8),
    BadLength,
    MissingLineFeed,
    TooDeep,
    /// RESP3 streamed strings and aggregates (`$?`, `*?`), which Redis never
    /// sends.
    Streamed,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownType(byte) => write!(f, "unknown RESP type byte 0x{byte:02x}"),
            Self::BadLength => f.write_str("malformed RESP length"),
            Self::MissingLineFeed => f.write_str("CR not followed by LF"),
            Self::TooDeep => write!(f, "aggregate nesting deeper than {MAX_DEPTH}"),
            Self::Streamed => f.write_str("streamed RESP3 types are not supported"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Expecting a type byte.
    Type,
    /// Inside a simple line (`+ - : , ( # _`); `cr` once its `\r` is read.
    Line {
        cr: bool,
    },
    /// Reading the length after a length-prefixed type byte.
    Length {
        kind: u8,
        cr: bool,
    },
    /// Skipping a payload and its `\r\n`.
    Blob {
        left: u64,
    },
    Failed(ReplyError),
}

/// An open aggregate: the values still to read in it, and in the top bit
/// [`ATTRIBUTE`] for an attribute (`|`), which is followed by the value it
/// annotates, a value of the parent.
#[derive(Clone, Copy, Debug)]
struct Open(u64);

impl Open {
    fn left(self) -> u64 {
        self.0 & !ATTRIBUTE
    }

    fn is_attribute(self) -> bool {
        self.0 & ATTRIBUTE != 0
    }
}

/// Incremental top-level frame splitter for the server → client direction.
#[derive(Debug)]
pub struct ReplyFramer {
    phase: Phase,
    stack: Vec<Open>,
    /// A top-level frame is partially read.
    in_frame: bool,
    length: [u8; 20],
    length_len: usize,
}

impl Default for ReplyFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyFramer {
    pub fn new() -> Self {
        Self {
            phase: Phase::Type,
            stack: Vec::new(),
            in_frame: false,
            length: [0; 20],
            length_len: 0,
        }
    }

    /// Bytes allocated for the stack of open aggregates (8 per level that
    /// is not a last element, at most [`MAX_DEPTH`] levels).
    pub fn held_bytes(&self) -> usize {
        self.stack.capacity() * std::mem::size_of::<Open>()
    }

    /// True between top-level frames.
    pub fn at_frame_start(&self) -> bool {
        !self.in_frame
    }

    /// Consumes bytes of the current top-level frame from `input[*pos..]`.
    /// Returns `Ok(true)` when the frame ended (with `*pos` just past it),
    /// `Ok(false)` when the input ran out first.
    pub fn advance(&mut self, input: &[u8], pos: &mut usize) -> Result<bool, ReplyError> {
        loop {
            let Some(&byte) = input.get(*pos) else {
                if let Phase::Failed(error) = self.phase {
                    return Err(error);
                }
                return Ok(false);
            };
            match self.phase {
                Phase::Failed(error) => return Err(error),
                Phase::Type => {
                    *pos += 1;
                    self.in_frame = true;
                    match byte {
                        b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_' => {
                            self.phase = Phase::Line { cr: false };
                        }
                        b'$' | b'!' | b'=' | b'*' | b'%' | b'~' | b'>' | b'|' => {
                            self.length_len = 0;
                            self.phase = Phase::Length {
                                kind: byte,
                                cr: false,
                            };
                        }
                        other => return self.fail(ReplyError::UnknownType(other)),
                    }
                }
                Phase::Line { cr: false } => {
                    let rest = input.get(*pos..).unwrap_or_default();
                    match rest.iter().position(|&b| b == b'\r') {
                        Some(i) => {
                            *pos += i + 1;
                            self.phase = Phase::Line { cr: true };
                        }
                        None => *pos = input.len(),
                    }
                }
                Phase::Line { cr: true } => {
                    *pos += 1;
                    if byte != b'\n' {
                        return self.fail(ReplyError::MissingLineFeed);
                    }
                    if self.value_done()? {
                        return Ok(true);
                    }
                }
                Phase::Length { kind, cr: false } => {
                    *pos += 1;
                    if byte == b'\r' {
                        self.phase = Phase::Length { kind, cr: true };
                    } else {
                        let Some(slot) = self.length.get_mut(self.length_len) else {
                            return self.fail(ReplyError::BadLength);
                        };
                        *slot = byte;
                        self.length_len += 1;
                    }
                }
                Phase::Length { kind, cr: true } => {
                    *pos += 1;
                    if byte != b'\n' {
                        return self.fail(ReplyError::MissingLineFeed);
                    }
                    if self.length_done(kind)? {
                        return Ok(true);
                    }
                }
                Phase::Blob { left } => {
                    let available = (input.len() - *pos) as u64;
                    let take = left.min(available);
                    *pos += take as usize;
                    let left = left - take;
                    if left > 0 {
                        self.phase = Phase::Blob { left };
                        continue;
                    }
                    // The payload's trailing CRLF is counted in `left`; check
                    // its last byte only, the common corruption symptom.
                    if input.get(*pos - 1) != Some(&b'\n') {
                        return self.fail(ReplyError::MissingLineFeed);
                    }
                    if self.value_done()? {
                        return Ok(true);
                    }
                }
            }
        }
    }

    fn fail<T>(&mut self, error: ReplyError) -> Result<T, ReplyError> {
        self.phase = Phase::Failed(error);
        Err(error)
    }

    fn length_done(&mut self, kind: u8) -> Result<bool, ReplyError> {
        let digits = self.length.get(..self.length_len).unwrap_or_default();
        if digits == b"?" {
            return self.fail(ReplyError::Streamed);
        }
        let Some(length) = super::parse_redis_int(digits) else {
            return self.fail(ReplyError::BadLength);
        };
        let null_allowed = matches!(kind, b'$' | b'*');
        if length < 0 {
            if length == -1 && null_allowed {
                return self.value_done();
            }
            return self.fail(ReplyError::BadLength);
        }
        let length = length as u64;
        match kind {
            b'$' | b'!' | b'=' => {
                self.phase = Phase::Blob { left: length + 2 };
                Ok(false)
            }
            _ => {
                let (left, attribute) = match kind {
                    b'%' => (length.saturating_mul(2), false),
                    b'|' => (length.saturating_mul(2), true),
                    _ => (length, false),
                };
                if left > MAX_ELEMENTS {
                    return self.fail(ReplyError::BadLength);
                }
                if left == 0 {
                    return if attribute {
                        self.phase = Phase::Type;
                        Ok(false)
                    } else {
                        self.value_done()
                    };
                }
                let open = Open(if attribute { left | ATTRIBUTE } else { left });
                self.phase = Phase::Type;
                if let Some(parent) = self.stack.last_mut().filter(|p| p.0 == 1) {
                    // The parent's last value: both end when this one does.
                    *parent = open;
                } else if self.stack.len() >= MAX_DEPTH {
                    return self.fail(ReplyError::TooDeep);
                } else {
                    self.stack.push(open);
                }
                Ok(false)
            }
        }
    }

    /// A value ended: count it against the enclosing aggregates. Returns
    /// whether the top-level frame is complete.
    fn value_done(&mut self) -> Result<bool, ReplyError> {
        self.phase = Phase::Type;
        loop {
            let Some(open) = self.stack.last_mut() else {
                self.in_frame = false;
                if self.stack.capacity() > KEEP_STACK {
                    self.stack = Vec::new();
                }
                return Ok(true);
            };
            open.0 -= 1;
            if open.left() > 0 {
                return Ok(false);
            }
            let attribute = open.is_attribute();
            self.stack.pop();
            if attribute {
                // The annotated value is still to come.
                return Ok(false);
            }
        }
    }
}

/// Where the top-level reply that lies whole in `input` from `at` ends, if
/// it is one value and no aggregate: a simple line (`+ - : , ( # _`) or a
/// blob (`$ ! =`, or the null `$-1`). Read in place in one pass: the fast
/// path for the replies almost every chunk holds.
///
/// `None` whenever [`ReplyFramer`] might do anything with those bytes but
/// read them, from a frame start, as one reply to the same end: an
/// aggregate or push, a reply that runs past the input, or any line the
/// framer would refuse. The caller then uses the framer, which decides
/// those cases. (A property test holds the two to agreeing.)
pub fn whole_simple_reply(input: &[u8], at: usize) -> Option<usize> {
    let rest = input.get(at..)?;
    let (&kind, line) = rest.split_first()?;
    let cr = line.iter().position(|&b| b == b'\r')?;
    if line.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    let after_line = at + 1 + cr + 2;
    match kind {
        b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_' => Some(after_line),
        b'$' | b'!' | b'=' => {
            // The framer keeps at most 20 length bytes.
            let digits = line.get(..cr).filter(|d| d.len() <= 20)?;
            match super::parse_redis_int(digits)? {
                -1 if kind == b'$' => Some(after_line),
                len if len >= 0 => {
                    let end = after_line
                        .checked_add(usize::try_from(len).ok()?)?
                        .checked_add(2)?;
                    (input.get(end.checked_sub(1)?) == Some(&b'\n')).then_some(end)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Reads values from the start of a complete frame kept by the caller.
#[derive(Clone, Copy, Debug)]
pub struct FrameReader<'a> {
    rest: &'a [u8],
}

impl<'a> FrameReader<'a> {
    pub fn new(frame: &'a [u8]) -> Self {
        Self { rest: frame }
    }

    /// True when everything has been read.
    pub fn is_done(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads a type byte and the rest of its line (without CRLF).
    pub fn line(&mut self) -> Option<(u8, &'a [u8])> {
        let (&kind, rest) = self.rest.split_first()?;
        let end = rest.iter().position(|&b| b == b'\r')?;
        let line = rest.get(..end)?;
        self.rest = rest.get(end + 2..)?;
        Some((kind, line))
    }

    /// Reads an aggregate header of the given kind, returning its length.
    pub fn aggregate(&mut self, kinds: &[u8]) -> Option<i64> {
        let mut probe = *self;
        let (kind, line) = probe.line()?;
        if !kinds.contains(&kind) {
            return None;
        }
        let length = super::parse_redis_int(line)?;
        *self = probe;
        Some(length)
    }

    /// Reads a bulk string; `Some(None)` for a null bulk.
    pub fn bulk(&mut self) -> Option<Option<&'a [u8]>> {
        let mut probe = *self;
        let (kind, line) = probe.line()?;
        if kind == b'_' {
            *self = probe;
            return Some(None);
        }
        if kind != b'$' {
            return None;
        }
        let length = super::parse_redis_int(line)?;
        if length == -1 {
            *self = probe;
            return Some(None);
        }
        let length = usize::try_from(length).ok()?;
        let data = probe.rest.get(..length)?;
        if probe.rest.get(length..length + 2)? != b"\r\n" {
            return None;
        }
        self.rest = probe.rest.get(length + 2..)?;
        Some(Some(data))
    }

    /// Reads an integer reply.
    pub fn integer(&mut self) -> Option<i64> {
        let mut probe = *self;
        let (kind, line) = probe.line()?;
        if kind != b':' {
            return None;
        }
        let value = super::parse_redis_int(line)?;
        *self = probe;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `input` into top-level frames, fed in chunks of `chunk` bytes.
    fn frames(input: &[u8], chunk: usize) -> Result<Vec<Vec<u8>>, ReplyError> {
        let mut framer = ReplyFramer::new();
        let mut frames = Vec::new();
        let mut current = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            let mut pos = 0;
            while pos < piece.len() {
                let start = pos;
                let done = framer.advance(piece, &mut pos)?;
                current.extend_from_slice(&piece[start..pos]);
                if done {
                    frames.push(std::mem::take(&mut current));
                }
            }
        }
        assert!(current.is_empty() == framer.at_frame_start());
        Ok(frames)
    }

    fn every_chunking(input: &[u8]) -> Vec<Vec<u8>> {
        let whole = frames(input, input.len()).unwrap();
        for chunk in [1, 2, 3, 7] {
            assert_eq!(frames(input, chunk).unwrap(), whole, "chunk {chunk}");
        }
        whole
    }

    #[test]
    fn splits_resp2_replies() {
        let replies: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR no\r\n",
            b":42\r\n",
            b"$3\r\nfoo\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            b"$7\r\n\r\n+OK\r\n\r\n",
        ];
        let input: Vec<u8> = replies.concat();
        let got = every_chunking(&input);
        assert_eq!(got, replies);
    }

    #[test]
    fn splits_resp3_replies() {
        let replies: &[&[u8]] = &[
            b"%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n",
            b"~1\r\n,1.5\r\n",
            b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            b"_\r\n",
            b"#t\r\n",
            b"(123\r\n",
            b"!3\r\nerr\r\n",
            b"=7\r\ntxt:abc\r\n",
            b"|1\r\n+ttl\r\n:3\r\n$2\r\nok\r\n",
            b"%0\r\n",
            b"|0\r\n+x\r\n",
            b"*1\r\n|1\r\n+a\r\n+b\r\n:5\r\n",
        ];
        let input: Vec<u8> = replies.concat();
        assert_eq!(every_chunking(&input), replies);
    }

    #[test]
    fn rejects_what_is_not_resp() {
        for bad in [
            &b"x\r\n"[..],
            b"+OK\rX",
            b"$abc\r\n",
            b"$-2\r\n",
            b"%-1\r\n",
            b"$?\r\n",
            b"$3\r\nfooXY",
            b"*123456789012345678901\r\n",
        ] {
            assert!(frames(bad, 100).is_err(), "{bad:?}");
        }
        let deep = "*2\r\n".repeat(MAX_DEPTH + 1);
        assert_eq!(frames(deep.as_bytes(), 100), Err(ReplyError::TooDeep));
    }

    /// `EVAL "local a = {}; local b = {a}; a[1] = b; return a" 0` and its
    /// variants, as Redis 7.0.15 sends them (about 8,000 levels).
    #[test]
    fn frames_the_nesting_lua_produces() {
        let lua_limit = b"-ERR reached lua stack limit\r\n";
        let tail_chain = [&b"*1\r\n".repeat(7995)[..], lua_limit].concat();
        let head_chain = [
            &b"*2\r\n".repeat(7995)[..],
            lua_limit,
            &b":1\r\n".repeat(7995),
        ]
        .concat();
        let mixed = [&b"*2\r\n:1\r\n".repeat(7995)[..], lua_limit].concat();
        for reply in [tail_chain, head_chain, mixed] {
            let input = [&reply[..], b"+OK\r\n"].concat();
            for chunk in [1, 7, input.len()] {
                let got = frames(&input, chunk).unwrap();
                assert_eq!(got, [reply.clone(), b"+OK\r\n".to_vec()], "chunk {chunk}");
            }
        }
        // The tail chain needs no stack at all.
        let mut framer = ReplyFramer::new();
        let chain = b"*1\r\n".repeat(100_000);
        let mut pos = 0;
        assert_eq!(framer.advance(&chain, &mut pos), Ok(false));
        assert_eq!(framer.stack.len(), 1);
        let mut pos = 0;
        assert_eq!(framer.advance(b":1\r\n", &mut pos), Ok(true));
        assert!(framer.stack.capacity() <= KEEP_STACK);
    }

    #[test]
    fn attributes_as_last_elements_still_belong_to_the_parent() {
        // [[|attr| 1], 2]: the attribute opens where the inner array has one
        // value left.
        let reply = b"*2\r\n*1\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n";
        let input = [&reply[..], b"+OK\r\n"].concat();
        assert_eq!(
            every_chunking(&input),
            [reply.to_vec(), b"+OK\r\n".to_vec()]
        );
    }

    #[test]
    fn streams_a_large_bulk() {
        let mut input = b"$5000000\r\n".to_vec();
        input.resize(input.len() + 5_000_000, b'x');
        input.extend_from_slice(b"\r\n+OK\r\n");
        let got = frames(&input, 64 * 1024).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], b"+OK\r\n");
    }

    #[test]
    fn reads_small_frames() {
        let frame = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
        let mut reader = FrameReader::new(frame);
        assert_eq!(reader.aggregate(b"*>"), Some(3));
        assert_eq!(reader.bulk(), Some(Some(&b"subscribe"[..])));
        assert_eq!(reader.bulk(), Some(Some(&b"ch"[..])));
        assert_eq!(reader.integer(), Some(1));
        assert!(reader.is_done());
        let mut reader = FrameReader::new(b"$-1\r\n_\r\n:x\r\n");
        assert_eq!(reader.bulk(), Some(None));
        assert_eq!(reader.bulk(), Some(None));
        assert_eq!(reader.integer(), None);
        assert_eq!(FrameReader::new(b"$5\r\nab\r\n").bulk(), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_chunking_is_invisible(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            chunk in 1usize..16,
        ) {
            let whole = frames(&input, input.len());
            let pieces = frames(&input, chunk);
            match (whole, pieces) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                (a, b) => proptest::prop_assert!(false, "{:?} vs {:?}", a, b),
            }
            let mut reader = FrameReader::new(&input);
            let _ = (reader.aggregate(b"*"), reader.bulk(), reader.integer(), reader.line());
        }

        #[test]
        fn whole_simple_reply_agrees_with_the_framer(
            kind in proptest::sample::select(b"+-:,(#_$!=*%>~|?".to_vec()),
            body in proptest::collection::vec(proptest::sample::select(
                b"0123456789-?\r\nab".to_vec()), 0..30),
            len in proptest::option::of(-3i64..40),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            // A type byte, then either a well-formed length line or loose
            // bytes of the kinds that matter, then anything.
            let mut input = vec![kind];
            match len {
                Some(len) => input.extend_from_slice(format!("{len}\r\n").as_bytes()),
                None => input.extend_from_slice(&body),
            }
            input.extend_from_slice(&tail);
            let Some(end) = whole_simple_reply(&input, 0) else {
                return Ok(());
            };
            let mut framer = ReplyFramer::new();
            let mut pos = 0;
            proptest::prop_assert_eq!(framer.advance(&input, &mut pos), Ok(true));
            proptest::prop_assert_eq!(pos, end);
        }
    }
}
