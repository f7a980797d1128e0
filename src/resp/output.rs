//! The bytes a filter callback hands on, built lazily.
//!
//! Almost every chunk that crosses the filter after authentication is passed
//! on untouched. [`Output`] records "pass input bytes `a..b`" without copying
//! while those ranges are contiguous from the start of the chunk, so the
//! adapter can leave Envoy's buffer alone; it copies only once something is
//! dropped, held back or injected.

use std::ops::Range;

/// What the adapter must do with the host buffer it was handed.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Leave the buffer as it is.
    Unchanged,
    /// Replace the whole buffer with these bytes (possibly empty).
    Replace(&'a [u8]),
}

/// Capacity of the copy buffer kept for reuse by [`Output::trim`].
const KEEP_CAPACITY: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct Output {
    buf: Vec<u8>,
    /// `Some(end)`: so far the output is exactly `input[..end]` and `buf` is
    /// unused. `None`: the output is `buf`.
    passthrough: Option<usize>,
}

impl Output {
    /// Starts a new chunk. Keeps the allocation for reuse.
    pub fn begin(&mut self) {
        self.buf.clear();
        self.passthrough = Some(0);
    }

    /// Once the verdict has been carried out: releases a copy buffer a
    /// large chunk made large, so that a connection going quiet after a
    /// burst does not pin it.
    pub fn trim(&mut self) {
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
    }

    /// Hands on `input[range]`. `input` must be the same chunk for every call
    /// between [`begin`](Self::begin) and [`finish`](Self::finish).
    pub fn pass(&mut self, input: &[u8], range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        if let Some(end) = self.passthrough {
            if range.start == end {
                self.passthrough = Some(range.end);
                return;
            }
            self.materialize(input);
        }
        self.buf
            .extend_from_slice(input.get(range).unwrap_or_default());
    }

    /// Hands on bytes that are not in the input (injected or held earlier).
    pub fn push(&mut self, input: &[u8], bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.materialize(input);
        self.buf.extend_from_slice(bytes);
    }

    /// Gives mutable access to the owned buffer for in-place encoding.
    pub fn owned(&mut self, input: &[u8]) -> &mut Vec<u8> {
        self.materialize(input);
        &mut self.buf
    }

    /// Bytes allocated for copies (kept between chunks, up to a limit).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// How many bytes have been handed on since [`begin`](Self::begin).
    pub fn len(&self) -> usize {
        self.passthrough.unwrap_or(self.buf.len())
    }

    /// Takes back what was handed on from byte `at` of this chunk's output
    /// on, and returns it.
    pub fn split_off(&mut self, input: &[u8], at: usize) -> Vec<u8> {
        self.materialize(input);
        self.buf.split_off(at.min(self.buf.len()))
    }

    /// True when nothing has been handed on since [`begin`](Self::begin).
    pub fn is_empty(&self) -> bool {
        self.passthrough == Some(0) || (self.passthrough.is_none() && self.buf.is_empty())
    }

    /// Ends the chunk.
    pub fn finish<'a>(&'a mut self, input: &'a [u8]) -> Verdict<'a> {
        match self.passthrough {
            Some(end) if end == input.len() => Verdict::Unchanged,
            Some(end) => Verdict::Replace(input.get(..end).unwrap_or_default()),
            None => Verdict::Replace(&self.buf),
        }
    }

    fn materialize(&mut self, input: &[u8]) {
        if let Some(end) = self.passthrough.take() {
            // Sized to the chunk (and what is usually injected), not to
            // twice it by doubling.
            self.buf.reserve_exact(input.len() + 256);
            self.buf
                .extend_from_slice(input.get(..end).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_passes_leave_the_buffer_alone() {
        let input = b"abcdef";
        let mut out = Output::default();
        out.begin();
        out.pass(input, 0..2);
        out.pass(input, 2..6);
        assert_eq!(out.finish(input), Verdict::Unchanged);
    }

    #[test]
    fn an_empty_chunk_is_unchanged() {
        let mut out = Output::default();
        out.begin();
        assert!(out.is_empty());
        assert_eq!(out.finish(b""), Verdict::Unchanged);
    }

    #[test]
    fn dropping_everything_replaces_with_nothing() {
        let mut out = Output::default();
        out.begin();
        assert_eq!(out.finish(b"abc"), Verdict::Replace(b""));
    }

    #[test]
    fn a_held_tail_truncates() {
        let input = b"abcdef";
        let mut out = Output::default();
        out.begin();
        out.pass(input, 0..4);
        assert_eq!(out.finish(input), Verdict::Replace(b"abcd"));
    }

    #[test]
    fn trimming_releases_a_large_copy() {
        let input = vec![b'x'; 100_000];
        let mut out = Output::default();
        out.begin();
        out.push(&input, b"X");
        out.pass(&input, 0..input.len());
        assert!(out.capacity() > KEEP_CAPACITY);
        let _ = out.finish(&input);
        out.trim();
        assert_eq!(out.capacity(), 0);
    }

    #[test]
    fn a_tail_can_be_taken_back() {
        let input = b"abcdef";
        let mut out = Output::default();
        out.begin();
        out.pass(input, 0..4);
        assert_eq!(out.len(), 4);
        out.push(input, b"XY");
        assert_eq!(out.len(), 6);
        assert_eq!(out.split_off(input, 2), b"cdXY");
        assert_eq!(out.finish(input), Verdict::Replace(b"ab"));
    }

    #[test]
    fn gaps_and_injections_copy() {
        let input = b"abcdef";
        let mut out = Output::default();
        out.begin();
        out.push(input, b"X");
        out.pass(input, 0..2);
        out.pass(input, 4..6);
        out.push(input, b"Y");
        assert_eq!(out.finish(input), Verdict::Replace(b"XabefY"));
        out.begin();
        out.pass(input, 1..3);
        assert!(!out.is_empty());
        assert_eq!(out.finish(input), Verdict::Replace(b"bc"));
    }
}
