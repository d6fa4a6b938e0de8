//! Two people, one encrypted shopping list, one untrusted relay.
//!
//! Run it with `cargo run --example two_party`. Alice creates a group, adds Bob, and both edit
//! the list at the same time. Each keeps a [`Replica`] in its own encrypted store on disk.
//! Every envelope goes through a relay thread that logs what it carries: sizes and a few bytes
//! of ciphertext, never the list. Bob's device restarts in the middle and picks up where it
//! was. At the end Alice removes Bob and writes one more thing, which Bob can no longer read.
//!
//! The program exits with status 1 if the two documents differ, if the relay ever carried a
//! string of the document in clear, or if Bob could read Alice's change after his removal.

use std::collections::HashMap;
use std::error::Error;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use sealdoc::crypto::StorageKey;
use sealdoc::graph::DeviceId;
use sealdoc::group::{GroupPolicy, Role};
use sealdoc::replica::{Recipient, Replica};
use sealdoc::store::FileStore;
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// What the program found; [`Report::problems`] lists what went wrong.
#[derive(Debug)]
pub struct Report {
    /// Size in bytes of every envelope the relay carried, in order.
    pub relayed_sizes: Vec<usize>,
    /// Alice's document after the concurrent edits.
    pub alice_doc: Value,
    /// Bob's document after the concurrent edits.
    pub bob_doc: Value,
    /// The concurrent values of the item both edited, as Bob sees them.
    pub conflicts: Vec<Value>,
    /// Document strings found in clear in the relayed bytes (should be empty).
    pub leaked: Vec<String>,
    /// What happened when Bob received Alice's change after his removal.
    pub bob_after_removal: String,
    /// True if Bob's document picked up that change (it must not).
    pub bob_read_after_removal: bool,
}

impl Report {
    /// Every failed check, as a message; empty if all is well.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.alice_doc != self.bob_doc {
            p.push("Alice's and Bob's documents differ".to_owned());
        }
        if self.conflicts.len() != 2 {
            p.push(format!(
                "expected 2 conflicting values, saw {:?}",
                self.conflicts
            ));
        }
        for s in &self.leaked {
            p.push(format!("the relay saw {s:?} in clear"));
        }
        if self.bob_read_after_removal {
            p.push("Bob read a change made after his removal".to_owned());
        }
        p
    }
}

// ---- The relay: a thread that forwards bytes and can see everything it forwards. ----------

/// Where an envelope goes: a group envelope to everyone else, a direct one to one device.
enum Route {
    Everyone,
    Device(DeviceId),
}

enum ToRelay {
    /// An envelope from `from` (a device) along `route`.
    Envelope {
        from: DeviceId,
        route: Route,
        bytes: Vec<u8>,
    },
    /// Answer once everything sent before has been forwarded.
    Flush(Sender<()>),
}

/// Starts the relay with one inbox per device. It returns every envelope it carried once all
/// senders are gone.
fn start_relay(
    inboxes: HashMap<DeviceId, (&'static str, Sender<Vec<u8>>)>,
) -> (Sender<ToRelay>, thread::JoinHandle<Vec<Vec<u8>>>) {
    let (tx, rx) = mpsc::channel::<ToRelay>();
    let handle = thread::spawn(move || {
        let name = |d: &DeviceId| inboxes.get(d).map_or("?", |(n, _)| *n);
        let mut carried = Vec::new();
        for msg in rx {
            match msg {
                ToRelay::Flush(done) => {
                    let _ = done.send(());
                }
                ToRelay::Envelope { from, route, bytes } => {
                    let to = match &route {
                        Route::Everyone => "everyone".to_owned(),
                        Route::Device(d) => name(d).to_owned(),
                    };
                    let head: String = bytes.iter().take(12).map(|b| format!("{b:02x}")).collect();
                    println!(
                        "  [relay] #{:<2} {:>5} -> {:<8} {:>5} bytes  {head}…",
                        carried.len() + 1,
                        name(&from),
                        to,
                        bytes.len()
                    );
                    for (device, (_, inbox)) in &inboxes {
                        let wanted = match &route {
                            Route::Everyone => *device != from,
                            Route::Device(d) => device == d,
                        };
                        if wanted {
                            let _ = inbox.send(bytes.clone());
                        }
                    }
                    carried.push(bytes);
                }
            }
        }
        carried
    });
    (tx, handle)
}

/// Hands everything in the replica's outbox to the relay, then marks it sent (only then: a
/// crash before this point would leave it in the durable outbox, to send after restart).
fn send(relay: &Sender<ToRelay>, from: &mut Replica) -> Result<(), Box<dyn Error>> {
    let device = from.device_id();
    let mut sent = Vec::new();
    for m in from.outbox() {
        let route = match m.to {
            Recipient::Group => Route::Everyone,
            Recipient::Device(d) => Route::Device(d),
        };
        relay.send(ToRelay::Envelope {
            from: device,
            route,
            bytes: m.bytes.clone(),
        })?;
        sent.push(m.id);
    }
    from.mark_sent(&sent)?;
    Ok(())
}

/// Everything waiting in an inbox, once the relay has forwarded all it was given.
fn collect(
    relay: &Sender<ToRelay>,
    inbox: &Receiver<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, Box<dyn Error>> {
    let (done, wait) = mpsc::channel();
    relay.send(ToRelay::Flush(done))?;
    wait.recv()?;
    Ok(inbox.try_iter().collect())
}

/// Receives everything in `inbox`.
fn receive_all(
    me: &mut Replica,
    relay: &Sender<ToRelay>,
    inbox: &Receiver<Vec<u8>>,
) -> Result<(), Box<dyn Error>> {
    for bytes in collect(relay, inbox)? {
        let _ = me.receive(&bytes)?;
    }
    Ok(())
}

/// A storage key for a person's device. A real application keeps it in the OS keychain; the
/// example derives it from fixed bytes so that Bob's restarted device can open his store.
fn storage_key(who: u8) -> StorageKey {
    StorageKey::from_bytes(Zeroizing::new([who; 32]))
}

/// Every string in a JSON value (keys and values) of at least four bytes.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                strings(x, out);
            }
        }
        _ => {}
    }
    out.retain(|s| s.len() >= 4);
}

/// The whole story; `main` prints the verdict.
pub fn run() -> Result<Report, Box<dyn Error>> {
    // Each person's device keeps its replica in its own directory, encrypted under a key only
    // that device holds.
    let dirs = (tempfile::tempdir()?, tempfile::tempdir()?);

    // 1. Each person has a device: a signing key and a key-agreement (KEM) key, made by the
    //    replica and stored sealed.
    println!("1. Alice creates the group; Bob prepares to join.");
    let mut alice = Replica::create(
        FileStore::open(dirs.0.path())?,
        storage_key(b'a'),
        GroupPolicy::full_history(), // newcomers get the whole history
    )?;
    let mut bob = Replica::new_joiner(FileStore::open(dirs.1.path())?, storage_key(b'b'))?;
    let (alice_id, bob_id) = (alice.device_id(), bob.device_id());

    // 2. The relay knows devices only by id and delivers bytes to their inboxes.
    let (alice_tx, alice_inbox) = mpsc::channel();
    let (bob_tx, bob_inbox) = mpsc::channel();
    let inboxes = HashMap::from([(alice_id, ("alice", alice_tx)), (bob_id, ("bob", bob_tx))]);
    let (relay, relay_thread) = start_relay(inboxes);

    // 3. Alice starts the list before Bob joins (the full-history policy lets him see it).
    alice.change(|tx| {
        tx.set("title", "Groceries")?;
        tx.set(
            "items",
            json!([{ "name": "milk", "qty": 1 }, { "name": "eggs", "qty": 12 }]),
        )
    })?;
    // The relay passes it to Bob's inbox too; he keeps it until he is welcomed.
    send(&relay, &mut alice)?;

    // 4. Bob hands Alice his contact card out of band (it holds public keys only); she adds
    //    him as a writer, and the welcome reaches him through the relay, sealed to his device.
    println!("2. Alice adds Bob; the welcome goes through the relay.");
    alice.add_member(&bob.contact_card(), Role::Writer)?;
    send(&relay, &mut alice)?;
    receive_all(&mut bob, &relay, &bob_inbox)?;
    if !bob.is_member() {
        return Err("Bob's welcome did not complete".into());
    }
    println!("   Bob joined and sees: {}", bob.doc().to_json());

    // 5. Both edit at the same time, before seeing each other's change: both change the
    //    milk's quantity (a conflict), and each adds an item.
    println!("3. Concurrent edits.");
    alice.change(|tx| {
        tx.set("/items/0/qty", 2)?;
        tx.push("items", json!({ "name": "bread", "qty": 1 }))
    })?;
    bob.change(|tx| {
        tx.set("/items/0/qty", 3)?;
        tx.push("items", json!({ "name": "coffee", "qty": 1 }))
    })?;
    send(&relay, &mut alice)?;
    send(&relay, &mut bob)?;
    receive_all(&mut alice, &relay, &alice_inbox)?;

    // Bob's device restarts before reading its inbox: everything he had is in his store.
    println!("   Bob's device restarts.");
    drop(bob);
    let mut bob = Replica::open(FileStore::open(dirs.1.path())?, storage_key(b'b'))?;
    receive_all(&mut bob, &relay, &bob_inbox)?;

    // 6. Both converge on the same document; the conflicting quantity keeps both values
    //    (to_json shows one of them, the same on both sides).
    let (alice_doc, bob_doc) = (alice.doc().to_json(), bob.doc().to_json());
    println!("   Alice: {alice_doc}");
    println!("   Bob:   {bob_doc}");
    let conflicts: Vec<Value> = bob
        .doc()
        .conflicts("/items/0/qty")?
        .into_iter()
        .map(|c| c.value)
        .collect();
    println!("   concurrent values of /items/0/qty: {conflicts:?}");

    // 7. Alice removes Bob: the key rotates to an epoch sealed to Alice alone. The relay
    //    still delivers everything to Bob, as an untrusted relay might.
    println!("4. Alice removes Bob, then writes a note.");
    alice.remove_members(&[bob_id])?;
    send(&relay, &mut alice)?;
    for bytes in collect(&relay, &bob_inbox)? {
        match bob.receive(&bytes) {
            Ok(r) => println!("   Bob receives the removal: {r:?}"),
            Err(e) => println!("   Bob receives the removal: error: {e}"),
        }
    }
    let secret = "surprise party for Bob";
    alice.change(|tx| tx.set("note", secret))?;
    send(&relay, &mut alice)?;
    let before = bob.doc().to_json();
    let mut bob_after_removal = Vec::new();
    for bytes in collect(&relay, &bob_inbox)? {
        bob_after_removal.push(match bob.receive(&bytes) {
            Ok(r) => format!("received {r:?}"),
            Err(e) => format!("refused: {e}"),
        });
    }
    let bob_after_removal = bob_after_removal.join("; ");
    let bob_read_after_removal = bob.doc().to_json() != before;
    println!("   Bob gets Alice's note: {bob_after_removal}");
    println!(
        "   Bob's document {}",
        if bob_read_after_removal {
            "CHANGED"
        } else {
            "did not change"
        }
    );

    // 8. Stop the relay and look at everything it carried for plaintext.
    drop(relay);
    let carried = relay_thread
        .join()
        .map_err(|_| "the relay thread panicked")?;
    let mut plain = Vec::new();
    strings(&alice.doc().to_json(), &mut plain);
    let leaked = plain
        .into_iter()
        .filter(|s| {
            carried
                .iter()
                .any(|env| env.windows(s.len()).any(|w| w == s.as_bytes()))
        })
        .collect();
    let relayed_sizes: Vec<usize> = carried.iter().map(Vec::len).collect();

    Ok(Report {
        relayed_sizes,
        alice_doc,
        bob_doc,
        conflicts,
        leaked,
        bob_after_removal,
        bob_read_after_removal,
    })
}

fn main() {
    let report = match run() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let total: usize = report.relayed_sizes.iter().sum();
    println!(
        "The relay carried {} envelopes, {total} bytes in all: sizes {:?}",
        report.relayed_sizes.len(),
        report.relayed_sizes
    );
    let problems = report.problems();
    if problems.is_empty() {
        println!("OK: same document on both sides, no plaintext on the wire, Bob locked out.");
    } else {
        for p in &problems {
            eprintln!("FAILED: {p}");
        }
        std::process::exit(1);
    }
}
