//! The markers a connection has sent and whose replies are still to come.
//!
//! Each entry says what to do when the server answers the marker
//! ([`Action`]). Ids are handed out in order and entries leave from the
//! front only, so the queue always holds consecutive ids and finding the
//! one a reply names is arithmetic, not a search. A reply is accepted only
//! for a pending id and only with that marker's own mac.
//!
//! The queue is bounded twice: by count ([`MAX_PENDING_MARKERS`]) and by the
//! bytes of the local replies it holds ([`MAX_PENDING_REPLY_BYTES`]). A
//! client that turns replies off, or a server that stops answering, cannot
//! grow it past that; the session closes the connection instead.

use std::collections::VecDeque;

use super::marker::{self, Mac, MarkerKey};

/// Markers waiting for their reply, at most.
pub const MAX_PENDING_MARKERS: usize = 16_384;
/// Bytes of local replies waiting for their marker's reply, at most.
pub const MAX_PENDING_REPLY_BYTES: usize = 1024 * 1024;

/// What the session does when a marker's reply arrives.
#[derive(Debug)]
pub enum Action {
    /// Send this local reply in its place.
    Reply(Reply),
    /// Send this local reply, then close the connection.
    ReplyThenClose(Reply),
    /// Sent right behind a `ReplyThenClose`: if this one is answered and
    /// that one was not (`CLIENT REPLY SKIP` took its reply), close anyway,
    /// before the server's reply to the `QUIT` that follows can pass.
    Close,
    /// Sent after a forwarded `RESET` (and the proxy's `AUTH`, if `reauth`):
    /// the server has reset the connection, and the reply kept just before
    /// this one answers that `AUTH`.
    ResetDone { reauth: bool },
    /// Every reply to what was sent before this marker is back: release
    /// the held `SYNC`/`PSYNC`.
    Barrier,
    /// Sent right behind a command of the filter's own (a `DISCARD`): the
    /// reply kept just before this one answers it and is dropped; send
    /// this local reply instead.
    OwnReplyDone(Reply),
    /// Sent right behind an `AUTH` that switched the server connection to
    /// another server identity (`identity`, for the log): the reply kept
    /// just before this one answers it; send `reply` if it is `+OK`.
    Reauthenticated { reply: Reply, identity: Box<str> },
}

impl Action {
    fn reply_len(&self) -> usize {
        match self {
            Self::Reply(reply)
            | Self::ReplyThenClose(reply)
            | Self::OwnReplyDone(reply)
            | Self::Reauthenticated { reply, .. } => reply.bytes().len(),
            Self::ResetDone { .. } | Self::Barrier | Self::Close => 0,
        }
    }
}

/// A local reply: most are fixed texts, some are formatted.
#[derive(Debug)]
pub enum Reply {
    Static(&'static [u8]),
    Owned(Box<[u8]>),
}

impl Reply {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Static(bytes) => bytes,
            Self::Owned(bytes) => bytes,
        }
    }
}

#[derive(Debug)]
struct Entry {
    id: u64,
    mac: Mac,
    action: Action,
}

/// A marker's reply has arrived: the action to take, and the actions of
/// the markers before it, which got no reply (`CLIENT REPLY OFF|SKIP`).
#[derive(Debug)]
pub struct Answered {
    pub skipped: Vec<Action>,
    pub action: Action,
}

/// The pending markers of one connection.
#[derive(Debug)]
pub struct Pending {
    key: MarkerKey,
    next_id: u64,
    queue: VecDeque<Entry>,
    reply_bytes: usize,
}

impl Pending {
    pub fn new(key: MarkerKey) -> Self {
        Self {
            key,
            next_id: 0,
            queue: VecDeque::new(),
            reply_bytes: 0,
        }
    }

    /// Appends the marker command to `out` and remembers `action` for its
    /// reply. Returns its id.
    pub fn send(&mut self, out: &mut Vec<u8>, action: Action) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let mac = self.key.mac(id);
        marker::write_command(out, id, &mac);
        self.reply_bytes += action.reply_len();
        self.queue.push_back(Entry { id, mac, action });
        id
    }

    /// The id the next marker will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Replaces the local reply of every pending marker from `first` on
    /// with nothing (their replies are to be discarded).
    pub fn silence_from(&mut self, first: u64) {
        for entry in self.queue.iter_mut().filter(|e| e.id >= first) {
            if let Action::Reply(reply) | Action::ReplyThenClose(reply) = &mut entry.action {
                self.reply_bytes = self.reply_bytes.saturating_sub(reply.bytes().len());
                *reply = Reply::Static(b"");
            }
        }
    }

    /// If `frame` is the reply to one of these markers, takes it (and the
    /// ones before it) off the queue.
    pub fn answer(&mut self, frame: &[u8]) -> Option<Answered> {
        let (id, mac) = marker::parse_reply(frame)?;
        let front = self.queue.front()?.id;
        let index = usize::try_from(id.checked_sub(front)?).ok()?;
        let entry = self.queue.get(index)?;
        if !marker::same_mac(&entry.mac, &mac) {
            return None;
        }
        let mut skipped = Vec::with_capacity(index);
        for _ in 0..index {
            skipped.extend(self.pop().map(|e| e.action));
        }
        let action = self.pop()?.action;
        Some(Answered { skipped, action })
    }

    fn pop(&mut self) -> Option<Entry> {
        let entry = self.queue.pop_front()?;
        self.reply_bytes = self.reply_bytes.saturating_sub(entry.action.reply_len());
        Some(entry)
    }

    /// Whether no marker awaits its reply.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether the bounds are exceeded.
    pub fn overflowing(&self) -> bool {
        self.queue.len() > MAX_PENDING_MARKERS || self.reply_bytes > MAX_PENDING_REPLY_BYTES
    }

    /// Bytes held: the entries and the formatted replies they own.
    pub fn held_bytes(&self) -> usize {
        self.queue.len() * std::mem::size_of::<Entry>() + self.reply_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::reply::FrameReader;

    /// The server's reply to the marker command `command`.
    fn reply_to(command: &[u8]) -> Vec<u8> {
        let mut reader = FrameReader::new(command);
        reader.aggregate(b"*").unwrap();
        let name = reader.bulk().unwrap().unwrap();
        [
            &b"-ERR unknown command '"[..],
            name,
            b"', with args beginning with: \r\n",
        ]
        .concat()
    }

    fn send(pending: &mut Pending, text: &'static [u8]) -> Vec<u8> {
        let mut out = Vec::new();
        pending.send(&mut out, Action::Reply(Reply::Static(text)));
        reply_to(&out)
    }

    fn reply_text(action: &Action) -> &[u8] {
        match action {
            Action::Reply(reply) | Action::ReplyThenClose(reply) => reply.bytes(),
            _ => b"?",
        }
    }

    #[test]
    fn answers_in_order_and_skips_the_unanswered() {
        let mut pending = Pending::new(MarkerKey::new([1; 32]));
        let first = send(&mut pending, b"a");
        let second = send(&mut pending, b"b");
        let third = send(&mut pending, b"c");
        assert_eq!(pending.held_bytes(), 3 * std::mem::size_of::<Entry>() + 3);
        let answered = pending.answer(&second).unwrap();
        assert_eq!(reply_text(&answered.action), b"b");
        assert_eq!(answered.skipped.len(), 1);
        assert!(pending.answer(&first).is_none(), "gone once skipped");
        assert!(pending.answer(&second).is_none(), "accepted once");
        assert_eq!(reply_text(&pending.answer(&third).unwrap().action), b"c");
        assert_eq!(pending.held_bytes(), 0);
    }

    #[test]
    fn refuses_another_connections_marker_or_a_wrong_mac() {
        let mut mine = Pending::new(MarkerKey::new([1; 32]));
        let mut theirs = Pending::new(MarkerKey::new([2; 32]));
        let _ = send(&mut mine, b"a");
        let foreign = send(&mut theirs, b"x");
        assert!(mine.answer(&foreign).is_none());
        let mut out = Vec::new();
        mine.send(&mut out, Action::Barrier);
        let mut forged = reply_to(&out);
        let at = forged.iter().position(|&b| b == b'\'').unwrap() + 10;
        forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
        assert!(mine.answer(&forged).is_none());
        assert_eq!(mine.held_bytes(), 2 * std::mem::size_of::<Entry>() + 1);
    }

    #[test]
    fn silencing_keeps_the_markers_but_drops_their_text() {
        let mut pending = Pending::new(MarkerKey::new([1; 32]));
        let first = send(&mut pending, b"kept");
        let from = pending.next_id();
        let second = send(&mut pending, b"dropped");
        pending.silence_from(from);
        assert_eq!(reply_text(&pending.answer(&first).unwrap().action), b"kept");
        assert_eq!(reply_text(&pending.answer(&second).unwrap().action), b"");
    }

    #[test]
    fn overflows_by_bytes() {
        let mut pending = Pending::new(MarkerKey::new([1; 32]));
        let big: Box<[u8]> = vec![b'x'; MAX_PENDING_REPLY_BYTES].into();
        let mut out = Vec::new();
        pending.send(&mut out, Action::Reply(Reply::Owned(big)));
        assert!(!pending.overflowing());
        pending.send(&mut out, Action::Reply(Reply::Static(b"x")));
        assert!(pending.overflowing());
    }
}
