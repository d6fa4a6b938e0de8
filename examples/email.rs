//! Two replicas share an encrypted to-do list by email (SMTP out, IMAP in).
//!
//! ```text
//! sudo bash scripts/mail.sh start && eval "$(bash scripts/mail.sh env)"
//! cargo run --example email --features email
//! ```
//!
//! Settings come from flags or from the variables `scripts/mail.sh env` exports:
//!
//! ```text
//! --smtp HOST:PORT   or SEALDOC_SMTP_ADDR      e.g. 127.0.0.1:12525 (plain SMTP)
//! --imap HOST:PORT   or SEALDOC_IMAP_ADDR      e.g. 127.0.0.1:11143 (plain IMAP)
//! --domain DOMAIN    or SEALDOC_MAIL_DOMAIN    the mail domain of both users
//! --password PW      or SEALDOC_MAIL_PASSWORD  the users' IMAP password
//! --store PATH       or SEALDOC_MAIL_STORE     optional: also scan the mail store's files
//! --alice NAME / --bob NAME                    local parts (default alice, bob)
//! --dir PATH         where the two replicas keep their stores (default: a temporary dir)
//! --items N          items each person adds concurrently (default 8)
//! ```
//!
//! Alice creates the group and adds Bob from his contact card; the welcome goes by mail like
//! everything else, tagged with a group tag Alice gave Bob along with the invitation. Both
//! edit the list at the same time and exchange their changes as mail, one envelope per
//! message (an `application/octet-stream` attachment). Messages leave a replica's durable
//! outbox only after the SMTP server accepted them.
//!
//! At the end the program reads both mailboxes back raw over IMAP and prints what they hold.
//! It exits with status 1 if the two documents differ or if any string of the document
//! appears in a stored message (or in the mail store's files, when given); 2 for a usage
//! error.

use std::collections::HashMap;
use std::error::Error;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sealdoc::crypto::GroupTag;
use sealdoc::group::GroupPolicy;
use sealdoc::replica::Replica;
use sealdoc::store::FileStore;
use sealdoc::transport::email::{
    EmailConfig, EmailError, EmailTransport, ImapSecurity, SmtpSecurity, GROUP_HEADER,
};

mod common;
use common::{doc_strings, leaks, to_do_story, AppKey, MailLink};

struct Settings {
    smtp: (String, u16),
    imap: (String, u16),
    domain: String,
    password: String,
    store: Option<String>,
    alice: String,
    bob: String,
    dir: Option<PathBuf>,
    items: usize,
}

const USAGE: &str = "usage: cargo run --example email --features email -- \
[--smtp HOST:PORT] [--imap HOST:PORT] [--domain D] [--password PW] [--store PATH] \
[--alice NAME] [--bob NAME] [--dir PATH] [--items N]\n  \
defaults from $SEALDOC_SMTP_ADDR, $SEALDOC_IMAP_ADDR, $SEALDOC_MAIL_DOMAIN, \
$SEALDOC_MAIL_PASSWORD, $SEALDOC_MAIL_STORE\n  (sudo bash scripts/mail.sh start; eval \"$(bash scripts/mail.sh env)\")";

fn host_port(what: &str, v: &str) -> Result<(String, u16), String> {
    let (h, p) = v
        .rsplit_once(':')
        .ok_or(format!("{what}: expected HOST:PORT, got {v:?}"))?;
    Ok((h.to_owned(), p.parse().map_err(|e| format!("{what}: {e}"))?))
}

fn settings() -> Result<Settings, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (mut smtp, mut imap) = (env("SEALDOC_SMTP_ADDR"), env("SEALDOC_IMAP_ADDR"));
    let (mut domain, mut password) = (env("SEALDOC_MAIL_DOMAIN"), env("SEALDOC_MAIL_PASSWORD"));
    let mut store = env("SEALDOC_MAIL_STORE");
    let (mut alice, mut bob) = ("alice".to_owned(), "bob".to_owned());
    let mut dir = None;
    let mut n = 8;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--smtp" => smtp = Some(value()?),
            "--imap" => imap = Some(value()?),
            "--domain" => domain = Some(value()?),
            "--password" => password = Some(value()?),
            "--store" => store = Some(value()?),
            "--alice" => alice = value()?,
            "--bob" => bob = value()?,
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--items" => n = value()?.parse().map_err(|e| format!("--items: {e}"))?,
            "-h" | "--help" => return Err(String::new()), // not an error: usage, status 0
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let smtp = smtp.ok_or("no SMTP server: pass --smtp or set SEALDOC_SMTP_ADDR")?;
    let imap = imap.ok_or("no IMAP server: pass --imap or set SEALDOC_IMAP_ADDR")?;
    Ok(Settings {
        smtp: host_port("--smtp", &smtp)?,
        imap: host_port("--imap", &imap)?,
        domain: domain.ok_or("no mail domain: pass --domain or set SEALDOC_MAIL_DOMAIN")?,
        password: password
            .ok_or("no IMAP password: pass --password or set SEALDOC_MAIL_PASSWORD")?,
        store,
        alice,
        bob,
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
            println!("OK: both replicas converged; the mailboxes hold no plaintext");
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

fn transport(
    s: &Settings,
    me: &str,
    to: &str,
    tag: GroupTag,
) -> Result<EmailTransport, EmailError> {
    let config = EmailConfig::new(
        format!("{me}@{}", s.domain),
        vec![format!("{to}@{}", s.domain)],
        tag,
    )
    .smtp(s.smtp.0.clone(), s.smtp.1, SmtpSecurity::Plain)
    .imap(
        s.imap.0.clone(),
        s.imap.1,
        ImapSecurity::Plain,
        format!("{me}@{}", s.domain),
        s.password.clone(),
    );
    EmailTransport::new(config)
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
    // The group's mail tag: random, given to Bob with the invitation (like a room id).
    let tag = GroupTag::from_bytes(rand::random::<[u8; 16]>());
    let tag_hex: String = tag.as_bytes().iter().map(|b| format!("{b:02x}")).collect();

    let (alice_key, bob_key) = (AppKey::generate(), AppKey::generate());
    let mut alice = Replica::create(
        FileStore::open(dir.join("alice"))?,
        alice_key.storage_key(),
        GroupPolicy::default(),
    )?;
    let mut bob = Replica::new_joiner(FileStore::open(dir.join("bob"))?, bob_key.storage_key())?;
    let mut alice_net = MailLink {
        group: transport(s, &s.alice, &s.bob, tag)?,
        direct: HashMap::from([(bob.device_id(), transport(s, &s.alice, &s.bob, tag)?)]),
    };
    let mut bob_net = MailLink {
        group: transport(s, &s.bob, &s.alice, tag)?,
        direct: HashMap::from([(alice.device_id(), transport(s, &s.bob, &s.alice, tag)?)]),
    };
    println!(
        "group tag {tag_hex}: {}@{d} and {}@{d} via SMTP {}:{} / IMAP {}:{}",
        s.alice,
        s.bob,
        s.smtp.0,
        s.smtp.1,
        s.imap.0,
        s.imap.1,
        d = s.domain
    );
    let (a_doc, mut problems) = to_do_story(
        &mut alice,
        &mut alice_net,
        &mut bob,
        &mut bob_net,
        s.items,
        &run_id,
        WAIT,
        "accepted by SMTP",
    )?;

    println!("converged in {:?}", t0.elapsed());

    // What the mail servers hold.
    let secrets = doc_strings(&a_doc, 8);
    for user in [&s.alice, &s.bob] {
        let raw = mailbox(s, user, &tag_hex)?;
        let mut sizes: Vec<usize> = raw.iter().map(Vec::len).collect();
        sizes.sort_unstable();
        let attachments = raw
            .iter()
            .filter_map(|m| mail_parser::MessageParser::default().parse(m))
            .map(|m| m.attachment_count())
            .sum::<usize>();
        println!(
            "{user}@{}: {} messages of group {tag_hex} ({} bytes, {}..{} each), {attachments} \
             attachments",
            s.domain,
            raw.len(),
            sizes.iter().sum::<usize>(),
            sizes.first().unwrap_or(&0),
            sizes.last().unwrap_or(&0),
        );
        for m in &raw {
            for leak in leaks(m, &secrets) {
                problems.push(format!("a message in {user}'s mailbox contains {leak:?}"));
            }
        }
    }
    if let Some(store) = &s.store {
        let mut files = 0;
        let mut stack = vec![PathBuf::from(store)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    files += 1;
                    for leak in leaks(&bytes, &secrets) {
                        problems.push(format!("{} contains {leak:?}", path.display()));
                    }
                }
            }
        }
        println!("scanned {files} files under {store}");
    }
    println!(
        "checked {} document strings against the stored mail",
        secrets.len()
    );
    Ok(problems)
}

const WAIT: Duration = Duration::from_secs(60);

/// Every message of group `tag` in `user`'s INBOX, raw, read over IMAP without the transport.
fn mailbox(s: &Settings, user: &str, tag: &str) -> Result<Vec<Vec<u8>>, Box<dyn Error>> {
    let tcp = TcpStream::connect((s.imap.0.as_str(), s.imap.1))?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut client = imap::Client::new(tcp);
    client.read_greeting()?;
    let mut session = client
        .login(format!("{user}@{}", s.domain), &s.password)
        .map_err(|(e, _)| e)?;
    session.examine("INBOX")?;
    let uids = session.uid_search(format!("HEADER \"{GROUP_HEADER}\" \"{tag}\""))?;
    let mut out = Vec::new();
    if !uids.is_empty() {
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        let fetches = session.uid_fetch(set.join(","), "BODY.PEEK[]")?;
        out = fetches
            .iter()
            .filter_map(|f| f.body().map(<[u8]>::to_vec))
            .collect();
    }
    session.logout()?;
    Ok(out)
}
