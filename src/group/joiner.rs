//! [`Joiner`]: a device waiting for its welcome.

use std::fmt;

use super::error::{ApiMisuse, GroupError, PeerMisbehaved};
use super::limits::{Config, MAX_HELD_FORWARDS};
use super::member::{Member, Pending, Received};
use super::park::{envelope_id, Assembled, Assembler, Park, Seen};
use super::policy::HistoryPolicy;
use super::state::{GroupApply, GroupState};
use super::wire::{Bundle, BundleKind, Chunk, Item, CONTENT_BUNDLE, CONTENT_FORWARD};
use crate::crypto::{
    open_direct, parse_group_header, DeviceKemSecret, EnvelopeKind, EpochId, VerifiedContactCard,
};
use crate::doc::Patch;
use crate::graph::{Device, DeviceId, GraphError, GroupId, Outcome, SignedDoc};

/// What [`Joiner::receive`] did.
#[derive(Debug, PartialEq)]
#[must_use]
#[non_exhaustive]
pub enum Joining {
    /// Kept for later: a chunk of the welcome, or group traffic parked until the welcome.
    Pending(Pending),
    /// Already held.
    Duplicate,
    /// The welcome is complete and checked: call [`Joiner::finish`].
    Welcomed,
}

/// A member built from a welcome, with the patches of the group traffic it had parked.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub struct Joined {
    /// The new member.
    pub member: Member,
    /// Visible effects of the parked group traffic applied after the welcome.
    pub patches: Vec<Patch>,
}

/// A device added to a group but not yet welcomed: it parks group traffic (bounded) and
/// reassembles its welcome from direct envelopes. When the welcome is complete and checks out
/// ([`Joining::Welcomed`]), [`Joiner::finish`] turns it into a [`Member`] that applies the
/// parked traffic.
///
/// The welcome is checked as a whole before anything is kept: every signed node verifies and
/// is valid against its causal past (the joiner validates the membership chain itself, from
/// genesis), skeletons are accepted only under `FutureOnly`, the graph ends at the frontier
/// the welcome names, the op it names as the one that added this device does add it and was
/// signed by the welcome's sender, and this device opened its secret in that op.
pub struct Joiner {
    keys: Option<(Device, DeviceKemSecret)>,
    me: DeviceId,
    config: Config,
    park: Park,
    seen: Seen,
    assembler: Assembler,
    /// The only group whose welcome is accepted, if set.
    expected: Option<GroupId>,
    welcomed: Option<Box<Member>>,
    /// Forwarded epoch secrets (direct envelopes) that arrived before the welcome, oldest
    /// first; the member handles them after the welcome (bounded).
    forwards: std::collections::VecDeque<Vec<u8>>,
}

impl Joiner {
    /// A device waiting to be added, with default [`Config`].
    pub fn new(device: Device, kem: DeviceKemSecret) -> Self {
        Self::with_config(device, kem, Config::default())
    }

    /// A device waiting to be added, with the given budgets.
    pub fn with_config(device: Device, kem: DeviceKemSecret, config: Config) -> Self {
        Joiner {
            me: device.id(),
            keys: Some((device, kem)),
            park: Park::new(
                config.parked_envelopes,
                config.parked_bytes,
                config.parked_per_epoch,
            ),
            seen: Seen::new(super::limits::MAX_SEEN_ENVELOPES),
            assembler: Assembler::default(),
            config,
            expected: None,
            welcomed: None,
            forwards: std::collections::VecDeque::new(),
        }
    }

    /// Accepts a welcome only to `group` (learned out of band, with the contact card exchange).
    /// Without this, the first valid welcome of any group is accepted: anyone who knows this
    /// device's contact card can create a group, add it, and welcome it.
    pub fn expect_group(&mut self, group: GroupId) {
        self.expected = Some(group);
    }

    /// This device.
    pub fn device_id(&self) -> DeviceId {
        self.me
    }

    /// The contact card to give an admin who will add this device (`None` once welcomed:
    /// ask the member).
    pub fn contact_card(&self) -> Option<VerifiedContactCard> {
        self.keys
            .as_ref()
            .map(|(d, k)| k.contact_card(d.signing_key(), None))
    }

    /// True once the welcome is complete: [`Joiner::finish`] then succeeds.
    pub fn is_welcomed(&self) -> bool {
        self.welcomed.is_some()
    }

    /// Handles one envelope: a chunk of the welcome (direct envelope), or group traffic,
    /// which is parked (bounded) until the welcome is complete.
    ///
    /// # Errors
    ///
    /// As for [`Member::receive`]; for a welcome that does not check out,
    /// [`PeerMisbehaved::BadWelcome`], [`PeerMisbehaved::WelcomeNotFromAdder`] or the node's
    /// own error. Nothing is kept from a rejected welcome.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Joining, GroupError> {
        match EnvelopeKind::peek(bytes, &self.config.envelope)? {
            EnvelopeKind::Group => {
                let header = parse_group_header(bytes, &self.config.envelope)?;
                let id = envelope_id(bytes);
                if self.park.contains(&id) {
                    return Ok(Joining::Duplicate);
                }
                let Some(first) = header.epochs().first() else {
                    return Err(GroupError::Unsupported("envelope without epochs"));
                };
                self.park.park(id, bytes, *first, false);
                Ok(Joining::Pending(Pending::WaitingForWelcome))
            }
            EnvelopeKind::Direct => self.receive_direct(bytes),
            _ => Err(GroupError::Unsupported("ephemeral envelopes")),
        }
    }

    fn receive_direct(&mut self, bytes: &[u8]) -> Result<Joining, GroupError> {
        let id = envelope_id(bytes);
        if self.seen.contains(&id) {
            return Ok(Joining::Duplicate);
        }
        let Some((_, kem)) = &self.keys else {
            // Welcomed already: later direct traffic is for the member.
            return Err(ApiMisuse::NotWelcomed.into());
        };
        let msg = open_direct(bytes, kem, self.me.as_bytes(), &self.config.envelope)?;
        if msg.content_type() == CONTENT_FORWARD {
            // The adder's forward may overtake its welcome: kept, and checked by the member.
            self.seen.insert(id);
            self.forwards.push_back(bytes.to_vec());
            while self.forwards.len() > MAX_HELD_FORWARDS {
                self.forwards.pop_front();
            }
            return Ok(Joining::Pending(Pending::WaitingForWelcome));
        }
        if msg.content_type() != CONTENT_BUNDLE {
            return Err(PeerMisbehaved::UnknownContent(msg.content_type()).into());
        }
        let sender = DeviceId::from_bytes(msg.sender().to_bytes());
        let group = GroupId::from_bytes(*msg.group());
        if let Some(expected) = self.expected {
            if group != expected {
                return Err(PeerMisbehaved::WrongDirectGroup {
                    expected,
                    found: group,
                }
                .into());
            }
        }
        let chunk = Chunk::decode(msg.payload())?;
        match self.assembler.add(sender, chunk)? {
            Assembled::Duplicate => Ok(Joining::Duplicate),
            Assembled::Partial { received, total } => {
                self.seen.insert(id);
                Ok(Joining::Pending(Pending::Chunks { received, total }))
            }
            Assembled::Complete(whole) => {
                self.seen.insert(id);
                let bundle = Bundle::decode(&whole)?;
                if bundle.kind != BundleKind::Welcome || bundle.group != group {
                    return Err(PeerMisbehaved::BadWelcome("not a welcome for this group").into());
                }
                let Some((device, kem)) = self.keys.take() else {
                    return Err(ApiMisuse::NotWelcomed.into());
                };
                match welcome(device, kem, sender, &bundle, self.config) {
                    Ok((inner, kem, state)) => {
                        let park = std::mem::replace(
                            &mut self.park,
                            Park::new(
                                self.config.parked_envelopes,
                                self.config.parked_bytes,
                                self.config.parked_per_epoch,
                            ),
                        );
                        self.welcomed = Some(Box::new(Member::from_parts(
                            inner,
                            kem,
                            state,
                            self.config,
                            park,
                            bundle.anchor,
                        )));
                        Ok(Joining::Welcomed)
                    }
                    Err(rejected) => {
                        let (device, kem, e) = *rejected;
                        self.keys = Some((device, kem));
                        Err(e)
                    }
                }
            }
        }
    }

    /// The device's two secrets (signing seed, KEM secret), for the replica's encrypted
    /// device blob; `None` once welcomed (the member has them then).
    pub(crate) fn device_secrets(&self) -> Option<super::DeviceSecrets> {
        self.keys
            .as_ref()
            .map(|(d, k)| (d.seed(), k.to_secret_bytes()))
    }

    /// The member, once welcomed, after it applied the group traffic parked before the welcome
    /// (as its history policy allows: under `FutureOnly`, traffic under epochs before its join
    /// stays unreadable).
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::NotWelcomed`] if the welcome is not complete (the joiner is consumed; check
    /// [`Joiner::is_welcomed`] first).
    pub fn finish(self) -> Result<Joined, GroupError> {
        let Some(mut member) = self.welcomed else {
            return Err(ApiMisuse::NotWelcomed.into());
        };
        let mut patches = member.drain();
        while member.backlog() > 0 {
            patches.extend(member.drain());
        }
        for f in &self.forwards {
            // A forward that does not check out (not from the adder, ...) is dropped.
            if let Ok(Received::Applied(p)) = member.receive_held_forward(f) {
                patches.extend(p);
            }
        }
        while member.backlog() > 0 {
            patches.extend(member.drain());
        }
        Ok(Joined {
            member: *member,
            patches,
        })
    }
}

type Rejected = (Device, DeviceKemSecret, GroupError);

/// Checks a welcome and builds the member's graph, document and group state from it. On
/// failure, gives the keys back.
fn welcome(
    device: Device,
    kem: DeviceKemSecret,
    sender: DeviceId,
    bundle: &Bundle,
    config: Config,
) -> Result<(SignedDoc, DeviceKemSecret, GroupState), Box<Rejected>> {
    let me = device.id();
    let mut inner = SignedDoc::with_limits(device, bundle.group, config.graph_limits());
    let mut state = GroupState::new(bundle.group, me);
    match replay(&mut inner, &kem, &mut state, sender, bundle, &me) {
        Ok(()) => Ok((inner, kem, state)),
        Err(e) => Err(Box::new((inner.device, kem, e))),
    }
}

fn replay(
    inner: &mut SignedDoc,
    kem: &DeviceKemSecret,
    state: &mut GroupState,
    sender: DeviceId,
    bundle: &Bundle,
    me: &DeviceId,
) -> Result<(), GroupError> {
    for item in &bundle.items {
        match item {
            Item::Node(b) => {
                state.last_error = None;
                let mut ga = GroupApply {
                    state,
                    doc: &mut inner.doc,
                    skipped: &mut inner.skipped,
                    whiteout: &mut inner.whiteout,
                    kem,
                };
                match inner.log.receive(b, &mut ga) {
                    Ok(Outcome::Applied(_) | Outcome::Duplicate) => {}
                    Ok(_) => return Err(PeerMisbehaved::BadWelcome("a node out of order").into()),
                    Err(e @ (GraphError::Refused(_) | GraphError::NotApplied(_))) => {
                        return Err(state.last_error.take().unwrap_or(GroupError::Graph(e)))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Item::Skeleton(s) => {
                if state.policy.map(|p| p.history) != Some(HistoryPolicy::FutureOnly) {
                    return Err(
                        PeerMisbehaved::BadWelcome("skeleton outside a FutureOnly group").into(),
                    );
                }
                inner.log.insert_skeleton(s)?;
                state.opaque = true;
            }
        }
    }
    // The graph ends where the welcome says.
    if inner.log.heads() != bundle.frontier {
        return Err(PeerMisbehaved::BadWelcome("the frontier is not reached").into());
    }
    // The anchor is a membership op, signed by the sender, that adds this device...
    if !state.is_control(&bundle.anchor) {
        return Err(PeerMisbehaved::BadWelcome("the anchor is not a membership op").into());
    }
    let adder = inner
        .log
        .info(&bundle.anchor)
        .map(|i| i.author)
        .ok_or(PeerMisbehaved::UnknownNode(bundle.anchor))?;
    if adder != sender {
        return Err(PeerMisbehaved::WelcomeNotFromAdder { sender, adder }.into());
    }
    let added = state
        .current()
        .members
        .get(me)
        .is_some_and(|i| i.added_by == bundle.anchor);
    if !added {
        return Err(PeerMisbehaved::BadWelcome("the anchor does not add this device").into());
    }
    // ...and whose secret this device opened.
    let keyed = state
        .epoch_by_id(&EpochId::for_op(bundle.anchor.as_bytes()))
        .is_some_and(|e| state.has_root(e));
    if !keyed {
        return Err(PeerMisbehaved::BadWelcome("no key for this device in the anchor").into());
    }
    Ok(())
}

impl fmt::Debug for Joiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            keys,
            me,
            config: _,
            park,
            seen: _,
            assembler: _,
            expected,
            welcomed,
            forwards: _,
        } = self;
        f.debug_struct("Joiner")
            .field("device", me)
            .field("kem", &keys.as_ref().map(|(_, k)| k))
            .field("expected", expected)
            .field("parked", &park.len())
            .field("welcomed", &welcomed.is_some())
            .finish_non_exhaustive()
    }
}
