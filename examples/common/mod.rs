//! Driving a [`Replica`] over a transport: shared by `examples/matrix.rs`, `examples/email.rs`
//! and `tests/replica_live.rs` (included with `#[path]`; not an example by itself).
//!
//! The loop an application runs is small:
//!
//! * **send**: [`flush`] sends the replica's durable outbox in order and reports each message
//!   sent ([`Replica::mark_sent`]) only after the transport confirmed it; on a failure the
//!   rest stays in the outbox (on disk) for the next try, even across a restart;
//! * **receive**: [`pump`] takes what the transport delivered and hands every envelope to
//!   [`Replica::receive`]; refused input (an envelope for another device in a shared room, a
//!   forgery) is counted and skipped, catch-up replies are sent back at once.

#![allow(dead_code)]

use std::fmt;
use std::time::{Duration, Instant};

use sealdoc::crypto::StorageKey;
use sealdoc::replica::{Received, Recipient, Replica, ReplicaError};
use serde_json::Value;
use zeroize::Zeroizing;

/// A transport as the replica loop sees it.
pub trait Link {
    /// The transport's error.
    type Error: fmt::Display + fmt::Debug;
    /// Sends one message; `Ok` only once the server accepted it.
    fn send(&mut self, to: Recipient, bytes: &[u8]) -> Result<(), Self::Error>;
    /// What arrived since the last call, waiting up to `wait` if the transport can.
    fn receive(&mut self, wait: Duration) -> Result<Vec<Vec<u8>>, Self::Error>;
    /// True for "try again later" (server down, timeout).
    fn is_transient(e: &Self::Error) -> bool;
}

/// A replica's failure or a transport's.
#[derive(Debug)]
pub enum DriveError<E> {
    /// The replica failed (store error): fatal for this run.
    Replica(ReplicaError),
    /// The transport failed; see [`Link::is_transient`].
    Link(E),
}

impl<E: fmt::Display> fmt::Display for DriveError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriveError::Replica(e) => write!(f, "replica: {e}"),
            DriveError::Link(e) => write!(f, "transport: {e}"),
        }
    }
}

impl<E: fmt::Display + fmt::Debug> std::error::Error for DriveError<E> {}

impl<E> From<ReplicaError> for DriveError<E> {
    fn from(e: ReplicaError) -> Self {
        DriveError::Replica(e)
    }
}

/// Sends the outbox, oldest first, and marks sent what the transport confirmed. Stops at the
/// first transport failure (what was confirmed before it is marked sent; the rest stays).
/// Returns how many messages were sent.
pub fn flush<L: Link>(r: &mut Replica, link: &mut L) -> Result<usize, DriveError<L::Error>> {
    let pending: Vec<(u64, Recipient, Vec<u8>)> = r
        .outbox()
        .iter()
        .map(|m| (m.id, m.to, m.bytes.clone()))
        .collect();
    let mut sent = Vec::new();
    let mut failure = None;
    for (id, to, bytes) in pending {
        match link.send(to, &bytes) {
            Ok(()) => sent.push(id),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    r.mark_sent(&sent)?;
    match failure {
        Some(e) => Err(DriveError::Link(e)),
        None => Ok(sent.len()),
    }
}

/// What [`Replica::receive`] said about the envelopes delivered so far.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Envelopes handed to the replica.
    pub envelopes: u64,
    /// Applied (with whatever they unblocked).
    pub applied: u64,
    /// Kept for later (missing dependencies, waiting for the welcome, more chunks).
    pub pending: u64,
    /// Already seen.
    pub duplicate: u64,
    /// The welcome completed.
    pub joined: u64,
    /// Refused (not for this device, or not authentic); nothing changed.
    pub refused: u64,
    /// Catch-up replies sent.
    pub replies: u64,
    /// The last refusal, for diagnostics.
    pub last_refusal: Option<String>,
}

/// Hands `batch` to the replica, one envelope at a time.
pub fn deliver<L: Link>(
    r: &mut Replica,
    link: &mut L,
    batch: Vec<Vec<u8>>,
    tally: &mut Tally,
) -> Result<(), DriveError<L::Error>> {
    for bytes in batch {
        tally.envelopes += 1;
        match r.receive(&bytes) {
            Ok(Received::Applied(_)) => tally.applied += 1,
            Ok(Received::Pending(_)) => tally.pending += 1,
            Ok(Received::Duplicate) => tally.duplicate += 1,
            Ok(Received::Joined(_)) => tally.joined += 1,
            Ok(Received::Reply(msgs)) => {
                // Not kept in the outbox: if sending fails, the peer asks again.
                for (device, reply) in msgs {
                    link.send(Recipient::Device(device), &reply)
                        .map_err(DriveError::Link)?;
                    tally.replies += 1;
                }
            }
            Ok(other) => tally.last_refusal = Some(format!("unexpected {other:?}")),
            Err(ReplicaError::Group(e)) => {
                tally.refused += 1;
                tally.last_refusal = Some(e.to_string());
            }
            Err(e) => return Err(DriveError::Replica(e)),
        }
    }
    Ok(())
}

/// One receive from the transport, delivered to the replica. Returns the number of envelopes.
pub fn pump<L: Link>(
    r: &mut Replica,
    link: &mut L,
    wait: Duration,
    tally: &mut Tally,
) -> Result<usize, DriveError<L::Error>> {
    let batch = link.receive(wait).map_err(DriveError::Link)?;
    let n = batch.len();
    deliver(r, link, batch, tally)?;
    Ok(n)
}

/// Pumps until `done(replica)` holds; `Err` with a description after `deadline`. Transient
/// transport errors are retried after a short pause.
pub fn pump_until<L: Link>(
    r: &mut Replica,
    link: &mut L,
    tally: &mut Tally,
    deadline: Duration,
    mut done: impl FnMut(&Replica) -> bool,
) -> Result<(), DriveError<L::Error>> {
    let start = Instant::now();
    while !done(r) {
        if start.elapsed() > deadline {
            return Err(DriveError::Replica(ReplicaError::Internal(
                "timed out waiting for the replica to catch up",
            )));
        }
        match pump(r, link, Duration::from_millis(500), tally) {
            Ok(_) => {}
            Err(DriveError::Link(e)) if L::is_transient(&e) => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Key bytes the application keeps (in a keychain, say); a [`StorageKey`] made from them
/// opens the replica's store again after a restart.
pub struct AppKey(Zeroizing<[u8; 32]>);

impl AppKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, k.as_mut());
        AppKey(k)
    }

    /// The storage key.
    pub fn storage_key(&self) -> StorageKey {
        StorageKey::from_bytes(self.0.clone())
    }
}

/// Every string value in `doc` of at least `min` characters (map keys are left out: short
/// and generic, they would match random base64 by chance).
pub fn doc_strings(doc: &Value, min: usize) -> Vec<String> {
    fn walk(v: &Value, min: usize, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.chars().count() >= min => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, min, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, min, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, min, &mut out);
    out
}

/// The strings of `needles` found in `hay`.
pub fn leaks(hay: &[u8], needles: &[String]) -> Vec<String> {
    needles
        .iter()
        .filter(|n| !n.is_empty() && hay.windows(n.len()).any(|w| w == n.as_bytes()))
        .cloned()
        .collect()
}

/// Median and 90th percentile of `lat` (sorted here).
pub fn median_p90(lat: &mut [Duration]) -> (Duration, Duration) {
    if lat.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    lat.sort();
    let at = |p: f64| lat[(((lat.len() - 1) as f64) * p).round() as usize];
    (at(0.5), at(0.9))
}

/// The to-do items of a document (`items` list), as `(text, done)` pairs.
pub fn items(doc: &Value) -> Vec<(String, bool)> {
    doc["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i["text"].as_str().unwrap_or_default().to_owned(),
                        i["done"].as_bool().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Pumps both replicas in turn until their documents are equal and `done` holds for both;
/// `Err` after `deadline`. Transient transport errors are retried.
#[allow(clippy::too_many_arguments)]
pub fn converge<L: Link>(
    a: &mut Replica,
    a_link: &mut L,
    a_tally: &mut Tally,
    b: &mut Replica,
    b_link: &mut L,
    b_tally: &mut Tally,
    deadline: Duration,
    done: impl Fn(&Replica) -> bool,
) -> Result<(), DriveError<L::Error>> {
    let start = Instant::now();
    let wait = Duration::from_millis(100);
    loop {
        if done(a) && done(b) && a.doc().to_json() == b.doc().to_json() {
            return Ok(());
        }
        if start.elapsed() > deadline {
            return Err(DriveError::Replica(ReplicaError::Internal(
                "timed out waiting for the replicas to converge",
            )));
        }
        for r in [
            pump(a, a_link, wait, a_tally),
            pump(b, b_link, wait, b_tally),
        ] {
            match r {
                Ok(_) => {}
                Err(DriveError::Link(e)) if L::is_transient(&e) => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The story both examples tell, over any [`Link`]: Bob's contact card reaches Alice as bytes,
/// she adds him (the welcome travels over the link), starts a to-do list, and both edit it
/// concurrently (`n` items each, and the title at the same time) until they converge.
/// Returns the final document and what went wrong (documents that differ, outboxes not
/// empty).
#[allow(clippy::too_many_arguments)]
pub fn to_do_story<L: Link>(
    alice: &mut Replica,
    alice_net: &mut L,
    bob: &mut Replica,
    bob_net: &mut L,
    n: usize,
    run_id: &str,
    wait: Duration,
    via: &str,
) -> Result<(Value, Vec<String>), Box<dyn std::error::Error>>
where
    L::Error: 'static,
{
    let (mut at, mut bt) = (Tally::default(), Tally::default());
    let (at, bt) = (&mut at, &mut bt);
    // Bob's contact card reaches Alice out of band, as bytes (a QR code, a link).
    let card_bytes = bob.contact_card().as_bytes().to_vec();
    let card = sealdoc::crypto::ContactCard::verify(&card_bytes)?;
    let added = alice.add_member(&card, sealdoc::group::Role::Writer)?;
    println!(
        "alice adds bob ({}-byte contact card): {} messages in her outbox",
        card_bytes.len(),
        added.outgoing.len()
    );
    let sent = flush(alice, alice_net)?;
    println!(
        "alice: {sent} {via} and marked sent; outbox now {}",
        alice.outbox().len()
    );
    pump_until(bob, bob_net, bt, wait, Replica::is_member)?;
    println!("bob: welcomed ({} members)", bob.members().len());

    // Alice starts the list; Bob waits for it.
    alice.change(|tx| {
        tx.set(
            "title",
            format!("Weekend chores for the two of us ({run_id})"),
        )?;
        tx.set("items", serde_json::json!([]))
    })?;
    flush(alice, alice_net)?;
    pump_until(bob, bob_net, bt, wait, |r| r.doc().get("items").is_some())?;

    // Both edit at the same time, neither seeing the other's changes yet.
    for i in 0..n {
        alice.change(|tx| {
            tx.push(
                "items",
                serde_json::json!({"text": format!("alice task {i}: water the tomato plants ({run_id})"), "done": false}),
            )
        })?;
        bob.change(|tx| {
            tx.push(
                "items",
                serde_json::json!({"text": format!("bob task {i}: fix the squeaky garden gate ({run_id})"), "done": false}),
            )
        })?;
    }
    alice.change(|tx| tx.set("title", format!("Alice's weekend list ({run_id})")))?;
    bob.change(|tx| tx.set("title", format!("Bob's weekend list ({run_id})")))?;
    println!(
        "concurrent edits: alice outbox {}, bob outbox {}",
        alice.outbox().len(),
        bob.outbox().len()
    );
    flush(alice, alice_net)?;
    flush(bob, bob_net)?;
    let want = 2 * n;
    converge(alice, alice_net, at, bob, bob_net, bt, wait, |r| {
        items(&r.doc().to_json()).len() == want
    })?;

    let mut problems = Vec::new();
    let (a_doc, b_doc) = (alice.doc().to_json(), bob.doc().to_json());
    if a_doc != b_doc {
        problems.push(format!(
            "documents differ:\nalice {a_doc:#}\nbob   {b_doc:#}"
        ));
    }
    println!(
        "converged: {} items, title {}",
        items(&a_doc).len(),
        a_doc["title"]
    );
    println!("alice received: {at:?}");
    println!("bob received:   {bt:?}");
    if !alice.outbox().is_empty() || !bob.outbox().is_empty() {
        problems.push("an outbox is not empty at the end".into());
    }
    Ok((a_doc, problems))
}

/// The Matrix room as a [`Link`]: group and direct envelopes alike go to the room (a direct
/// envelope is sealed to its device; every other reader fails to open it).
#[cfg(feature = "matrix")]
pub struct MatrixLink(pub sealdoc::transport::matrix::MatrixRoom);

#[cfg(feature = "matrix")]
impl Link for MatrixLink {
    type Error = sealdoc::transport::matrix::MatrixError;
    fn send(&mut self, _to: Recipient, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.send(bytes).map(|_| ())
    }
    fn receive(&mut self, wait: Duration) -> Result<Vec<Vec<u8>>, Self::Error> {
        self.0.receive(wait)
    }
    fn is_transient(e: &Self::Error) -> bool {
        e.is_transient()
    }
}

#[cfg(feature = "email")]
/// Mail as a [`Link`]: group envelopes to every other member, direct ones to the address of
/// the device they are for; receiving reads this member's mailbox.
pub struct MailLink {
    /// To every other member; also reads this member's mailbox.
    pub group: sealdoc::transport::email::EmailTransport,
    /// To one device's owner.
    pub direct: std::collections::HashMap<
        sealdoc::graph::DeviceId,
        sealdoc::transport::email::EmailTransport,
    >,
}

/// Why a [`MailLink`] failed.
#[cfg(feature = "email")]
#[derive(Debug)]
pub enum MailError {
    /// The transport failed.
    Email(sealdoc::transport::email::EmailError),
    /// No address is known for the device.
    NoAddress(sealdoc::graph::DeviceId),
}

#[cfg(feature = "email")]
impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailError::Email(e) => e.fmt(f),
            MailError::NoAddress(d) => write!(f, "no mail address for device {d:?}"),
        }
    }
}

#[cfg(feature = "email")]
impl Link for MailLink {
    type Error = MailError;
    fn send(&mut self, to: Recipient, bytes: &[u8]) -> Result<(), MailError> {
        let t = match to {
            Recipient::Group => &mut self.group,
            Recipient::Device(d) => self.direct.get_mut(&d).ok_or(MailError::NoAddress(d))?,
        };
        t.send(bytes).map_err(MailError::Email)
    }
    fn receive(&mut self, wait: Duration) -> Result<Vec<Vec<u8>>, MailError> {
        let got = self.group.receive().map_err(MailError::Email)?;
        if got.is_empty() && !wait.is_zero() {
            std::thread::sleep(wait.min(Duration::from_millis(10)));
        }
        Ok(got)
    }
    fn is_transient(e: &MailError) -> bool {
        matches!(e, MailError::Email(e) if e.is_transient())
    }
}
