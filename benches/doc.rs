//! Replays a real editing trace into `Doc` and prints time, op count and peak heap per phase.
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
//! Time is the best of a few runs (fewer when one run is slow, see [`TIME_BUDGET`]). Heap is
//! measured in one more, untimed run per phase with a counting global allocator (`peak_alloc`:
//! two relaxed atomics per allocation); the trace and, for `merge`, the changes exist before
//! the phase starts, so they are not counted.
//!
//! Run: `cargo bench --bench doc`. Set `SEALDOC_BENCH_RUNS` to change the number of timed runs.
#![allow(clippy::expect_used)]

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sealdoc::doc::{ActorId, Applied, Change, Doc, DocError};
use serde::Deserialize;
use serde_json::json;

/// Counts live and peak heap bytes with two atomics per allocation; needs no unsafe code.
#[global_allocator]
static ALLOC: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

/// Timed runs stop once this much time has been spent on a phase (at least one run is made),
/// so that a slow sequence implementation still finishes in reasonable time.
const TIME_BUDGET: Duration = Duration::from_secs(8);

/// Default number of timed runs per phase (best one reported).
const RUNS: usize = 5;

const PHASES: [&str; 4] = ["baseline", "local", "one-txn", "merge"];

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

fn trace_path() -> PathBuf {
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

fn load() -> Res<Option<Trace>> {
    let path = trace_path();
    let Ok(file) = std::fs::File::open(&path) else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_reader(
        flate2::read::GzDecoder::new(file),
    )?))
}

/// Trace-level operation count: characters inserted plus characters deleted.
fn trace_ops(t: &Trace) -> usize {
    t.txns
        .iter()
        .flat_map(|x| &x.patches)
        .map(|(_, del, ins)| del + ins.chars().count())
        .sum()
}

// ---- Phases --------------------------------------------------------------------------------

fn baseline(t: &Trace) -> Res<usize> {
    let mut text: Vec<char> = Vec::new();
    for txn in &t.txns {
        for (pos, del, ins) in &txn.patches {
            text.splice(*pos..*pos + *del, ins.chars());
        }
    }
    let s: String = text.iter().collect();
    check(&s, t)?;
    Ok(text.len())
}

fn new_text_doc() -> Res<(Doc, Change)> {
    let mut doc = Doc::new(ActorId::from_u64(1));
    let first = doc.transact(|tx| tx.set("text", json!([])))?;
    Ok((doc, first.change.ok_or("no change")?))
}

/// One transaction per trace transaction; returns the doc and, if `keep`, the changes.
fn local(t: &Trace, keep: bool) -> Res<(Doc, Vec<Change>)> {
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

fn one_txn(t: &Trace) -> Res<Doc> {
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

fn merge(t: &Trace, changes: &[Change]) -> Res<Doc> {
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

// ---- Timing ----------------------------------------------------------------------------------

/// Best wall time of up to `runs` runs of `f`, stopping early once [`TIME_BUDGET`] is spent.
fn best(runs: usize, mut f: impl FnMut() -> Res<()>) -> Res<(Duration, usize)> {
    let started = Instant::now();
    let mut best = Duration::MAX;
    let mut n = 0;
    while n < runs.max(1) && (n == 0 || started.elapsed() < TIME_BUDGET) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed());
        n += 1;
    }
    Ok((best, n))
}

// ---- Heap ---------------------------------------------------------------------------------

struct Heap {
    peak: usize,
    live: usize,
}

/// Runs one phase once more, untimed, and measures the heap it adds: the peak above what was
/// live before it started, and what it still holds at the end (its result is kept until then).
fn heap(phase: &str, t: &Trace, changes: &[Change]) -> Res<Heap> {
    ALLOC.reset_peak_usage();
    let before = ALLOC.current_usage();
    let kept: Box<dyn std::any::Any> = match phase {
        "baseline" => Box::new(baseline(t)?),
        "local" => Box::new(local(t, false)?.0),
        "one-txn" => Box::new(one_txn(t)?),
        "merge" => Box::new(merge(t, changes)?),
        other => return Err(format!("unknown phase {other}").into()),
    };
    let h = Heap {
        peak: ALLOC.peak_usage().saturating_sub(before),
        live: ALLOC.current_usage().saturating_sub(before),
    };
    drop(kept);
    Ok(h)
}

fn mib(b: usize) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn main() -> Res<()> {
    let Some(t) = load()? else {
        println!("SKIPPED: {} not found", trace_path().display());
        return Ok(());
    };
    let runs = std::env::var("SEALDOC_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(RUNS);
    let ops = trace_ops(&t);
    let patches: usize = t.txns.iter().map(|x| x.patches.len()).sum();
    println!(
        "automerge-paper: {} txns, {patches} patches, {ops} char ops ({} chars at the end)",
        t.txns.len(),
        t.end_content.chars().count()
    );

    let (_, changes) = local(&t, true)?;
    let doc_ops: usize = changes.iter().map(|c| c.ops.len()).sum();

    let mut rows = Vec::new();
    for phase in PHASES {
        let (time, n) = match phase {
            "baseline" => best(runs, || baseline(&t).map(drop))?,
            "local" => best(runs, || local(&t, false).map(drop))?,
            "one-txn" => best(runs, || one_txn(&t).map(drop))?,
            _ => best(runs, || merge(&t, &changes).map(drop))?,
        };
        let h = heap(phase, &t, &changes)?;
        rows.push((phase, time, n, h));
        let last = rows.last().expect("just pushed");
        eprintln!("  {phase}: {:.3?} (best of {})", last.1, last.2);
    }

    let base = rows[0].1.as_secs_f64();
    println!();
    println!(
        "{:<9} {:>8} {:>11} {:>9} {:>10} {:>11} {:>11}",
        "phase", "ops", "best time", "ns/op", "x baseline", "peak heap", "live at end"
    );
    for (phase, time, n, h) in &rows {
        let ops = if *phase == "baseline" { ops } else { doc_ops };
        let secs = time.as_secs_f64();
        println!(
            "{:<9} {:>8} {:>11} {:>9.0} {:>10.1} {:>11} {:>11}",
            phase,
            ops,
            format!("{:.1?}{}", time, if *n < 2 { "*" } else { "" }),
            secs * 1e9 / ops as f64,
            secs / base,
            mib(h.peak),
            mib(h.live),
        );
    }
    println!(
        "(ops: baseline = chars inserted + deleted; Doc = CRDT ops incl. the list creation. \
         * = single run, over the time budget)"
    );
    Ok(())
}
