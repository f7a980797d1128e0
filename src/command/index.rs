//! The top-level commands by name, for the lookup every client command
//! makes ([`super::lookup_command_for`]).
//!
//! Built once per VM on first use from the static table: a hash map from
//! each lowercase name to its entries (one per range of releases, in table
//! order: [`COMMANDS`] first), so that a lookup costs one hash of the name
//! and one comparison, where a binary search over the table made a dozen
//! comparisons. Subcommands, looked up far more rarely, are searched in the
//! table itself.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use super::table::{COMMANDS, NEWER_COMMANDS};
use super::{CommandSpec, NAME_LEN_MAX, ServerVersion};

type Index = HashMap<&'static [u8], Vec<&'static CommandSpec>, BuildHasherDefault<NameHasher>>;

/// The top-level entry named `name` (lowercase) that `version` has.
pub(super) fn lookup(lower: &[u8], version: ServerVersion) -> Option<&'static CommandSpec> {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX
        .get_or_init(build)
        .get(lower)?
        .iter()
        .copied()
        .find(|spec| spec.exists_in(version))
}

fn build() -> Index {
    let mut index = Index::default();
    for spec in COMMANDS.iter().chain(NEWER_COMMANDS) {
        index.entry(spec.name.as_bytes()).or_default().push(spec);
    }
    index
}

/// Lowercases `key` into `buf`; `None` if it is longer than any name.
pub(super) fn lowercase<'b>(key: &[u8], buf: &'b mut [u8; NAME_LEN_MAX]) -> Option<&'b [u8]> {
    let lower = buf.get_mut(..key.len())?;
    lower.copy_from_slice(key);
    lower.make_ascii_lowercase();
    Some(lower)
}

/// FxHash (rustc's): a multiply and a rotate per word, which is all a map
/// of a few hundred short, fixed, trusted names needs. (The names hashed at
/// lookup come from clients, but the map never grows, so a collision costs
/// a comparison, not a denial of service.)
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(SEED);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(SEED);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
