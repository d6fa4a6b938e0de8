//! Replays a real editing trace into `Doc` and prints the time per phase, with the system
//! allocator (peak heap is measured separately by `benches/doc_heap.rs`, whose counting
//! allocator would otherwise add its own cost to every allocation timed here).
//!
//! Trace and phases: see `benches/support/trace.rs`. Time is the best of a few runs (fewer
//! when one run is slow, see [`TIME_BUDGET`]); a phase's result is dropped inside the timed
//! region. The changes `merge` applies are made before it starts.
//!
//! Run: `cargo bench --bench doc`. Set `SEALDOC_BENCH_RUNS` to change the number of timed runs,
//! and `SEALDOC_BENCH_PHASE` (a comma-separated list) to run only some phases, e.g. under
//! `perf record`.
#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

#[path = "support/trace.rs"]
mod trace;

use trace::{Res, PHASES};

/// Timed runs stop once this much time has been spent on a phase (at least one run is made),
/// so that a slow sequence implementation still finishes in reasonable time.
const TIME_BUDGET: Duration = Duration::from_secs(8);

/// Default number of timed runs per phase (best one reported).
const RUNS: usize = 5;

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

fn main() -> Res<()> {
    let Some(t) = trace::load()? else {
        return Ok(());
    };
    let runs = std::env::var("SEALDOC_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(RUNS);
    let ops = trace::trace_ops(&t);
    let only = std::env::var("SEALDOC_BENCH_PHASE").ok();
    let wanted = |p: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x == p));
    // The changes `merge` applies (made only if it runs: they hold a lot of memory).
    let (_, changes) = trace::local(&t, wanted("merge"))?;
    // One Doc op per character inserted or deleted, plus the creation of the list.
    let doc_ops = ops + 1;

    let mut rows = Vec::new();
    for phase in PHASES.into_iter().filter(|p| wanted(p)) {
        let (time, n) = best(runs, || trace::run(phase, &t, &changes).map(drop))?;
        eprintln!("  {phase}: {time:.3?} (best of {n})");
        rows.push((phase, time, n));
    }

    let base = rows
        .iter()
        .find(|r| r.0 == "baseline")
        .map_or(f64::NAN, |r| r.1.as_secs_f64());
    println!();
    println!(
        "{:<9} {:>8} {:>11} {:>9} {:>10}",
        "phase", "ops", "best time", "ns/op", "x baseline"
    );
    for (phase, time, n) in &rows {
        let ops = if *phase == "baseline" { ops } else { doc_ops };
        let secs = time.as_secs_f64();
        println!(
            "{:<9} {:>8} {:>11} {:>9.0} {:>10.1}",
            phase,
            ops,
            format!("{:.1?}{}", time, if *n < 2 { "*" } else { "" }),
            secs * 1e9 / ops as f64,
            secs / base,
        );
    }
    println!(
        "(ops: baseline = chars inserted + deleted; Doc = CRDT ops incl. the list creation. \
         * = single run, over the time budget. Heap: cargo bench --bench doc_heap)"
    );
    Ok(())
}
