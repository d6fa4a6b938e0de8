//! Shared by `benches/doc.rs` (timing) and `benches/doc_heap.rs` (heap): loading the
//! `automerge-paper` trace and the phases replayed from it.
//!
//! Trace: `automerge-paper` by Martin Kleppmann and Alastair R. Beresford (typing the LaTeX of
//! "A Conflict-Free Replicated JSON Datatype"), CC BY 4.0, from automerge/automerge-perf via
//! josephg/editing-traces (../shared/traces/README.md).
//!
//! Phases:
//!
//! * `baseline`: the trace spliced into a plain `Vec<char>`, for scale;
//! * `local`: one `Doc` transaction per trace transaction (changes are made, then dropped);
//! * `one-txn`: the whole trace in a single transaction;
//! * `merge`: the changes of `local` applied to a fresh document as remote changes.
//!
//! This file lives in a subdirectory so that Cargo does not take it for a bench of its own;
//! each bench includes it with `#[path = "support/trace.rs"] mod trace;`.

#![allow(dead_code)]

use std::error::Error;
use std::path::PathBuf;

use sealdoc::doc::{ActorId, Applied, Change, Doc, DocError};
use serde::Deserialize;
use serde_json::json;

/// The phases, in the order they are run and printed.
pub const PHASES: [&str; 4] = ["baseline", "local", "one-txn", "merge"];

/// A sequential trace: positions count Unicode code points.
#[derive(Deserialize)]
pub struct Trace {
    #[serde(rename = "endContent")]
    pub end_content: String,
    pub txns: Vec<Txn>,
}

/// One trace transaction.
#[derive(Deserialize)]
pub struct Txn {
    /// `[position in code points, delete count, inserted text]`.
    pub patches: Vec<(usize, usize, String)>,
}

pub type Res<T> = Result<T, Box<dyn Error>>;

pub fn trace_path() -> PathBuf {
    [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "shared",
        "traces",
        "automerge-paper.json.gz",
    ]
    .iter()
    .collect()
}

/// The trace, or `None` (after printing why) if it is not available.
pub fn load() -> Res<Option<Trace>> {
    let path = trace_path();
    let Ok(file) = std::fs::File::open(&path) else {
        println!("SKIPPED: {} not found", path.display());
        return Ok(None);
    };
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut json)?;
    let t: Trace = serde_json::from_slice(&json)?;
    let patches: usize = t.txns.iter().map(|x| x.patches.len()).sum();
    println!(
        "automerge-paper: {} txns, {patches} patches, {} char ops ({} chars at the end)",
        t.txns.len(),
        trace_ops(&t),
        t.end_content.chars().count()
    );
    Ok(Some(t))
}

/// Trace-level operation count: characters inserted plus characters deleted.
pub fn trace_ops(t: &Trace) -> usize {
    t.txns
        .iter()
        .flat_map(|x| &x.patches)
        .map(|(_, del, ins)| del + ins.chars().count())
        .sum()
}

// ---- Phases --------------------------------------------------------------------------------

pub fn baseline(t: &Trace) -> Res<Vec<char>> {
    let mut text: Vec<char> = Vec::new();
    for txn in &t.txns {
        for (pos, del, ins) in &txn.patches {
            text.splice(*pos..*pos + *del, ins.chars());
        }
    }
    let s: String = text.iter().collect();
    check(&s, t)?;
    Ok(text)
}

fn new_text_doc() -> Res<(Doc, Change)> {
    let mut doc = Doc::new(ActorId::from_u64(1));
    let first = doc.transact(|tx| tx.set("text", json!([])))?;
    Ok((doc, first.change.ok_or("no change")?))
}

/// One transaction per trace transaction; returns the doc and, if `keep`, the changes.
pub fn local(t: &Trace, keep: bool) -> Res<(Doc, Vec<Change>)> {
    let (mut doc, first) = new_text_doc()?;
    let mut changes = Vec::new();
    if keep {
        changes.reserve(t.txns.len() + 1);
        changes.push(first);
    }
    for txn in &t.txns {
        let c = doc.transact(|tx| {
            for (pos, del, ins) in &txn.patches {
                tx.splice_text("text", *pos, *del, ins)?;
            }
            Ok::<_, DocError>(())
        })?;
        if let (true, Some(c)) = (keep, c.change) {
            changes.push(c);
        }
    }
    check(&doc.text("text")?, t)?;
    Ok((doc, changes))
}

/// The whole trace in one transaction.
pub fn one_txn(t: &Trace) -> Res<Doc> {
    let (mut doc, _) = new_text_doc()?;
    let c = doc.transact(|tx| {
        for txn in &t.txns {
            for (pos, del, ins) in &txn.patches {
                tx.splice_text("text", *pos, *del, ins)?;
            }
        }
        Ok::<_, DocError>(())
    })?;
    drop(c);
    check(&doc.text("text")?, t)?;
    Ok(doc)
}

/// `changes` applied to a fresh document with `apply_change`.
pub fn merge(t: &Trace, changes: &[Change]) -> Res<Doc> {
    let mut doc = Doc::new(ActorId::from_u64(2));
    for c in changes {
        match doc.apply_change(c)? {
            Applied::Applied(_) => {}
            Applied::Duplicate => return Err("unexpected duplicate".into()),
        }
    }
    check(&doc.text("text")?, t)?;
    Ok(doc)
}

fn check(text: &str, t: &Trace) -> Res<()> {
    if text == t.end_content {
        Ok(())
    } else {
        Err("replayed text differs from endContent".into())
    }
}

/// Runs `phase` once; the result is returned so the caller decides when it is dropped.
pub fn run(phase: &str, t: &Trace, changes: &[Change]) -> Res<Box<dyn std::any::Any>> {
    Ok(match phase {
        "baseline" => Box::new(baseline(t)?),
        "local" => Box::new(local(t, false)?.0),
        "one-txn" => Box::new(one_txn(t)?),
        "merge" => Box::new(merge(t, changes)?),
        other => return Err(format!("unknown phase {other}").into()),
    })
}
