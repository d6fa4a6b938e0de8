//! Convergence under a hostile network: random concurrent edits by 3 to 5 authors, each
//! replica receiving every node in its own random order with duplicates and drops, then
//! catch-up until quiescent. Every replica must end with the same graph and document.

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sealdoc::doc::{DocError, Transaction};
use sealdoc::graph::SignedDoc;
use sealdoc::path;
use serde_json::json;

use crate::common::*;

/// One random transaction: map sets, list inserts and deletes, text splices.
fn random_edit(tx: &mut Transaction<'_>, rng: &mut StdRng) -> Result<(), DocError> {
    for _ in 0..rng.gen_range(1..=3) {
        match rng.gen_range(0..6) {
            0 => tx.set(
                path!["map", format!("k{}", rng.gen_range(0..4))],
                rng.gen_range(0..100),
            )?,
            1 => {
                let len = tx.len("list")?;
                tx.insert(
                    "list",
                    rng.gen_range(0..=len),
                    json!({"v": rng.gen_range(0..100)}),
                )?;
            }
            2 => {
                let len = tx.len("list")?;
                if len > 0 {
                    tx.delete(path!["list", rng.gen_range(0..len)])?;
                }
            }
            3 => {
                let len = tx.len("list")?;
                if len > 0 {
                    tx.set(path!["list", rng.gen_range(0..len), "v"], -1)?;
                }
            }
            _ => {
                let len = tx.len("text")?;
                let at = rng.gen_range(0..=len);
                let del = rng.gen_range(0..=(len - at).min(3));
                let ins: String = (0..rng.gen_range(0..4))
                    .map(|_| rng.gen_range(b'a'..=b'z') as char)
                    .collect();
                tx.splice_text("text", at, del, &ins)?;
            }
        }
    }
    Ok(())
}

/// Runs one simulation; returns the number of nodes made.
fn simulate(seed: u64, authors: usize, rounds: usize) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut replicas: Vec<SignedDoc> = (0..authors).map(|i| replica(i as u8 + 1)).collect();
    let genesis = replicas[0]
        .change(|tx| {
            tx.set("map", json!({}))?;
            tx.set("list", json!([]))?;
            tx.set("text", json!([]))
        })
        .unwrap()
        .nodes;
    // Per replica: nodes in flight to it.
    let mut inbox: Vec<Vec<Vec<u8>>> = vec![Vec::new(); authors];
    for r in replicas.iter_mut().skip(1) {
        deliver(r, &genesis);
    }
    let mut made = genesis.len();
    for _ in 0..rounds {
        // Some authors edit, concurrently with whatever they have not received yet.
        for (i, r) in replicas.iter_mut().enumerate() {
            if rng.gen_bool(0.6) {
                let mut erng = StdRng::seed_from_u64(rng.gen());
                let out = r.change(|tx| random_edit(tx, &mut erng)).unwrap();
                made += out.nodes.len();
                for (j, inbox) in inbox.iter_mut().enumerate() {
                    if j == i {
                        continue;
                    }
                    for n in &out.nodes {
                        // Drops and duplicates.
                        let copies = match rng.gen_range(0..10) {
                            0 => 0,
                            1 => 2,
                            _ => 1,
                        };
                        for _ in 0..copies {
                            inbox.push(n.clone());
                        }
                    }
                }
            }
        }
        // Each replica receives a random part of its inbox, in random order.
        for (r, inbox) in replicas.iter_mut().zip(inbox.iter_mut()) {
            inbox.shuffle(&mut rng);
            let take = rng.gen_range(0..=inbox.len());
            for n in inbox.drain(..take) {
                let _ = r.receive(&n).expect("honest nodes are never rejected");
            }
            drain_all(r);
        }
    }
    // The rest of the in-flight nodes, in random order, then catch-up until quiescent.
    for (r, inbox) in replicas.iter_mut().zip(inbox.iter_mut()) {
        inbox.shuffle(&mut rng);
        for n in inbox.drain(..) {
            let _ = r.receive(&n).expect("honest nodes are never rejected");
        }
        drain_all(r);
    }
    loop {
        let mut moved = 0;
        for i in 0..authors {
            for j in 0..authors {
                if i != j {
                    let (a, b) = pair(&mut replicas, i, j);
                    moved += pull(a, b);
                }
            }
        }
        if moved == 0 {
            break;
        }
    }
    let first = &replicas[0];
    for r in &replicas[1..] {
        assert_eq!(r.heads(), first.heads(), "seed {seed}");
        let mut x: Vec<_> = r.log().hashes().collect();
        let mut y: Vec<_> = first.log().hashes().collect();
        x.sort();
        y.sort();
        assert_eq!(x, y, "seed {seed}");
        assert_eq!(r.doc().to_json(), first.doc().to_json(), "seed {seed}");
        assert_eq!(
            r.doc().canonical_state(),
            first.doc().canonical_state(),
            "seed {seed}"
        );
        assert_eq!(r.log().pending_len(), 0);
        assert!(r.evidence().is_empty());
    }
    assert_eq!(first.log().len(), made, "seed {seed}");
    made
}

/// Mutable access to replica `i` and shared access to replica `j`.
fn pair(v: &mut [SignedDoc], i: usize, j: usize) -> (&mut SignedDoc, &SignedDoc) {
    if i < j {
        let (l, r) = v.split_at_mut(j);
        (&mut l[i], &r[0])
    } else {
        let (l, r) = v.split_at_mut(i);
        (&mut r[0], &l[j])
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn replicas_converge_under_reordering_duplicates_and_drops(
        seed in any::<u64>(),
        authors in 3usize..=5,
        rounds in 4usize..12,
    ) {
        simulate(seed, authors, rounds);
    }
}

#[test]
fn a_longer_run_converges() {
    let seed = std::env::var("SEALDOC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x05ea_1d0c);
    println!("SEALDOC_TEST_SEED={seed}");
    assert!(simulate(seed, 5, 40) > 100);
}
