//! Client request framing, byte-compatible with Redis 7.0.
//!
//! [`RequestParser`] reads the bytes a client sends, one command at a time,
//! accepting exactly what `processMultibulkBuffer` and `processInlineBuffer`
//! in Redis's `networking.c` accept and failing with exactly their protocol
//! errors. Parsing the way the server parses is what makes the filter safe:
//! a command we classify as `GET` is the command the server runs, never an
//! `AUTH` smuggled past us by a framing disagreement.
//!
//! Quirks kept on purpose because Redis has them: the byte after the `\r` of
//! a length line and the two bytes after a bulk payload are skipped without
//! being checked; a NUL byte before a line terminator makes Redis's `strchr`
//! miss the terminator, so the line never completes and eventually fails as
//! too big; `*0` and negative counts are empty commands with no reply.
//!
//! The caller decides, once a command's name is known, whether the raw bytes
//! are forwarded as they stream in ([`Disposition::Forward`]) or the command
//! is collected for inspection ([`Disposition::Collect`]). Until then the
//! raw bytes are held here; that is bounded by the header line limit plus
//! [`NAME_MAX`]. Collected arguments are retained up to [`RETAINED_ARG_MAX`]
//! bytes each and [`RETAINED_ARGS_MAX`] in number; beyond that only their
//! lengths are known. Partial input is never an error.

use super::output::Output;
use super::parse_redis_int;

/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest inline request or length
/// line it waits for.
pub const INLINE_MAX: usize = 64 * 1024;
/// Redis's `PROTO_IOBUF_LEN`: it reads a client's bytes at most this many at
/// a time when they are there, and checks [`INLINE_MAX`] after each read. A
/// line whose end lies `INLINE_MAX + REDIS_READ_LEN` or more from its start
/// is refused however the bytes arrive (the filter's chunks can be far
/// larger than Redis's reads); between the two, where Redis's reads fall
/// decides, and the filter's chunks stand in for them.
pub const REDIS_READ_LEN: usize = 16 * 1024;
/// Redis refuses more arguments than this before authentication.
pub const UNAUTHENTICATED_MAX_ARGS: i64 = 10;
/// Redis refuses bulk arguments longer than this before authentication.
pub const UNAUTHENTICATED_MAX_BULK: i64 = 16 * 1024;
/// Redis's default `proto-max-bulk-len`.
pub const MAX_BULK_LEN: i64 = 512 * 1024 * 1024;
/// A first argument longer than this is no command the filter handles itself,
/// so the caller is asked to decide before it arrives.
pub const NAME_MAX: usize = 32;
/// Bytes retained per collected argument.
pub const RETAINED_ARG_MAX: usize = 64 * 1024;
/// Arguments retained per collected command.
pub const RETAINED_ARGS_MAX: usize = 1024;
/// Bytes retained per collected command, all arguments together.
pub const RETAINED_TOTAL_MAX: usize = 1024 * 1024;

/// A client protocol error. Redis replies with [`ProtocolError::reply`] and
/// closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    TooBigInlineRequest,
    UnbalancedQuotes,
    TooBigMultibulkCount,
    InvalidMultibulkLength,
    UnauthenticatedMultibulkLength,
    TooBigBulkCount,
    /// The byte found where a `$` was expected.
    ExpectedDollar(u8),
    InvalidBulkLength,
    UnauthenticatedBulkLength,
}

impl ProtocolError {
    /// Appends the exact error reply Redis 7.0 sends.
    pub fn reply(self, out: &mut Vec<u8>) {
        let text: &[u8] = match self {
            Self::TooBigInlineRequest => b"too big inline request",
            Self::UnbalancedQuotes => b"unbalanced quotes in request",
            Self::TooBigMultibulkCount => b"too big mbulk count string",
            Self::InvalidMultibulkLength => b"invalid multibulk length",
            Self::UnauthenticatedMultibulkLength => b"unauthenticated multibulk length",
            Self::TooBigBulkCount => b"too big bulk count string",
            Self::ExpectedDollar(byte) => {
                out.extend_from_slice(b"-ERR Protocol error: expected '$', got '");
                // Redis formats the byte with %c, then turns CR/LF into spaces.
                out.push(if byte == b'\r' || byte == b'\n' {
                    b' '
                } else {
                    byte
                });
                out.extend_from_slice(b"'\r\n");
                return;
            }
            Self::InvalidBulkLength => b"invalid bulk length",
            Self::UnauthenticatedBulkLength => b"unauthenticated bulk length",
        };
        out.extend_from_slice(b"-ERR Protocol error: ");
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }

    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooBigInlineRequest => "too big inline request",
            Self::UnbalancedQuotes => "unbalanced quotes in request",
            Self::TooBigMultibulkCount => "too big mbulk count string",
            Self::InvalidMultibulkLength => "invalid multibulk length",
            Self::UnauthenticatedMultibulkLength => "unauthenticated multibulk length",
            Self::TooBigBulkCount => "too big bulk count string",
            Self::ExpectedDollar(_) => "expected '$'",
            Self::InvalidBulkLength => "invalid bulk length",
            Self::UnauthenticatedBulkLength => "unauthenticated bulk length",
        }
    }
}

/// What happens to a command's bytes once its name is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Raw bytes go to the output as they arrive; arguments are not kept.
    Forward,
    /// Raw bytes are dropped; arguments are kept for [`Event::Command`].
    Collect,
    /// Not yet: keep holding the raw bytes and retaining the arguments
    /// until this many arguments (the name included) are complete, or the
    /// command ends, or the held bytes would pass [`HOLD_MAX`]; then offer
    /// the command again.
    Inspect(usize),
}

/// The most bytes of one command held while the caller inspects its
/// arguments ([`Disposition::Inspect`]); an argument that would take the
/// command past it is offered before its payload, with
/// [`Head::over_hold`] set.
pub const HOLD_MAX: usize = 1024 * 1024;

/// The start of a command, offered to the caller for a [`Disposition`].
#[derive(Clone, Copy, Debug)]
pub struct Head<'p> {
    /// Number of arguments, the name included.
    pub argc: usize,
    /// The first argument, or `None` if it is longer than [`NAME_MAX`].
    pub name: Option<&'p [u8]>,
    /// Whether the command came in the inline format.
    pub inline: bool,
    /// The arguments read so far (retained as in [`Args`]).
    pub args: &'p Args,
    /// How many arguments are complete.
    pub complete_args: usize,
    /// The next argument would take the held command past [`HOLD_MAX`]:
    /// the caller must decide now.
    pub over_hold: bool,
}

/// What [`RequestParser::next`] found.
#[derive(Debug)]
pub enum Event<'p> {
    /// The input is used up; call again with more bytes.
    NeedMore,
    /// A command with no arguments (`*0`, a negative count, a blank inline
    /// line). Redis ignores it without a reply. Its bytes were handed on if
    /// the caller said the client is authenticated, dropped otherwise.
    Empty,
    /// A command's name is known: call [`RequestParser::decide`] before
    /// calling `next` again.
    Decide(Head<'p>),
    /// A collected command is complete.
    Command(&'p Args),
    /// A forwarded command has been handed on completely.
    Forwarded,
    /// A protocol error. Redis replies and closes; the parser stays failed.
    Error(ProtocolError),
}

/// The arguments of a collected command.
#[derive(Default)]
pub struct Args {
    data: Vec<u8>,
    spans: Vec<Span>,
    argc: usize,
}

#[derive(Clone, Copy)]
struct Span {
    start: usize,
    kept: usize,
    len: usize,
}

impl Args {
    /// Number of arguments in the command, including ones not retained.
    pub fn argc(&self) -> usize {
        self.argc
    }

    /// The retained bytes of argument `index`; `None` past the retained
    /// arguments. Check [`is_whole`](Self::is_whole) before trusting them to
    /// be the entire argument.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let span = self.spans.get(index)?;
        self.data.get(span.start..span.start + span.kept)
    }

    /// True when argument `index` was retained in full.
    pub fn is_whole(&self, index: usize) -> bool {
        self.spans.get(index).is_some_and(|s| s.kept == s.len)
    }

    /// Argument `index` if it was retained in full.
    pub fn whole(&self, index: usize) -> Option<&[u8]> {
        if self.is_whole(index) {
            self.get(index)
        } else {
            None
        }
    }

    /// Bytes allocated for the retained arguments.
    pub fn held_bytes(&self) -> usize {
        self.data.capacity() + self.spans.capacity() * std::mem::size_of::<Span>()
    }

    /// Forgets the arguments and gives back what a large command made
    /// large.
    pub fn reset(&mut self) {
        self.clear();
        trim_buffer(&mut self.data);
    }

    fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
        self.argc = 0;
        // Do not keep a huge command's allocation for the connection's life.
        if self.data.capacity() > RETAINED_ARG_MAX {
            self.data = Vec::new();
        }
    }

    fn start_arg(&mut self, len: usize) {
        if self.spans.len() < RETAINED_ARGS_MAX {
            self.spans.push(Span {
                start: self.data.len(),
                kept: 0,
                len,
            });
        }
    }

    /// Appends bytes to the argument being read (the last one started).
    fn extend_arg(&mut self, index: usize, bytes: &[u8]) {
        if index + 1 != self.spans.len() {
            return; // past RETAINED_ARGS_MAX
        }
        if let Some(span) = self.spans.last_mut() {
            let room = RETAINED_ARG_MAX
                .saturating_sub(span.kept)
                .min(RETAINED_TOTAL_MAX.saturating_sub(self.data.len()));
            let take = bytes.len().min(room);
            self.data
                .extend_from_slice(bytes.get(..take).unwrap_or_default());
            span.kept += take;
        }
    }

    /// Retains the first `n` arguments of the command [`whole_command`]
    /// read at `at` in `input`, as the parser retains them (the same
    /// bounds), with its argument count: for the checks that read
    /// arguments, on the fast path.
    pub fn retain_whole(&mut self, input: &[u8], at: usize, command: &WholeCommand<'_>, n: usize) {
        self.clear();
        self.argc = command.argc;
        let n = n.min(command.argc);
        if let Some(spans) = command.spans.get(..n) {
            for &(start, end) in spans {
                self.push_whole(input.get(start..end).unwrap_or_default());
            }
            return;
        }
        let Some((_, mut next)) = plain_length_line(input, at, b'*') else {
            return;
        };
        for _ in 0..n {
            let Some((len, data)) = plain_length_line(input, next, b'$') else {
                return;
            };
            let Some(end) = usize::try_from(len)
                .ok()
                .and_then(|len| data.checked_add(len))
            else {
                return;
            };
            self.push_whole(input.get(data..end).unwrap_or_default());
            next = end + 2;
        }
    }

    fn push_whole(&mut self, bytes: &[u8]) {
        self.start_arg(bytes.len());
        self.extend_arg(self.spans.len().saturating_sub(1), bytes);
    }
}

// Arguments can be passwords: never print them.
impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Args {{ argc: {}, .. }}", self.argc)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Undecided,
    Forward,
    Collect,
}

/// Where parsing resumes once the caller has decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    /// Nothing of the command is left.
    Complete,
    /// The next argument's length line.
    BulkLine,
    /// The first argument's payload (decided early because it is long).
    BulkData(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between commands.
    Start,
    /// Reading an inline line into `line`.
    Inline,
    /// Reading a `*<count>` line into `line`.
    MultibulkLine,
    /// Reading a `$<len>` line into `line`.
    BulkLine,
    /// Reading `left` payload bytes of the current argument.
    BulkData {
        left: u64,
    },
    /// Skipping `left` bytes after a payload.
    BulkTrailer {
        left: u8,
    },
    /// `Decide` was returned at input offset `at`.
    AwaitDecision {
        at: usize,
        resume: Resume,
    },
    /// The command ended; report it and start over.
    Complete,
    Failed(ProtocolError),
}

/// Incremental parser for the client → server direction.
///
/// Drive it per chunk: [`begin_chunk`](Self::begin_chunk), then
/// [`next`](Self::next) until [`Event::NeedMore`] (answering each
/// [`Event::Decide`] with [`decide`](Self::decide)), then
/// [`end_chunk`](Self::end_chunk).
pub struct RequestParser {
    phase: Phase,
    mode: Mode,
    /// The line being read, from its first byte.
    line: Vec<u8>,
    /// Where the line terminator is in `line`, once seen.
    terminator_at: Option<usize>,
    /// A NUL came before the terminator: Redis's `strchr` will never find it.
    line_stuck: bool,
    /// Raw bytes of the undecided command from earlier chunks.
    held: Vec<u8>,
    /// Where the undecided command's bytes start in the current chunk.
    held_from: Option<usize>,
    args: Args,
    /// Arguments still to read in the current multibulk command.
    args_left: u64,
    /// Index of the argument being read.
    arg_index: usize,
    inline: bool,
    /// The argument that names the command offered by `Decide`, if short.
    name_arg: Option<usize>,
    /// Offer an undecided command once this many arguments are complete.
    offer_after: usize,
    /// The offer is made because the hold limit is reached.
    over_hold: bool,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

/// [`Event`] without borrows, so the parsing loop can return it freely.
#[derive(Clone, Copy)]
enum Signal {
    NeedMore,
    Empty,
    Decide,
    Command,
    Forwarded,
    Error(ProtocolError),
}

enum LineScan {
    Complete,
    Partial,
    TooBig,
}

impl RequestParser {
    pub fn new() -> Self {
        Self {
            phase: Phase::Start,
            mode: Mode::Undecided,
            line: Vec::new(),
            terminator_at: None,
            line_stuck: false,
            held: Vec::new(),
            held_from: None,
            args: Args::default(),
            args_left: 0,
            arg_index: 0,
            inline: false,
            name_arg: None,
            offer_after: 1,
            over_hold: false,
        }
    }

    /// Bytes allocated for partial lines, undecided commands and collected
    /// arguments (bounded by [`INLINE_MAX`], [`NAME_MAX`] and
    /// [`RETAINED_TOTAL_MAX`]).
    pub fn held_bytes(&self) -> usize {
        self.line.capacity() + self.held.capacity() + self.args.held_bytes()
    }

    /// Gives back buffers a long line or a large collected command made
    /// large, keeping what a partly read command still needs.
    pub fn trim(&mut self) {
        for buf in [&mut self.line, &mut self.held, &mut self.args.data] {
            trim_buffer(buf);
        }
    }

    /// True when no command is partially read.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Start
    }

    /// Call before the first [`next`](Self::next) on a new chunk.
    pub fn begin_chunk(&mut self) {
        if self.mode == Mode::Undecided && self.phase != Phase::Start {
            self.held_from = Some(0);
        }
    }

    /// Call after the last [`next`](Self::next) on a chunk: copies the part
    /// of an undecided command that the chunk held, since the chunk is about
    /// to be handed back to the host.
    pub fn end_chunk(&mut self, input: &[u8]) {
        if let Some(from) = self.held_from.take() {
            if self.mode == Mode::Undecided && self.phase != Phase::Start {
                self.held
                    .extend_from_slice(input.get(from..).unwrap_or_default());
            }
        }
    }

    /// Reads `input[*pos..]` until something happens. Forwarded bytes go to
    /// `out`. `authenticated` selects Redis's pre-authentication limits; it
    /// is read whenever a length line completes, so it must reflect every
    /// command reported before.
    pub fn next(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        out: &mut Output,
        authenticated: bool,
    ) -> Event<'_> {
        match self.step(input, pos, out, authenticated) {
            Signal::NeedMore => Event::NeedMore,
            Signal::Empty => Event::Empty,
            Signal::Decide => {
                let name = self
                    .name_arg
                    .and_then(|i| self.args.whole(i))
                    .filter(|name| name.len() <= NAME_MAX);
                Event::Decide(Head {
                    argc: self.args.argc,
                    name,
                    inline: self.inline,
                    args: &self.args,
                    complete_args: if self.inline {
                        self.args.argc
                    } else {
                        self.arg_index
                    },
                    over_hold: self.over_hold,
                })
            }
            Signal::Command => Event::Command(&self.args),
            Signal::Forwarded => Event::Forwarded,
            Signal::Error(error) => Event::Error(error),
        }
    }

    fn step(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        out: &mut Output,
        authenticated: bool,
    ) -> Signal {
        loop {
            match self.phase {
                Phase::Failed(error) => return Signal::Error(error),
                Phase::AwaitDecision { .. } => {
                    // The caller skipped `decide`; forwarding is the only
                    // choice that loses nothing, but it is a caller bug.
                    self.decide(input, out, Disposition::Forward);
                }
                Phase::Complete => {
                    self.phase = Phase::Start;
                    return match self.mode {
                        Mode::Collect => Signal::Command,
                        _ => Signal::Forwarded,
                    };
                }
                Phase::Start => {
                    let Some(&first) = input.get(*pos) else {
                        return Signal::NeedMore;
                    };
                    self.begin_command(first == b'*', *pos);
                }
                Phase::Inline => match self.scan_line(input, pos, out, b'\n') {
                    LineScan::Partial => return Signal::NeedMore,
                    LineScan::TooBig => return self.fail(ProtocolError::TooBigInlineRequest),
                    LineScan::Complete => {
                        return self.finish_inline(input, *pos, out, authenticated);
                    }
                },
                Phase::MultibulkLine | Phase::BulkLine => {
                    let multibulk = matches!(self.phase, Phase::MultibulkLine);
                    if !multibulk
                        && self.mode == Mode::Forward
                        && self.skip_forwarded(input, pos, out, authenticated)
                    {
                        continue;
                    }
                    let (first, number) = match whole_line(&self.line, input, *pos) {
                        // The common case: the line is read where it lies.
                        Some((first, digits, end)) => {
                            self.sink(input, *pos..end, out);
                            *pos = end;
                            (first, parse_redis_int(digits))
                        }
                        None => match self.scan_line(input, pos, out, b'\r') {
                            LineScan::Partial => return Signal::NeedMore,
                            LineScan::TooBig => {
                                return self.fail(if multibulk {
                                    ProtocolError::TooBigMultibulkCount
                                } else {
                                    ProtocolError::TooBigBulkCount
                                });
                            }
                            LineScan::Complete => (
                                self.line.first().copied().unwrap_or(0),
                                parse_redis_int(self.line_digits()),
                            ),
                        },
                    };
                    let event = if multibulk {
                        self.finish_multibulk_line(number, input, *pos, out, authenticated)
                    } else {
                        self.finish_bulk_line(first, number, *pos, authenticated)
                    };
                    if let Some(event) = event {
                        return event;
                    }
                }
                Phase::BulkData { left } => {
                    let available = input.len().saturating_sub(*pos);
                    if available == 0 {
                        return Signal::NeedMore;
                    }
                    if let Some(whole) = usize::try_from(left)
                        .ok()
                        .and_then(|left| left.checked_add(2))
                        .filter(|&whole| whole <= available)
                    {
                        // The payload and the two bytes after it are all
                        // here: one step instead of two.
                        if self.mode != Mode::Forward {
                            let bytes = input.get(*pos..*pos + whole - 2).unwrap_or_default();
                            self.args.extend_arg(self.arg_index, bytes);
                        }
                        self.sink(input, *pos..*pos + whole, out);
                        *pos += whole;
                        if let Some(event) = self.finish_arg(*pos) {
                            return event;
                        }
                        continue;
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(available);
                    let range = *pos..*pos + take;
                    if self.mode != Mode::Forward {
                        let bytes = input.get(range.clone()).unwrap_or_default();
                        self.args.extend_arg(self.arg_index, bytes);
                    }
                    self.sink(input, range, out);
                    *pos += take;
                    let left = left - take as u64;
                    self.phase = if left == 0 {
                        Phase::BulkTrailer { left: 2 }
                    } else {
                        Phase::BulkData { left }
                    };
                }
                Phase::BulkTrailer { left } => {
                    let available = input.len().saturating_sub(*pos);
                    if available == 0 {
                        return Signal::NeedMore;
                    }
                    let take = usize::from(left).min(available);
                    self.sink(input, *pos..*pos + take, out);
                    *pos += take;
                    let left = left - take as u8;
                    if left > 0 {
                        self.phase = Phase::BulkTrailer { left };
                    } else if let Some(event) = self.finish_arg(*pos) {
                        return event;
                    }
                }
            }
        }
    }

    /// Chooses what happens to the command offered by [`Event::Decide`].
    pub fn decide(&mut self, input: &[u8], out: &mut Output, disposition: Disposition) {
        let Phase::AwaitDecision { at, resume } = self.phase else {
            return;
        };
        self.over_hold = false;
        if let Disposition::Inspect(args) = disposition {
            if resume != Resume::Complete {
                // Stay undecided: the bytes stay held, arguments retained.
                self.offer_after = args.max(self.arg_index + 1);
                self.phase = match resume {
                    Resume::BulkLine | Resume::Complete => Phase::BulkLine,
                    Resume::BulkData(0) => Phase::BulkTrailer { left: 2 },
                    Resume::BulkData(left) => Phase::BulkData { left },
                };
                return;
            }
            // Nothing more will come: the caller's bug; forwarding loses
            // nothing (the session always decides a complete command).
        }
        match disposition {
            Disposition::Forward => {
                out.push(input, &self.held);
                if let Some(from) = self.held_from {
                    out.pass(input, from..at);
                }
                self.mode = Mode::Forward;
            }
            Disposition::Collect => self.mode = Mode::Collect,
            Disposition::Inspect(_) => {
                out.push(input, &self.held);
                if let Some(from) = self.held_from {
                    out.pass(input, from..at);
                }
                self.mode = Mode::Forward;
            }
        }
        self.held.clear();
        self.held_from = None;
        self.phase = match resume {
            Resume::Complete => Phase::Complete,
            Resume::BulkLine => Phase::BulkLine,
            Resume::BulkData(0) => Phase::BulkTrailer { left: 2 },
            Resume::BulkData(left) => Phase::BulkData { left },
        };
    }

    fn begin_command(&mut self, multibulk: bool, at: usize) {
        self.mode = Mode::Undecided;
        self.args.clear();
        self.held.clear();
        self.held_from = Some(at);
        self.reset_line();
        self.args_left = 0;
        self.arg_index = 0;
        self.offer_after = 1;
        self.over_hold = false;
        self.inline = !multibulk;
        self.phase = if multibulk {
            Phase::MultibulkLine
        } else {
            Phase::Inline
        };
    }

    fn fail(&mut self, error: ProtocolError) -> Signal {
        self.phase = Phase::Failed(error);
        self.held.clear();
        self.held_from = None;
        self.line.clear();
        Signal::Error(error)
    }

    /// Routes raw bytes of the current command by mode. Undecided bytes stay
    /// where they are, covered by `held_from`, until the chunk ends.
    fn sink(&mut self, input: &[u8], range: std::ops::Range<usize>, out: &mut Output) {
        if self.mode == Mode::Forward {
            out.pass(input, range);
        }
    }

    /// Reads line bytes until the terminator (and, for `\r`, the one byte
    /// Redis skips after it), the end of input, or the size limit.
    fn scan_line(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        out: &mut Output,
        terminator: u8,
    ) -> LineScan {
        let rest = input.get(*pos..).unwrap_or_default();
        let extra = usize::from(terminator == b'\r');
        let mut take = rest.len();
        let mut complete = false;
        if let Some(at) = self.terminator_at {
            // Terminator already seen; only the byte Redis skips is missing.
            if !rest.is_empty() {
                take = (at + 1 + extra)
                    .saturating_sub(self.line.len())
                    .min(rest.len());
                complete = true;
            }
        } else if !self.line_stuck {
            match rest.iter().position(|&b| b == terminator || b == 0) {
                Some(i) if rest.get(i) == Some(&0) => {
                    // Redis's strchr stops at a NUL: the line can never end.
                    self.line_stuck = true;
                }
                Some(i) => {
                    self.terminator_at = Some(self.line.len() + i);
                    if rest.len() > i + extra {
                        take = i + 1 + extra;
                        complete = true;
                    }
                }
                None => {}
            }
        }
        let range = *pos..*pos + take;
        // A stuck line's content is never read again; only its length counts.
        if !self.line_stuck || self.line.len() <= INLINE_MAX {
            self.line
                .extend_from_slice(input.get(range.clone()).unwrap_or_default());
        }
        self.sink(input, range, out);
        *pos += take;
        if self
            .terminator_at
            .is_some_and(|at| at >= INLINE_MAX + REDIS_READ_LEN)
        {
            // Redis would have read past INLINE_MAX without the line end.
            LineScan::TooBig
        } else if complete {
            LineScan::Complete
        } else if self.terminator_at.is_none() && self.line.len() > INLINE_MAX {
            LineScan::TooBig
        } else {
            LineScan::Partial
        }
    }

    /// The digits between the type byte and the `\r` of a length line.
    fn line_digits(&self) -> &[u8] {
        let end = self.terminator_at.unwrap_or(self.line.len());
        self.line.get(1..end).unwrap_or_default()
    }

    /// A `*<count>` line has been read; `count` is its digits, parsed.
    fn finish_multibulk_line(
        &mut self,
        count: Option<i64>,
        input: &[u8],
        at: usize,
        out: &mut Output,
        authenticated: bool,
    ) -> Option<Signal> {
        let count = match count {
            Some(n) if n <= i64::from(i32::MAX) => n,
            _ => return Some(self.fail(ProtocolError::InvalidMultibulkLength)),
        };
        if count > UNAUTHENTICATED_MAX_ARGS && !authenticated {
            return Some(self.fail(ProtocolError::UnauthenticatedMultibulkLength));
        }
        self.reset_line();
        if count <= 0 {
            return Some(self.finish_empty(input, at, out, authenticated));
        }
        self.args_left = count as u64;
        self.args.argc = count as usize;
        self.phase = Phase::BulkLine;
        None
    }

    /// A bulk length line has been read: its first byte and its digits,
    /// parsed.
    fn finish_bulk_line(
        &mut self,
        first: u8,
        len: Option<i64>,
        at: usize,
        authenticated: bool,
    ) -> Option<Signal> {
        if first != b'$' {
            return Some(self.fail(ProtocolError::ExpectedDollar(first)));
        }
        let len = match len {
            Some(n) if (0..=MAX_BULK_LEN).contains(&n) => n as u64,
            _ => return Some(self.fail(ProtocolError::InvalidBulkLength)),
        };
        if len > UNAUTHENTICATED_MAX_BULK as u64 && !authenticated {
            return Some(self.fail(ProtocolError::UnauthenticatedBulkLength));
        }
        self.reset_line();
        if self.mode != Mode::Forward {
            self.args.start_arg(len as usize);
        }
        // A long first argument is no command we handle: offer it now rather
        // than hold it.
        if self.arg_index == 0 && self.mode == Mode::Undecided && len > NAME_MAX as u64 {
            return Some(self.offer(at, Resume::BulkData(len), None));
        }
        if self.mode == Mode::Undecided && self.offer_after > 1 {
            // Inspecting: the bytes held so far, this line included.
            let in_chunk = self.held_from.map_or(0, |from| at.saturating_sub(from));
            let held = self.held.len().saturating_add(in_chunk);
            if (held as u64).saturating_add(len) > HOLD_MAX as u64 {
                self.over_hold = true;
                return Some(self.offer(at, Resume::BulkData(len), Some(0)));
            }
        }
        self.phase = if len == 0 {
            Phase::BulkTrailer { left: 2 }
        } else {
            Phase::BulkData { left: len }
        };
        None
    }

    /// Hands on, in one step, the arguments of a forwarded command that lie
    /// whole in the input from `*pos` (length line, payload, trailer), as
    /// the general path would one phase at a time; stops at the first that
    /// does not, or whose length line the general path must judge. Returns
    /// whether it took any.
    fn skip_forwarded(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        out: &mut Output,
        authenticated: bool,
    ) -> bool {
        if !self.line.is_empty() {
            return false; // a line begun in an earlier chunk
        }
        let start = *pos;
        let mut at = start;
        let max_len = if authenticated {
            MAX_BULK_LEN
        } else {
            UNAUTHENTICATED_MAX_BULK
        };
        while self.args_left > 0 {
            let Some((len, data)) = plain_length_line(input, at, b'$') else {
                break;
            };
            if len > max_len as u64 {
                break;
            }
            let Some(end) = usize::try_from(len)
                .ok()
                .and_then(|len| data.checked_add(len)?.checked_add(2))
                .filter(|&end| end <= input.len())
            else {
                break;
            };
            at = end;
            self.args_left -= 1;
            self.arg_index += 1;
        }
        if at == start {
            return false;
        }
        out.pass(input, start..at);
        *pos = at;
        if self.args_left == 0 {
            self.phase = Phase::Complete;
        }
        true
    }

    /// Called when an argument's trailer is consumed.
    fn finish_arg(&mut self, at: usize) -> Option<Signal> {
        self.args_left = self.args_left.saturating_sub(1);
        let index = self.arg_index;
        self.arg_index += 1;
        let resume = if self.args_left == 0 {
            Resume::Complete
        } else {
            Resume::BulkLine
        };
        if self.mode == Mode::Undecided
            && (index + 1 >= self.offer_after || resume == Resume::Complete)
        {
            return Some(self.offer(at, resume, Some(0)));
        }
        self.phase = match resume {
            Resume::Complete => Phase::Complete,
            _ => Phase::BulkLine,
        };
        None
    }

    /// Offers the command to the caller, naming it by argument `name_arg`.
    fn offer(&mut self, at: usize, resume: Resume, name_arg: Option<usize>) -> Signal {
        self.phase = Phase::AwaitDecision { at, resume };
        self.name_arg = name_arg;
        Signal::Decide
    }

    fn finish_inline(
        &mut self,
        input: &[u8],
        at: usize,
        out: &mut Output,
        authenticated: bool,
    ) -> Signal {
        let mut end = self.terminator_at.unwrap_or(self.line.len());
        if end > 0 && self.line.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        self.args.clear();
        let line = self.line.get(..end).unwrap_or_default();
        if split_inline_args(line, &mut self.args).is_err() {
            return self.fail(ProtocolError::UnbalancedQuotes);
        }
        self.reset_line();
        if self.args.argc == 0 {
            return self.finish_empty(input, at, out, authenticated);
        }
        self.offer(at, Resume::Complete, Some(0))
    }

    /// An empty command: hand its bytes on if the client may talk to the
    /// server (they are harmless and keep the chunk untouched), else drop.
    fn finish_empty(
        &mut self,
        input: &[u8],
        at: usize,
        out: &mut Output,
        authenticated: bool,
    ) -> Signal {
        if authenticated {
            out.push(input, &self.held);
            if let Some(from) = self.held_from {
                out.pass(input, from..at);
            }
        }
        self.held.clear();
        self.held_from = None;
        self.phase = Phase::Start;
        Signal::Empty
    }

    fn reset_line(&mut self) {
        self.line.clear();
        self.terminator_at = None;
        self.line_stuck = false;
    }
}

/// The longest length line [`whole_line`] reads in place: `$`, a sign, 19
/// digits, `\r` and the byte after it fit; anything longer is invalid and
/// left to [`RequestParser::scan_line`], which knows every way it fails.
const WHOLE_LINE_MAX: usize = 32;

/// A length line that lies whole in `input` from `at`, with the byte Redis
/// skips after its `\r`: its first byte, its digits and where it ends,
/// read in place. `None` when part of it came in an earlier chunk (`line`
/// holds it), when it runs past the input, when a NUL comes before its
/// `\r`, or when it is too long to be valid: `scan_line` reads those
/// (and fails them) exactly as Redis does. Where both apply, they agree.
fn whole_line<'i>(line: &[u8], input: &'i [u8], at: usize) -> Option<(u8, &'i [u8], usize)> {
    if !line.is_empty() {
        return None;
    }
    let rest = input.get(at..)?;
    let window = rest.get(..rest.len().min(WHOLE_LINE_MAX))?;
    let cr = window.iter().position(|&b| b == b'\r' || b == 0)?;
    if window.get(cr) != Some(&b'\r') || rest.len() <= cr + 1 {
        return None;
    }
    Some((*rest.first()?, rest.get(1..cr)?, at + cr + 2))
}

/// Shrinks a buffer grown past what a partly read command usually needs
/// to its contents, or to that much.
fn trim_buffer(buf: &mut Vec<u8>) {
    const KEEP: usize = 4 * 1024;
    if buf.capacity() > KEEP {
        buf.shrink_to(buf.len().max(KEEP));
    }
}

/// A length line in its plain form, lying whole in `input` from `at`:
/// `kind`, a number of at most 18 digits without a leading zero (or `0`),
/// `\r` and the byte Redis skips after it. Its number and where it ends,
/// read in one pass. `None` for every other line, valid or not: the
/// general path ([`whole_line`], [`parse_redis_int`]) reads those. (Every
/// length a client should send has this form.)
#[inline(always)] // on the fast paths, where a call costs more than the body
fn plain_length_line(input: &[u8], at: usize, kind: u8) -> Option<(u64, usize)> {
    let rest = input.get(at..)?;
    let (&first, rest) = rest.split_first()?;
    if first != kind {
        return None;
    }
    let mut value: u64 = 0;
    let mut digits = 0;
    for &byte in rest.iter().take(19) {
        match byte {
            b'0'..=b'9' => {
                if digits == 1 && value == 0 {
                    return None; // a leading zero
                }
                value = value * 10 + u64::from(byte - b'0');
                digits += 1;
            }
            b'\r' if digits > 0 && digits <= 18 => {
                // The byte Redis skips after the `\r` must be there too.
                rest.get(digits + 1)?;
                return Some((value, at + 1 + digits + 2));
            }
            _ => return None,
        }
    }
    None
}

/// A multibulk command that lies whole in the input, read in place by
/// [`whole_command`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WholeCommand<'i> {
    /// The first argument.
    pub name: &'i [u8],
    /// Number of arguments, the name included.
    pub argc: usize,
    /// Where the command ends in the input.
    pub end: usize,
    /// Where its first [`WHOLE_SPANS`] arguments' payloads lie in the
    /// input, for [`Args::retain_whole`].
    spans: [(usize, usize); WHOLE_SPANS],
}

/// Arguments whose place [`WholeCommand`] records: as many as the ACL check
/// reads of most commands.
const WHOLE_SPANS: usize = 4;

/// The multibulk command of an authenticated client that lies whole in
/// `input` from `at`, read in place in one pass: the fast path for the
/// commands that are forwarded untouched, which are almost all of them.
///
/// `None` whenever [`RequestParser`] might do anything with those bytes but
/// read them, from idle, as one ordinary command of an authenticated
/// client, to the same end, offering the same name: the command runs past
/// the input, a line is not one [`whole_line`] reads, a count or length is
/// one the parser refuses or treats specially (`*0`, negative), or the name
/// is longer than [`NAME_MAX`]. The caller then uses the parser, which
/// decides those cases exactly as Redis does. (A property test holds the
/// two to agreeing.)
pub fn whole_command(input: &[u8], at: usize) -> Option<WholeCommand<'_>> {
    let (argc, mut next) = plain_length_line(input, at, b'*')?;
    if argc == 0 || argc > i32::MAX as u64 {
        return None;
    }
    let name_at = next;
    let mut name: &[u8] = &[];
    let mut spans = [(0, 0); WHOLE_SPANS];
    let mut next_span = spans.iter_mut();
    for _ in 0..argc {
        let (len, data) = plain_length_line(input, next, b'$')?;
        if len > MAX_BULK_LEN as u64 {
            return None;
        }
        let len = usize::try_from(len).ok()?;
        let end = data.checked_add(len)?.checked_add(2)?;
        if end > input.len() {
            return None;
        }
        if next == name_at {
            if len > NAME_MAX {
                return None;
            }
            name = input.get(data..data + len)?;
        }
        if let Some(span) = next_span.next() {
            *span = (data, data + len);
        }
        next = end;
    }
    Some(WholeCommand {
        name,
        argc: usize::try_from(argc).ok()?,
        end: next,
        spans,
    })
}

/// `sdssplitargs` found unbalanced quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnbalancedQuotes;

/// Splits `line` into words exactly like Redis's `sdssplitargs` (see
/// `split_inline_args`). Words longer than [`RETAINED_ARG_MAX`] are cut
/// there.
pub fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, UnbalancedQuotes> {
    let mut args = Args::default();
    split_inline_args(line, &mut args).map_err(|()| UnbalancedQuotes)?;
    Ok((0..args.argc())
        .filter_map(|i| args.get(i).map(<[u8]>::to_vec))
        .collect())
}

/// Splits an inline request into arguments exactly like Redis's
/// `sdssplitargs`: blanks separate arguments; `"..."` understands `\n`,
/// `\r`, `\t`, `\b`, `\a`, `\xHH` and `\<any>`; `'...'` understands `\'`;
/// a closing quote must be followed by a blank or the end.
fn split_inline_args(line: &[u8], args: &mut Args) -> Result<(), ()> {
    // `at(i)` mimics reading a C string: 0 past the end.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    // A closing quote must be followed by a blank or the end of the line.
    let closing_quote_ok = |p: usize| {
        if at(p + 1) != 0 && !is_space(at(p + 1)) {
            Err(())
        } else {
            Ok(())
        }
    };
    let mut p = 0usize;
    let mut current: Vec<u8> = Vec::new();
    loop {
        while at(p) != 0 && is_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Ok(());
        }
        let (mut in_double, mut in_single, mut done) = (false, false, false);
        current.clear();
        while !done {
            let c = at(p);
            if in_double {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && at(p + 2).is_ascii_hexdigit()
                    && at(p + 3).is_ascii_hexdigit()
                {
                    current.push(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3)));
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => b'\x08',
                        b'a' => b'\x07',
                        other => other,
                    });
                } else if c == b'"' {
                    closing_quote_ok(p)?;
                    done = true;
                } else if c == 0 {
                    return Err(()); // unterminated quotes
                } else {
                    current.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    closing_quote_ok(p)?;
                    done = true;
                } else if c == 0 {
                    return Err(()); // unterminated quotes
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    other => current.push(other),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        args.push_whole(&current);
        args.argc += 1;
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::output::Verdict;

    /// Feeds `chunks` through a parser, deciding with `policy`, and returns
    /// a transcript of events plus every byte handed on.
    fn drive(
        chunks: &[&[u8]],
        authenticated: bool,
        policy: impl Fn(&Head) -> Disposition,
    ) -> (Vec<String>, Vec<u8>) {
        let mut parser = RequestParser::new();
        let mut transcript = Vec::new();
        let mut forwarded = Vec::new();
        let mut out = Output::default();
        'chunks: for chunk in chunks {
            out.begin();
            parser.begin_chunk();
            let mut pos = 0;
            loop {
                match parser.next(chunk, &mut pos, &mut out, authenticated) {
                    Event::NeedMore => break,
                    Event::Empty => transcript.push("empty".to_string()),
                    Event::Decide(head) => {
                        let disposition = policy(&head);
                        transcript.push(format!(
                            "decide {} argc={} inline={} {:?}",
                            head.name
                                .map(|n| String::from_utf8_lossy(n).into_owned())
                                .unwrap_or_else(|| "<long>".into()),
                            head.argc,
                            head.inline,
                            disposition
                        ));
                        parser.decide(chunk, &mut out, disposition);
                    }
                    Event::Command(args) => {
                        let shown: Vec<String> = (0..args.argc())
                            .map(|i| {
                                let bytes = args.get(i).unwrap_or_default();
                                let mut s = String::from_utf8_lossy(bytes).into_owned();
                                if !args.is_whole(i) {
                                    s.push_str("...");
                                }
                                s
                            })
                            .collect();
                        transcript.push(format!("command {shown:?}"));
                    }
                    Event::Forwarded => transcript.push("forwarded".to_string()),
                    Event::Error(error) => {
                        let mut reply = Vec::new();
                        error.reply(&mut reply);
                        transcript.push(format!("error {}", String::from_utf8_lossy(&reply)));
                        parser.end_chunk(chunk);
                        match out.finish(chunk) {
                            Verdict::Unchanged => forwarded.extend_from_slice(chunk),
                            Verdict::Replace(bytes) => forwarded.extend_from_slice(bytes),
                        }
                        break 'chunks;
                    }
                }
            }
            parser.end_chunk(chunk);
            match out.finish(chunk) {
                Verdict::Unchanged => forwarded.extend_from_slice(chunk),
                Verdict::Replace(bytes) => forwarded.extend_from_slice(bytes),
            }
        }
        (transcript, forwarded)
    }

    fn forward_all(_: &Head) -> Disposition {
        Disposition::Forward
    }

    fn collect_all(_: &Head) -> Disposition {
        Disposition::Collect
    }

    /// Runs `input` whole, followed by a PING, and byte by byte, and checks
    /// all three agree; returns the whole-input transcript and output.
    fn every_chunking(
        input: &[u8],
        authenticated: bool,
        policy: impl Fn(&Head) -> Disposition + Copy,
    ) -> (Vec<String>, Vec<u8>) {
        let whole = drive(&[input], authenticated, policy);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let by_byte = drive(&bytes, authenticated, policy);
        assert_eq!(whole, by_byte, "byte-by-byte differs for {input:?}");
        let ping = b"*1\r\n$4\r\nPING\r\n";
        let mut padded = input.to_vec();
        padded.extend_from_slice(ping);
        let (padded_transcript, _) = drive(&[&padded], authenticated, policy);
        assert_eq!(
            padded_transcript.get(..whole.0.len()),
            Some(&whole.0[..]),
            "padding changed the parse of {input:?}"
        );
        whole
    }

    #[test]
    fn forwards_a_multibulk_command_untouched() {
        let input = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
        let (transcript, out) = every_chunking(input, true, forward_all);
        assert_eq!(
            transcript,
            ["decide ECHO argc=2 inline=false Forward", "forwarded"]
        );
        assert_eq!(out, input);
        // Whole and forwarded: the host buffer is left alone.
        let mut parser = RequestParser::new();
        let mut out = Output::default();
        out.begin();
        parser.begin_chunk();
        let mut pos = 0;
        assert!(matches!(
            parser.next(input, &mut pos, &mut out, true),
            Event::Decide(_)
        ));
        parser.decide(input, &mut out, Disposition::Forward);
        assert!(matches!(
            parser.next(input, &mut pos, &mut out, true),
            Event::Forwarded
        ));
        assert!(matches!(
            parser.next(input, &mut pos, &mut out, true),
            Event::NeedMore
        ));
        parser.end_chunk(input);
        assert_eq!(out.finish(input), Verdict::Unchanged);
    }

    #[test]
    fn collects_a_multibulk_command_and_drops_its_bytes() {
        let input = b"*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$0\r\n\r\n";
        let (transcript, out) = every_chunking(input, false, collect_all);
        assert_eq!(
            transcript,
            [
                "decide AUTH argc=3 inline=false Collect",
                r#"command ["AUTH", "alice", ""]"#
            ]
        );
        assert!(out.is_empty());
    }

    #[test]
    fn parses_inline_commands_like_sdssplitargs() {
        let cases: &[(&[u8], &str)] = &[
            (b"PING\r\n", r#"["PING"]"#),
            (b"ping\n", r#"["ping"]"#),
            (b"  set  a   b \r\n", r#"["set", "a", "b"]"#),
            (b"set \"a b\" 'c d'\r\n", r#"["set", "a b", "c d"]"#),
            (b"echo \"\\x41\\n\\q\"\r\n", r#"["echo", "A\nq"]"#),
            (b"echo 'it\\'s'\r\n", r#"["echo", "it's"]"#),
            (b"echo \"\"\r\n", r#"["echo", ""]"#),
            (b"a\rb\r\n", r#"["a", "b"]"#),
            (b"a\x0bb\r\n", "[\"a\\u{b}b\"]"),
        ];
        for (input, args) in cases {
            let (transcript, out) = every_chunking(input, false, collect_all);
            assert_eq!(transcript.len(), 2, "{input:?}: {transcript:?}");
            assert_eq!(transcript[1], format!("command {args}"), "{input:?}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn forwards_inline_commands_raw() {
        let input = b"set \"a b\" c\r\n";
        let (transcript, out) = every_chunking(input, true, forward_all);
        assert_eq!(
            transcript,
            ["decide set argc=3 inline=true Forward", "forwarded"]
        );
        assert_eq!(out, input);
    }

    #[test]
    fn empty_commands_have_no_reply() {
        for input in [&b"*0\r\n"[..], b"*-1\r\n", b"\r\n", b"\n", b"   \r\n"] {
            let (transcript, out) = every_chunking(input, true, forward_all);
            assert_eq!(transcript, ["empty"], "{input:?}");
            assert_eq!(out, input, "authenticated: handed on");
            let (transcript, out) = every_chunking(input, false, forward_all);
            assert_eq!(transcript, ["empty"], "{input:?}");
            assert!(out.is_empty(), "unauthenticated: dropped");
        }
    }

    #[test]
    fn reports_redis_protocol_errors() {
        let cases: &[(&[u8], bool, &str)] = &[
            (b"*abc\r\n", true, "invalid multibulk length"),
            (b"*2147483648\r\n", true, "invalid multibulk length"),
            (b"*01\r\n", true, "invalid multibulk length"),
            (b"*\r\n", true, "invalid multibulk length"),
            (b"*11\r\n", false, "unauthenticated multibulk length"),
            (b"*1\r\n$x\r\n", true, "invalid bulk length"),
            (b"*1\r\n$-1\r\n", true, "invalid bulk length"),
            (b"*1\r\n$536870913\r\n", true, "invalid bulk length"),
            (b"*1\r\n$16385\r\n", false, "unauthenticated bulk length"),
            (b"*1\r\nx\r\n", true, "expected '$', got 'x'"),
            (b"*1\r\n\r\n", true, "expected '$', got ' '"),
            (b"echo \"abc\r\n", true, "unbalanced quotes in request"),
            (b"echo \"a\"b\r\n", true, "unbalanced quotes in request"),
            (b"echo 'abc\r\n", true, "unbalanced quotes in request"),
        ];
        for (input, authenticated, message) in cases {
            let (transcript, _) = every_chunking(input, *authenticated, forward_all);
            assert_eq!(
                transcript.last().map(String::as_str),
                Some(format!("error -ERR Protocol error: {message}\r\n").as_str()),
                "{input:?}"
            );
        }
        // The limits are the pre-authentication ones only.
        let (transcript, _) = every_chunking(b"*11\r\n", true, forward_all);
        assert!(transcript.is_empty());
        let (transcript, _) = every_chunking(b"*1\r\n$16385\r\n", true, forward_all);
        assert_eq!(transcript, ["decide <long> argc=1 inline=false Forward"]);
        let (transcript, _) = every_chunking(b"*10\r\n$16384\r\n", false, forward_all);
        assert_eq!(transcript, ["decide <long> argc=10 inline=false Forward"]);
    }

    #[test]
    fn skips_unchecked_bytes_like_redis() {
        // The byte after a length line's \r and the two after a payload are
        // not checked by Redis.
        let input = b"*1\rX$4\rYPINGzz";
        let (transcript, out) = every_chunking(input, false, collect_all);
        assert_eq!(transcript[1], r#"command ["PING"]"#);
        assert!(out.is_empty());
    }

    #[test]
    fn a_nul_before_the_line_end_stalls_until_too_big() {
        let mut input = b"*1\0\r\n$4\r\nPING\r\n".to_vec();
        let (transcript, _) = drive(&[&input], true, forward_all);
        assert!(transcript.is_empty(), "{transcript:?}");
        input.resize(INLINE_MAX + 1, b'a');
        let (transcript, _) = drive(&[&input], true, forward_all);
        assert_eq!(
            transcript,
            ["error -ERR Protocol error: too big mbulk count string\r\n"]
        );
        let mut inline = b"PING\0\n".to_vec();
        inline.resize(INLINE_MAX + 1, b'a');
        let (transcript, _) = drive(&[&inline], true, forward_all);
        assert_eq!(
            transcript,
            ["error -ERR Protocol error: too big inline request\r\n"]
        );
    }

    #[test]
    fn line_limits_match_redis() {
        let inline = vec![b'a'; INLINE_MAX];
        let (transcript, _) = drive(&[&inline], true, forward_all);
        assert!(transcript.is_empty(), "exactly the limit still waits");
        let inline = vec![b'a'; INLINE_MAX + 1];
        let (transcript, _) = drive(&[&inline], true, forward_all);
        assert_eq!(
            transcript,
            ["error -ERR Protocol error: too big inline request\r\n"]
        );
        let mut bulk = b"*1\r\n$".to_vec();
        bulk.resize(5 + INLINE_MAX + 1, b'1');
        let (transcript, _) = drive(&[&bulk], true, forward_all);
        assert_eq!(
            transcript,
            ["error -ERR Protocol error: too big bulk count string\r\n"]
        );
    }

    #[test]
    fn a_line_too_long_for_redis_s_reads_fails_even_when_it_ends_in_the_chunk() {
        // Redis reads 16 KiB at a time and checks the limit after each read:
        // past INLINE_MAX + 16 KiB it never sees the end in time.
        let too_long = |prefix: &[u8], error: &str| {
            let mut line = prefix.to_vec();
            line.resize(prefix.len() + INLINE_MAX + REDIS_READ_LEN, b'1');
            line.extend_from_slice(b"\r\n");
            let (transcript, _) = drive(&[&line], true, forward_all);
            assert_eq!(
                transcript,
                [format!("error -ERR Protocol error: {error}\r\n")]
            );
        };
        too_long(b"x", "too big inline request");
        too_long(b"*", "too big mbulk count string");
        too_long(b"*1\r\n$", "too big bulk count string");
        // Within that, the chunk's end stands in for Redis's reads.
        let mut line = vec![b'x'; INLINE_MAX + REDIS_READ_LEN - 2];
        line.extend_from_slice(b"\r\n");
        let (transcript, _) = drive(&[&line], true, forward_all);
        assert_eq!(transcript.len(), 2, "{transcript:?}");
    }

    #[test]
    fn a_long_name_is_offered_before_its_payload() {
        let name = vec![b'x'; NAME_MAX + 1];
        let mut input = b"*2\r\n$33\r\n".to_vec();
        input.extend_from_slice(&name);
        input.extend_from_slice(b"\r\n$1\r\ny\r\n");
        let (transcript, out) = every_chunking(&input, true, forward_all);
        assert_eq!(
            transcript,
            ["decide <long> argc=2 inline=false Forward", "forwarded"]
        );
        assert_eq!(out, input);
        let (transcript, _) = every_chunking(&input, true, collect_all);
        assert_eq!(
            transcript[1],
            format!("command [\"{}\", \"y\"]", "x".repeat(33))
        );
    }

    #[test]
    fn streams_large_payloads_without_holding_them() {
        let value = vec![b'v'; 3 * 1024 * 1024];
        let mut input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3145728\r\n".to_vec();
        input.extend_from_slice(&value);
        input.extend_from_slice(b"\r\n");
        let chunks: Vec<&[u8]> = input.chunks(16 * 1024).collect();
        let mut parser = RequestParser::new();
        let mut out = Output::default();
        let mut forwarded = 0usize;
        for chunk in &chunks {
            out.begin();
            parser.begin_chunk();
            let mut pos = 0;
            loop {
                match parser.next(chunk, &mut pos, &mut out, true) {
                    Event::NeedMore => break,
                    Event::Decide(_) => parser.decide(chunk, &mut out, Disposition::Forward),
                    _ => {}
                }
            }
            parser.end_chunk(chunk);
            // Nothing is kept back once the command is being forwarded.
            assert!(parser.held.len() < 64);
            match out.finish(chunk) {
                Verdict::Unchanged => forwarded += chunk.len(),
                Verdict::Replace(bytes) => forwarded += bytes.len(),
            }
        }
        assert_eq!(forwarded, input.len());
        assert!(parser.is_idle());
    }

    /// Collects the single command that is all of `input`.
    fn collect_whole<'p>(parser: &'p mut RequestParser, input: &[u8]) -> &'p Args {
        let mut out = Output::default();
        out.begin();
        parser.begin_chunk();
        let mut pos = 0;
        assert!(matches!(
            parser.next(input, &mut pos, &mut out, true),
            Event::Decide(_)
        ));
        parser.decide(input, &mut out, Disposition::Collect);
        match parser.next(input, &mut pos, &mut out, true) {
            Event::Command(args) => args,
            other => panic!("expected a command, got {other:?}"),
        }
    }

    #[test]
    fn collected_arguments_are_capped() {
        let big = vec![b'p'; RETAINED_ARG_MAX + 10];
        let mut input = b"*2\r\n$4\r\nAUTH\r\n$65546\r\n".to_vec();
        input.extend_from_slice(&big);
        input.extend_from_slice(b"\r\n");
        let mut parser = RequestParser::new();
        let args = collect_whole(&mut parser, &input);
        assert_eq!(args.argc(), 2);
        assert!(args.is_whole(0));
        assert!(!args.is_whole(1));
        assert_eq!(args.get(1).map(<[u8]>::len), Some(RETAINED_ARG_MAX));
        assert_eq!(args.whole(1), None);
        assert_eq!(format!("{args:?}"), "Args { argc: 2, .. }");
    }

    #[test]
    fn a_collected_command_keeps_at_most_a_mebibyte() {
        let big = vec![b'p'; RETAINED_ARG_MAX];
        let mut input = b"*40\r\n$4\r\nAUTH\r\n".to_vec();
        for _ in 1..40 {
            input.extend_from_slice(b"$65536\r\n");
            input.extend_from_slice(&big);
            input.extend_from_slice(b"\r\n");
        }
        let mut parser = RequestParser::new();
        let args = collect_whole(&mut parser, &input);
        assert_eq!(args.argc(), 40);
        let kept: usize = (0..40).filter_map(|i| args.get(i)).map(<[u8]>::len).sum();
        assert!(kept <= RETAINED_TOTAL_MAX, "{kept}");
        assert!(args.is_whole(1) && !args.is_whole(39));
    }

    #[test]
    fn protocol_error_replies_are_exact() {
        let mut out = Vec::new();
        ProtocolError::ExpectedDollar(b'\n').reply(&mut out);
        ProtocolError::ExpectedDollar(0).reply(&mut out);
        ProtocolError::UnauthenticatedBulkLength.reply(&mut out);
        assert_eq!(
            out,
            b"-ERR Protocol error: expected '$', got ' '\r\n\
              -ERR Protocol error: expected '$', got '\0'\r\n\
              -ERR Protocol error: unauthenticated bulk length\r\n"
        );
    }

    fn encode(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::resp::write_command(&mut out, args);
        out
    }

    proptest::proptest! {
        #[test]
        fn chunking_never_changes_the_parse(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            cuts in proptest::collection::vec(1usize..40, 0..20),
            authenticated: bool,
            forward: bool,
        ) {
            let policy = move |_: &Head| if forward { Disposition::Forward } else { Disposition::Collect };
            let whole = drive(&[&input], authenticated, policy);
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            for cut in cuts {
                let at = cut.min(rest.len());
                let (a, b) = rest.split_at(at);
                chunks.push(a);
                rest = b;
            }
            chunks.push(rest);
            proptest::prop_assert_eq!(whole, drive(&chunks, authenticated, policy));
        }

        #[test]
        fn whole_command_agrees_with_the_parser(
            args in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 1..6),
            edit in proptest::option::of((0usize..200, proptest::prelude::any::<u8>())),
            cut in proptest::option::of(0usize..200),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
        ) {
            // Encoded commands, sometimes with a byte changed, cut short or
            // followed by more: whatever whole_command reads, the parser
            // reads the same way.
            let mut input = encode(&args);
            if let Some((at, byte)) = edit {
                let at = at % input.len();
                input[at] = byte;
            }
            if let Some(cut) = cut {
                input.truncate(cut.min(input.len()));
            }
            input.extend_from_slice(&tail);
            let Some(fast) = whole_command(&input, 0) else {
                return Ok(());
            };
            let mut parser = RequestParser::new();
            let mut out = Output::default();
            out.begin();
            parser.begin_chunk();
            let mut pos = 0;
            match parser.next(&input, &mut pos, &mut out, true) {
                Event::Decide(head) => {
                    proptest::prop_assert_eq!(head.name, Some(fast.name));
                    proptest::prop_assert_eq!(head.argc, fast.argc);
                    proptest::prop_assert!(!head.inline);
                }
                other => proptest::prop_assert!(false, "{other:?}"),
            }
            parser.decide(&input, &mut out, Disposition::Forward);
            let event = parser.next(&input, &mut pos, &mut out, true);
            proptest::prop_assert!(matches!(event, Event::Forwarded), "{event:?}");
            proptest::prop_assert_eq!(pos, fast.end);
            proptest::prop_assert!(parser.is_idle());
        }

        #[test]
        fn round_trips_encoded_commands(
            args in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..50), 1..8),
            chunk in 1usize..20,
        ) {
            let input = encode(&args);
            let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
            let (transcript, out) = drive(&chunks, true, collect_all);
            proptest::prop_assert_eq!(transcript.len(), 2);
            let shown: Vec<String> = args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            proptest::prop_assert_eq!(&transcript[1], &format!("command {shown:?}"));
            proptest::prop_assert!(out.is_empty());
            let (_, out) = drive(&chunks, true, forward_all);
            proptest::prop_assert_eq!(out, input);
        }
    }
}
