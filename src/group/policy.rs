//! Roles and the group policy fixed at genesis.

use std::fmt;

/// What a member may do. Every check is made against the membership in the causal past of the
/// op being checked (see the module docs of [`crate::group`]).
///
/// | action | Admin | Writer | Reader |
/// |---|---|---|---|
/// | read the document | yes | yes | yes |
/// | edit the document | yes | yes | no |
/// | rotate the group key (`KeyUpdate`) | yes | yes | yes |
/// | add, remove members, change roles | yes | no | no |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Role {
    /// May add and remove members, change roles, and edit.
    Admin,
    /// May edit the document.
    Writer,
    /// May only read (and rotate the key, which any member may, for post-compromise security).
    Reader,
}

impl Role {
    /// True if this role may edit the document.
    #[must_use]
    pub fn may_edit(self) -> bool {
        matches!(self, Role::Admin | Role::Writer)
    }

    /// True if this role may add and remove members and change roles.
    #[must_use]
    pub fn may_administer(self) -> bool {
        matches!(self, Role::Admin)
    }

    /// The role's tag on the wire.
    pub(crate) fn to_tag(self) -> u32 {
        match self {
            Role::Admin => 0,
            Role::Writer => 1,
            Role::Reader => 2,
        }
    }

    /// Number of role tags.
    pub(crate) const TAGS: u32 = 3;

    /// The role of a tag below [`Role::TAGS`].
    pub(crate) fn from_tag(tag: u32) -> Self {
        match tag {
            0 => Role::Admin,
            1 => Role::Writer,
            _ => Role::Reader,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
            Role::Writer => "writer",
            Role::Reader => "reader",
        })
    }
}

/// Something a member may or may not be allowed to do (for errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Edit the document.
    Edit,
    /// Add members.
    Add,
    /// Remove members.
    Remove,
    /// Change a member's role.
    SetRole,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Edit => "edit the document",
            Action::Add => "add members",
            Action::Remove => "remove members",
            Action::SetRole => "change roles",
        })
    }
}

/// What a member who joins later may read (rule K6 of security-design.md §4.4). Fixed at
/// genesis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HistoryPolicy {
    /// A new member is given the whole signed history and every earlier epoch's root (each
    /// epoch-creating op wraps the roots it supersedes under its own history key), so it reads
    /// everything written before it joined. What collaborative documents usually want; it must
    /// be chosen explicitly.
    Full,
    /// A new member is given only the signed membership history, skeletons of the rest, and
    /// the new epoch's secret: it reads nothing written before its join, and its document
    /// shows only what is written afterwards (see the module docs for the exact rule). The
    /// default, because it never discloses more than the group's creator opted into.
    #[default]
    FutureOnly,
}

impl HistoryPolicy {
    pub(crate) fn to_tag(self) -> u32 {
        match self {
            HistoryPolicy::Full => 0,
            HistoryPolicy::FutureOnly => 1,
        }
    }

    pub(crate) const TAGS: u32 = 2;

    pub(crate) fn from_tag(tag: u32) -> Self {
        match tag {
            0 => HistoryPolicy::Full,
            _ => HistoryPolicy::FutureOnly,
        }
    }
}

/// The rules of a group, fixed by its genesis op and identical on every replica.
///
/// Separate from the mechanism on purpose (rustls' split of policy and mechanism): the
/// defaults are the safe choice, and anything weakening a guarantee says so in its name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct GroupPolicy {
    /// What members who join later may read.
    pub history: HistoryPolicy,
}

impl GroupPolicy {
    /// The default policy: [`HistoryPolicy::FutureOnly`].
    #[must_use]
    pub fn future_only() -> Self {
        GroupPolicy {
            history: HistoryPolicy::FutureOnly,
        }
    }

    /// Members who join later read the whole history ([`HistoryPolicy::Full`]).
    #[must_use]
    pub fn full_history() -> Self {
        GroupPolicy {
            history: HistoryPolicy::Full,
        }
    }
}
