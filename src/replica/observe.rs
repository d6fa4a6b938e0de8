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

/// The live subscribers.
#[derive(Debug, Default)]
pub(crate) struct Observers {
    senders: Vec<mpsc::Sender<Event>>,
}

impl Observers {
    pub(crate) fn subscribe(&mut self) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel();
        self.senders.push(tx);
        rx
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

    pub(crate) fn members(&mut self, members: Vec<(DeviceId, Role)>) {
        if !self.senders.is_empty() {
            self.send(&Event::Members(members));
        }
    }

    pub(crate) fn joined(&mut self, members: Vec<(DeviceId, Role)>, patches: &[Patch]) {
        if self.senders.is_empty() {
            return;
        }
        self.send(&Event::Joined);
        self.members(members);
        self.changed(Origin::Remote, patches);
    }
}
