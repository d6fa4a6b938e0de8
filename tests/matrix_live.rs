//! Live tests of the Matrix transport against a real Synapse on loopback.
//!
//! They run when `SEALDOC_SYNAPSE_URL` and `SEALDOC_SYNAPSE_SECRET` are set (`bash
//! scripts/live-tests.sh` starts Synapse and sets them); otherwise they print "skipped" and
//! pass, unless `SEALDOC_REQUIRE_LIVE=1` (CI), which makes a missing server a failure. The
//! outage test also stops and restarts the server with `scripts/synapse.sh`, so it runs only
//! with `SEALDOC_LIVE_CONTROL=1`. Tests in this file share the server, so they run one at a
//! time. Figures are printed: run with `--nocapture` to see them.
//!
//! The envelopes are random bytes (some with a known marker string inside); the replica layer
//! that turns document edits into envelopes is tested elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sealdoc::transport::matrix::{MatrixClient, MatrixConfig, MatrixError, MatrixRoom};
use sealdoc::transport::Outbox;
use serde_json::Value;

/// Put inside some envelopes; must never appear in what the server stores or serves.
const MARKER: &[u8] = b"SEALDOC-PLAINTEXT-MARKER-7f3a";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

struct Live {
    url: String,
    secret: String,
}

fn require_live() -> bool {
    std::env::var("SEALDOC_REQUIRE_LIVE").as_deref() == Ok("1")
}

fn live() -> Option<Live> {
    match (
        std::env::var("SEALDOC_SYNAPSE_URL"),
        std::env::var("SEALDOC_SYNAPSE_SECRET"),
    ) {
        (Ok(url), Ok(secret)) if !url.is_empty() && !secret.is_empty() => {
            Some(Live { url, secret })
        }
        _ => {
            assert!(
                !require_live(),
                "SEALDOC_REQUIRE_LIVE=1 but SEALDOC_SYNAPSE_URL / SEALDOC_SYNAPSE_SECRET are not \
                 set: Synapse was not started (bash scripts/synapse.sh start; eval \"$(bash \
                 scripts/synapse.sh env)\")"
            );
            println!("skipped: SEALDOC_SYNAPSE_URL / SEALDOC_SYNAPSE_SECRET not set");
            None
        }
    }
}

fn control_allowed() -> bool {
    if std::env::var("SEALDOC_LIVE_CONTROL").as_deref() == Ok("1") {
        return true;
    }
    assert!(
        !require_live(),
        "SEALDOC_REQUIRE_LIVE=1 but SEALDOC_LIVE_CONTROL is not 1: the outage test needs to \
         stop and start the server with scripts/synapse.sh"
    );
    println!("skipped: SEALDOC_LIVE_CONTROL not set (the test stops and restarts the server)");
    false
}

fn script(args: &[&str]) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/synapse.sh");
    let status = Command::new("bash").arg(path).args(args).status().unwrap();
    assert!(status.success(), "scripts/synapse.sh {args:?} failed");
}

fn rng() -> ChaCha8Rng {
    let seed = std::env::var("SEALDOC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen::<u64>());
    println!("seed {seed} (SEALDOC_TEST_SEED={seed} repeats this run)");
    ChaCha8Rng::seed_from_u64(seed)
}

/// A unique lower-case suffix for user names, so runs never collide in a kept database.
fn run_id(rng: &mut ChaCha8Rng) -> String {
    format!("{:010x}", rng.gen::<u64>() & 0xff_ffff_ffff)
}

fn register(live: &Live, config: MatrixConfig, name: &str) -> MatrixClient {
    MatrixClient::register_with_shared_secret(config, &live.secret, name, &format!("pw-{name}"))
        .unwrap()
}

/// Random envelopes: mostly small, some up to the default envelope size, and every 25th
/// larger than one event (60-150 KB) so that it goes as chunks. Every 7th holds `MARKER`.
fn envelopes(rng: &mut ChaCha8Rng, n: usize, start: usize) -> Vec<Vec<u8>> {
    (start..start + n)
        .map(|i| {
            let len = if i % 25 == 24 {
                rng.gen_range(60_000..150_000)
            } else if i % 5 == 0 {
                rng.gen_range(4_096..32_768)
            } else {
                rng.gen_range(64..4_096)
            };
            let mut e = vec![0u8; len];
            rng.fill_bytes(&mut e);
            if i % 7 == 0 {
                let at = rng.gen_range(0..len - MARKER.len());
                e[at..at + MARKER.len()].copy_from_slice(MARKER);
            }
            e
        })
        .collect()
}

/// First occurrences, in order of arrival.
fn dedup(got: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut seen = HashSet::new();
    got.iter()
        .filter(|e| seen.insert((*e).clone()))
        .cloned()
        .collect()
}

/// Receives until `want` distinct envelopes have arrived, or panics after `deadline`.
fn receive_until(room: &mut MatrixRoom, got: &mut Vec<Vec<u8>>, want: usize, deadline: Duration) {
    let start = Instant::now();
    while dedup(got).len() < want {
        assert!(
            start.elapsed() < deadline,
            "only {} of {want} envelopes after {deadline:?}; stats {:?}",
            dedup(got).len(),
            room.stats()
        );
        got.extend(room.receive(Duration::from_millis(500)).unwrap());
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Sends `envs` from `from`, one every `pace`, while `to` long-polls in another thread;
/// returns the one-way latencies (send call start to receipt).
fn paced_latency(
    from: &mut MatrixRoom,
    to: &mut MatrixRoom,
    envs: &[Vec<u8>],
    pace: Duration,
) -> (Vec<Duration>, Vec<Vec<u8>>) {
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            let mut got: Vec<(Instant, Vec<u8>)> = Vec::new();
            let want: HashSet<&Vec<u8>> = envs.iter().collect();
            let start = Instant::now();
            while got.iter().map(|(_, e)| e).collect::<HashSet<_>>().len() < want.len() {
                assert!(
                    start.elapsed() < Duration::from_secs(120),
                    "paced receive stuck"
                );
                for e in to.receive(Duration::from_secs(5)).unwrap() {
                    got.push((Instant::now(), e));
                }
            }
            got
        });
        let mut sent_at = Vec::new();
        for e in envs {
            sent_at.push(Instant::now());
            from.send(e).unwrap();
            std::thread::sleep(pace);
        }
        let got = receiver.join().unwrap();
        let mut lat: Vec<Duration> = envs
            .iter()
            .zip(&sent_at)
            .map(|(e, t0)| {
                let (t1, _) = got.iter().find(|(_, g)| g == e).unwrap();
                t1.duration_since(*t0)
            })
            .collect();
        lat.sort();
        (lat, got.into_iter().map(|(_, e)| e).collect())
    })
}

/// Logs in over plain HTTP and returns every event of the room, oldest first, as raw JSON.
fn raw_room_events(live: &Live, user: &str, room_id: &str) -> Vec<Value> {
    let agent = ureq::Agent::new_with_defaults();
    let login: Value = serde_json::from_str(
        &agent
            .post(format!("{}/_matrix/client/v3/login", live.url))
            .send(
                serde_json::json!({
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

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn two_clients_exchange_200_envelopes_through_a_limited_sync_and_a_late_joiner_gets_history() {
    let _g = serial();
    let Some(live) = live() else { return };
    let mut rng = rng();
    let id = run_id(&mut rng);
    let t_setup = Instant::now();
    let config = MatrixConfig::new(live.url.clone());
    let alice_c = register(&live, config.clone(), &format!("alice{id}"));
    // Bob's syncs return at most 20 events, so the burst below must come back `limited`.
    let mut bob_config = config.clone();
    bob_config.sync_timeline_limit = 20;
    let bob_c = register(&live, bob_config, &format!("bob{id}"));
    let carol_c = register(&live, config.clone(), &format!("carol{id}"));
    let room_id = alice_c.create_room(&[bob_c.user_id()]).unwrap();
    assert_eq!(bob_c.join(&room_id).unwrap(), room_id);
    let mut alice = alice_c.into_room(room_id.clone());
    let mut bob = bob_c.into_room(room_id.clone());
    assert!(alice.receive(Duration::ZERO).unwrap().is_empty());
    assert!(bob.receive(Duration::ZERO).unwrap().is_empty());
    println!(
        "setup (3 users, room, join, first syncs): {:?}",
        t_setup.elapsed()
    );

    let a1 = envelopes(&mut rng, 40, 0);
    let b1 = envelopes(&mut rng, 40, 40);
    let a2 = envelopes(&mut rng, 120, 80);

    // 1. Alice -> Bob, paced, Bob long-polling: one-way latency.
    let (lat_ab, got_b1) = paced_latency(&mut alice, &mut bob, &a1, Duration::from_millis(30));
    // 2. Bob -> Alice, the same way.
    let (lat_ba, got_a1) = paced_latency(&mut bob, &mut alice, &b1, Duration::from_millis(30));
    let mut lat: Vec<Duration> = lat_ab.iter().chain(&lat_ba).copied().collect();
    lat.sort();
    println!(
        "matrix one-way latency over {} envelopes (send -> receive, long-poll): median {:?}, p90 \
         {:?}, max {:?}",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        lat[lat.len() - 1]
    );
    assert_eq!(dedup(&got_b1), a1, "Bob got Alice's envelopes in order");
    assert_eq!(dedup(&got_a1), b1, "Alice got Bob's envelopes in order");

    // 3. A burst of 120 while Bob is not syncing: his next sync is limited and the gap is
    //    filled from /messages.
    let before = bob.stats().clone();
    let t_burst = Instant::now();
    let mut events = 0;
    for e in &a2 {
        events += alice.send(e).unwrap();
    }
    let send_time = t_burst.elapsed();
    let mut got_b2 = Vec::new();
    receive_until(&mut bob, &mut got_b2, a2.len(), Duration::from_secs(120));
    let total_time = t_burst.elapsed();
    let stats = bob.stats().clone();
    let bytes: usize = a2.iter().map(Vec::len).sum();
    println!(
        "matrix burst: {} envelopes ({} events, {} KiB) sent in {:?} ({:.1} envelopes/s); all \
         received by {:?} ({:.1} envelopes/s end to end); limited syncs {}, gap pages {}, \
         backfilled events {}",
        a2.len(),
        events,
        bytes / 1024,
        send_time,
        a2.len() as f64 / send_time.as_secs_f64(),
        total_time,
        a2.len() as f64 / total_time.as_secs_f64(),
        stats.limited_syncs - before.limited_syncs,
        stats.gap_pages - before.gap_pages,
        stats.backfilled_events - before.backfilled_events,
    );
    assert!(events > a2.len(), "some envelopes went as chunks");
    assert!(
        stats.limited_syncs > before.limited_syncs,
        "the burst made a sync limited"
    );
    assert!(
        stats.backfilled_events > before.backfilled_events,
        "paging back recovered events"
    );
    assert_eq!(dedup(&got_b2), a2, "every burst envelope arrived, in order");
    assert_eq!(stats.rejected_events, 0);

    // 4. Carol joins late and catches up from the room's history.
    alice.client().invite(&room_id, carol_c.user_id()).unwrap();
    carol_c.join(&room_id).unwrap();
    let mut carol = carol_c.into_room(room_id.clone());
    let t_carol = Instant::now();
    let mut got_c = Vec::new();
    receive_until(&mut carol, &mut got_c, 200, Duration::from_secs(120));
    let all: Vec<Vec<u8>> = a1.iter().chain(&b1).chain(&a2).cloned().collect();
    assert_eq!(
        dedup(&got_c),
        all,
        "Carol got the whole history in the room's order"
    );
    println!(
        "late joiner caught up on 200 envelopes in {:?} ({} gap pages)",
        t_carol.elapsed(),
        carol.stats().gap_pages
    );

    // 5. What the server stores and serves: only armour.
    let raw = raw_room_events(&live, &format!("alice{id}"), &room_id);
    let ours: Vec<&Value> = raw
        .iter()
        .filter(|e| e["type"] == "org.sealdoc.v1.envelope")
        .collect();
    assert_eq!(
        ours.len() as u64,
        alice.stats().events_sent + bob.stats().events_sent,
        "the room holds exactly the events sent"
    );
    for e in &ours {
        let content = e["content"].as_object().unwrap();
        assert_eq!(content.len(), 1, "content is just the armour: {content:?}");
        let armour = content["armour"].as_str().unwrap();
        assert!(armour.starts_with("sd1:") || armour.starts_with("sd1c:"));
    }
    let json = serde_json::to_vec(&raw).unwrap();
    assert!(
        !contains(&json, MARKER),
        "a marker from inside an envelope leaked"
    );
    assert!(all.iter().filter(|e| contains(e, MARKER)).count() > 10);
    if let Ok(db) = std::env::var("SEALDOC_SYNAPSE_DB") {
        for path in [db.clone(), format!("{db}-wal")] {
            if let Ok(bytes) = std::fs::read(&path) {
                assert!(!contains(&bytes, MARKER), "marker found in {path}");
            }
        }
        println!("scanned {db} (+ -wal): no marker");
    }
}

#[test]
fn sends_fail_typed_while_synapse_is_down_and_nothing_is_lost_after_restart() {
    let _g = serial();
    let Some(live) = live() else { return };
    if !control_allowed() {
        return;
    }
    let mut rng = rng();
    let id = run_id(&mut rng);
    let config = MatrixConfig::new(live.url.clone());
    let alice_c = register(&live, config.clone(), &format!("alice{id}"));
    let bob_c = register(&live, config.clone(), &format!("bob{id}"));
    let room_id = alice_c.create_room(&[bob_c.user_id()]).unwrap();
    bob_c.join(&room_id).unwrap();
    let mut alice = alice_c.into_room(room_id.clone());
    let mut bob = bob_c.into_room(room_id.clone());
    bob.receive(Duration::ZERO).unwrap();

    let envs = envelopes(&mut rng, 20, 0);
    let mut outbox = Outbox::default();
    for e in &envs[..10] {
        outbox.push(e.clone()).unwrap();
    }
    assert_eq!(outbox.flush(|e| alice.send(e).map(|_| ())).unwrap(), 10);

    let t_stop = Instant::now();
    script(&["stop"]);
    for e in &envs[10..] {
        outbox.push(e.clone()).unwrap();
    }
    let (sent, err) = outbox.flush(|e| alice.send(e).map(|_| ())).unwrap_err();
    assert_eq!(sent, 0);
    assert!(err.is_transient(), "{err:?}");
    assert!(
        matches!(
            err,
            MatrixError::Unreachable { .. } | MatrixError::Timeout { .. }
        ),
        "{err:?}"
    );
    let rerr = bob.receive(Duration::ZERO).unwrap_err();
    assert!(rerr.is_transient(), "{rerr:?}");
    assert_eq!(outbox.len(), 10);
    println!("while down: send -> {err}; receive -> {rerr}");

    let t_start = Instant::now();
    script(&["start"]);
    println!(
        "synapse restart: {:?} to ready (down for {:?})",
        t_start.elapsed(),
        t_stop.elapsed()
    );
    let mut failures = 0;
    while !outbox.is_empty() {
        if let Err((_, e)) = outbox.flush(|e| alice.send(e).map(|_| ())) {
            assert!(e.is_transient(), "{e:?}");
            failures += 1;
            assert!(failures < 50, "sends keep failing after restart: {e}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let mut got = Vec::new();
    let start = Instant::now();
    while dedup(&got).len() < envs.len() {
        assert!(start.elapsed() < Duration::from_secs(60), "lost envelopes");
        match bob.receive(Duration::from_millis(500)) {
            Ok(v) => got.extend(v),
            Err(e) if e.is_transient() => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(dedup(&got), envs, "all 20 arrived, in order");
    println!(
        "after restart: outbox flushed ({failures} transient failures first), all 20 received"
    );
}
