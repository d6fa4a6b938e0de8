//! Tests of [`Sequence`]: the B-tree driven side by side with the naive [`Reference`] under
//! random operations (seeded `rand` and `proptest`), compared after every step, plus unit
//! tests of runs, merging and RGA order, and an ignored timing test.
//!
//! Set `SEQ_TEST_SEED` to replay one seed of the seeded tests.

use std::cmp::Reverse;
use std::collections::HashSet;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::reference::Reference;
use super::run::Run;
use super::tree::Child;
use super::{Content, Id, Sequence};

/// An id order for RGA decisions: `greater(a, b)` is `a > b`.
type Greater = fn(Id, Id) -> bool;

/// The Lamport order: counter, then actor (the document's order, with actors interned in
/// id order).
fn lamport(a: Id, b: Id) -> bool {
    (a.counter, a.actor) > (b.counter, b.actor)
}

/// Counter, then actor reversed: the Lamport order with the actor table interned the other
/// way round.
fn lamport_rev(a: Id, b: Id) -> bool {
    (a.counter, Reverse(a.actor)) > (b.counter, Reverse(b.actor))
}

/// Actor, then counter: not causal, but it ranks each actor's counters in order, which is
/// all the run skip relies on; it makes RGA skip long stretches.
fn actor_major(a: Id, b: Id) -> bool {
    (a.actor, a.counter) > (b.actor, b.counter)
}

const ORDERS: [(&str, Greater); 3] = [
    ("lamport", lamport),
    ("lamport_rev", lamport_rev),
    ("actor_major", actor_major),
];

fn id(counter: u64, actor: u32) -> Id {
    Id::new(counter, actor)
}

/// The seed for a seeded test: `SEQ_TEST_SEED` if set, else `default`. Printed so that a
/// failure can be replayed.
fn seed(default: u64) -> u64 {
    let s = std::env::var("SEQ_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    println!("seed {s}");
    s
}

/// The real sequence and the model, driven together.
struct Pair {
    real: Sequence,
    model: Reference,
    greater: Greater,
    /// Every element, for picking operands.
    ids: Vec<Id>,
    /// Ids in use (removed ids leave, as a rolled-back op may be applied again).
    used: HashSet<Id>,
}

impl Pair {
    fn new(greater: Greater) -> Self {
        Pair {
            real: Sequence::default(),
            model: Reference::default(),
            greater,
            ids: Vec::new(),
            used: HashSet::new(),
        }
    }

    fn insert(&mut self, prev: Option<Id>, id: Id, content: Content, visible: bool) {
        assert!(self.used.insert(id), "test bug: {id:?} reused");
        let got = self.real.insert(prev, id, content, visible, self.greater);
        let want = self.model.insert(prev, id, content, visible, self.greater);
        assert_eq!(
            got, want,
            "index returned by insert of {id:?} after {prev:?}"
        );
        self.ids.push(id);
    }

    fn set_visible(&mut self, id: Id, visible: bool) {
        if !visible && id.counter % 2 == 0 {
            // Half the hides go through `hide`, which also returns the index.
            let index = self.model.index_of(id);
            let changed = self.model.set_visible(id, false);
            assert_eq!(
                self.real.hide(id),
                index.filter(|_| changed),
                "hide({id:?})"
            );
            return;
        }
        let got = self.real.set_visible(id, visible);
        assert_eq!(
            got,
            self.model.set_visible(id, visible),
            "set_visible({id:?}, {visible})"
        );
    }

    fn set_content(&mut self, id: Id, content: Content) {
        self.real.set_content(id, content);
        self.model.set_content(id, content);
    }

    fn remove(&mut self, id: Id) {
        self.real.remove(id);
        self.model.remove(id);
        self.ids.retain(|&x| x != id);
        self.used.remove(&id);
    }

    fn pick(&self, rng: &mut StdRng) -> Option<Id> {
        (!self.ids.is_empty()).then(|| self.ids[rng.gen_range(0..self.ids.len())])
    }

    /// Compares everything: the structure's invariants, `iter`, `len`, and `get`, `index_of`,
    /// `contains` of every element and `nth_visible` of every index (expected values read off
    /// the model's order in one pass), plus absent ids.
    fn check_full(&self) {
        self.real.dbg_check();
        self.model.dbg_check();
        let want: Vec<_> = self.model.iter().collect();
        assert_eq!(self.real.iter().collect::<Vec<_>>(), want, "iter");
        assert_eq!(self.real.len(), self.model.len(), "len");
        let mut visible = 0;
        for &(id, content, vis) in &want {
            assert!(self.real.contains(id), "contains {id:?}");
            assert_eq!(self.real.get(id), Some((content, vis)), "get {id:?}");
            assert_eq!(self.real.index_of(id), Some(visible), "index_of {id:?}");
            if vis {
                assert_eq!(
                    self.real.nth_visible(visible),
                    Some(id),
                    "nth_visible {visible}"
                );
                visible += 1;
            }
        }
        assert_eq!(visible, self.real.len());
        assert_eq!(self.real.nth_visible(visible), None);
        assert_eq!(self.real.nth_visible(usize::MAX), None);
        for absent in [id(0, 0), id(u64::MAX, 0), id(1, u32::MAX)] {
            if !self.used.contains(&absent) {
                assert!(!self.real.contains(absent));
                assert_eq!(self.real.get(absent), None);
                assert_eq!(self.real.index_of(absent), None);
            }
        }
    }

    /// Cheaper check for big sequences: invariants, `iter`, `len`, and the model's own
    /// answers for a few random ids and indexes.
    fn check_sample(&self, rng: &mut StdRng) {
        self.real.dbg_check();
        assert!(self.real.iter().eq(self.model.iter()), "iter");
        assert_eq!(self.real.len(), self.model.len(), "len");
        for _ in 0..8 {
            if let Some(id) = self.pick(rng) {
                assert_eq!(
                    self.real.contains(id),
                    self.model.contains(id),
                    "contains {id:?}"
                );
                assert_eq!(self.real.get(id), self.model.get(id), "get {id:?}");
                assert_eq!(
                    self.real.index_of(id),
                    self.model.index_of(id),
                    "index_of {id:?}"
                );
            }
            let i = rng.gen_range(0..=self.model.len());
            assert_eq!(
                self.real.nth_visible(i),
                self.model.nth_visible(i),
                "nth_visible {i}"
            );
        }
    }
}

/// Random edits in the shape of collaborative text editing: actors typing at their own
/// cursors with Lamport ids (runs grow), backspacing, jumping about, concurrent inserts with
/// old counters (RGA skipping), undeletes, content changes, and rolled-back batches.
/// Checks after every step: in full every `full_every` steps, sampled (see
/// [`Pair::check_sample`]) every `sample_every` steps in between.
fn drive(
    pair: &mut Pair,
    rng: &mut StdRng,
    steps: usize,
    actors: u32,
    full_every: usize,
    sample_every: usize,
) {
    let mut clock = 0u64;
    let mut cursors: Vec<Option<Id>> = vec![None; actors as usize];
    let mut actor = 0u32;
    for step in 0..steps {
        if rng.gen_bool(0.15) {
            actor = rng.gen_range(0..actors);
        }
        let a = actor as usize;
        match rng.gen_range(0..100) {
            // Insert.
            0..=59 => {
                let prev = match rng.gen_range(0..10) {
                    0 => None,
                    1..=6 => cursors[a].filter(|&c| pair.real.contains(c)),
                    _ => pair.pick(rng),
                };
                let mut new = id(clock + 1, actor);
                if rng.gen_bool(0.2) {
                    // A concurrent insert: an older counter, unused by this actor.
                    let c = id(rng.gen_range(1..=clock + 1), actor);
                    if !pair.used.contains(&c) {
                        new = c;
                    }
                }
                clock = clock.max(new.counter);
                let content = if rng.gen_bool(0.9) {
                    Content::Char(rng.gen_range('a'..='z'))
                } else {
                    Content::Complex
                };
                pair.insert(prev, new, content, rng.gen_bool(0.97));
                cursors[a] = Some(new);
            }
            // Delete: backspace at the cursor, or anywhere.
            60..=79 => {
                let target = if rng.gen_bool(0.6) {
                    cursors[a].filter(|&c| pair.real.contains(c))
                } else {
                    let len = pair.real.len();
                    (len > 0)
                        .then(|| pair.real.nth_visible(rng.gen_range(0..len)))
                        .flatten()
                };
                if let Some(t) = target {
                    let i = pair.real.index_of(t).unwrap_or(0);
                    pair.set_visible(t, false);
                    cursors[a] = i.checked_sub(1).and_then(|i| pair.real.nth_visible(i));
                }
                // A delete is an op: it takes a counter, which ends the typing run.
                clock += 1;
            }
            80..=86 => {
                if let Some(t) = pair.pick(rng) {
                    pair.set_visible(t, true);
                }
            }
            87..=92 => {
                if let Some(t) = pair.pick(rng) {
                    let content = if rng.gen_bool(0.5) {
                        Content::Complex
                    } else {
                        Content::Char(rng.gen_range('A'..='Z'))
                    };
                    pair.set_content(t, content);
                }
            }
            93..=95 => {
                if let Some(t) = pair.pick(rng) {
                    pair.remove(t);
                    cursors.iter_mut().for_each(|c| *c = c.filter(|&c| c != t));
                }
            }
            // A batch applied then rolled back: inserts, then removes newest first.
            _ => {
                let mut batch = Vec::new();
                let mut prev = cursors[a].filter(|&c| pair.real.contains(c));
                let start = clock + 1;
                for k in 0..rng.gen_range(1..8u64) {
                    let new = id(start + k, actor);
                    pair.insert(prev, new, Content::Char('x'), true);
                    batch.push(new);
                    prev = Some(new);
                }
                if let Some(&t) = batch.first() {
                    pair.set_visible(t, false);
                }
                for &t in batch.iter().rev() {
                    pair.remove(t);
                }
            }
        }
        if step % full_every == 0 {
            pair.check_full();
        } else if step % sample_every == 0 {
            pair.check_sample(rng);
        }
    }
    pair.check_full();
}

#[test]
fn random_edits_match_the_model_under_every_id_order() {
    let base = seed(1);
    for (k, (name, greater)) in ORDERS.into_iter().enumerate() {
        for actors in [1, 3, 8] {
            for round in 0..4u64 {
                let s = base + 1000 * k as u64 + 100 * u64::from(actors) + round;
                println!("order {name}, {actors} actors, seed {s}");
                let mut rng = StdRng::seed_from_u64(s);
                let mut pair = Pair::new(greater);
                drive(&mut pair, &mut rng, 400, actors, 1, 1);
            }
        }
    }
}

#[test]
fn thousands_of_elements_match_the_model_with_deep_trees() {
    let s = seed(7);
    for (name, greater) in [ORDERS[0], ORDERS[2]] {
        println!("order {name}");
        let mut rng = StdRng::seed_from_u64(s);
        let mut pair = Pair::new(greater);
        drive(&mut pair, &mut rng, 4000, 4, 1, 1);
        assert!(pair.ids.len() > 1500, "few elements: {}", pair.ids.len());
    }
}

#[test]
fn tens_of_thousands_of_elements_match_the_model() {
    let s = seed(11);
    let mut rng = StdRng::seed_from_u64(s);
    let mut pair = Pair::new(lamport);
    // Checked every step would be quadratic; sampled every 25 steps, in full every 2500.
    drive(&mut pair, &mut rng, 30_000, 3, 2500, 25);
    assert!(pair.ids.len() > 12_000, "few elements: {}", pair.ids.len());
    // Many levels deep with the small debug-build capacities (4 runs, 4 children), still
    // more than one with the release ones.
    let min_depth = if cfg!(debug_assertions) { 4 } else { 2 };
    let mut depth = 0;
    let mut cur = pair.real.root;
    while let Child::Node(n) = cur {
        let node = &pair.real.nodes[n.0];
        cur = node.child(node.children[0]);
        depth += 1;
    }
    assert!(depth >= min_depth, "depth {depth}");
}

#[test]
fn many_actors_inserting_at_the_head_exercise_rga_skipping() {
    let s = seed(3);
    for (name, greater) in ORDERS {
        println!("order {name}");
        let mut rng = StdRng::seed_from_u64(s);
        let mut pair = Pair::new(greater);
        // Each actor types a run after the head or after a random element, with counters
        // that interleave with everyone else's: every insert skips over runs.
        let mut next = [1u64; 16];
        for _ in 0..600 {
            let actor = rng.gen_range(0..16u32);
            let prev = if rng.gen_bool(0.3) {
                pair.pick(&mut rng)
            } else {
                None
            };
            let mut prev = prev;
            for _ in 0..rng.gen_range(1..6) {
                let c = next[actor as usize];
                next[actor as usize] += rng.gen_range(1..3);
                let new = id(c, actor);
                if pair.used.contains(&new) {
                    continue;
                }
                pair.insert(prev, new, Content::Char('a'), true);
                prev = Some(new);
            }
            pair.check_full();
        }
    }
}

/// One operation of the proptest model test; operands pick among existing elements.
#[derive(Clone, Debug)]
enum Op {
    /// Insert after element `prev % n` (or the head); `old`: use counter `counter` if that id
    /// is unused (a concurrent insert), else the next Lamport counter.
    Insert {
        prev: Option<u16>,
        actor: u32,
        old: bool,
        counter: u64,
        ch: Option<char>,
        visible: bool,
    },
    SetVisible(u16, bool),
    SetContent(u16, Option<char>),
    Remove(u16),
}

fn op() -> impl Strategy<Value = Op> {
    use proptest::{bool::weighted, char::range, option};
    let insert = (
        option::weighted(0.9, any::<u16>()),
        0..4u32,
        weighted(0.2),
        1..40u64,
        option::weighted(0.9, range('a', 'e')),
        weighted(0.95),
    )
        .prop_map(|(prev, actor, old, counter, ch, visible)| Op::Insert {
            prev,
            actor,
            old,
            counter,
            ch,
            visible,
        });
    prop_oneof![
        6 => insert,
        2 => (any::<u16>(), any::<bool>()).prop_map(|(i, v)| Op::SetVisible(i, v)),
        1 => (any::<u16>(), option::of(range('a', 'c'))).prop_map(|(i, c)| Op::SetContent(i, c)),
        1 => any::<u16>().prop_map(Op::Remove),
    ]
}

fn apply(pair: &mut Pair, clock: &mut u64, op: &Op) {
    let nth = |pair: &Pair, i: u16| {
        (!pair.ids.is_empty()).then(|| pair.ids[usize::from(i) % pair.ids.len()])
    };
    match *op {
        Op::Insert {
            prev,
            actor,
            old,
            counter,
            ch,
            visible,
        } => {
            let prev = prev.and_then(|i| nth(pair, i));
            let mut new = id(*clock + 1, actor);
            if old && !pair.used.contains(&id(counter, actor)) {
                new = id(counter, actor);
            }
            *clock = (*clock).max(new.counter);
            let content = ch.map_or(Content::Complex, Content::Char);
            pair.insert(prev, new, content, visible);
        }
        Op::SetVisible(i, v) => {
            if let Some(t) = nth(pair, i) {
                pair.set_visible(t, v);
            }
        }
        Op::SetContent(i, c) => {
            if let Some(t) = nth(pair, i) {
                pair.set_content(t, c.map_or(Content::Complex, Content::Char));
            }
        }
        Op::Remove(i) => {
            if let Some(t) = nth(pair, i) {
                pair.remove(t);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn proptest_ops_match_the_model(
        ops in proptest::collection::vec(op(), 1..120),
        order in 0..3usize,
    ) {
        let mut pair = Pair::new(ORDERS[order].1);
        let mut clock = 0;
        for op in &ops {
            apply(&mut pair, &mut clock, op);
            pair.check_full();
        }
    }
}

// ---- Unit tests ----------------------------------------------------------------------------

/// Types `text` as actor `actor` after `prev`, with consecutive counters from `start`.
fn type_text(seq: &mut Sequence, prev: Option<Id>, actor: u32, start: u64, text: &str) -> Vec<Id> {
    let mut prev = prev;
    let mut ids = Vec::new();
    for (k, c) in text.chars().enumerate() {
        let new = id(start + k as u64, actor);
        seq.insert(prev, new, Content::Char(c), true, lamport);
        prev = Some(new);
        ids.push(new);
    }
    seq.dbg_check();
    ids
}

fn text(seq: &Sequence) -> String {
    seq.iter()
        .filter(|e| e.2)
        .map(|e| match e.1 {
            Content::Char(c) => c,
            Content::Complex => '#',
        })
        .collect()
}

/// Number of runs in the sequence.
fn runs(seq: &Sequence) -> usize {
    seq.leaves.iter().map(|l| l.runs.len()).sum()
}

#[test]
fn typing_a_word_makes_one_run() {
    let mut seq = Sequence::default();
    type_text(&mut seq, None, 0, 1, "hello world");
    assert_eq!(text(&seq), "hello world");
    assert_eq!(runs(&seq), 1);
    assert_eq!(seq.leaves[0].runs.len(), 1);
}

#[test]
fn deleting_inside_a_run_splits_it_and_undeleting_merges_it_back() {
    let mut seq = Sequence::default();
    let ids = type_text(&mut seq, None, 0, 1, "hello");
    assert!(seq.set_visible(ids[2], false));
    seq.dbg_check();
    assert_eq!(text(&seq), "helo");
    assert_eq!(runs(&seq), 3);
    // Runs split inside one leaf: the id index still has its one entry.
    assert_eq!(seq.index.len(), 1);
    assert_eq!(seq.index_of(ids[3]), Some(2));
    assert_eq!(seq.get(ids[2]), Some((Content::Char('l'), false)));
    assert!(!seq.set_visible(ids[2], false));
    assert!(seq.set_visible(ids[2], true));
    seq.dbg_check();
    assert_eq!(runs(&seq), 1);
    assert_eq!(text(&seq), "hello");
}

#[test]
fn backspacing_merges_the_tombstones() {
    let mut seq = Sequence::default();
    let ids = type_text(&mut seq, None, 0, 1, "hello");
    seq.set_visible(ids[4], false);
    seq.set_visible(ids[3], false);
    seq.dbg_check();
    assert_eq!(text(&seq), "hel");
    // "hel" visible, "lo" deleted.
    assert_eq!(runs(&seq), 2);
    // Typing on after a delete op (which took counter 6, 7): a new run.
    type_text(&mut seq, Some(ids[2]), 0, 8, "p!");
    assert_eq!(text(&seq), "help!");
    assert_eq!(runs(&seq), 3);
}

#[test]
fn content_changes_split_and_rejoin() {
    let mut seq = Sequence::default();
    let ids = type_text(&mut seq, None, 0, 1, "abc");
    seq.set_content(ids[1], Content::Complex);
    seq.dbg_check();
    assert_eq!(seq.get(ids[1]), Some((Content::Complex, true)));
    assert_eq!(text(&seq), "a#c");
    assert_eq!(runs(&seq), 3);
    // Back to a character (a rollback): correct content; a fresh arena slot, so it stays
    // its own run.
    seq.set_content(ids[1], Content::Char('b'));
    seq.dbg_check();
    assert_eq!(text(&seq), "abc");
}

#[test]
fn inserting_inside_a_run_splits_it() {
    let mut seq = Sequence::default();
    let ids = type_text(&mut seq, None, 0, 1, "ac");
    let at = seq.insert(Some(ids[0]), id(5, 1), Content::Char('b'), true, lamport);
    seq.dbg_check();
    assert_eq!(at, 1);
    assert_eq!(text(&seq), "abc");
    assert_eq!(runs(&seq), 3);
    // Rolling it back re-merges the run.
    seq.remove(id(5, 1));
    seq.dbg_check();
    assert_eq!(text(&seq), "ac");
    assert_eq!(runs(&seq), 1);
}

#[test]
fn concurrent_inserts_at_one_place_put_the_greater_id_first() {
    // Paper rule INSERT2: after the reference element, skip greater ids.
    let mut seq = Sequence::default();
    let a = type_text(&mut seq, None, 0, 1, "ab");
    // Two replicas concurrently type after 'a' with counter 3: actor 2's text comes first.
    type_text(&mut seq, Some(a[0]), 1, 3, "xy");
    type_text(&mut seq, Some(a[0]), 2, 3, "XY");
    assert_eq!(text(&seq), "aXYxyb");
    // A later insert after 'a' (counter 10) beats all of them.
    seq.insert(Some(a[0]), id(10, 0), Content::Char('!'), true, lamport);
    assert_eq!(text(&seq), "a!XYxyb");
    // An old one (counter 2, actor 3) skips every run whose first id is greater.
    let at = seq.insert(Some(a[0]), id(2, 3), Content::Char('?'), true, lamport);
    seq.dbg_check();
    assert_eq!(text(&seq), "a!XYxy?b");
    assert_eq!(at, 6);
}

#[test]
fn insert_after_a_missing_element_goes_to_the_end() {
    let mut seq = Sequence::default();
    type_text(&mut seq, None, 0, 1, "ab");
    let at = seq.insert(Some(id(99, 9)), id(5, 0), Content::Char('z'), true, lamport);
    assert_eq!(at, 2);
    assert_eq!(text(&seq), "abz");
}

#[test]
fn inserting_an_existing_id_changes_nothing() {
    let mut seq = Sequence::default();
    let ids = type_text(&mut seq, None, 0, 1, "abc");
    let at = seq.insert(None, ids[1], Content::Char('z'), true, lamport);
    seq.dbg_check();
    assert_eq!(at, 1);
    assert_eq!(text(&seq), "abc");
}

#[test]
fn removing_everything_leaves_an_empty_reusable_tree() {
    let mut seq = Sequence::default();
    let ids = type_text(&mut seq, None, 0, 1, "the quick brown fox");
    // Split it into many runs and leaves.
    for &i in ids.iter().step_by(2) {
        seq.set_visible(i, false);
    }
    seq.dbg_check();
    assert!(matches!(seq.root, Child::Node(_)));
    for &i in ids.iter().rev() {
        seq.remove(i);
        seq.dbg_check();
    }
    assert_eq!(seq.len(), 0);
    assert_eq!(seq.iter().count(), 0);
    assert_eq!(runs(&seq), 0);
    assert!(matches!(seq.root, Child::Leaf(_)));
    type_text(&mut seq, None, 0, 1, "again");
    assert_eq!(text(&seq), "again");
}

#[test]
fn run_split_and_append_are_inverse() {
    let chars: Vec<char> = "abcdefgh".chars().collect();
    for complex in [false, true] {
        for visible in [false, true] {
            let run = Run {
                start: 10,
                text: if complex { 0 } else { 1 },
                len: 6,
                actor: 3,
                visible,
                complex,
            };
            assert!(run.clone().split(0).is_none());
            assert!(run.clone().split(6).is_none());
            for at in 1..6 {
                let mut head = run;
                let tail = head.split(at).expect("in range");
                assert_eq!((head.len(), tail.len()), (at, 6 - at));
                for k in 0..tail.len() {
                    assert_eq!(tail.id_at(k), run.id_at(at + k));
                    assert_eq!(tail.content_at(k, &chars), run.content_at(at + k, &chars));
                    assert_eq!(tail.offset_of(run.id_at(at + k)), Some(k));
                }
                assert_eq!(head.offset_of(tail.id_at(0)), None);
                assert!(head.can_append(&tail));
                assert!(!tail.can_append(&head));
                head.append(tail);
                assert_eq!(head, run);
            }
        }
    }
    // Differences in actor, visibility, kind, ids or arena slots all prevent a merge.
    let a = Run {
        start: 1,
        text: 0,
        len: 2,
        actor: 0,
        visible: true,
        complex: false,
    };
    let b = Run {
        start: 3,
        text: 2,
        len: 1,
        ..a
    };
    assert!(a.can_append(&b));
    assert!(!a.can_append(&Run { actor: 1, ..b }));
    assert!(!a.can_append(&Run {
        visible: false,
        ..b
    }));
    assert!(!a.can_append(&Run {
        complex: true,
        text: 0,
        ..b
    }));
    assert!(!a.can_append(&Run { start: 4, ..b }));
    assert!(!a.can_append(&Run { text: 5, ..b }));
    assert!(!a.can_append(&Run { len: u32::MAX, ..b }));
}

// ---- Timing ---------------------------------------------------------------------------------

/// A text-editing trace in the shape of automerge-paper: single-character inserts and
/// deletes, mostly typing at a cursor that now and then jumps, and backspace bursts. Calls the
/// structure exactly as the document does for local edits.
fn edit_trace<S>(
    seq: &mut S,
    ops: usize,
    rng: &mut StdRng,
    nth: impl Fn(&S, usize) -> Option<Id>,
    len: impl Fn(&S) -> usize,
    mut insert: impl FnMut(&mut S, Option<Id>, Id),
    mut delete: impl FnMut(&mut S, Id),
) {
    let mut cursor = 0usize;
    let mut counter = 0u64;
    let mut deleting = 0;
    for _ in 0..ops {
        counter += 1;
        let n = len(seq);
        if rng.gen_bool(0.02) {
            cursor = rng.gen_range(0..=n);
        }
        if deleting == 0 && rng.gen_bool(0.06) {
            deleting = rng.gen_range(1..12);
        }
        if deleting > 0 && cursor > 0 {
            deleting -= 1;
            cursor -= 1;
            if let Some(t) = nth(seq, cursor) {
                delete(seq, t);
            }
        } else {
            deleting = 0;
            let prev = cursor.checked_sub(1).and_then(|i| nth(seq, i));
            insert(seq, prev, id(counter, 0));
            cursor += 1;
        }
    }
}

fn time_real(ops: usize) -> (std::time::Duration, Sequence) {
    let mut rng = StdRng::seed_from_u64(42);
    let mut seq = Sequence::default();
    let t = std::time::Instant::now();
    edit_trace(
        &mut seq,
        ops,
        &mut rng,
        |s, i| s.nth_visible(i),
        |s| s.len(),
        |s, prev, new| {
            s.insert(prev, new, Content::Char('x'), true, lamport);
        },
        |s, t| {
            let _ = s.get(t);
            let _ = s.index_of(t);
            s.set_visible(t, false);
        },
    );
    (t.elapsed(), seq)
}

fn time_model(ops: usize) -> (std::time::Duration, Reference) {
    let mut rng = StdRng::seed_from_u64(42);
    let mut seq = Reference::default();
    let t = std::time::Instant::now();
    edit_trace(
        &mut seq,
        ops,
        &mut rng,
        |s, i| s.nth_visible(i),
        |s| s.len(),
        |s, prev, new| {
            s.insert(prev, new, Content::Char('x'), true, lamport);
        },
        |s, t| {
            let _ = s.get(t);
            let _ = s.index_of(t);
            s.set_visible(t, false);
        },
    );
    (t.elapsed(), seq)
}

#[test]
fn the_timing_trace_matches_the_model() {
    let (_, real) = time_real(5000);
    let (_, model) = time_model(5000);
    real.dbg_check();
    assert!(real.iter().eq(model.iter()));
}

#[test]
#[ignore = "timing: cargo test --release --lib doc::seq::tests::timing -- --ignored --nocapture"]
fn timing_btree() {
    for ops in [20_000, 270_000] {
        let (t, seq) = time_real(ops);
        let elems = seq.iter().count();
        println!(
            "btree: {ops} ops in {t:?} ({:.0} ns/op); {elems} elements, {} visible, {} runs, \
             {} leaves, {} nodes, {} arena chars",
            t.as_nanos() as f64 / ops as f64,
            seq.len(),
            runs(&seq),
            seq.leaves.len(),
            seq.nodes.len(),
            seq.chars.len(),
        );
    }
}

#[test]
#[ignore = "timing: cargo test --release --lib doc::seq::tests::timing -- --ignored --nocapture"]
fn timing_naive() {
    for ops in [20_000, 60_000] {
        let (t, _) = time_model(ops);
        println!(
            "naive Vec: {ops} ops in {t:?} ({:.0} ns/op)",
            t.as_nanos() as f64 / ops as f64
        );
    }
}
