//! Runs `examples/two_party.rs` as a test: the same story, checked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/two_party.rs"]
#[allow(dead_code)]
mod two_party;

#[test]
fn the_two_party_example_converges_leaks_nothing_and_locks_out_bob() {
    let report = two_party::run().unwrap();
    assert_eq!(report.problems(), Vec::<String>::new(), "{report:#?}");
    assert_eq!(report.alice_doc, report.bob_doc);
    assert_eq!(report.alice_doc["items"].as_array().unwrap().len(), 4);
    assert_eq!(report.conflicts.len(), 2);
    assert!(report.leaked.is_empty());
    assert!(!report.bob_read_after_removal);
    assert!(
        report.bob_after_removal.contains("refused"),
        "{}",
        report.bob_after_removal
    );
    assert!(!report.relayed_sizes.is_empty());
}
