//! A real editing trace replayed into a `Doc`, for correctness (timing lives in benches/doc.rs).
//!
//! Trace: `automerge-paper` by Martin Kleppmann and Alastair R. Beresford (typing the LaTeX of
//! "A Conflict-Free Replicated JSON Datatype"), CC BY 4.0, from automerge/automerge-perf via
//! josephg/editing-traces; see ../shared/traces/README.md.

// Helpers outside `#[test]` functions are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Instant;

use sealdoc::doc::{ActorId, Applied, Change, Doc, DocError};
use serde::Deserialize;
use serde_json::json;

/// A sequential trace: positions count Unicode code points.
#[derive(Deserialize)]
struct Trace {
    #[serde(rename = "startContent", default)]
    start_content: String,
    #[serde(rename = "endContent")]
    end_content: String,
    txns: Vec<Txn>,
}

#[derive(Deserialize)]
struct Txn {
    /// `[position, delete count, inserted text]`.
    patches: Vec<(usize, usize, String)>,
}

fn load(name: &str) -> Option<Trace> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "shared", "traces", name]
        .iter()
        .collect();
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("SKIPPED: trace {} not available ({e})", path.display());
            return None;
        }
    };
    let trace: Trace = serde_json::from_reader(flate2::read::GzDecoder::new(file))
        .unwrap_or_else(|e| panic!("{} is not a valid trace: {e}", path.display()));
    Some(trace)
}

#[test]
fn automerge_paper_trace_replays_to_its_end_content_locally_and_by_merge() {
    let Some(trace) = load("automerge-paper.json.gz") else {
        return;
    };
    assert!(trace.start_content.is_empty());
    let started = Instant::now();

    // Local replay: one transaction per trace transaction.
    let mut doc = Doc::new(ActorId::from_u64(1));
    let mut changes: Vec<Change> = Vec::with_capacity(trace.txns.len() + 1);
    let first = doc
        .transact(|tx| tx.set("text", json!([])))
        .expect("create the text");
    changes.push(first.change.expect("one op"));
    let mut ops = 1;
    for (n, txn) in trace.txns.iter().enumerate() {
        let committed = doc
            .transact(|tx| {
                for (pos, del, ins) in &txn.patches {
                    tx.splice_text("text", *pos, *del, ins)?;
                }
                Ok::<_, DocError>(())
            })
            .unwrap_or_else(|e| panic!("trace txn {n} {:?}: {e}", txn.patches));
        if let Some(c) = committed.change {
            ops += c.ops.len();
            changes.push(c);
        }
    }
    let local = started.elapsed();
    let text = doc.text("text").expect("text");
    assert_eq!(text.chars().count(), trace.end_content.chars().count());
    assert!(
        text == trace.end_content,
        "final text differs from endContent"
    );
    assert_eq!(doc.op_count(), ops as u64);
    assert_eq!(doc.max_counter(), ops as u64);

    // Remote replay: every change merged into an empty document. The receiver is the author's
    // own actor rebuilt from its change log, because canonical_state currently also encodes an
    // interned actor with no ops (ignored test in tests/doc_api.rs); a different actor would
    // make the bytes differ for that reason alone.
    let merge_started = Instant::now();
    let mut remote = Doc::new(ActorId::from_u64(1));
    for (n, c) in changes.iter().enumerate() {
        match remote.apply_change(c) {
            Ok(Applied::Applied(_)) => {}
            other => panic!("change {n}: {other:?}"),
        }
    }
    let merge = merge_started.elapsed();
    assert!(remote.text("text").expect("text") == trace.end_content);
    assert_eq!(remote.op_count(), doc.op_count());
    assert!(remote.canonical_state() == doc.canonical_state());

    // And into a replica with another actor: same text (its canonical state differs only by
    // the unused actor, see above).
    let mut other = Doc::new(ActorId::from_u64(2));
    for c in &changes {
        let _ = other.apply_change(c).expect("apply");
    }
    assert!(other.text("text").expect("text") == trace.end_content);
    eprintln!(
        "automerge-paper: {} txns, {ops} ops; local {local:.2?}, merge {merge:.2?}, total {:.2?}",
        trace.txns.len(),
        started.elapsed()
    );
}
