//! Two replicas share an encrypted to-do list through a real Matrix homeserver.
//!
//! ```text
//! bash scripts/synapse.sh start && eval "$(bash scripts/synapse.sh env)"
//! cargo run --example matrix --features matrix
//! ```
//!
//! Settings come from flags or from the variables `scripts/synapse.sh env` exports:
//!
//! ```text
//! --homeserver URL   or SEALDOC_SYNAPSE_URL     e.g. http://127.0.0.1:18008
//! --secret SECRET    or SEALDOC_SYNAPSE_SECRET  Synapse's registration shared secret
//! --db PATH          or SEALDOC_SYNAPSE_DB      optional: also scan the server's database
//! --dir PATH         where the two replicas keep their stores (default: a temporary dir)
//! --items N          items each person adds concurrently (default 8)
//! ```
//!
//! Alice and Bob (two Matrix users registered with the shared secret, each with a replica in
//! its own `FileStore`) meet in a room. Alice creates the group and adds Bob from his contact
//! card; the welcome travels in the room like everything else (a direct envelope sealed to
//! Bob's device: anyone else in the room can only fail to open it). Both then edit the list
//! at the same time, each offline from the other, and sync through the room. Messages leave
//! a replica's durable outbox only after the homeserver confirmed them.
//!
//! At the end the program reads back everything the homeserver stored in the room and
//! prints it by event type and size. It exits with status 1 if the two documents differ or
//! if any string of the document appears in what the server holds (events, and the
//! database file when given); 2 for a usage error.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sealdoc::group::GroupPolicy;
use sealdoc::replica::Replica;
use sealdoc::store::FileStore;
use sealdoc::transport::matrix::{MatrixClient, MatrixConfig};
use serde_json::{json, Value};

mod common;
use common::{doc_strings, leaks, to_do_story, AppKey, MatrixLink};

struct Settings {
    homeserver: String,
    secret: String,
    db: Option<String>,
    dir: Option<PathBuf>,
    items: usize,
}

const USAGE: &str = "usage: cargo run --example matrix --features matrix -- \
[--homeserver URL] [--secret SECRET] [--db PATH] [--dir PATH] [--items N]\n  \
--homeserver defaults to $SEALDOC_SYNAPSE_URL, --secret to $SEALDOC_SYNAPSE_SECRET, \
--db to $SEALDOC_SYNAPSE_DB\n  (bash scripts/synapse.sh start; eval \"$(bash scripts/synapse.sh env)\")";

fn settings() -> Result<Settings, String> {
    let mut homeserver = std::env::var("SEALDOC_SYNAPSE_URL").ok();
    let mut secret = std::env::var("SEALDOC_SYNAPSE_SECRET").ok();
    let mut db = std::env::var("SEALDOC_SYNAPSE_DB").ok();
    let mut dir = None;
    let mut n = 8;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--homeserver" => homeserver = Some(value()?),
            "--secret" => secret = Some(value()?),
            "--db" => db = Some(value()?),
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--items" => {
                n = value()?.parse().map_err(|e| format!("--items: {e}"))?;
            }
            "-h" | "--help" => return Err(String::new()), // not an error: usage, status 0
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let homeserver = homeserver
        .filter(|s| !s.is_empty())
        .ok_or("no homeserver: pass --homeserver or set SEALDOC_SYNAPSE_URL")?;
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or("no registration secret: pass --secret or set SEALDOC_SYNAPSE_SECRET")?;
    Ok(Settings {
        homeserver,
        secret,
        db: db.filter(|s| !s.is_empty()),
        dir,
        items: n,
    })
}

fn main() -> ExitCode {
    let s = match settings() {
        Ok(s) => s,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&s) {
        Ok(problems) if problems.is_empty() => {
            println!("OK: both replicas converged; the server holds no plaintext");
            ExitCode::SUCCESS
        }
        Ok(problems) => {
            for p in problems {
                eprintln!("FAILED: {p}");
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(s: &Settings) -> Result<Vec<String>, Box<dyn Error>> {
    let t0 = Instant::now();
    let tmp;
    let dir = match &s.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let run_id = format!("{:08x}", rand::random::<u32>());

    // Two Matrix users and a room (the server side).
    let config = MatrixConfig::new(s.homeserver.clone());
    let (alice_user, bob_user) = (format!("alice{run_id}"), format!("bob{run_id}"));
    let password = |u: &str| format!("pw-{u}-{run_id}");
    let alice_c = MatrixClient::register_with_shared_secret(
        config.clone(),
        &s.secret,
        &alice_user,
        &password(&alice_user),
    )?;
    let bob_c = MatrixClient::register_with_shared_secret(
        config.clone(),
        &s.secret,
        &bob_user,
        &password(&bob_user),
    )?;
    let room_id = alice_c.create_room(&[bob_c.user_id()])?;
    bob_c.join(&room_id)?;
    println!(
        "room {room_id} on {}: {} and {}",
        s.homeserver,
        alice_c.user_id(),
        bob_c.user_id()
    );
    let mut alice_net = MatrixLink(alice_c.into_room(room_id.clone()));
    let mut bob_net = MatrixLink(bob_c.into_room(room_id.clone()));

    // Two replicas, each in its own crash-safe store under its own storage key.
    let (alice_key, bob_key) = (AppKey::generate(), AppKey::generate());
    let mut alice = Replica::create(
        FileStore::open(dir.join("alice"))?,
        alice_key.storage_key(),
        GroupPolicy::default(),
    )?;
    let mut bob = Replica::new_joiner(FileStore::open(dir.join("bob"))?, bob_key.storage_key())?;
    let (a_doc, mut problems) = to_do_story(
        &mut alice,
        &mut alice_net,
        &mut bob,
        &mut bob_net,
        s.items,
        &run_id,
        WAIT,
        "sent to the room",
    )?;

    println!("converged in {:?}", t0.elapsed());

    // What the server holds.
    let events = room_events(&s.homeserver, &alice_user, &password(&alice_user), &room_id)?;
    let mut by_type: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut sizes = Vec::new();
    for e in &events {
        let ty = e["type"].as_str().unwrap_or("?").to_owned();
        let len = serde_json::to_vec(e)?.len();
        let slot = by_type.entry(ty.clone()).or_default();
        slot.0 += 1;
        slot.1 += len;
        if ty == sealdoc::transport::matrix::EVENT_TYPE {
            sizes.push(len);
            let keys: Vec<&String> = e["content"]
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            if keys != ["armour"] {
                problems.push(format!("an envelope event has content keys {keys:?}"));
            }
        }
    }
    sizes.sort_unstable();
    println!("the room holds {} events:", events.len());
    for (ty, (count, bytes)) in &by_type {
        println!("  {count:4} x {ty:32} {bytes:8} bytes");
    }
    if let (Some(min), Some(max)) = (sizes.first(), sizes.last()) {
        println!(
            "  envelope events: {} of {min}..{max} bytes (median {})",
            sizes.len(),
            sizes[sizes.len() / 2]
        );
    }
    let secrets = doc_strings(&a_doc, 8);
    let served = serde_json::to_vec(&events)?;
    for leak in leaks(&served, &secrets) {
        problems.push(format!("the room's events contain {leak:?}"));
    }
    println!(
        "checked {} document strings against {} bytes of events",
        secrets.len(),
        served.len()
    );
    if let Some(db) = &s.db {
        for path in [db.clone(), format!("{db}-wal")] {
            if let Ok(bytes) = std::fs::read(&path) {
                for leak in leaks(&bytes, &secrets) {
                    problems.push(format!("{path} contains {leak:?}"));
                }
                println!("scanned {path} ({} bytes)", bytes.len());
            }
        }
    }
    Ok(problems)
}

const WAIT: Duration = Duration::from_secs(60);

/// Logs in as `user` and pages back through the whole room with `/messages`: every event the
/// server serves, oldest first, as raw JSON.
fn room_events(
    homeserver: &str,
    user: &str,
    password: &str,
    room_id: &str,
) -> Result<Vec<Value>, Box<dyn Error>> {
    let agent = ureq::Agent::new_with_defaults();
    let login: Value = serde_json::from_str(
        &agent
            .post(format!("{homeserver}/_matrix/client/v3/login"))
            .send(
                json!({
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": user},
                    "password": password,
                })
                .to_string(),
            )?
            .body_mut()
            .read_to_string()?,
    )?;
    let token = login["access_token"]
        .as_str()
        .ok_or("login answered without an access token")?
        .to_owned();
    let room = room_id.replace('!', "%21").replace(':', "%3A");
    let mut events = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let mut req = agent
            .get(format!(
                "{homeserver}/_matrix/client/v3/rooms/{room}/messages"
            ))
            .header("Authorization", format!("Bearer {token}"))
            .query("dir", "b")
            .query("limit", "500");
        if let Some(f) = &from {
            req = req.query("from", f);
        }
        let text = req
            .call()?
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()?;
        let page: Value = serde_json::from_str(&text)?;
        let chunk = page["chunk"].as_array().cloned().unwrap_or_default();
        events.extend(chunk.iter().cloned());
        match page["end"].as_str() {
            Some(end) if !chunk.is_empty() => from = Some(end.to_owned()),
            _ => break,
        }
    }
    events.reverse();
    Ok(events)
}
