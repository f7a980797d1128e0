//! A selector's permission state and how rules change it: Redis 7.0's
//! `aclSelector` and the applying half of `ACLSetSelector` (`acl.c`).
//!
//! Command permissions are one bit per command table id, as in Redis,
//! plus Redis's reserved "future commands" bit that only `+@all` /
//! `-@all` touch. Container rules (`+config`) set the container's bit and
//! all its subcommands' bits; a category rule applies the container rule to
//! every command in the category, then to every subcommand in it
//! (`ACLSetSelectorCommandBitsForCategoryLogic`).

use crate::command::{self, CommandSpec, ServerVersion};

use super::RuleError;
use super::rules::{KeyPattern, SelectorRule};

/// One selector: the root permissions of a user, or one `(...)` group.
///
/// `Default` is a new selector as Redis 7.0 makes it with its default
/// `acl-pubsub-default resetchannels`: no commands, keys or channels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// `SELECTOR_FLAG_ALLCOMMANDS`: set by `+@all`, cleared by any rule
    /// that clears a bit.
    pub(super) all_commands: bool,
    /// `SELECTOR_FLAG_ALLKEYS`.
    pub(super) all_keys: bool,
    /// `SELECTOR_FLAG_ALLCHANNELS`.
    pub(super) all_channels: bool,
    /// `allowed_commands`; empty means all clear.
    pub(super) commands: CommandBits,
    /// `allowed_firstargs`: (command id, first arguments allowed), for
    /// commands whose own bit is clear.
    pub(super) first_args: Vec<(usize, Vec<String>)>,
    /// Key patterns in the order given, merged by pattern.
    pub(super) keys: Vec<KeyPattern>,
    /// Channel patterns in the order given, without duplicates.
    pub(super) channels: Vec<String>,
    /// The server whose commands the rules name (a category reaches the
    /// commands that server has).
    pub(super) version: ServerVersion,
    /// Redis 7.2's `command_rules`: the command, category and first-argument
    /// rules as applied since the last `+@all` / `-@all`, each with its
    /// sign, lower-cased (`ACLUpdateCommandRules`). What `ACL GETUSER` and
    /// `ACL LIST` show from 7.2 on.
    pub(super) rules: Vec<String>,
}

/// A bit per command id, plus the future-commands bit after them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct CommandBits(Vec<u64>);

impl CommandBits {
    /// The bit Redis reserves for commands loaded later (its last bit).
    pub(super) const FUTURE: usize = command::COMMAND_COUNT;
    const WORDS: usize = (command::COMMAND_COUNT + 1).div_ceil(64);

    pub(super) fn get(&self, id: usize) -> bool {
        self.0
            .get(id / 64)
            .is_some_and(|word| word & (1 << (id % 64)) != 0)
    }

    fn set(&mut self, id: usize, value: bool) {
        if self.0.is_empty() {
            if !value {
                return;
            }
            self.0 = vec![0; Self::WORDS];
        }
        if let Some(word) = self.0.get_mut(id / 64) {
            if value {
                *word |= 1 << (id % 64);
            } else {
                *word &= !(1 << (id % 64));
            }
        }
    }

    fn fill(&mut self, value: bool) {
        self.0 = if value {
            vec![u64::MAX; Self::WORDS]
        } else {
            Vec::new()
        };
    }
}

impl Selector {
    /// A new selector for `version`'s commands.
    pub fn new(version: ServerVersion) -> Self {
        Selector {
            version,
            ..Selector::default()
        }
    }

    /// The server whose commands the rules name.
    pub fn version(&self) -> ServerVersion {
        self.version
    }

    /// `~* &* +@all`.
    pub fn full() -> Self {
        Self::full_for(ServerVersion::default())
    }

    /// [`full`](Self::full) for `version`'s commands.
    pub fn full_for(version: ServerVersion) -> Self {
        let mut selector = Selector::new(version);
        for rule in [
            SelectorRule::AllKeys,
            SelectorRule::AllChannels,
            SelectorRule::AllCommands,
        ] {
            // These rules cannot fail.
            let _ = selector.apply(&rule);
        }
        selector
    }

    /// Applies one rule, as `ACLSetSelector` does.
    pub fn apply(&mut self, rule: &SelectorRule) -> Result<(), RuleError> {
        match rule {
            SelectorRule::AllKeys => {
                self.all_keys = true;
                self.keys.clear();
            }
            SelectorRule::ResetKeys => {
                self.all_keys = false;
                self.keys.clear();
            }
            SelectorRule::KeyPattern(new) => {
                if self.all_keys {
                    return Err(RuleError::KeyPatternAfterAllKeys);
                }
                match self.keys.iter_mut().find(|p| p.pattern == new.pattern) {
                    Some(existing) => {
                        existing.read |= new.read;
                        existing.write |= new.write;
                    }
                    None => self.keys.push(new.clone()),
                }
            }
            SelectorRule::AllChannels => {
                self.all_channels = true;
                self.channels.clear();
            }
            SelectorRule::ResetChannels => {
                self.all_channels = false;
                self.channels.clear();
            }
            SelectorRule::ChannelPattern(pattern) => {
                if self.all_channels {
                    return Err(RuleError::ChannelPatternAfterAllChannels);
                }
                if !self.channels.contains(pattern) {
                    self.channels.push(pattern.clone());
                }
            }
            SelectorRule::AllCommands => {
                self.commands.fill(true);
                self.all_commands = true;
                self.first_args.clear();
                self.rules.clear();
            }
            SelectorRule::NoCommands => {
                self.commands.fill(false);
                self.all_commands = false;
                self.first_args.clear();
                self.rules.clear();
            }
            SelectorRule::Command { allow, spec } => {
                self.change_perm(spec, *allow);
                self.update_rules(spec.name, *allow);
            }
            SelectorRule::FirstArg { spec, arg } => {
                self.add_first_arg(spec, arg);
                self.update_rules(&format!("{}|{arg}", spec.name), true);
            }
            SelectorRule::Category { allow, category } => {
                if let Some((name, _)) = command::ACL_CATEGORY_NAMES
                    .iter()
                    .find(|(_, bit)| bit == category)
                {
                    self.update_rules(&format!("@{name}"), *allow);
                }
                // ACLSetSelectorCommandBitsForCategoryLogic: each command
                // in the category with all its subcommands, then each
                // subcommand in it.
                for spec in command::commands_for(self.version) {
                    if spec.acl_categories.intersects(*category) {
                        self.change_perm(spec, *allow);
                    }
                }
            }
        }
        Ok(())
    }

    /// `ACLUpdateCommandRules`: `rule` (a command's full name, `cmd|arg`
    /// or `@category`) lower-cased, every earlier rule for it (or, for a
    /// command, for one of its subcommands or first arguments) taken out
    /// (`ACLSelectorRemoveCommandRule`), then the rule added at the end.
    fn update_rules(&mut self, rule: &str, allow: bool) {
        let rule = rule.to_ascii_lowercase();
        self.rules.retain(|existing| {
            let body = existing.get(1..).unwrap_or_default();
            !(body == rule
                || body
                    .strip_prefix(rule.as_str())
                    .is_some_and(|rest| rest.starts_with('|')))
        });
        self.rules
            .push(format!("{}{rule}", if allow { '+' } else { '-' }));
    }

    /// The command rules as Redis 7.2 keeps them (its `command_rules`),
    /// without the leading `+@all` / `-@all`.
    pub fn command_rules_as_written(&self) -> &[String] {
        &self.rules
    }

    /// `ACLSetSelectorCommandBit`: clearing any bit clears "all commands".
    fn set_bit(&mut self, id: usize, value: bool) {
        self.commands.set(id, value);
        if !value {
            self.all_commands = false;
        }
    }

    /// `ACLChangeSelectorPerm`: the command's bit, its first-argument
    /// list reset, and every subcommand's bit.
    fn change_perm(&mut self, spec: &CommandSpec, allow: bool) {
        let id = usize::from(spec.id);
        self.set_bit(id, allow);
        self.first_args.retain(|(command, _)| *command != id);
        for sub in spec.subcommands_for(self.version) {
            self.set_bit(usize::from(sub.id), allow);
        }
    }

    /// `ACLAddAllowedFirstArg`: no duplicates (case-insensitive).
    fn add_first_arg(&mut self, spec: &CommandSpec, arg: &str) {
        let id = usize::from(spec.id);
        match self
            .first_args
            .iter_mut()
            .find(|(command, _)| *command == id)
        {
            Some((_, args)) => {
                if !args.iter().any(|known| known.eq_ignore_ascii_case(arg)) {
                    args.push(arg.to_owned());
                }
            }
            None => self.first_args.push((id, vec![arg.to_owned()])),
        }
    }

    /// A selector with this one's command bits and nothing else (the
    /// scratch selector of `ACLDescribeSelectorCommandRules`).
    pub(super) fn bits_only(&self) -> Selector {
        Selector {
            commands: self.commands.clone(),
            ..Selector::new(self.version)
        }
    }

    /// Everything allowed: `~* &* +@all` in effect.
    pub fn is_full(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }

    /// Whether `+@all` is in effect (no command rule took anything away).
    pub fn allows_all_commands(&self) -> bool {
        self.all_commands
    }

    /// Whether the command bit of `spec` is set.
    pub fn allows_command_bit(&self, spec: &CommandSpec) -> bool {
        self.commands.get(usize::from(spec.id))
    }

    /// Whether the future-commands bit is set (the last of `+@all` /
    /// `-@all` was `+@all`).
    pub fn allows_future_commands(&self) -> bool {
        self.commands.get(CommandBits::FUTURE)
    }

    /// `~*` / `allkeys`.
    pub fn all_keys(&self) -> bool {
        self.all_keys
    }

    /// `&*` / `allchannels`.
    pub fn all_channels(&self) -> bool {
        self.all_channels
    }

    /// Key patterns.
    pub fn key_patterns(&self) -> &[KeyPattern] {
        &self.keys
    }

    /// Channel patterns.
    pub fn channel_patterns(&self) -> &[String] {
        &self.channels
    }

    /// The first arguments allowed for `spec`'s id, if any.
    pub fn first_args(&self, spec: &CommandSpec) -> &[String] {
        let id = usize::from(spec.id);
        self.first_args
            .iter()
            .find(|(command, _)| *command == id)
            .map_or(&[], |(_, args)| args.as_slice())
    }
}
