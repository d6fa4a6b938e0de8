//! The durable outbox: messages this replica made that the application has not yet reported
//! sent.

use crate::graph::DeviceId;

/// Who a message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// Every member of the group: a group envelope, to broadcast (room event, mail to the
    /// list). Only members can open it.
    Group,
    /// One device: a direct envelope (welcome, catch-up answer), sealed to that device.
    Device(DeviceId),
}

/// A message to send: opaque envelope bytes (ciphertext) and who it is for.
///
/// Kept in the replica's outbox, durably, until [`Replica::mark_sent`](super::Replica::mark_sent)
/// names its id: a crash between making a change and sending it loses nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Its id in the outbox (increasing in the order made).
    pub id: u64,
    /// Who it is for.
    pub to: Recipient,
    /// The envelope.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("id", &self.id)
            .field("to", &self.to)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The outbox: messages in the order made.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) items: Vec<Outgoing>,
    pub(crate) next_id: u64,
}

impl Outbox {
    /// Gives ids to `messages` (not yet added; see [`Outbox::add`]).
    pub(crate) fn number(
        &mut self,
        messages: impl IntoIterator<Item = (Recipient, Vec<u8>)>,
    ) -> Vec<Outgoing> {
        messages
            .into_iter()
            .map(|(to, bytes)| {
                let id = self.next_id;
                self.next_id += 1;
                Outgoing { id, to, bytes }
            })
            .collect()
    }

    pub(crate) fn add(&mut self, items: &[Outgoing]) {
        for o in items {
            self.next_id = self.next_id.max(o.id + 1);
            if !self.items.iter().any(|x| x.id == o.id) {
                self.items.push(o.clone());
            }
        }
    }

    pub(crate) fn remove(&mut self, ids: &[u64]) {
        self.items.retain(|o| !ids.contains(&o.id));
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.items.iter().any(|o| o.id == id)
    }
}
