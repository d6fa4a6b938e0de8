//! Replays a real editing trace into `Doc` and prints the heap each phase uses: the peak
//! above what was live before it started, and what its result still holds at the end.
//!
//! Trace and phases: see `benches/support/trace.rs`. Each phase runs once, untimed, under a
//! counting global allocator (`peak_alloc`: two relaxed atomics per allocation); timing lives
//! in `benches/doc.rs`, which uses the system allocator. The trace and, for `merge`, the
//! changes exist before the phase starts, so they are not counted.
//!
//! Run: `cargo bench --bench doc_heap`.

#[path = "support/trace.rs"]
mod trace;

use sealdoc::doc::Change;
use trace::{Res, Trace, PHASES};

/// Counts live and peak heap bytes with two atomics per allocation; needs no unsafe code.
#[global_allocator]
static ALLOC: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

struct Heap {
    peak: usize,
    live: usize,
}

/// Runs one phase and measures the heap it adds (its result is kept until the end).
fn heap(phase: &str, t: &Trace, changes: &[Change]) -> Res<Heap> {
    ALLOC.reset_peak_usage();
    let before = ALLOC.current_usage();
    let kept = trace::run(phase, t, changes)?;
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
    let Some(t) = trace::load()? else {
        return Ok(());
    };
    let (_, changes) = trace::local(&t, true)?;
    let changes_bytes = ALLOC.current_usage();
    println!();
    println!("{:<9} {:>11} {:>11}", "phase", "peak heap", "live at end");
    for phase in PHASES {
        let h = heap(phase, &t, &changes)?;
        println!("{:<9} {:>11} {:>11}", phase, mib(h.peak), mib(h.live));
    }
    println!(
        "(trace + the changes merge applies, held throughout: {})",
        mib(changes_bytes)
    );
    Ok(())
}
