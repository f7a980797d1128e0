//! Redis 7.0 access control: the rule language, selectors and the check
//! that decides whether a user may run a command (`src/acl.c`).
//!
//! - [`rules`]: selector rules parsed and resolved against the command
//!   table, with Redis's error texts;
//! - [`Selector`]: one selector's state and how a rule changes it;
//! - [`Permissions`]: a user's root selector plus its `(...)` selectors,
//!   and [`Permissions::check`], the verdict;
//! - [`glob`]: Redis's `stringmatchlen`.
//!
//! This module knows users only as permission sets: passwords, `on`/`off`
//! and the user directory are [`crate::users`]'s, and what a denial does to
//! a connection is [`crate::session`]'s. It never writes to a connection.

mod check;
pub mod describe;
pub mod glob;
pub mod log;
pub mod rules;
mod selector;

pub use check::{Argv, Denial, Scratch};
pub use rules::{KeyPattern, RuleError, SelectorRule};
pub use selector::Selector;

/// A user's permissions: the root selector, then the selectors added with
/// `(...)`, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    root: Selector,
    extra: Vec<Selector>,
}

impl Permissions {
    /// A new user's permissions (none), for `version`'s commands.
    pub fn new(version: crate::command::ServerVersion) -> Self {
        Permissions {
            root: Selector::new(version),
            extra: Vec::new(),
        }
    }

    /// The server whose commands the rules name.
    pub fn version(&self) -> crate::command::ServerVersion {
        self.root.version()
    }

    /// `~* &* +@all` and no selectors.
    pub fn full() -> Self {
        Permissions {
            root: Selector::full(),
            extra: Vec::new(),
        }
    }

    /// The root selector.
    pub fn root(&self) -> &Selector {
        &self.root
    }

    /// The root selector, to apply a rule to.
    pub fn root_mut(&mut self) -> &mut Selector {
        &mut self.root
    }

    /// The `(...)` selectors.
    pub fn extra(&self) -> &[Selector] {
        &self.extra
    }

    /// Adds a `(...)` selector.
    pub fn add_selector(&mut self, selector: Selector) {
        self.extra.push(selector);
    }

    /// `clearselectors`.
    pub fn clear_selectors(&mut self) {
        self.extra.clear();
    }

    /// The root selector, then the others.
    pub fn selectors(&self) -> impl Iterator<Item = &Selector> {
        core::iter::once(&self.root).chain(self.extra.iter())
    }

    /// Whether every command on every key and channel is allowed: the
    /// check can be skipped.
    pub fn is_full(&self) -> bool {
        self.selectors().any(Selector::is_full)
    }
}
