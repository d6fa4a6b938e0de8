//! Events for observers: what changed, for a UI to react without polling.

use std::sync::mpsc;

use crate::doc::Patch;
use crate::graph::DeviceId;
use crate::group::Role;

/// Where a change came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command on this replica.
    Local,
    /// Input from another device.
    Remote,
}

/// What a [`Replica::subscribe`](super::Replica::subscribe) channel carries.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The document changed: patches in order (apply them to the previous JSON with
    /// [`Patch::apply_to`]).
    Changed {
        /// Local or remote.
        origin: Origin,
        /// The visible effects.
        patches: Vec<Patch>,
    },
    /// The membership or a role changed; the new list.
    Members(Vec<(DeviceId, Role)>),
    /// This device's welcome completed: it is a member.
    Joined,
}

/// The live subscribers, and the membership they last saw.
#[derive(Debug, Default)]
pub(crate) struct Observers {
    senders: Vec<mpsc::Sender<Event>>,
    /// The membership resolution (`Member::membership_gen`) and list last reported.
    members_seen: (u64, Vec<(DeviceId, Role)>),
}

impl Observers {
    /// A new subscriber; `gen` and `members` are the membership now.
    pub(crate) fn subscribe(
        &mut self,
        gen: u64,
        members: Vec<(DeviceId, Role)>,
    ) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel();
        self.senders.push(tx);
        self.members_seen = (gen, members);
        rx
    }

    /// True if anyone listens (events are built only then).
    pub(crate) fn active(&self) -> bool {
        !self.senders.is_empty()
    }

    fn send(&mut self, event: &Event) {
        // A dropped receiver unsubscribes.
        self.senders.retain(|s| s.send(event.clone()).is_ok());
    }

    pub(crate) fn changed(&mut self, origin: Origin, patches: &[Patch]) {
        if !patches.is_empty() && !self.senders.is_empty() {
            self.send(&Event::Changed {
                origin,
                patches: patches.to_vec(),
            });
        }
    }

    /// Reports the membership if its resolution moved on since the last report (`gen`) and
    /// the list differs (a key update resolves again without changing it). `members` is only
    /// called then: nothing is built on calls that change no membership.
    pub(crate) fn members(&mut self, gen: u64, members: impl FnOnce() -> Vec<(DeviceId, Role)>) {
        if !self.active() || gen == self.members_seen.0 {
            return;
        }
        let list = members();
        self.members_seen.0 = gen;
        if list != self.members_seen.1 {
            self.members_seen.1.clone_from(&list);
            self.send(&Event::Members(list));
        }
    }

    pub(crate) fn joined(
        &mut self,
        gen: u64,
        members: impl FnOnce() -> Vec<(DeviceId, Role)>,
        patches: &[Patch],
    ) {
        if !self.active() {
            return;
        }
        self.send(&Event::Joined);
        self.members_seen.0 = gen.wrapping_sub(1);
        self.members(gen, members);
        self.changed(Origin::Remote, patches);
    }
}
