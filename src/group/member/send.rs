//! Sending: rule K4 (which epochs to encrypt under, and when to rotate first), building and
//! signing control ops, welcomes and bundles.

use super::*;
use crate::group::limits::MAX_BUNDLE_BYTES;

impl Member {
    // ---- Internals: sending ---------------------------------------------------------------

    pub(super) fn my_role(&self) -> Result<Role, GroupError> {
        let me = self.device_id();
        self.role(&me).ok_or_else(|| ApiMisuse::NotAMember.into())
    }

    /// The sorted header prefixes of the current heads.
    pub(super) fn head_prefixes(&self) -> Vec<EpochIdPrefix> {
        let mut v: Vec<EpochIdPrefix> = self
            .state
            .heads
            .iter()
            .filter_map(|&e| self.state.epoch(e).map(|r| r.id.prefix()))
            .collect();
        v.sort();
        v
    }

    /// Encrypts one node under the given epochs.
    pub(super) fn seal_under(
        &mut self,
        prefixes: &[EpochIdPrefix],
        plaintext: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, GroupError> {
        let envelope = self.config.envelope;
        let keys: &GroupKeys = self.state.keys_for(prefixes).ok_or(ApiMisuse::NoKey)?;
        let fields = GroupHeaderFields {
            kind: GroupKind::Group,
            group_tag: keys.epoch_tag(),
        };
        let env = seal_group(keys, &fields, plaintext, &envelope, rng)?;
        self.seen.insert(envelope_id(&env));
        Ok(env)
    }

    /// Rule K4 in this replica's view: content may be encrypted under the merged key of the
    /// current heads if there are at most four, this device was sealed every head, no device
    /// outside the membership can derive it (nobody else was sealed every head, and every
    /// removed device is kept out by some head: `GroupState::excludes_removed`), and every
    /// member was sealed every head or will be forwarded it: the op that added the member is
    /// concurrent with the head, and its author, a member, was sealed the head.
    pub(super) fn send_check(&mut self) -> Send {
        let heads: Vec<u32> = self.state.heads.iter().copied().collect();
        if heads.is_empty() || heads.len() > crate::crypto::MAX_HEADER_EPOCHS {
            return Send::Rotate;
        }
        // Held, and sealed to this device: receivers refuse an envelope under an epoch its
        // author was not sealed (a member that holds a head by forward rotates first).
        let me = self.device_id();
        if heads.iter().any(|&e| {
            !self.state.has_root(e)
                || self
                    .state
                    .epoch(e)
                    .is_none_or(|r| r.recipients.binary_search(&me).is_err())
        }) {
            return Send::Rotate;
        }
        let m = self.state.current();
        let common = self.state.common_recipients(&heads);
        if !common.iter().all(|d| m.members.contains_key(d)) || !self.state.excludes_removed(&heads)
        {
            return Send::Rotate;
        }
        for d in m.members.keys().filter(|d| **d != me) {
            for &h in &heads {
                let sealed = self
                    .state
                    .epoch(h)
                    .is_some_and(|r| r.recipients.binary_search(d).is_ok());
                if !sealed && !self.state.forwardable(d, h) {
                    return Send::Rotate;
                }
            }
        }
        Send::Ready
    }

    /// Rotates first if rule K4 says the current heads are unusable: a merging `KeyUpdate`
    /// (its dependencies are all heads, its secret sealed to every member).
    pub(super) fn ensure_sendable(
        &mut self,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Outbound, GroupError> {
        match self.send_check() {
            Send::Ready => Ok(Outbound::default()),
            Send::Rotate => Ok(self.issue(Intent::KeyUpdate, true, rng)?.outbound),
        }
    }

    /// A control command. If the current heads are unusable (rule K4), an op that creates an
    /// epoch is itself the merging rotation (sent like one, see [`Member::issue`]); a role
    /// change is preceded by a merging `KeyUpdate`.
    pub(super) fn command(
        &mut self,
        intent: Intent,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Sent<()>, GroupError> {
        if !self.danger_skip_local_checks {
            self.check_intent(&intent)?;
        }
        let mut out = std::mem::take(&mut self.unsent);
        let rotate = matches!(self.send_check(), Send::Rotate);
        let creates_epoch = !matches!(intent, Intent::SetRole(..));
        let sent = if rotate && creates_epoch {
            self.issue(intent, true, rng)
        } else {
            self.ensure_sendable(rng).and_then(|o| {
                out.append(o);
                self.issue(intent, false, rng)
            })
        };
        let sent = match sent {
            Ok(s) => s,
            Err(e) => {
                self.unsent = out;
                return Err(e);
            }
        };
        out.append(sent.outbound);
        out.append(self.make_forwards(rng)?);
        Ok(Sent {
            value: (),
            patches: Vec::new(),
            outbound: out,
            hash: sent.hash,
        })
    }

    /// The checks every receiver will make, made before anything is built.
    pub(super) fn check_intent(&mut self, intent: &Intent) -> Result<(), GroupError> {
        let me = self.device_id();
        let m = self.state.current();
        let role = m.role(&me).ok_or(ApiMisuse::NotAMember)?;
        let admin = |action| -> Result<(), GroupError> {
            if role.may_administer() {
                Ok(())
            } else {
                Err(ApiMisuse::NotPermitted { role, action }.into())
            }
        };
        match intent {
            Intent::Add(entries) => {
                admin(Action::Add)?;
                if let Some(e) = entries.iter().find(|e| m.members.contains_key(&e.device())) {
                    return Err(ApiMisuse::AlreadyMember { device: e.device() }.into());
                }
                let count = m.members.len() + entries.len();
                if count > MAX_GROUP_DEVICES {
                    return Err(ApiMisuse::TooManyDevices {
                        count,
                        max: MAX_GROUP_DEVICES,
                    }
                    .into());
                }
            }
            Intent::Remove(targets) => {
                admin(Action::Remove)?;
                if targets.contains(&me) {
                    return Err(ApiMisuse::RemoveSelf.into());
                }
                if let Some(t) = targets.iter().find(|t| !m.members.contains_key(t)) {
                    return Err(ApiMisuse::UnknownMember { device: *t }.into());
                }
            }
            Intent::SetRole(target, _) => {
                admin(Action::SetRole)?;
                if !m.members.contains_key(target) {
                    return Err(ApiMisuse::UnknownMember { device: *target }.into());
                }
            }
            Intent::KeyUpdate => {}
        }
        Ok(())
    }

    /// Builds, signs, applies (unless the danger switch is on) and encrypts one control op.
    /// `merge` marks an epoch-creating op made while the current heads cannot all be used
    /// together (rule K4): it goes in one envelope per usable head (enough of them to reach
    /// every member they can), and to members no usable head reaches in a direct envelope.
    pub(super) fn issue(
        &mut self,
        intent: Intent,
        merge: bool,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Sent<()>, GroupError> {
        let me = self.device_id();
        let group = self.group();
        let m: Arc<Membership> = self.state.current();
        if !self.danger_skip_local_checks && !m.members.contains_key(&me) {
            return Err(ApiMisuse::NotAMember.into());
        }
        // The devices the new epoch is sealed to (rule K2).
        let expected: Option<Vec<(DeviceId, KemPublicKey)>> = match &intent {
            Intent::Add(entries) => {
                let mut v: Vec<(DeviceId, KemPublicKey)> =
                    m.members.iter().map(|(d, i)| (*d, i.kem)).collect();
                v.extend(entries.iter().map(|e| (e.device(), *e.card.kem_public())));
                v.sort_by_key(|(d, _)| *d);
                v.dedup_by_key(|(d, _)| *d);
                Some(v)
            }
            Intent::Remove(targets) => Some(
                m.members
                    .iter()
                    .filter(|(d, _)| !targets.contains(d))
                    .map(|(d, i)| (*d, i.kem))
                    .collect(),
            ),
            Intent::KeyUpdate => Some(m.members.iter().map(|(d, i)| (*d, i.kem)).collect()),
            Intent::SetRole(..) => None,
        };
        let history = self.policy().history == HistoryPolicy::Full;
        let key = match &expected {
            None => None,
            Some(exp) => {
                // Under `Full`, the heads this op supersedes (all current heads), whose
                // secrets this device holds.
                let mut superseded: Vec<WrappedSecret> = Vec::new();
                if history {
                    superseded = self
                        .state
                        .heads
                        .iter()
                        .filter_map(|&e| {
                            let id = self.state.epoch(e)?.id;
                            Some((id, self.state.secret(e)?.to_bytes()))
                        })
                        .collect();
                    superseded.sort_by_key(|(id, _)| *id);
                }
                let (key, _) =
                    build_key(exp, &group, &me, history.then_some(&superseded[..]), rng)?;
                Some(key)
            }
        };
        let op = match (intent, key) {
            (Intent::Add(members), Some(key)) => ControlOp::Add { members, key },
            (Intent::Remove(targets), Some(key)) => ControlOp::Remove { targets, key },
            (Intent::KeyUpdate, Some(key)) => ControlOp::KeyUpdate { key },
            (Intent::SetRole(target, role), _) => ControlOp::SetRole { target, role },
            _ => return Err(GraphError::Internal("epoch op without a key").into()),
        };
        let added: Vec<(DeviceId, KemPublicKey)> = match &op {
            ControlOp::Add { members, .. } => members
                .iter()
                .map(|e| (e.device(), *e.card.kem_public()))
                .collect(),
            _ => Vec::new(),
        };
        // Sign, after any merge nodes the heads need.
        let mut body = self.inner.placeholder(Payload::Group(op.encode()));
        let crate::graph::Prepared { merges, seq, deps } =
            self.inner.prepare_deps(&body).map_err(too_large)?;
        body.seq = seq;
        body.lamport = self.inner.log.lamport_after(&deps)?;
        body.deps = deps;
        let bytes = self.inner.device.sign(&body)?;
        let max = self.inner.log.limits().local_node_limit();
        if bytes.len() > max {
            return Err(ApiMisuse::TooLarge {
                len: bytes.len(),
                max,
            }
            .into());
        }
        let hash = SignedNode::decode(&bytes)?.hash();
        // The keys to encrypt under, and who they miss, are chosen before the op changes the
        // heads and the membership.
        let (plan, direct_to) = if merge {
            let plan = self.merge_plan()?;
            let missed = self.unreached(&plan);
            (plan, missed)
        } else {
            (vec![self.head_prefixes()], Vec::new())
        };
        // A member no usable head reaches was added concurrently with the other heads: it
        // lacks their ops too (it could not open the envelopes they came in). Forward them
        // with the rotation, so that it can apply it (the ops are signed; it validates them).
        let forwards: Vec<Vec<(DeviceId, Vec<u8>)>> = if direct_to.is_empty() {
            Vec::new()
        } else {
            let log = self.inner.log();
            direct_to
                .iter()
                .map(|(d, _)| {
                    self.state
                        .heads
                        .iter()
                        .filter_map(|&e| self.state.epoch(e))
                        .filter(|rec| rec.recipients.binary_search(d).is_err())
                        .filter_map(|rec| Some((*d, log.node_bytes(&rec.op)?.to_vec())))
                        .collect()
                })
                .collect()
        };
        if !self.danger_skip_local_checks {
            self.apply_own(&bytes)?;
        }
        let mut out = Outbound::default();
        let mut nodes = merges;
        nodes.push(bytes);
        for prefixes in &plan {
            for n in &nodes {
                out.broadcast.push(self.seal_under(prefixes, n, rng)?);
            }
        }
        if !direct_to.is_empty() {
            // Members no usable head reaches get the op in a direct envelope.
            for ((d, kem), fwd) in direct_to.into_iter().zip(forwards) {
                let mut items: Vec<Item> = fwd.into_iter().map(|(_, b)| Item::Node(b)).collect();
                items.extend(nodes.iter().cloned().map(Item::Node));
                let bundle = Bundle {
                    kind: BundleKind::Nodes,
                    group,
                    anchor: NodeHash::from_bytes([0; 32]),
                    frontier: Vec::new(),
                    items,
                }
                .encode()?;
                out.direct.extend(self.send_bundle(d, &kem, &bundle, rng)?);
            }
        }
        if !added.is_empty() && !self.danger_skip_local_checks {
            let welcome = self.welcome_bundle(hash)?;
            for (d, kem) in added {
                out.direct.extend(self.send_bundle(d, &kem, &welcome, rng)?);
            }
        }
        Ok(Sent {
            value: (),
            patches: Vec::new(),
            outbound: out,
            hash: Some(hash),
        })
    }

    /// Applies one of this device's own nodes through the full validation path.
    pub(super) fn apply_own(&mut self, bytes: &[u8]) -> Result<(), GroupError> {
        match self.receive_node(bytes)? {
            Received::Applied(_) => Ok(()),
            _ => Err(GraphError::Internal("own node not applied").into()),
        }
    }

    /// The epochs to send a merging `KeyUpdate` under: single heads this device holds that no
    /// removed device can derive, now or later (recipients all members, and descending from
    /// every known removal: see `GroupState::excludes_removed`), enough of them to reach the
    /// members they can. Members no such head reaches get the op in direct envelopes.
    pub(super) fn merge_plan(&mut self) -> Result<Vec<Vec<EpochIdPrefix>>, GroupError> {
        let me = self.device_id();
        let m = self.state.current();
        let mut uncovered: BTreeSet<DeviceId> =
            m.members.keys().copied().filter(|d| *d != me).collect();
        let mut plan = Vec::new();
        let mut any = None;
        for &e in &self.state.heads {
            let Some(rec) = self.state.epoch(e) else {
                continue;
            };
            if !self.state.has_root(e) {
                continue;
            }
            any.get_or_insert(rec.id.prefix());
            let clean = rec.recipients.iter().all(|d| m.members.contains_key(d))
                && self.state.excludes_removed(&[e]);
            let reaches = rec.recipients.iter().any(|d| uncovered.contains(d));
            if clean && (reaches || plan.is_empty()) {
                plan.push(vec![rec.id.prefix()]);
                for d in &rec.recipients {
                    uncovered.remove(d);
                }
            }
        }
        // If no usable head excludes every removed device, the plan is empty and every member
        // gets the op in a direct envelope; but a device holding no current key at all cannot
        // be sure of its view and must catch up first.
        if any.is_none() {
            return Err(ApiMisuse::NoKey.into());
        }
        Ok(plan)
    }

    /// Members (other than this device) that no epoch of `plan` was sealed to.
    pub(super) fn unreached(
        &mut self,
        plan: &[Vec<EpochIdPrefix>],
    ) -> Vec<(DeviceId, KemPublicKey)> {
        let me = self.device_id();
        let mut reached: BTreeSet<DeviceId> = BTreeSet::new();
        for prefixes in plan {
            for p in prefixes {
                if let Some(rec) = self
                    .state
                    .epoch_by_prefix(p)
                    .and_then(|e| self.state.epoch(e))
                {
                    reached.extend(rec.recipients.iter().copied());
                }
            }
        }
        let m = self.state.current();
        m.members
            .iter()
            .filter(|(d, _)| **d != me && !reached.contains(d))
            .map(|(d, i)| (*d, i.kem))
            .collect()
    }

    /// The welcome bundle for devices added by `anchor`: every node this replica holds, in
    /// the order applied. Under `FutureOnly`, only control nodes in full and skeletons of the
    /// rest.
    pub(super) fn welcome_bundle(&self, anchor: NodeHash) -> Result<Vec<u8>, GroupError> {
        let log = self.inner.log();
        let future_only = self.policy().history == HistoryPolicy::FutureOnly;
        let mut items = Vec::with_capacity(log.len());
        for h in log.hashes() {
            let full = !log.is_opaque(&h) && (!future_only || self.state.is_control(&h));
            let item = match (full, log.node_bytes(&h)) {
                (true, Some(b)) => Item::Node(b.to_vec()),
                _ => Item::Skeleton(log.skeleton(&h).ok_or(PeerMisbehaved::UnknownNode(h))?),
            };
            items.push(item);
        }
        Bundle {
            kind: BundleKind::Welcome,
            group: self.group(),
            anchor,
            frontier: log.heads(),
            items,
        }
        .encode()
    }

    /// Splits a bundle into chunks and seals each to `to` in a direct envelope.
    pub(super) fn send_bundle(
        &self,
        to: DeviceId,
        kem: &KemPublicKey,
        bundle: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<(DeviceId, Vec<u8>)>, GroupError> {
        let max_payload =
            self.config.envelope.max_envelope().saturating_sub(
                DIRECT_HEADER_LEN + DIRECT_BODY_OVERHEAD + LENGTH_PREFIX_LEN + TAG_LEN,
            );
        let per_chunk = max_payload.saturating_sub(CHUNK_OVERHEAD).max(1);
        let id = *blake3::hash(bundle).as_bytes();
        let pieces: Vec<&[u8]> = if bundle.is_empty() {
            vec![bundle]
        } else {
            bundle.chunks(per_chunk).collect()
        };
        let total = u32::try_from(pieces.len()).map_err(|_| ApiMisuse::TooLarge {
            len: bundle.len(),
            max: MAX_BUNDLE_BYTES,
        })?;
        if bundle.len() > MAX_BUNDLE_BYTES {
            return Err(ApiMisuse::TooLarge {
                len: bundle.len(),
                max: MAX_BUNDLE_BYTES,
            }
            .into());
        }
        let mut out = Vec::with_capacity(pieces.len());
        for (index, data) in pieces.into_iter().enumerate() {
            let chunk = Chunk {
                bundle: id,
                index: index as u32,
                total,
                data: data.to_vec(),
            }
            .encode();
            let env = seal_direct(
                self.inner.device.signing_key(),
                &DirectRecipient {
                    device: *to.as_bytes(),
                    kem_public: kem,
                },
                &DirectContent {
                    group: *self.group().as_bytes(),
                    content_type: CONTENT_BUNDLE,
                    payload: &chunk,
                },
                &self.config.envelope,
                rng,
            )?;
            out.push((to, env));
        }
        Ok(out)
    }
}

/// A graph "node too large" is the caller's problem here: the op does not fit an envelope.
fn too_large(e: GraphError) -> GroupError {
    match e {
        GraphError::NodeTooLarge { len, max } => ApiMisuse::TooLarge { len, max }.into(),
        other => other.into(),
    }
}

/// A fresh epoch secret sealed to each expected device, in order (rule K2), with the history
/// link if `superseded` is given (policy `Full`).
pub(crate) fn build_key(
    expected: &[(DeviceId, KemPublicKey)],
    group_field: &GroupId,
    author: &DeviceId,
    superseded: Option<&[WrappedSecret]>,
    rng: &mut impl CryptoRngCore,
) -> Result<(KeyUpdate, EpochSecret), GroupError> {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let secret = EpochSecret::generate(rng);
    let ctx = SealContext {
        group: *group_field.as_bytes(),
        author: *author.as_bytes(),
        salt,
    };
    let mut sealed = Vec::with_capacity(expected.len());
    for (i, (device, kem)) in expected.iter().enumerate() {
        let index = u16::try_from(i).map_err(|_| ApiMisuse::TooManyDevices {
            count: expected.len(),
            max: MAX_GROUP_DEVICES,
        })?;
        sealed.push(seal_epoch_secret(
            &secret,
            &ctx,
            &SealRecipient {
                index,
                device: *device.as_bytes(),
                kem_public: kem,
            },
            rng,
        )?);
    }
    let history = match superseded {
        None => None,
        Some(pairs) => {
            // A genesis has no history link, so the op's group field is the group id.
            let octx = OpContext {
                group_field,
                author,
                salt: &salt,
                group: group_field,
            };
            Some(seal_history(&secret, &octx, pairs, rng)?)
        }
    };
    Ok((
        KeyUpdate {
            salt,
            sealed,
            history,
        },
        secret,
    ))
}
