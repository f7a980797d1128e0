//! The top-level commands by name, for the lookup every client command
//! makes ([`super::lookup_command_for`]).
//!
//! Built once per VM on first use from the static table: an open-addressing
//! hash table of every top-level entry of every release (one per range of
//! releases), so that a lookup costs one hash of the name and a comparison
//! or two, where a binary search over the table made a dozen comparisons.
//! Subcommands, looked up far more rarely, are searched in the table
//! itself.

use std::sync::OnceLock;

use super::table::{COMMANDS, NEWER_COMMANDS};
use super::{CommandSpec, NAME_LEN_MAX, ServerVersion};

/// Slots of the open-addressing table: a power of two, at least twice the
/// top-level entries (a test checks), so that probes stay short.
const SLOT_BITS: u32 = 10;
const SLOTS: usize = 1 << SLOT_BITS;

/// Each slot holds nothing (0) or an entry of [`entries`] plus one; every
/// top-level entry of every release has a slot, found from its name's hash
/// by linear probing.
struct Index {
    slots: Vec<u16>,
    entries: Vec<&'static CommandSpec>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let entries: Vec<&'static CommandSpec> = COMMANDS.iter().chain(NEWER_COMMANDS).collect();
        let mut slots = vec![0u16; SLOTS];
        for (n, spec) in entries.iter().enumerate() {
            let mut at = hash(spec.name.as_bytes());
            while slots.get(at).is_some_and(|&slot| slot != 0) {
                at = (at + 1) % SLOTS;
            }
            if let (Some(slot), Ok(value)) = (slots.get_mut(at), u16::try_from(n + 1)) {
                *slot = value;
            }
        }
        Index { slots, entries }
    })
}

/// The top-level entry named `lower` (lowercase) that `version` has. A
/// release has at most one entry of a name.
pub(super) fn lookup(lower: &[u8], version: ServerVersion) -> Option<&'static CommandSpec> {
    let index = index();
    let mut at = hash(lower);
    loop {
        let slot = usize::from(*index.slots.get(at)?);
        let spec = index.entries.get(slot.checked_sub(1)?)?;
        if spec.name.as_bytes() == lower && spec.exists_in(version) {
            return Some(spec);
        }
        at = (at + 1) % SLOTS;
    }
}

/// Lowercases `key` into `buf`; `None` if it is longer than any name.
pub(super) fn lowercase<'b>(key: &[u8], buf: &'b mut [u8; NAME_LEN_MAX]) -> Option<&'b [u8]> {
    let lower = buf.get_mut(..key.len())?;
    lower.copy_from_slice(key);
    lower.make_ascii_lowercase();
    Some(lower)
}

/// FxHash (rustc's) of a name, as a slot: a multiply and a rotate per
/// byte, which is all a table of a few hundred short, fixed names needs.
/// (The names looked up come from clients, but the table never grows: a
/// collision costs a comparison, not a denial of service.)
fn hash(name: &[u8]) -> usize {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let hash = name.iter().fold(0u64, |hash, &byte| {
        (hash.rotate_left(5) ^ u64::from(byte)).wrapping_mul(SEED)
    });
    // The high bits mix best.
    (hash >> (u64::BITS - SLOT_BITS)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_stays_at_most_half_full() {
        assert!(
            index().entries.len() * 2 <= SLOTS,
            "{}",
            index().entries.len()
        );
        assert!(SLOTS.is_power_of_two() && SLOTS <= usize::from(u16::MAX));
    }
}
