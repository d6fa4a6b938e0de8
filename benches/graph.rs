//! Replays a real editing trace as signed nodes and prints throughput, next to the raw cost
//! of `verify_strict` and of the bare document, measured in the same run.
//!
//! Trace: `automerge-paper` by Martin Kleppmann and Alastair R. Beresford (typing the LaTeX of
//! "A Conflict-Free Replicated JSON Datatype"), CC BY 4.0, from automerge/automerge-perf via
//! josephg/editing-traces (../shared/traces/README.md).
//!
//! For each batching (one node per trace transaction, and one node per 100 transactions):
//!
//! * `make`: replica A runs the transactions through `SignedDoc::change` (document edit,
//!   encode, sign, verify its own signature, insert into the graph);
//! * `receive`: replica B receives the encoded nodes (decode, hash, `verify_strict`, graph
//!   validation, translation, document apply);
//! * `verify`: `verify_strict` alone over the same nodes' labelled bodies;
//! * `doc-local` / `doc-merge`: the same batches through a bare `Doc` (transact, then
//!   `apply_change` on a second document): the document's share of the cost.
//!
//! Graph overhead on receive ≈ `receive` − `verify` − `doc-merge`.
//!
//! Run: `cargo bench --bench graph` (first 20,000 transactions). Set `SEALDOC_BENCH_FULL=1`
//! for the whole trace (259,778 transactions), whose final text is checked against
//! `endContent`; a prefix is checked against a plain `Vec<char>` replay. Set
//! `SEALDOC_BENCH_BATCH=n` to run one batching only.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, VerifyingKey};
use sealdoc::doc::{ActorId, Change, Doc};
use sealdoc::graph::wire::NODE_LABEL;
use sealdoc::graph::{Device, GroupId, Received, SignedDoc, SignedNode};
use serde::Deserialize;
use serde_json::json;

/// Transactions replayed by default, to keep `cargo bench` short.
const DEFAULT_TXNS: usize = 20_000;

#[derive(Deserialize)]
struct Trace {
    #[serde(rename = "endContent")]
    end_content: String,
    txns: Vec<Txn>,
}

#[derive(Deserialize)]
struct Txn {
    /// `[position in code points, delete count, inserted text]`.
    patches: Vec<(usize, usize, String)>,
}

type Res<T> = Result<T, Box<dyn Error>>;

fn load() -> Res<Option<Trace>> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "shared",
        "traces",
        "automerge-paper.json.gz",
    ]
    .iter()
    .collect();
    let Ok(file) = std::fs::File::open(&path) else {
        println!("SKIPPED: {} not found", path.display());
        return Ok(None);
    };
    Ok(Some(serde_json::from_reader(
        flate2::read::GzDecoder::new(file),
    )?))
}

/// Characters inserted plus characters deleted: the trace's unit of work.
fn chars(txns: &[Txn]) -> usize {
    txns.iter()
        .flat_map(|t| &t.patches)
        .map(|(_, d, s)| d + s.chars().count())
        .sum()
}

fn expected_text(txns: &[Txn]) -> String {
    let mut v: Vec<char> = Vec::new();
    for (pos, del, ins) in txns.iter().flat_map(|t| &t.patches) {
        v.splice(*pos..*pos + *del, ins.chars());
    }
    v.into_iter().collect()
}

struct Row {
    name: String,
    time: Duration,
    nodes: usize,
    chars: usize,
    bytes: usize,
}

impl Row {
    fn print(&self) {
        let s = self.time.as_secs_f64();
        println!(
            "{:<24} {:>9.3} s {:>11.0} nodes/s {:>11.0} chars/s {:>8.2} µs/node {:>9}",
            self.name,
            s,
            self.nodes as f64 / s,
            self.chars as f64 / s,
            s * 1e6 / self.nodes as f64,
            if self.bytes > 0 {
                format!("{} B/node", self.bytes / self.nodes)
            } else {
                String::new()
            },
        );
    }
}

fn run(txns: &[Txn], batch: usize, expected: &str, rows: &mut Vec<Row>) -> Res<()> {
    let group = GroupId::from_bytes([1; 32]);
    let c = chars(txns);
    let mut a = SignedDoc::new(Device::from_seed(&[1; 32]), group);
    let mut nodes = a.change(|tx| tx.set("text", json!([])))?.nodes;

    // make
    let started = Instant::now();
    for chunk in txns.chunks(batch) {
        let out = a.change(|tx| {
            for (pos, del, ins) in chunk.iter().flat_map(|t| &t.patches) {
                tx.splice_text("text", *pos, *del, ins)?;
            }
            Ok(())
        })?;
        nodes.extend(out.nodes);
    }
    let make = started.elapsed();
    let n = nodes.len() - 1;
    let bytes: usize = nodes[1..].iter().map(Vec::len).sum();
    rows.push(Row {
        name: format!("make (batch {batch})"),
        time: make,
        nodes: n,
        chars: c,
        bytes,
    });

    // receive
    let mut b = SignedDoc::new(Device::from_seed(&[2; 32]), group);
    let started = Instant::now();
    for node in &nodes {
        match b.receive(node)? {
            Received::Applied(_) => {}
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
    let receive = started.elapsed();
    rows.push(Row {
        name: format!("receive (batch {batch})"),
        time: receive,
        nodes: n,
        chars: c,
        bytes: 0,
    });
    let text = b.doc().text("text")?;
    if text != a.doc().text("text")? || text != expected {
        return Err("replayed text differs".into());
    }
    if b.heads() != a.heads() || b.doc().canonical_state() != a.doc().canonical_state() {
        return Err("replicas differ".into());
    }

    // verify_strict alone, over the same labelled bodies.
    let prepared: Vec<(VerifyingKey, Vec<u8>, Signature)> = nodes
        .iter()
        .map(|bytes| {
            let node = SignedNode::decode(bytes).expect("decodes");
            let key = VerifyingKey::from_bytes(node.body().author.as_bytes()).expect("key");
            let mut msg = NODE_LABEL.to_vec();
            msg.extend_from_slice(node.body_bytes());
            (key, msg, Signature::from_bytes(node.signature()))
        })
        .collect();
    let started = Instant::now();
    for (key, msg, sig) in &prepared {
        key.verify_strict(msg, sig)?;
    }
    let verify = started.elapsed();
    rows.push(Row {
        name: format!("verify (batch {batch})"),
        time: verify,
        nodes: n,
        chars: c,
        bytes: 0,
    });

    // decode alone.
    let started = Instant::now();
    for bytes in &nodes {
        std::hint::black_box(SignedNode::decode(bytes)?);
    }
    rows.push(Row {
        name: format!("decode (batch {batch})"),
        time: started.elapsed(),
        nodes: n,
        chars: c,
        bytes: 0,
    });

    // The bare document, same batches.
    let mut d = Doc::new(ActorId::from_u64(1));
    let mut changes: Vec<Change> = Vec::new();
    changes.extend(d.transact(|tx| tx.set("text", json!([])))?.change);
    let started = Instant::now();
    for chunk in txns.chunks(batch) {
        let c = d.transact(|tx| {
            for (pos, del, ins) in chunk.iter().flat_map(|t| &t.patches) {
                tx.splice_text("text", *pos, *del, ins)?;
            }
            Ok::<_, sealdoc::doc::DocError>(())
        })?;
        changes.extend(c.change);
    }
    rows.push(Row {
        name: format!("doc-local (batch {batch})"),
        time: started.elapsed(),
        nodes: n,
        chars: c,
        bytes: 0,
    });
    let mut e = Doc::new(ActorId::from_u64(2));
    let started = Instant::now();
    for ch in &changes {
        let _ = e.apply_change(ch)?;
    }
    rows.push(Row {
        name: format!("doc-merge (batch {batch})"),
        time: started.elapsed(),
        nodes: n,
        chars: c,
        bytes: 0,
    });
    if e.text("text")? != text {
        return Err("bare document differs".into());
    }
    println!(
        "batch {batch}: graph overhead on receive ≈ {:.2} µs/node (receive − verify − doc-merge)",
        (receive.as_secs_f64()
            - verify.as_secs_f64()
            - rows.last().map_or(0.0, |r| r.time.as_secs_f64()))
            * 1e6
            / n as f64
    );
    Ok(())
}

fn main() -> Res<()> {
    let Some(trace) = load()? else { return Ok(()) };
    let full = std::env::var("SEALDOC_BENCH_FULL").is_ok_and(|v| v != "0");
    let n = if full {
        trace.txns.len()
    } else {
        DEFAULT_TXNS.min(trace.txns.len())
    };
    let txns = &trace.txns[..n];
    // The full trace must reach endContent; a prefix is checked against a plain replay.
    let expected = if full {
        trace.end_content.clone()
    } else {
        expected_text(txns)
    };
    println!(
        "automerge-paper: {n} of {} txns, {} chars inserted + deleted{}",
        trace.txns.len(),
        chars(txns),
        if full {
            " (full trace; final text checked against endContent)"
        } else {
            " (SEALDOC_BENCH_FULL=1 for all)"
        }
    );
    let batches: Vec<usize> = match std::env::var("SEALDOC_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(b) => vec![b],
        None => vec![1, 100],
    };
    let mut rows = Vec::new();
    for batch in batches {
        run(txns, batch, &expected, &mut rows)?;
    }
    println!();
    for r in &rows {
        r.print();
    }
    Ok(())
}
