//! Forwarding epoch secrets (DCGKA's forward): the adder of a member gives it the secrets of
//! the epochs concurrent with the op that added it, which it was not sealed (see the module
//! docs, rule K4).

use super::*;

impl Member {
    /// The adder's side: for every current member this device added, every effective epoch
    /// concurrent with the op that added it, sealed to this device and not to the member:
    /// the epoch's op (in a bundle, so that the member knows the epoch) and its secret (a
    /// `CONTENT_FORWARD` direct envelope), once per (member, epoch). Never for a device that
    /// is not a current member in this view. Recomputed only when a control op or a key
    /// arrived.
    pub(super) fn make_forwards(
        &mut self,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Outbound, GroupError> {
        let mut out = Outbound::default();
        let gen = (self.state.resolution_gen, self.state.root_gen);
        if self.forward_gen == Some(gen) || self.danger_skip_local_checks {
            return Ok(out);
        }
        self.forward_gen = Some(gen);
        let me = self.device_id();
        let m = self.state.current();
        if !m.members.contains_key(&me) {
            return Ok(out);
        }
        let mut todo: Vec<(DeviceId, KemPublicKey, u32)> = Vec::new();
        for (d, info) in &m.members {
            if *d == me || self.state.control_author(&info.added_by) != Some(me) {
                continue;
            }
            let Some(added) = self.state.epoch_of_op(&info.added_by) else {
                continue;
            };
            for e in 0..self.state.epochs.len() as u32 {
                let Some(rec) = self.state.epoch(e) else {
                    continue;
                };
                if rec.recipients.binary_search(d).is_err()
                    && rec.recipients.binary_search(&me).is_ok()
                    && self.state.has_root(e)
                    && self.state.is_effective_epoch(e)
                    && self.state.concurrent(added, e)
                    && !self.forwarded.contains(&(*d, e))
                {
                    todo.push((*d, info.kem, e));
                }
            }
        }
        let group = self.group();
        for (d, kem, e) in todo {
            let (Some(rec), Some(secret)) = (self.state.epoch(e), self.state.secret(e)) else {
                continue;
            };
            let id = rec.id;
            let secret = secret.to_bytes();
            if let Some(node) = self.inner.log().node_bytes(&rec.op) {
                let bundle = Bundle {
                    kind: BundleKind::Nodes,
                    group,
                    anchor: NodeHash::from_bytes([0; 32]),
                    frontier: Vec::new(),
                    items: vec![Item::Node(node.to_vec())],
                }
                .encode()?;
                out.direct.extend(self.send_bundle(d, &kem, &bundle, rng)?);
            }
            let payload = encode_forward(&id, &secret);
            let env = seal_direct(
                self.inner.device.signing_key(),
                &DirectRecipient {
                    device: *d.as_bytes(),
                    kem_public: &kem,
                },
                &DirectContent {
                    group: *group.as_bytes(),
                    content_type: CONTENT_FORWARD,
                    payload: &payload,
                },
                &self.config.envelope,
                rng,
            )?;
            out.direct.push((d, env));
            self.forwarded.insert((d, e));
        }
        Ok(out)
    }

    /// Makes the forwards due and keeps them in the unsent outbound.
    pub(super) fn queue_forwards(&mut self, rng: &mut impl CryptoRngCore) {
        // Sealing to a member's verified key fails only on internal errors; the forward is
        // then made again on the next change.
        match self.make_forwards(rng) {
            Ok(o) => self.unsent.append(o),
            Err(_) => self.forward_gen = None,
        }
    }

    /// The new member's side: a forwarded secret from `sender`. Only the author of the op
    /// that added this device may forward (it is trusted exactly as far as the welcome it
    /// signed); the epoch must not be in the causal past of that op (that would be history
    /// this device was not given) and its key must not be known yet. An epoch not known yet
    /// is held (bounded) until its op arrives.
    pub(super) fn receive_forward(
        &mut self,
        sender: DeviceId,
        payload: &[u8],
    ) -> Result<Received, GroupError> {
        let (id, secret) = decode_forward(payload)?;
        self.check_forwarder(&sender)?;
        let Some(e) = self.state.epoch_by_id(&id) else {
            if !self
                .held_forwards
                .iter()
                .any(|(s, (i, _))| *s == sender && *i == id)
            {
                self.held_forwards.push_back((sender, (id, secret)));
                while self.held_forwards.len() > MAX_HELD_FORWARDS {
                    self.held_forwards.pop_front();
                }
            }
            return Ok(Received::Pending(Pending::UnknownEpoch(vec![id.prefix()])));
        };
        self.apply_forward(e, secret)
    }

    /// The sender of a forward must be the author of the op that added this device.
    fn check_forwarder(&self, sender: &DeviceId) -> Result<(), GroupError> {
        let me = self.device_id();
        let adder = self
            .state
            .current()
            .members
            .get(&me)
            .and_then(|i| self.state.control_author(&i.added_by));
        if adder != Some(*sender) {
            return Err(PeerMisbehaved::ForwardNotFromAdder {
                sender: *sender,
                adder,
            }
            .into());
        }
        Ok(())
    }

    /// Records a forwarded secret of known epoch `e`.
    fn apply_forward(
        &mut self,
        e: u32,
        secret: Zeroizing<[u8; 32]>,
    ) -> Result<Received, GroupError> {
        let me = self.device_id();
        let added = self
            .state
            .current()
            .members
            .get(&me)
            .and_then(|i| self.state.epoch_of_op(&i.added_by));
        if let Some(a) = added {
            if a == e || self.state.is_ancestor_epoch(e, a) {
                return Err(PeerMisbehaved::BadForward("epoch not after the join").into());
            }
        }
        if self
            .state
            .learn_forwarded(e, EpochSecret::from_bytes(secret))
        {
            Ok(Received::Applied(Vec::new()))
        } else {
            Ok(Received::Duplicate)
        }
    }

    /// Applies held forwards whose epoch is now known (after control ops arrived).
    pub(super) fn apply_held_forwards(&mut self) {
        if self.held_forwards.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held_forwards);
        for (sender, (id, secret)) in held {
            match self.state.epoch_by_id(&id) {
                None => self.held_forwards.push_back((sender, (id, secret))),
                Some(e) => {
                    if self.check_forwarder(&sender).is_ok() {
                        let _ = self.apply_forward(e, secret);
                    }
                }
            }
        }
    }

    /// A direct envelope a joiner held until its welcome: only forwards are kept.
    pub(crate) fn receive_held_forward(&mut self, bytes: &[u8]) -> Result<Received, GroupError> {
        let id = envelope_id(bytes);
        if self.seen.contains(&id) {
            return Ok(Received::Duplicate);
        }
        let me = self.device_id();
        let msg = open_direct(bytes, &self.kem, me.as_bytes(), &self.config.envelope)?;
        let found = GroupId::from_bytes(*msg.group());
        if found != self.group() || msg.content_type() != CONTENT_FORWARD {
            return Err(PeerMisbehaved::UnknownContent(msg.content_type()).into());
        }
        let sender = DeviceId::from_bytes(msg.sender().to_bytes());
        let r = self.receive_forward(sender, msg.payload())?;
        self.seen.insert(id);
        Ok(self.then_retry(r))
    }
}
