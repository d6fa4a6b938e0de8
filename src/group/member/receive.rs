//! The receive pipeline of [`Member`]: group envelopes, direct envelopes, parked input.

use super::*;

impl Member {
    // ---- Receiving ------------------------------------------------------------------------

    /// Handles one envelope from the transport (untrusted bytes): a group envelope or a
    /// direct envelope. The pipeline is in the module docs; nothing changes before the
    /// envelope authenticates, except that an envelope naming an unknown epoch is parked
    /// (bounded).
    ///
    /// # Errors
    ///
    /// A [`GroupError`] saying why the input was rejected; nothing changed, except that an
    /// invalid node is remembered ([`GroupError::is_invalid_node`]).
    pub fn receive(
        &mut self,
        bytes: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Received, GroupError> {
        let r = match EnvelopeKind::peek(bytes, &self.config.envelope)? {
            EnvelopeKind::Direct => self.receive_direct(bytes, rng),
            EnvelopeKind::Group => self.receive_group(bytes).map(|r| self.then_retry(r)),
            _ => Err(GroupError::Unsupported("ephemeral envelopes")),
        };
        // A bundle may have applied part of its nodes even if it failed.
        self.queue_forwards(rng);
        r
    }

    /// Continues work left by [`Member::receive`]: ready nodes in the causal buffer and parked
    /// envelopes whose key arrived, each bounded per call. Returns their patches.
    ///
    /// Forwards due because of ops applied here are made by the next [`Member::receive`],
    /// command, or [`Member::take_outgoing`] (drain has no randomness to seal them).
    pub fn drain(&mut self) -> Vec<Patch> {
        let mut patches = Vec::new();
        let mut ga = GroupApply {
            state: &mut self.state,
            doc: &mut self.inner.doc,
            skipped: &mut self.inner.skipped,
            whiteout: &mut self.inner.whiteout,
            kem: &self.kem,
        };
        let d = self.inner.log.drain(&mut ga);
        patches.extend(d.effects.into_iter().flatten());
        if self.settle_whiteout() {
            patches.push(self.whole_document_patch());
        }
        self.apply_held_forwards();
        patches.extend(self.retry_parked());
        patches
    }

    /// Brings the document's whiteout in line with the resolution of every control op, after
    /// a control op arrived (security-design.md §4.5). The whiteout set is recomputed from
    /// scratch, a pure function of the graph; if it differs from the set the document was
    /// built with (a removal arrived after ops it voids were applied, or a removal was itself
    /// voided), the document is rebuilt by replaying the graph with the new set, so it ends
    /// identical to a replica that received the ops in another order. Returns true if it
    /// rebuilt.
    pub(super) fn settle_whiteout(&mut self) -> bool {
        if self.whiteout_gen == self.state.resolution_gen {
            return false;
        }
        self.whiteout_gen = self.state.resolution_gen;
        let log = self.inner.log();
        let controls = self.state.control_hashes();
        let suspects = self.state.whiteout_suspects();
        let mut w: HashSet<NodeHash> = HashSet::new();
        for h in log.hashes() {
            let Some(info) = log.info(&h) else { continue };
            if info.opaque || info.op_count == 0 || self.inner.skipped.contains(&h) {
                continue;
            }
            if suspects.as_ref().is_some_and(|s| !s.contains(&info.author)) {
                continue;
            }
            let past: Vec<u32> = controls
                .iter()
                .enumerate()
                .filter(|(_, c)| log.is_ancestor(c, &h))
                .map(|(i, _)| i as u32)
                .collect();
            if self
                .state
                .whited_out(&info.author, &past, |r| log.is_ancestor(&h, r))
            {
                w.insert(h);
            }
        }
        if w == self.inner.whiteout {
            return false;
        }
        self.inner.whiteout = w;
        // Replaying nodes that were all valid when applied cannot fail; should it, the graph
        // is unchanged and the document holds the nodes replayed so far.
        let _ = self.inner.rebuild();
        true
    }

    /// After a whiteout rebuild, the patches of the nodes applied no longer describe the
    /// change: one patch that puts the whole document at the root does (a UI applying patches
    /// stays in sync).
    fn whole_document_patch(&self) -> Patch {
        Patch {
            path: Vec::new(),
            action: PatchAction::Put {
                value: self.inner.doc.to_json(),
                conflict: false,
            },
        }
    }

    /// The group-envelope pipeline, steps 1–9 of the module docs.
    pub(super) fn receive_group(&mut self, bytes: &[u8]) -> Result<Received, GroupError> {
        // 0–1. Size (checked first by the parser), strict header.
        let header = parse_group_header(bytes, &self.config.envelope)?;
        if header.kind() != GroupKind::Group {
            return Err(GroupError::Unsupported("ephemeral envelopes"));
        }
        // 2. Duplicate envelope.
        let id = envelope_id(bytes);
        if self.seen.contains(&id) || self.park.contains(&id) {
            return Ok(Received::Duplicate);
        }
        // 3. Every epoch known, with its key.
        let mut unknown = Vec::new();
        let mut keyless = Vec::new();
        for p in header.epochs() {
            match self.state.epoch_by_prefix(p) {
                None => unknown.push(*p),
                Some(e) if !self.state.has_root(e) => keyless.push(*p),
                Some(_) => {}
            }
        }
        if let Some(first) = unknown.first() {
            self.park.park(id, bytes, *first, false);
            return Ok(Received::Pending(Pending::UnknownEpoch(unknown)));
        }
        if let Some(first) = keyless.first() {
            // A device that is not a member, or that joined after these epochs (and was not
            // given their keys), will never read this envelope: refuse it rather than park it.
            if !self.is_member() || keyless.iter().all(|p| self.predates_join(p)) {
                return Err(GroupError::NotRecipient { epochs: keyless });
            }
            self.park.park(id, bytes, *first, true);
            return Ok(Received::Pending(Pending::MissingKey(keyless)));
        }
        // 4–6. Key commitment, AEAD, padding (the crypto layer, in that order).
        let keys = self
            .state
            .keys_for(header.epochs())
            .ok_or(CryptoError::AuthenticationFailed)?;
        let plaintext = open_group(&header, keys)?;
        // From here the envelope is authentic: made by a holder of these epochs' key. Its key
        // commitment confirms any forwarded secret it was opened with.
        self.state.confirm(header.epochs());
        // 7. Strict decoding of one signed node.
        let node = SignedNode::decode(&plaintext).map_err(GraphError::from)?;
        // 8. Group context.
        let found = node.body().group;
        let group = self.group();
        if found != group && !(found == GroupId::GENESIS && group.is_genesis(&node.hash())) {
            return Err(PeerMisbehaved::WrongGroup {
                expected: group,
                found,
            }
            .into());
        }
        // 9. Duplicate node.
        let hash = node.hash();
        let log = self.inner.log();
        if log.contains(&hash) || log.is_pending(&hash) {
            self.seen.insert(id);
            return Ok(Received::Duplicate);
        }
        // 10–12. The graph (signature, dependencies, graph rules) and the group rules. The
        // envelope's epochs go with the node (checked once its causal past is known), unless
        // the node is refused before that: a forged copy must not leave its context behind
        // for the genuine node.
        self.state.set_context(hash, header.epochs().to_vec());
        let outcome = self.receive_signed(node);
        if !matches!(outcome, Ok(Received::Pending(_))) {
            self.state.drop_context(&hash);
        }
        let outcome = outcome?;
        self.seen.insert(id);
        Ok(outcome)
    }

    /// True if the epoch was created in the causal past of the op that added this device.
    pub(super) fn predates_join(&self, p: &EpochIdPrefix) -> bool {
        let Some(joined) = self.joined_at else {
            return false;
        };
        self.state
            .epoch_by_prefix(p)
            .and_then(|e| self.state.epoch(e))
            .is_some_and(|rec| self.inner.log().is_ancestor(&rec.op, &joined))
    }

    /// Feeds one signed node to the graph with the group's rules.
    pub(super) fn receive_node(&mut self, bytes: &[u8]) -> Result<Received, GroupError> {
        let node = SignedNode::decode(bytes).map_err(|e| self.graph_error(e.into()))?;
        self.receive_signed(node)
    }

    /// [`Member::receive_node`] for a node already decoded.
    pub(super) fn receive_signed(&mut self, node: SignedNode) -> Result<Received, GroupError> {
        self.state.last_error = None;
        let mut ga = GroupApply {
            state: &mut self.state,
            doc: &mut self.inner.doc,
            skipped: &mut self.inner.skipped,
            whiteout: &mut self.inner.whiteout,
            kem: &self.kem,
        };
        let r = self.inner.log.receive_decoded(node, &mut ga);
        let rebuilt = self.settle_whiteout();
        match r {
            Ok(Outcome::Applied(p)) => {
                let mut p: Vec<Patch> = p.into_iter().flatten().collect();
                if rebuilt {
                    p.push(self.whole_document_patch());
                }
                Ok(Received::Applied(p))
            }
            Ok(Outcome::Pending { missing }) => {
                Ok(Received::Pending(Pending::MissingDeps(missing)))
            }
            Ok(Outcome::Duplicate) => Ok(Received::Duplicate),
            Err(e) => Err(self.graph_error(e)),
        }
    }

    /// The precise reason behind a graph refusal.
    pub(super) fn graph_error(&mut self, e: GraphError) -> GroupError {
        match e {
            GraphError::Refused(_) | GraphError::NotApplied(_) => {
                self.state.last_error.take().unwrap_or(GroupError::Graph(e))
            }
            other => GroupError::Graph(other),
        }
    }

    /// After input that may have brought keys: retries parked envelopes, adding their patches.
    pub(super) fn then_retry(&mut self, r: Received) -> Received {
        self.apply_held_forwards();
        let extra = self.retry_parked();
        match r {
            Received::Applied(mut p) => {
                p.extend(extra);
                Received::Applied(p)
            }
            // Only applied input brings keys, but keep any patches regardless.
            _ if !extra.is_empty() => Received::Applied(extra),
            other => other,
        }
    }

    /// Retries parked envelopes whose epoch is now known (and, for those waiting for a key,
    /// whose key arrived), at most [`MAX_RETRIES_PER_CALL`]. Each is applied at most once:
    /// a retried envelope goes through the whole pipeline again, duplicate checks included.
    pub(super) fn retry_parked(&mut self) -> Vec<Patch> {
        let mut patches = Vec::new();
        let mut budget = MAX_RETRIES_PER_CALL;
        loop {
            let gen = self.state.root_gen;
            let ready: Vec<_> = self
                .park
                .ids()
                .into_iter()
                .filter(|id| {
                    self.park
                        .get(id)
                        .is_some_and(|p| match self.state.epoch_by_prefix(&p.epoch) {
                            None => false,
                            Some(e) => !p.keyless || self.state.has_root(e),
                        })
                })
                .take(budget)
                .collect();
            if ready.is_empty() {
                break;
            }
            for id in ready {
                budget -= 1;
                let Some(p) = self.park.remove(&id) else {
                    continue;
                };
                if let Ok(Received::Applied(ps)) = self.receive_group(&p.bytes) {
                    patches.extend(ps);
                }
            }
            if budget == 0 || self.state.root_gen == gen {
                break;
            }
        }
        patches
    }

    pub(super) fn receive_direct(
        &mut self,
        bytes: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Received, GroupError> {
        let id = envelope_id(bytes);
        if self.seen.contains(&id) {
            return Ok(Received::Duplicate);
        }
        let me = self.device_id();
        let msg = open_direct(bytes, &self.kem, me.as_bytes(), &self.config.envelope)?;
        let group = self.group();
        let found = GroupId::from_bytes(*msg.group());
        if found != group {
            return Err(PeerMisbehaved::WrongDirectGroup {
                expected: group,
                found,
            }
            .into());
        }
        let sender = DeviceId::from_bytes(msg.sender().to_bytes());
        if !self.state.current().members.contains_key(&sender) {
            return Err(PeerMisbehaved::SenderNotAMember { sender }.into());
        }
        match msg.content_type() {
            CONTENT_BUNDLE => {
                let chunk = Chunk::decode(msg.payload())?;
                match self.assembler.add(sender, chunk)? {
                    Assembled::Duplicate => Ok(Received::Duplicate),
                    Assembled::Partial { received, total } => {
                        self.seen.insert(id);
                        Ok(Received::Pending(Pending::Chunks { received, total }))
                    }
                    Assembled::Complete(whole) => {
                        self.seen.insert(id);
                        let bundle = Bundle::decode(&whole)?;
                        let r = self.apply_bundle(&bundle)?;
                        Ok(self.then_retry(r))
                    }
                }
            }
            CONTENT_SYNC => {
                let out = self.answer_sync(&sender, msg.payload(), rng)?;
                self.seen.insert(id);
                Ok(Received::Reply(out))
            }
            CONTENT_FORWARD => {
                let r = self.receive_forward(sender, msg.payload())?;
                self.seen.insert(id);
                Ok(self.then_retry(r))
            }
            t => Err(PeerMisbehaved::UnknownContent(t).into()),
        }
    }

    /// Applies the nodes of a bundle from a member (a catch-up answer or a forwarded op).
    /// Skeletons are refused: only a welcome may carry them, and only to a joiner.
    pub(super) fn apply_bundle(&mut self, bundle: &Bundle) -> Result<Received, GroupError> {
        if bundle.group != self.group() {
            return Err(PeerMisbehaved::WrongDirectGroup {
                expected: self.group(),
                found: bundle.group,
            }
            .into());
        }
        if bundle.items.iter().any(|i| matches!(i, Item::Skeleton(_))) {
            return Err(PeerMisbehaved::BadBundle("skeletons outside a welcome").into());
        }
        let mut patches = Vec::new();
        let mut applied = false;
        for item in &bundle.items {
            if let Item::Node(b) = item {
                // Each node stands on its own (signed, validated against its causal past); a
                // bad one does not spoil the others.
                if let Ok(Received::Applied(p)) = self.receive_node(b) {
                    applied = true;
                    patches.extend(p);
                }
            }
        }
        Ok(if applied {
            Received::Applied(patches)
        } else {
            Received::Duplicate
        })
    }

    /// The answer to a sync request from member `sender`: the nodes it lacks, in direct
    /// envelopes. Under `FutureOnly`, nodes in the causal past of the op that added the
    /// requester are never sent (it holds their skeletons, and may not read them).
    pub(super) fn answer_sync(
        &mut self,
        sender: &DeviceId,
        payload: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Outbound, GroupError> {
        let (have, want) = decode_sync(payload)?;
        let mut have = Have::decode(have)?;
        let want = Want::decode(want)?;
        let m = self.state.current();
        let Some(info) = m.members.get(sender) else {
            return Err(PeerMisbehaved::SenderNotAMember { sender: *sender }.into());
        };
        let floor = (self.policy().history == HistoryPolicy::FutureOnly
            && !self.group().is_genesis(&info.added_by))
        .then_some(info.added_by);
        if let Some(f) = floor {
            if self.inner.log().contains(&f) && !have.heads.contains(&f) {
                have.heads.push(f);
                have.heads.sort();
            }
        }
        let log = self.inner.log();
        let mut seen: HashSet<NodeHash> = HashSet::new();
        let mut items = Vec::new();
        let answers = [log.answer_have(&have)?, log.answer_want(&want)?];
        for b in answers.into_iter().flatten() {
            let Ok(n) = SignedNode::decode(&b) else {
                continue;
            };
            let h = n.hash();
            if floor.is_some_and(|f| log.is_ancestor(&h, &f)) || !seen.insert(h) {
                continue;
            }
            items.push(Item::Node(b));
        }
        if items.is_empty() {
            return Ok(Outbound::default());
        }
        let bundle = Bundle {
            kind: BundleKind::Nodes,
            group: self.group(),
            anchor: NodeHash::from_bytes([0; 32]),
            frontier: Vec::new(),
            items,
        }
        .encode()?;
        let kem = info.kem;
        Ok(Outbound {
            broadcast: Vec::new(),
            direct: self.send_bundle(*sender, &kem, &bundle, rng)?,
        })
    }
}
