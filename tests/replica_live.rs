//! Live tests of whole replicas ([`Replica`]) over the real transports: Synapse for Matrix,
//! Postfix + Dovecot for email. Where `tests/matrix_live.rs` and `tests/email_live.rs` move
//! raw envelope bytes, these make document changes and check that replicas converge.
//!
//! Settings and skipping work as in those files: the Matrix tests run when
//! `SEALDOC_SYNAPSE_URL` and `SEALDOC_SYNAPSE_SECRET` are set, the email tests when
//! `SEALDOC_SMTP_ADDR`, `SEALDOC_IMAP_ADDR`, `SEALDOC_MAIL_DOMAIN` and `SEALDOC_MAIL_PASSWORD`
//! are (`bash scripts/live-tests.sh` starts the servers and sets them); otherwise they print
//! "skipped" and pass, unless `SEALDOC_REQUIRE_LIVE=1`, which makes a missing server a
//! failure. The outage tests stop and restart a server, so they run only with
//! `SEALDOC_LIVE_CONTROL=1`. All tests here run one at a time. Figures are printed to stderr:
//! run with `--nocapture` to see them.
//!
//! The replica loop (send the durable outbox, mark sent only what the server confirmed;
//! hand everything received to `Replica::receive`) is `examples/common/mod.rs`, shared with
//! the `matrix` and `email` examples.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{
    converge, doc_strings, flush, items, leaks, median_p90, pump, pump_until, AppKey, DriveError,
    Link, MailLink, MatrixLink, Tally,
};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sealdoc::crypto::{ContactCard, GroupTag};
use sealdoc::group::{GroupPolicy, Role};
use sealdoc::replica::Replica;
use sealdoc::store::FileStore;
use sealdoc::transport::email::{
    EmailConfig, EmailTransport, ImapSecurity, SmtpSecurity, GROUP_HEADER,
};
use sealdoc::transport::matrix::{MatrixClient, MatrixConfig, EVENT_TYPE};
use serde_json::{json, Value};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const DEADLINE: Duration = Duration::from_secs(120);

fn require_live() -> bool {
    std::env::var("SEALDOC_REQUIRE_LIVE").as_deref() == Ok("1")
}

fn control_allowed() -> bool {
    if std::env::var("SEALDOC_LIVE_CONTROL").as_deref() == Ok("1") {
        return true;
    }
    assert!(
        !require_live(),
        "SEALDOC_REQUIRE_LIVE=1 but SEALDOC_LIVE_CONTROL is not 1: the outage tests need to \
         stop and start the servers with scripts/synapse.sh and scripts/mail.sh"
    );
    eprintln!("skipped: SEALDOC_LIVE_CONTROL not set (the test stops and restarts a server)");
    false
}

fn script(name: &str, args: &[&str]) {
    let path = format!("{}/scripts/{name}.sh", env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("bash").arg(path).args(args).status().unwrap();
    assert!(status.success(), "scripts/{name}.sh {args:?} failed");
}

fn rng() -> ChaCha8Rng {
    let seed = std::env::var("SEALDOC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen::<u64>());
    eprintln!("seed {seed} (SEALDOC_TEST_SEED={seed} repeats this run)");
    ChaCha8Rng::seed_from_u64(seed)
}

fn run_id(rng: &mut ChaCha8Rng) -> String {
    format!("{:010x}", rng.gen::<u64>() & 0xff_ffff_ffff)
}

/// A replica in a `FileStore` that can be dropped and opened again (a restart).
struct Device {
    dir: tempfile::TempDir,
    key: AppKey,
}

impl Device {
    fn new() -> Self {
        Device {
            dir: tempfile::tempdir().unwrap(),
            key: AppKey::generate(),
        }
    }
    fn store(&self) -> FileStore {
        FileStore::open(self.dir.path()).unwrap()
    }
    fn create(&self) -> Replica {
        Replica::create(
            self.store(),
            self.key.storage_key(),
            GroupPolicy::full_history(),
        )
        .unwrap()
    }
    fn joiner(&self) -> Replica {
        Replica::new_joiner(self.store(), self.key.storage_key()).unwrap()
    }
    /// Drops `r` and opens it again from its store; checks nothing was lost.
    fn restart(&self, r: Replica) -> Replica {
        let doc = r.doc().to_json();
        let outbox: Vec<u64> = r.outbox().iter().map(|m| m.id).collect();
        let members = r.members();
        drop(r);
        let t = Instant::now();
        let r = Replica::open(self.store(), self.key.storage_key()).unwrap();
        eprintln!(
            "restart: reopened in {:?} ({} bytes on disk)",
            t.elapsed(),
            dir_size(self.dir.path())
        );
        assert_eq!(r.doc().to_json(), doc, "the document survived the restart");
        assert_eq!(
            r.outbox().iter().map(|m| m.id).collect::<Vec<_>>(),
            outbox,
            "the outbox survived the restart"
        );
        assert_eq!(r.members(), members);
        r
    }
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// One to-do item whose text is long and unique: what must never appear at the server.
fn item(who: &str, i: usize, run: &str) -> Value {
    json!({"text": format!("{who} item {i}: confidential errand number {i} ({run})"), "done": false})
}

fn push<L: Link>(r: &mut Replica, link: &mut L, who: &str, i: usize, run: &str, send: bool) {
    let _ = r.change(|tx| tx.push("items", item(who, i, run))).unwrap();
    if send {
        flush(r, link).unwrap();
    }
}

fn count(r: &Replica) -> usize {
    items(&r.doc().to_json()).len()
}

/// Makes `n` changes on `from`, one at a time, each sent at once and waited for on `to`:
/// latency from the change call to `Replica::receive` applying it on `to`.
#[allow(clippy::too_many_arguments)]
fn round_trips<L: Link>(
    from: &mut Replica,
    from_link: &mut L,
    to: &mut Replica,
    to_link: &mut L,
    tally: &mut Tally,
    who: &str,
    n: usize,
    run: &str,
) -> Vec<Duration>
where
    L::Error: std::fmt::Debug,
{
    let mut lat = Vec::new();
    for i in 0..n {
        let want = count(to) + 1;
        let t0 = Instant::now();
        push(from, from_link, who, i, run, true);
        pump_until(to, to_link, tally, DEADLINE, |r| count(r) == want).unwrap();
        lat.push(t0.elapsed());
    }
    lat
}

fn assert_converged(a: &Replica, b: &Replica, what: &str) {
    assert_eq!(
        a.doc().to_json(),
        b.doc().to_json(),
        "{what}: documents differ"
    );
}

/// Retries `flush` until the outbox is empty (the server is coming back up).
fn flush_retrying<L: Link>(r: &mut Replica, link: &mut L) -> usize
where
    L::Error: std::fmt::Debug,
{
    let mut failures = 0;
    loop {
        match flush(r, link) {
            Ok(_) if r.outbox().is_empty() => return failures,
            Ok(_) => {}
            Err(DriveError::Link(e)) => {
                assert!(L::is_transient(&e), "{e:?}");
                failures += 1;
                assert!(failures < 100, "sends keep failing after restart: {e:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

// ---- Matrix ---------------------------------------------------------------------------------

struct MatrixLive {
    url: String,
    secret: String,
}

fn matrix_live() -> Option<MatrixLive> {
    match (
        std::env::var("SEALDOC_SYNAPSE_URL"),
        std::env::var("SEALDOC_SYNAPSE_SECRET"),
    ) {
        (Ok(url), Ok(secret)) if !url.is_empty() && !secret.is_empty() => {
            Some(MatrixLive { url, secret })
        }
        _ => {
            assert!(
                !require_live(),
                "SEALDOC_REQUIRE_LIVE=1 but SEALDOC_SYNAPSE_URL / SEALDOC_SYNAPSE_SECRET are not \
                 set: Synapse was not started (bash scripts/synapse.sh start; eval \"$(bash \
                 scripts/synapse.sh env)\")"
            );
            eprintln!("skipped: SEALDOC_SYNAPSE_URL / SEALDOC_SYNAPSE_SECRET not set");
            None
        }
    }
}

fn register(live: &MatrixLive, config: MatrixConfig, name: &str) -> MatrixClient {
    MatrixClient::register_with_shared_secret(config, &live.secret, name, &format!("pw-{name}"))
        .unwrap()
}

/// Every event of the room, oldest first, as raw JSON (logs in as `user` over plain HTTP).
fn raw_room_events(live: &MatrixLive, user: &str, room_id: &str) -> Vec<Value> {
    let agent = ureq::Agent::new_with_defaults();
    let login: Value = serde_json::from_str(
        &agent
            .post(format!("{}/_matrix/client/v3/login", live.url))
            .send(
                json!({
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": user},
                    "password": format!("pw-{user}"),
                })
                .to_string(),
            )
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let room = room_id.replace('!', "%21").replace(':', "%3A");
    let mut events = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let mut req = agent
            .get(format!(
                "{}/_matrix/client/v3/rooms/{room}/messages",
                live.url
            ))
            .header("Authorization", format!("Bearer {token}"))
            .query("dir", "b")
            .query("limit", "500");
        if let Some(f) = &from {
            req = req.query("from", f);
        }
        let text = req
            .call()
            .unwrap()
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap();
        let page: Value = serde_json::from_str(&text).unwrap();
        let chunk = page["chunk"].as_array().cloned().unwrap_or_default();
        events.extend(chunk.iter().cloned());
        match page["end"].as_str() {
            Some(end) if !chunk.is_empty() => from = Some(end.to_owned()),
            _ => break,
        }
    }
    events.reverse();
    events
}

/// Alice (admin, `full_history`) and Bob (welcomed over the room) sharing `items: []`.
struct MatrixPair {
    alice_dev: Device,
    bob_dev: Device,
    alice: Replica,
    bob: Replica,
    alice_net: MatrixLink,
    bob_net: MatrixLink,
    at: Tally,
    bt: Tally,
    room_id: String,
    alice_user: String,
}

fn matrix_pair(live: &MatrixLive, id: &str, bob_sync_limit: u32) -> MatrixPair {
    let config = MatrixConfig::new(live.url.clone());
    let alice_user = format!("ralice{id}");
    let alice_c = register(live, config.clone(), &alice_user);
    let mut bob_config = config;
    bob_config.sync_timeline_limit = bob_sync_limit;
    let bob_c = register(live, bob_config, &format!("rbob{id}"));
    let room_id = alice_c.create_room(&[bob_c.user_id()]).unwrap();
    bob_c.join(&room_id).unwrap();
    let mut alice_net = MatrixLink(alice_c.into_room(room_id.clone()));
    let mut bob_net = MatrixLink(bob_c.into_room(room_id.clone()));
    let (alice_dev, bob_dev) = (Device::new(), Device::new());
    let mut alice = alice_dev.create();
    let mut bob = bob_dev.joiner();
    let (at, mut bt) = (Tally::default(), Tally::default());
    let card = ContactCard::verify(bob.contact_card().as_bytes()).unwrap();
    let _ = alice.add_member(&card, Role::Writer).unwrap();
    flush(&mut alice, &mut alice_net).unwrap();
    pump_until(
        &mut bob,
        &mut bob_net,
        &mut bt,
        DEADLINE,
        Replica::is_member,
    )
    .unwrap();
    let _ = alice
        .change(|tx| {
            tx.set("title", format!("Shared errands of the live test ({id})"))?;
            tx.set("items", json!([]))
        })
        .unwrap();
    flush(&mut alice, &mut alice_net).unwrap();
    pump_until(&mut bob, &mut bob_net, &mut bt, DEADLINE, |r| {
        r.doc().get("items").is_some()
    })
    .unwrap();
    MatrixPair {
        alice_dev,
        bob_dev,
        alice,
        bob,
        alice_net,
        bob_net,
        at,
        bt,
        room_id,
        alice_user,
    }
}

#[test]
fn matrix_replicas_exchange_200_changes_through_a_limited_sync_and_a_late_joiner_catches_up() {
    let _g = serial();
    let Some(live) = matrix_live() else { return };
    let mut rng = rng();
    let id = run_id(&mut rng);
    let t_setup = Instant::now();
    // Bob's syncs return at most 20 events, so the burst below comes back `limited`.
    let mut p = matrix_pair(&live, &id, 20);
    eprintln!(
        "matrix setup (2 users, room, group, welcome over the room): {:?}",
        t_setup.elapsed()
    );
    let mut changes = 0;

    // 1. Round trips, one change at a time: Alice -> Bob (40), Bob -> Alice (20).
    let mut lat = round_trips(
        &mut p.alice,
        &mut p.alice_net,
        &mut p.bob,
        &mut p.bob_net,
        &mut p.bt,
        "alice",
        40,
        &id,
    );
    lat.extend(round_trips(
        &mut p.bob,
        &mut p.bob_net,
        &mut p.alice,
        &mut p.alice_net,
        &mut p.at,
        "bob",
        20,
        &id,
    ));
    changes += 60;
    let n_lat = lat.len();
    let (med, p90) = median_p90(&mut lat);
    eprintln!(
        "matrix replica round trip over {n_lat} changes (change on one replica -> applied on \
         the other, through Synapse): median {med:?}, p90 {p90:?}, max {:?}",
        lat[n_lat - 1]
    );
    assert_converged(&p.alice, &p.bob, "after the round trips");

    // 2. Concurrent edits: 20 each while neither syncs, then both send and sync.
    for i in 0..20 {
        push(&mut p.alice, &mut p.alice_net, "alice-c", i, &id, false);
        push(&mut p.bob, &mut p.bob_net, "bob-c", i, &id, false);
    }
    changes += 40;
    assert_eq!(p.alice.outbox().len(), 20);
    flush(&mut p.alice, &mut p.alice_net).unwrap();
    flush(&mut p.bob, &mut p.bob_net).unwrap();
    converge(
        &mut p.alice,
        &mut p.alice_net,
        &mut p.at,
        &mut p.bob,
        &mut p.bob_net,
        &mut p.bt,
        DEADLINE,
        |r| count(r) == changes,
    )
    .unwrap();

    // 3. A burst of 100 changes from Alice, each sent as made, while Bob does not sync: his
    //    next sync is limited and the room fills the gap from /messages.
    let before = p.bob_net.0.stats().clone();
    let t_burst = Instant::now();
    let mut in_change = Duration::ZERO;
    for i in 0..100 {
        let t = Instant::now();
        push(&mut p.alice, &mut p.alice_net, "alice-b", i, &id, false);
        in_change += t.elapsed();
        flush(&mut p.alice, &mut p.alice_net).unwrap();
    }
    let send_time = t_burst.elapsed();
    changes += 100;
    pump_until(&mut p.bob, &mut p.bob_net, &mut p.bt, DEADLINE, |r| {
        count(r) == changes
    })
    .unwrap();
    let total = t_burst.elapsed();
    let stats = p.bob_net.0.stats().clone();
    eprintln!(
        "matrix sustained: 100 changes made and sent by Alice in {send_time:?} ({:.1} changes/s); \
         all applied on Bob after {total:?} ({:.1} changes/s end to end); Bob's limited syncs \
         {}, gap pages {}, backfilled events {}; of the sending side, {in_change:?} in \
         Replica::change (sign, seal, durable record) and the rest in sending and mark_sent",
        100.0 / send_time.as_secs_f64(),
        100.0 / total.as_secs_f64(),
        stats.limited_syncs - before.limited_syncs,
        stats.gap_pages - before.gap_pages,
        stats.backfilled_events - before.backfilled_events,
    );
    assert!(
        stats.limited_syncs > before.limited_syncs,
        "the burst made one of Bob's syncs limited"
    );
    assert!(stats.backfilled_events > before.backfilled_events);
    assert_converged(&p.alice, &p.bob, "after the burst");
    assert_eq!(changes, 200);
    assert_eq!(count(&p.alice), 200);
    assert!(p.alice.outbox().is_empty() && p.bob.outbox().is_empty());

    // 4. Carol joins late: Alice adds her (full history) and sends her welcome to the room;
    //    Carol reads the room from its start.
    let carol_dev = Device::new();
    let mut carol = carol_dev.joiner();
    let carol_c = register(
        &live,
        MatrixConfig::new(live.url.clone()),
        &format!("rcarol{id}"),
    );
    let card = ContactCard::verify(carol.contact_card().as_bytes()).unwrap();
    let _ = p.alice.add_member(&card, Role::Writer).unwrap();
    flush(&mut p.alice, &mut p.alice_net).unwrap();
    p.alice_net
        .0
        .client()
        .invite(&p.room_id, carol_c.user_id())
        .unwrap();
    carol_c.join(&p.room_id).unwrap();
    let mut carol_net = MatrixLink(carol_c.into_room(p.room_id.clone()));
    let mut ct = Tally::default();
    let t_carol = Instant::now();
    let alice_doc = p.alice.doc().to_json();
    pump_until(&mut carol, &mut carol_net, &mut ct, DEADLINE, |r| {
        r.doc().to_json() == alice_doc
    })
    .unwrap();
    eprintln!(
        "matrix late joiner: caught up on 200 changes from the room's history in {:?} ({} \
         envelopes read, {} gap pages; {ct:?})",
        t_carol.elapsed(),
        ct.envelopes,
        carol_net.0.stats().gap_pages
    );
    assert!(carol.is_member());
    assert_eq!(carol.members().len(), 3);
    // And Carol follows new changes: Bob writes, both others apply.
    push(&mut p.bob, &mut p.bob_net, "bob-after-carol", 0, &id, true);
    pump_until(&mut carol, &mut carol_net, &mut ct, DEADLINE, |r| {
        count(r) == 201
    })
    .unwrap();
    pump_until(&mut p.alice, &mut p.alice_net, &mut p.at, DEADLINE, |r| {
        count(r) == 201
    })
    .unwrap();
    // Bob must see the add of Carol too (it came before his change in his causal past).
    pump(&mut p.bob, &mut p.bob_net, Duration::ZERO, &mut p.bt).unwrap();
    assert_converged(&p.alice, &carol, "Carol");
    assert_converged(&p.alice, &p.bob, "Bob after Carol's join");
    eprintln!("matrix tallies: alice {:?}; bob {:?}", p.at, p.bt);

    // 5. What the server holds: armour only, no string of the document.
    let secrets = doc_strings(&p.alice.doc().to_json(), 8);
    assert!(secrets.len() > 200);
    let raw = raw_room_events(&live, &p.alice_user, &p.room_id);
    let ours: Vec<&Value> = raw.iter().filter(|e| e["type"] == EVENT_TYPE).collect();
    let bytes: usize = ours
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap().len())
        .sum();
    eprintln!(
        "matrix room holds {} events, {} of them envelopes ({} KiB)",
        raw.len(),
        ours.len(),
        bytes / 1024
    );
    for e in &ours {
        let content = e["content"].as_object().unwrap();
        assert_eq!(content.len(), 1, "content is just the armour: {content:?}");
    }
    let json = serde_json::to_vec(&raw).unwrap();
    assert_eq!(leaks(&json, &secrets), Vec::<String>::new());
    if let Ok(db) = std::env::var("SEALDOC_SYNAPSE_DB") {
        for path in [db.clone(), format!("{db}-wal")] {
            if let Ok(b) = std::fs::read(&path) {
                assert_eq!(leaks(&b, &secrets), Vec::<String>::new(), "{path}");
            }
        }
        eprintln!(
            "scanned {db} (+ -wal) for {} document strings: none",
            secrets.len()
        );
    }
    drop(p.alice_dev);
    drop(p.bob_dev);
}

#[test]
fn matrix_changes_made_while_synapse_is_down_wait_in_the_durable_outbox_across_a_restart() {
    let _g = serial();
    let Some(live) = matrix_live() else { return };
    if !control_allowed() {
        return;
    }
    let mut rng = rng();
    let id = run_id(&mut rng);
    let mut p = matrix_pair(&live, &id, 100);
    for i in 0..5 {
        push(&mut p.alice, &mut p.alice_net, "alice", i, &id, true);
        push(&mut p.bob, &mut p.bob_net, "bob", i, &id, true);
    }
    converge(
        &mut p.alice,
        &mut p.alice_net,
        &mut p.at,
        &mut p.bob,
        &mut p.bob_net,
        &mut p.bt,
        DEADLINE,
        |r| count(r) == 10,
    )
    .unwrap();

    let t_stop = Instant::now();
    script("synapse", &["stop"]);
    for i in 5..15 {
        push(&mut p.alice, &mut p.alice_net, "alice", i, &id, false);
    }
    for i in 5..10 {
        push(&mut p.bob, &mut p.bob_net, "bob", i, &id, false);
    }
    for (r, link) in [
        (&mut p.alice, &mut p.alice_net),
        (&mut p.bob, &mut p.bob_net),
    ] {
        let before = r.outbox().len();
        match flush(r, link) {
            Err(DriveError::Link(e)) => assert!(e.is_transient(), "{e:?}"),
            other => panic!("sending while Synapse is down: {other:?}"),
        }
        assert_eq!(r.outbox().len(), before, "nothing was marked sent");
    }
    assert_eq!(p.alice.outbox().len(), 10);
    assert_eq!(p.bob.outbox().len(), 5);
    // Both replicas restart while the server is down: the outbox is on disk.
    p.alice = p.alice_dev.restart(p.alice);
    p.bob = p.bob_dev.restart(p.bob);
    assert_eq!(p.alice.outbox().len(), 10);
    assert_eq!(p.bob.outbox().len(), 5);

    let t_start = Instant::now();
    script("synapse", &["start"]);
    eprintln!(
        "synapse restart: {:?} to ready (down for {:?})",
        t_start.elapsed(),
        t_stop.elapsed()
    );
    let fa = flush_retrying(&mut p.alice, &mut p.alice_net);
    let fb = flush_retrying(&mut p.bob, &mut p.bob_net);
    converge(
        &mut p.alice,
        &mut p.alice_net,
        &mut p.at,
        &mut p.bob,
        &mut p.bob_net,
        &mut p.bt,
        DEADLINE,
        |r| count(r) == 25,
    )
    .unwrap();
    eprintln!(
        "after the outage: outboxes sent ({fa} + {fb} transient failures first), replicas \
         converged on 25 items"
    );
    assert!(p.alice.outbox().is_empty() && p.bob.outbox().is_empty());
}

// ---- Email ----------------------------------------------------------------------------------

struct MailLive {
    smtp: (String, u16),
    imap: (String, u16),
    domain: String,
    password: String,
}

fn addr(var: &str) -> Option<(String, u16)> {
    let v = std::env::var(var).ok()?;
    let (host, port) = v.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

fn mail_live() -> Option<MailLive> {
    let smtp = addr("SEALDOC_SMTP_ADDR");
    let imap = addr("SEALDOC_IMAP_ADDR");
    let domain = std::env::var("SEALDOC_MAIL_DOMAIN").ok();
    let password = std::env::var("SEALDOC_MAIL_PASSWORD").ok();
    match (smtp, imap, domain, password) {
        (Some(smtp), Some(imap), Some(domain), Some(password)) => Some(MailLive {
            smtp,
            imap,
            domain,
            password,
        }),
        _ => {
            assert!(
                !require_live(),
                "SEALDOC_REQUIRE_LIVE=1 but SEALDOC_SMTP_ADDR / SEALDOC_IMAP_ADDR / \
                 SEALDOC_MAIL_DOMAIN / SEALDOC_MAIL_PASSWORD are not all set: the mail servers \
                 were not started (bash scripts/mail.sh start; eval \"$(bash scripts/mail.sh \
                 env)\")"
            );
            eprintln!("skipped: SEALDOC_SMTP_ADDR / SEALDOC_IMAP_ADDR / ... not set");
            None
        }
    }
}

fn mail_transport(live: &MailLive, me: &str, to: &str, tag: GroupTag) -> EmailTransport {
    let config = EmailConfig::new(
        format!("{me}@{}", live.domain),
        vec![format!("{to}@{}", live.domain)],
        tag,
    )
    .smtp(live.smtp.0.clone(), live.smtp.1, SmtpSecurity::Plain)
    .imap(
        live.imap.0.clone(),
        live.imap.1,
        ImapSecurity::Plain,
        format!("{me}@{}", live.domain),
        live.password.clone(),
    );
    EmailTransport::new(config).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every message of group `tag` in `user`'s INBOX, raw.
fn raw_mailbox(live: &MailLive, user: &str, tag: &str) -> Vec<Vec<u8>> {
    let tcp = TcpStream::connect((live.imap.0.as_str(), live.imap.1)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut client = imap::Client::new(tcp);
    client.read_greeting().unwrap();
    let mut s = client
        .login(format!("{user}@{}", live.domain), &live.password)
        .map_err(|(e, _)| e)
        .unwrap();
    s.examine("INBOX").unwrap();
    let uids = s
        .uid_search(format!("HEADER \"{GROUP_HEADER}\" \"{tag}\""))
        .unwrap();
    let set: Vec<String> = uids.iter().map(u32::to_string).collect();
    let out = if set.is_empty() {
        Vec::new()
    } else {
        let fetches = s.uid_fetch(set.join(","), "BODY.PEEK[]").unwrap();
        fetches.iter().map(|f| f.body().unwrap().to_vec()).collect()
    };
    s.logout().unwrap();
    out
}

struct MailPair {
    alice_dev: Device,
    bob_dev: Device,
    alice: Replica,
    bob: Replica,
    alice_net: MailLink,
    bob_net: MailLink,
    at: Tally,
    bt: Tally,
    tag_hex: String,
}

/// Alice and Bob (users `alice` and `bob` of `scripts/mail.sh`) on a fresh group tag, Bob
/// welcomed by mail, sharing `items: []`.
fn mail_pair(live: &MailLive, rng: &mut ChaCha8Rng, id: &str) -> MailPair {
    let mut tag = [0u8; 16];
    rng.fill_bytes(&mut tag);
    let tag_hex = hex(&tag);
    let tag = GroupTag::from_bytes(tag);
    let (alice_dev, bob_dev) = (Device::new(), Device::new());
    let mut alice = alice_dev.create();
    let mut bob = bob_dev.joiner();
    let mut alice_net = MailLink {
        group: mail_transport(live, "alice", "bob", tag),
        direct: HashMap::from([(bob.device_id(), mail_transport(live, "alice", "bob", tag))]),
    };
    let mut bob_net = MailLink {
        group: mail_transport(live, "bob", "alice", tag),
        direct: HashMap::from([(alice.device_id(), mail_transport(live, "bob", "alice", tag))]),
    };
    let (at, mut bt) = (Tally::default(), Tally::default());
    let card = ContactCard::verify(bob.contact_card().as_bytes()).unwrap();
    let _ = alice.add_member(&card, Role::Writer).unwrap();
    flush(&mut alice, &mut alice_net).unwrap();
    pump_until(
        &mut bob,
        &mut bob_net,
        &mut bt,
        DEADLINE,
        Replica::is_member,
    )
    .unwrap();
    let _ = alice
        .change(|tx| {
            tx.set("title", format!("Shared errands of the live test ({id})"))?;
            tx.set("items", json!([]))
        })
        .unwrap();
    flush(&mut alice, &mut alice_net).unwrap();
    pump_until(&mut bob, &mut bob_net, &mut bt, DEADLINE, |r| {
        r.doc().get("items").is_some()
    })
    .unwrap();
    MailPair {
        alice_dev,
        bob_dev,
        alice,
        bob,
        alice_net,
        bob_net,
        at,
        bt,
        tag_hex,
    }
}

#[test]
fn email_replicas_converge_despite_reordered_and_duplicated_mail_and_a_restart() {
    let _g = serial();
    let Some(live) = mail_live() else { return };
    let mut rng = rng();
    let id = run_id(&mut rng);
    let t_setup = Instant::now();
    let mut p = mail_pair(&live, &mut rng, &id);
    eprintln!(
        "email setup (group, welcome by mail): {:?}",
        t_setup.elapsed()
    );

    // 1. Concurrent edits, 15 each. Alice's mail goes out shuffled, one message twice; every
    //    message is marked sent only after SMTP accepted it.
    for i in 0..15 {
        push(&mut p.alice, &mut p.alice_net, "alice-c", i, &id, false);
        push(&mut p.bob, &mut p.bob_net, "bob-c", i, &id, false);
    }
    let mut out: Vec<(u64, Vec<u8>)> = p
        .alice
        .outbox()
        .iter()
        .map(|m| (m.id, m.bytes.clone()))
        .collect();
    assert_eq!(out.len(), 15);
    out.shuffle(&mut rng);
    let dup = out[4].clone();
    out.insert(11, dup);
    let mut sent = Vec::new();
    for (mid, bytes) in &out {
        p.alice_net.group.send(bytes).unwrap();
        sent.push(*mid);
    }
    p.alice.mark_sent(&sent).unwrap();
    flush(&mut p.bob, &mut p.bob_net).unwrap();
    converge(
        &mut p.alice,
        &mut p.alice_net,
        &mut p.at,
        &mut p.bob,
        &mut p.bob_net,
        &mut p.bt,
        DEADLINE,
        |r| count(r) == 30,
    )
    .unwrap();
    eprintln!("email reordered delivery: bob {:?}", p.bt);
    assert!(
        p.bt.pending > 0,
        "some changes arrived before their predecessors"
    );
    assert!(p.bt.duplicate > 0, "the duplicate was recognised");
    assert!(p.alice.outbox().is_empty());

    // 2. Bob's replica restarts mid-run with unsent changes; they are sent after.
    push(&mut p.bob, &mut p.bob_net, "bob-r", 0, &id, false);
    push(&mut p.bob, &mut p.bob_net, "bob-r", 1, &id, false);
    p.bob = p.bob_dev.restart(p.bob);
    assert_eq!(p.bob.outbox().len(), 2);
    flush(&mut p.bob, &mut p.bob_net).unwrap();
    pump_until(&mut p.alice, &mut p.alice_net, &mut p.at, DEADLINE, |r| {
        count(r) == 32
    })
    .unwrap();
    assert_converged(&p.alice, &p.bob, "after Bob's restart");
    // Alice restarts too.
    p.alice = p.alice_dev.restart(p.alice);

    // 3. Round trips, one change at a time (Bob polls every 10 ms).
    let mut lat = round_trips(
        &mut p.alice,
        &mut p.alice_net,
        &mut p.bob,
        &mut p.bob_net,
        &mut p.bt,
        "alice-l",
        20,
        &id,
    );
    let n_lat = lat.len();
    let (med, p90) = median_p90(&mut lat);
    eprintln!(
        "email replica round trip over {n_lat} changes (change on Alice -> applied on Bob, \
         SMTP -> Postfix -> Dovecot -> IMAP, 10 ms polling): median {med:?}, p90 {p90:?}, max \
         {:?}",
        lat[n_lat - 1]
    );

    // 4. Sustained: 100 changes, each sent as made; Bob then reads them all.
    let t = Instant::now();
    let mut in_change = Duration::ZERO;
    for i in 0..100 {
        let t = Instant::now();
        push(&mut p.alice, &mut p.alice_net, "alice-b", i, &id, false);
        in_change += t.elapsed();
        flush(&mut p.alice, &mut p.alice_net).unwrap();
    }
    let send_time = t.elapsed();
    pump_until(&mut p.bob, &mut p.bob_net, &mut p.bt, DEADLINE, |r| {
        count(r) == 152
    })
    .unwrap();
    let total = t.elapsed();
    eprintln!(
        "email sustained: 100 changes made and sent by Alice in {send_time:?} ({:.1} changes/s); \
         all applied on Bob after {total:?} ({:.1} changes/s end to end); of the sending \
         side, {in_change:?} in Replica::change (sign, seal, durable record) and the rest in \
         SMTP and mark_sent",
        100.0 / send_time.as_secs_f64(),
        100.0 / total.as_secs_f64()
    );
    assert_converged(&p.alice, &p.bob, "after the burst");

    // 5. The mailboxes: one attachment per message, no string of the document.
    let secrets = doc_strings(&p.alice.doc().to_json(), 8);
    assert!(secrets.len() > 150);
    let mut messages = 0;
    for user in ["alice", "bob"] {
        for m in raw_mailbox(&live, user, &p.tag_hex) {
            messages += 1;
            assert_eq!(
                leaks(&m, &secrets),
                Vec::<String>::new(),
                "{user}'s mailbox"
            );
            let parsed = mail_parser::MessageParser::default().parse(&m).unwrap();
            assert_eq!(parsed.attachment_count(), 1);
        }
    }
    eprintln!("email mailboxes hold {messages} messages of this group; no document string in them");
    if let Ok(store) = std::env::var("SEALDOC_MAIL_STORE") {
        let mut files = 0;
        let mut stack = vec![std::path::PathBuf::from(&store)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    files += 1;
                    assert_eq!(leaks(&bytes, &secrets), Vec::<String>::new(), "{path:?}");
                }
            }
        }
        eprintln!("scanned {files} files under {store}: no document string");
    }
    eprintln!("email tallies: alice {:?}; bob {:?}", p.at, p.bt);
    p.alice_net.group.close();
    p.bob_net.group.close();
}

#[test]
fn email_changes_made_while_the_mail_servers_are_down_wait_in_the_durable_outbox() {
    let _g = serial();
    let Some(live) = mail_live() else { return };
    if !control_allowed() {
        return;
    }
    let mut rng = rng();
    let id = run_id(&mut rng);
    let mut p = mail_pair(&live, &mut rng, &id);
    for i in 0..3 {
        push(&mut p.alice, &mut p.alice_net, "alice", i, &id, true);
        push(&mut p.bob, &mut p.bob_net, "bob", i, &id, true);
    }
    converge(
        &mut p.alice,
        &mut p.alice_net,
        &mut p.at,
        &mut p.bob,
        &mut p.bob_net,
        &mut p.bt,
        DEADLINE,
        |r| count(r) == 6,
    )
    .unwrap();

    let t_stop = Instant::now();
    script("mail", &["stop"]);
    for i in 3..10 {
        push(&mut p.alice, &mut p.alice_net, "alice", i, &id, false);
    }
    for i in 3..6 {
        push(&mut p.bob, &mut p.bob_net, "bob", i, &id, false);
    }
    for (r, link) in [
        (&mut p.alice, &mut p.alice_net),
        (&mut p.bob, &mut p.bob_net),
    ] {
        let before = r.outbox().len();
        match flush(r, link) {
            Err(DriveError::Link(e)) => assert!(MailLink::is_transient(&e), "{e:?}"),
            other => panic!("sending while the mail servers are down: {other:?}"),
        }
        assert_eq!(r.outbox().len(), before, "nothing was marked sent");
    }
    p.alice = p.alice_dev.restart(p.alice);
    p.bob = p.bob_dev.restart(p.bob);
    assert_eq!(p.alice.outbox().len(), 7);
    assert_eq!(p.bob.outbox().len(), 3);

    let t_start = Instant::now();
    script("mail", &["start"]);
    eprintln!(
        "mail servers restart: {:?} to ready (down for {:?})",
        t_start.elapsed(),
        t_stop.elapsed()
    );
    let fa = flush_retrying(&mut p.alice, &mut p.alice_net);
    let fb = flush_retrying(&mut p.bob, &mut p.bob_net);
    converge(
        &mut p.alice,
        &mut p.alice_net,
        &mut p.at,
        &mut p.bob,
        &mut p.bob_net,
        &mut p.bt,
        DEADLINE,
        |r| count(r) == 16,
    )
    .unwrap();
    eprintln!(
        "after the outage: outboxes sent ({fa} + {fb} transient failures first), replicas \
         converged on 16 items"
    );
    assert!(p.alice.outbox().is_empty() && p.bob.outbox().is_empty());
}
