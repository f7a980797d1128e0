//! The ACL log: Redis's `ACLLog` (`addACLLogEntry` in `acl.c`), kept for
//! every connection of a proxy at once.
//!
//! Entries are grouped as Redis groups them (the same in 7.0 and 7.2): a
//! new denial that matches one of the ten most recent entries (same
//! reason, context, object and user, last updated at most 60 s from it)
//! moves it to the front, counts one more and takes the new client info and
//! time; otherwise it is added at the front with the next entry id, and the
//! oldest entries beyond [`MAX_ENTRIES`] (`acllog-max-len`) fall off.
//!
//! Every entry keeps its id (`ACLLogEntryCount` when it was made, which
//! `ACL LOG RESET` does not reset) and its creation time, which Redis 7.2
//! shows as `entry-id` and `timestamp-created`.
//!
//! The log lives wherever the adapter keeps it (Envoy's shared data, so
//! that all workers see one log): [`AclLog::encode`] / [`AclLog::decode`]
//! turn it into bytes and back, and [`LogStore`] is how the session reads
//! and changes it without doing I/O itself.

/// Redis's default `acllog-max-len`.
pub const MAX_ENTRIES: usize = 128;
/// `ACL_LOG_GROUPING_MAX_TIME_DELTA`, in milliseconds.
const GROUPING_MS: u64 = 60_000;
/// How many recent entries a new one is compared with.
const SCAN: usize = 10;
/// Longest object, user name or client info kept, in bytes.
const MAX_FIELD: usize = 512;

/// What was denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Command,
    Key,
    Channel,
    Auth,
}

impl Reason {
    /// As `ACL LOG` names it.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }

    fn code(self) -> u8 {
        match self {
            Reason::Command => 1,
            Reason::Key => 2,
            Reason::Auth => 3,
            Reason::Channel => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Reason::Command,
            2 => Reason::Key,
            3 => Reason::Auth,
            4 => Reason::Channel,
            _ => return None,
        })
    }
}

/// One entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub count: u64,
    pub reason: Reason,
    /// Inside `MULTI` (`multi`) or not (`toplevel`).
    pub in_multi: bool,
    /// The command (`get`, `config|set`), key, channel, or for `auth` the
    /// command name as sent.
    pub object: Vec<u8>,
    /// The user, or for `auth` the user name tried.
    pub username: Vec<u8>,
    /// When it last happened, in milliseconds since the epoch.
    pub time_ms: u64,
    /// Who did it (the client's address, as the proxy knows it).
    pub client_info: Vec<u8>,
    /// `entry_id`: how many entries the log had made before this one (set
    /// by [`AclLog::add`]).
    pub entry_id: u64,
    /// `timestamp_created`: when it first happened, in milliseconds since
    /// the epoch.
    pub created_ms: u64,
}

impl Entry {
    /// A new entry (count 1), fields cut to a bounded length.
    pub fn new(
        reason: Reason,
        in_multi: bool,
        object: &[u8],
        username: &[u8],
        time_ms: u64,
        client_info: &[u8],
    ) -> Self {
        let cut = |b: &[u8]| b.get(..MAX_FIELD).unwrap_or(b).to_vec();
        Entry {
            count: 1,
            reason,
            in_multi,
            object: cut(object),
            username: cut(username),
            time_ms,
            client_info: cut(client_info),
            entry_id: 0,
            created_ms: time_ms,
        }
    }

    /// `ACLLogMatchEntry`: the time difference either way.
    fn matches(&self, new: &Entry) -> bool {
        self.reason == new.reason
            && self.in_multi == new.in_multi
            && self.object == new.object
            && self.username == new.username
            && new.time_ms.abs_diff(self.time_ms) <= GROUPING_MS
    }
}

/// The log, newest entry first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclLog {
    entries: Vec<Entry>,
    /// `ACLLogEntryCount`: the id of the next new entry.
    next_id: u64,
}

/// The encoding's first byte. Version 1 (no ids, no creation times) is
/// still read.
const FORMAT: u8 = 2;

impl AclLog {
    /// The entries, newest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// `addACLLogEntry`.
    pub fn add(&mut self, entry: Entry) {
        let scan = self.entries.len().min(SCAN);
        let found = self
            .entries
            .get(..scan)
            .and_then(|recent| recent.iter().position(|e| e.matches(&entry)));
        match found {
            Some(index) => {
                let mut existing = self.entries.remove(index);
                existing.count = existing.count.saturating_add(1);
                existing.time_ms = entry.time_ms;
                existing.client_info = entry.client_info;
                self.entries.insert(0, existing);
            }
            None => {
                let mut entry = entry;
                entry.entry_id = self.next_id;
                entry.created_ms = entry.time_ms;
                self.next_id = self.next_id.saturating_add(1);
                self.entries.insert(0, entry);
                self.entries.truncate(MAX_ENTRIES);
            }
        }
    }

    /// `ACL LOG RESET` (the entry ids go on).
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// The log as bytes (for shared data): the format (`FORMAT`), the next entry id,
    /// then each entry.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        out.extend_from_slice(&self.next_id.to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.count.to_le_bytes());
            out.push(e.reason.code());
            out.push(u8::from(e.in_multi));
            out.extend_from_slice(&e.time_ms.to_le_bytes());
            out.extend_from_slice(&e.entry_id.to_le_bytes());
            out.extend_from_slice(&e.created_ms.to_le_bytes());
            for field in [&e.object, &e.username, &e.client_info] {
                out.extend_from_slice(&(field.len() as u32).to_le_bytes());
                out.extend_from_slice(field);
            }
        }
        out
    }

    /// [`encode`](Self::encode)'s bytes back, or those of the format before
    /// (version 1, whose entries get ids by age, the oldest 0, and their
    /// last time as creation time); `None` if they are neither (the caller
    /// starts a new log).
    pub fn decode(bytes: &[u8]) -> Option<AclLog> {
        let mut reader = Reader { bytes };
        let version = *reader.take(1)?.first()?;
        let next_id = match version {
            FORMAT => Some(reader.u64()?),
            1 => None,
            _ => return None,
        };
        let mut entries = Vec::new();
        while !reader.bytes.is_empty() && entries.len() < MAX_ENTRIES {
            let count = reader.u64()?;
            let reason = Reason::from_code(*reader.take(1)?.first()?)?;
            let in_multi = *reader.take(1)?.first()? != 0;
            let time_ms = reader.u64()?;
            let (entry_id, created_ms) = match next_id {
                Some(_) => (reader.u64()?, reader.u64()?),
                None => (0, time_ms),
            };
            let object = reader.field()?;
            let username = reader.field()?;
            let client_info = reader.field()?;
            entries.push(Entry {
                count,
                reason,
                in_multi,
                object,
                username,
                time_ms,
                client_info,
                entry_id,
                created_ms,
            });
        }
        let next_id = match next_id {
            Some(id) => id,
            None => {
                let len = entries.len() as u64;
                for (age, entry) in entries.iter_mut().enumerate() {
                    entry.entry_id = len.saturating_sub(1).saturating_sub(age as u64);
                }
                len
            }
        };
        Some(AclLog { entries, next_id })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn field(&mut self) -> Option<Vec<u8>> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        if len > MAX_FIELD {
            return None;
        }
        Some(self.take(len)?.to_vec())
    }
}

/// Where the log is kept, as the session sees it.
pub trait LogStore {
    /// Adds an entry (the adapter fills in the time and client info).
    fn add(&self, entry: Entry);
    /// The log as it is now.
    fn read(&self) -> AclLog;
    /// Empties it.
    fn reset(&self);
    /// Now, in milliseconds since the epoch.
    fn now_ms(&self) -> u64;
}

/// A log in memory: for a single VM, and for tests.
#[derive(Debug, Default)]
pub struct MemoryLog {
    log: std::cell::RefCell<AclLog>,
    now: std::cell::Cell<u64>,
}

impl MemoryLog {
    /// Sets the clock.
    pub fn set_now(&self, ms: u64) {
        self.now.set(ms);
    }
}

impl LogStore for MemoryLog {
    fn add(&self, entry: Entry) {
        self.log.borrow_mut().add(entry);
    }

    fn read(&self) -> AclLog {
        self.log.borrow().clone()
    }

    fn reset(&self) {
        self.log.borrow_mut().reset();
    }

    fn now_ms(&self) -> u64 {
        self.now.get()
    }
}

/// `ACL LOG`'s `age-seconds`: what Redis's `addReplyDouble` prints for
/// `age_ms / 1000.0`, C's `printf("%.17g", ...)`, without the float
/// formatting of `core::fmt` (about 25 KB of the wasm). The double is
/// `mantissa * 2^exp` exactly; for every `u64` it is 0 or in
/// `[0.001, 1.9e16)`, so `mantissa * 10^19` and the shifts fit in a `u128`
/// and the 17 significant digits come out exact, rounded half to even. In
/// that range `%.17g` is always the fixed notation, trailing zeros dropped.
pub fn age_seconds_g17(age_ms: u64) -> String {
    const LOW: u128 = 10_000_000_000_000_000; // 10^16: 17 digits
    let value = age_ms as f64 / 1000.0;
    if value == 0.0 {
        return "0".to_owned();
    }
    let bits = value.to_bits();
    // Normal (>= 0.001): the implicit leading bit is there.
    let mantissa = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1075;
    // The 17 digits: value * 10^shift, shift = 16 - (decimal exponent).
    let mut shift: u32 = 19;
    let mut digits = loop {
        let scaled = mantissa * 10u128.pow(shift);
        let rounded = if exp >= 0 {
            scaled << exp
        } else {
            let k = exp.unsigned_abs();
            let (q, r, half) = (scaled >> k, scaled & ((1 << k) - 1), 1 << (k - 1));
            q + u128::from(r > half || (r == half && q & 1 == 1))
        };
        if rounded < LOW * 10 || shift == 0 {
            break rounded;
        }
        shift -= 1;
    };
    let mut decimals = shift;
    if digits == LOW * 10 {
        // Rounded up to 18 digits: one decimal fewer.
        digits = LOW;
        decimals = decimals.saturating_sub(1);
    }
    // Below 10^17: a u64, whose formatting needs no u128 division.
    let text = u64::try_from(digits).unwrap_or(0).to_string();
    let decimals = usize::try_from(decimals).unwrap_or(0);
    let (mut out, frac) = match text.len().checked_sub(decimals) {
        Some(at) if at > 0 => {
            let (int_part, frac) = text.split_at_checked(at).unwrap_or((&text, ""));
            (int_part.to_owned(), frac.to_owned())
        }
        // Below 1: 0.000ddd.
        _ => (
            "0".to_owned(),
            "0".repeat(decimals.saturating_sub(text.len())) + &text,
        ),
    };
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    /// The reference: `session::acl_commands::format_g17`, as it was.
    fn format_g17(value: f64) -> String {
        if value == 0.0 {
            return "0".to_owned();
        }
        let scientific = format!("{value:.16e}");
        let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let trim = |digits: &str| -> String {
            if digits.contains('.') {
                digits
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_owned()
            } else {
                digits.to_owned()
            }
        };
        if !(-4..17).contains(&exponent) {
            let sign = if exponent < 0 { '-' } else { '+' };
            return format!("{}e{sign}{:02}", trim(mantissa), exponent.abs());
        }
        let decimals = usize::try_from(16 - exponent).unwrap_or(0);
        trim(&format!("{value:.decimals$}"))
    }

    #[test]
    fn age_seconds_like_printf() {
        assert_eq!(age_seconds_g17(0), "0");
        assert_eq!(age_seconds_g17(1), "0.001");
        assert_eq!(age_seconds_g17(1500), "1.5");
        assert_eq!(age_seconds_g17(12_345), "12.345000000000001");
        assert_eq!(age_seconds_g17(100_000), "100");
        let check = |ms: u64| {
            assert_eq!(
                age_seconds_g17(ms),
                format_g17(ms as f64 / 1000.0),
                "{ms} ms"
            );
        };
        for ms in 0..200_000 {
            check(ms);
        }
        for shift in 0..64 {
            let p = 1u64 << shift;
            for ms in [p - 1, p, p + 1, p.wrapping_mul(3)] {
                check(ms);
            }
        }
        let mut ten = 1u64;
        while let Some(next) = ten.checked_mul(10) {
            for ms in [
                ten - 1,
                ten,
                ten + 1,
                ten.wrapping_mul(5),
                ten.wrapping_mul(125),
            ] {
                check(ms);
            }
            ten = next;
        }
        for ms in [u64::MAX, u64::MAX - 1, u64::MAX / 3, 9_007_199_254_740_993] {
            check(ms);
        }
        // A fixed pseudo-random sample over the whole range, and over
        // realistic ages (up to a year).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(x);
            check(x >> (x % 64));
            check(x % 31_536_000_000);
        }
    }

    use super::*;

    fn entry(object: &str, time_ms: u64) -> Entry {
        Entry::new(
            Reason::Key,
            false,
            object.as_bytes(),
            b"bob",
            time_ms,
            b"addr=x",
        )
    }

    #[test]
    fn groups_like_redis() {
        let mut log = AclLog::default();
        log.add(entry("a", 0));
        log.add(entry("b", 1));
        log.add(entry("a", 2));
        assert_eq!(log.entries().len(), 2);
        assert_eq!(log.entries()[0].object, b"a");
        assert_eq!(log.entries()[0].count, 2);
        assert_eq!(log.entries()[0].time_ms, 2);
        // More than 60 s after the entry's time: a new entry.
        log.add(entry("a", 2 + GROUPING_MS + 1));
        assert_eq!(log.entries().len(), 3);
        // Only the ten most recent are scanned.
        let mut log = AclLog::default();
        log.add(entry("old", 0));
        for i in 0..10 {
            log.add(entry(&format!("k{i}"), 1));
        }
        log.add(entry("old", 2));
        assert_eq!(log.entries().len(), 12);
    }

    #[test]
    fn bounded_and_round_trips() {
        let mut log = AclLog::default();
        for i in 0..200 {
            log.add(entry(&format!("k{i}"), i));
        }
        assert_eq!(log.entries().len(), MAX_ENTRIES);
        assert_eq!(log.entries()[0].object, b"k199");
        assert_eq!(AclLog::decode(&log.encode()), Some(log.clone()));
        assert_eq!(AclLog::decode(b""), None);
        assert_eq!(AclLog::decode(&[1, 2, 3]), None);
        assert_eq!(AclLog::decode(&[2, 2, 3]), None);
        assert_eq!(AclLog::decode(&[3]), None);
        // Ids go on after a reset, and count only new entries.
        assert_eq!(log.entries()[0].entry_id, 199);
        log.reset();
        log.add(entry("a", 1000));
        log.add(entry("a", 1001));
        assert_eq!(log.entries()[0].entry_id, 200);
        assert_eq!(log.entries()[0].created_ms, 1000);
        assert_eq!(log.entries()[0].time_ms, 1001);
        assert_eq!(AclLog::decode(&log.encode()), Some(log.clone()));
        // Any prefix of the bytes decodes or is refused, never panics.
        let bytes = log.encode();
        for n in 0..bytes.len() {
            let _ = AclLog::decode(&bytes[..n]);
        }
    }

    /// The bytes of format 1 (before entry ids): the entries, newest first.
    #[test]
    fn decodes_format_1() {
        let mut old = vec![1u8];
        for (object, time) in [(&b"new"[..], 20u64), (&b"old"[..], 10)] {
            old.extend_from_slice(&3u64.to_le_bytes());
            old.push(2);
            old.push(0);
            old.extend_from_slice(&time.to_le_bytes());
            for field in [object, b"bob", b"addr=x"] {
                old.extend_from_slice(&(field.len() as u32).to_le_bytes());
                old.extend_from_slice(field);
            }
        }
        let mut log = AclLog::decode(&old).unwrap();
        let e = log.entries();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].object.as_slice(), e[0].entry_id, e[0].created_ms),
            (&b"new"[..], 1, 20)
        );
        assert_eq!(
            (e[1].object.as_slice(), e[1].entry_id, e[1].created_ms),
            (&b"old"[..], 0, 10)
        );
        assert_eq!(e[0].count, 3);
        log.add(entry("x", 30));
        assert_eq!(log.entries()[0].entry_id, 2);
        for n in 0..old.len() {
            let _ = AclLog::decode(&old[..n]);
        }
    }
}
