#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The paper's worked examples (Kleppmann & Beresford 2017, TPDS numbering) as test vectors.
//! Expected values are those of ../shared/docs/paper-semantics.md §4, including the
//! replica-id-dependent orders of Figs. 3 and 4 under both id orders.

use sealdoc::doc::{ActorId, Change, Cursor, Doc, DocError, Transaction, Value};
use serde_json::json;

fn doc(id: u64) -> Doc {
    Doc::new(ActorId::from_u64(id))
}

/// Runs `f` as one transaction and returns its change.
fn tx(d: &mut Doc, f: impl FnOnce(&mut Transaction<'_>) -> Result<(), DocError>) -> Change {
    d.transact(f)
        .expect("transaction")
        .change
        .expect("made ops")
}

/// Each op in its own transaction, as the paper's command sequences do.
fn cmd(d: &mut Doc, f: impl FnOnce(&mut Transaction<'_>) -> Result<(), DocError>) -> Change {
    tx(d, f)
}

fn deliver(d: &mut Doc, changes: &[Change]) {
    for c in changes {
        let _ = d.apply_change(c).expect("apply");
    }
}

fn root() -> Cursor {
    Cursor::doc()
}

fn strs(vals: Vec<Value>) -> Vec<String> {
    vals.into_iter()
        .map(|v| match v {
            Value::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn fig1_concurrent_register_assignment_keeps_both_values() {
    let (mut p, mut q) = (doc(2), doc(1));
    let c0 = cmd(&mut p, |t| t.assign(&root().get("key"), "A"));
    deliver(&mut q, &[c0]);
    let cp = cmd(&mut p, |t| t.assign(&root().get("key"), "B"));
    let cq = cmd(&mut q, |t| t.assign(&root().get("key"), "C"));
    deliver(&mut p, std::slice::from_ref(&cq));
    deliver(&mut q, std::slice::from_ref(&cp));
    for d in [&p, &q] {
        assert_eq!(d.keys_at(&root()).unwrap(), vec!["key"]);
        assert_eq!(
            sorted(strs(d.values_at(&root().get("key")).unwrap())),
            vec!["B", "C"]
        );
        // Internal state: regT("key") == {(2,p):"B", (2,q):"C"}.
        let conflicts = d.conflicts("key").unwrap();
        let ids: Vec<(u64, ActorId)> = conflicts
            .iter()
            .map(|c| (c.id.counter, c.id.actor.clone()))
            .collect();
        assert_eq!(
            ids,
            vec![(2, ActorId::from_u64(2)), (2, ActorId::from_u64(1))]
        );
        // Rendering: greatest id wins (p's id is greater), conflict flagged.
        assert_eq!(d.to_json(), json!({"key": "B"}));
    }
    assert_eq!(p.canonical_state(), q.canonical_state());
    // Follow-up: an assignment that saw both collapses the register.
    let cd = cmd(&mut p, |t| t.assign(&root().get("key"), "D"));
    deliver(&mut q, &[cd]);
    assert_eq!(strs(q.values_at(&root().get("key")).unwrap()), vec!["D"]);
    assert_eq!(q.conflicts("key").unwrap().len(), 1);
}

#[test]
fn fig2_map_overwrite_vs_concurrent_nested_add_resurrects_only_the_concurrent_write() {
    let (mut p, mut q) = (doc(2), doc(1));
    let colors = root().get("colors");
    let c0 = cmd(&mut p, |t| t.assign(&colors.get("blue"), "#0000ff"));
    deliver(&mut q, &[c0]);
    let cp = cmd(&mut p, |t| t.assign(&colors.get("red"), "#ff0000"));
    let cq1 = cmd(&mut q, |t| t.assign(&colors, Value::EmptyMap));
    assert_eq!(q.to_json(), json!({"colors": {}}));
    let cq2 = cmd(&mut q, |t| t.assign(&colors.get("green"), "#00ff00"));
    deliver(&mut p, &[cq1, cq2]);
    deliver(&mut q, &[cp]);
    for d in [&p, &q] {
        assert_eq!(d.keys_at(&root()).unwrap(), vec!["colors"]);
        assert_eq!(d.keys_at(&colors).unwrap(), vec!["green", "red"]);
        assert_eq!(
            strs(d.values_at(&colors.get("red")).unwrap()),
            vec!["#ff0000"]
        );
        assert_eq!(
            strs(d.values_at(&colors.get("green")).unwrap()),
            vec!["#00ff00"]
        );
        // blue's register exists but is empty (values ignores presence).
        assert!(d.values_at(&colors.get("blue")).unwrap().is_empty());
        assert_eq!(
            d.to_json(),
            json!({"colors": {"red": "#ff0000", "green": "#00ff00"}})
        );
    }
    assert_eq!(p.canonical_state(), q.canonical_state());
}

#[test]
fn fig2_variant_delete_only_keeps_the_concurrent_nested_write() {
    let (mut p, mut q) = (doc(2), doc(1));
    let colors = root().get("colors");
    let c0 = cmd(&mut p, |t| t.assign(&colors.get("blue"), "#0000ff"));
    deliver(&mut q, &[c0]);
    let cp = cmd(&mut p, |t| t.assign(&colors.get("red"), "#ff0000"));
    let cq = cmd(&mut q, |t| t.delete_at(&colors));
    assert_eq!(q.to_json(), json!({}));
    deliver(&mut p, &[cq]);
    deliver(&mut q, &[cp]);
    for d in [&p, &q] {
        assert_eq!(d.to_json(), json!({"colors": {"red": "#ff0000"}}));
    }
}

fn fig3(p_id: u64, q_id: u64) -> (Doc, Doc) {
    let (mut p, mut q) = (doc(p_id), doc(q_id));
    let g = root().get("grocery");
    let mut cs_p = vec![cmd(&mut p, |t| t.assign(&g, Value::EmptyList))];
    cs_p.push(cmd(&mut p, |t| {
        let h = t.idx(&g, 0)?;
        t.insert_after(&h, "eggs").map(|_| ())
    }));
    cs_p.push(cmd(&mut p, |t| {
        let e = t.idx(&g, 1)?;
        t.insert_after(&e, "ham").map(|_| ())
    }));
    let mut cs_q = vec![cmd(&mut q, |t| t.assign(&g, Value::EmptyList))];
    cs_q.push(cmd(&mut q, |t| {
        let h = t.idx(&g, 0)?;
        t.insert_after(&h, "milk").map(|_| ())
    }));
    cs_q.push(cmd(&mut q, |t| {
        let e = t.idx(&g, 1)?;
        t.insert_after(&e, "flour").map(|_| ())
    }));
    deliver(&mut p, &cs_q);
    deliver(&mut q, &cs_p);
    assert_eq!(p.canonical_state(), q.canonical_state());
    (p, q)
}

#[test]
fn fig3_concurrent_lists_under_one_key_merge_with_greater_id_first() {
    // ReplicaID(p) > ReplicaID(q): exactly as drawn in the paper.
    let (p, q) = fig3(2, 1);
    for d in [&p, &q] {
        assert_eq!(
            d.to_json(),
            json!({"grocery": ["eggs", "ham", "milk", "flour"]})
        );
    }
    // ReplicaID(p) < ReplicaID(q).
    let (p, q) = fig3(1, 2);
    for d in [&p, &q] {
        assert_eq!(
            d.to_json(),
            json!({"grocery": ["milk", "flour", "eggs", "ham"]})
        );
    }
}

fn fig4(p_id: u64, q_id: u64) -> Doc {
    let (mut p, mut q) = (doc(p_id), doc(q_id));
    let c0 = tx(&mut p, |t| {
        t.assign(&root(), Value::EmptyList)?;
        let h = t.idx(&root(), 0)?;
        let a = t.insert_after(&h, "a")?;
        let b = t.insert_after(&a, "b")?;
        t.insert_after(&b, "c").map(|_| ())
    });
    deliver(&mut q, &[c0]);
    assert_eq!(q.to_json(), json!(["a", "b", "c"]));
    let p1 = cmd(&mut p, |t| {
        let b = t.idx(&root(), 2)?;
        t.delete_at(&b)
    });
    let p2 = cmd(&mut p, |t| {
        let a = t.idx(&root(), 1)?;
        t.insert_after(&a, "x").map(|_| ())
    });
    assert_eq!(p.to_json(), json!(["a", "x", "c"]));
    let q1 = cmd(&mut q, |t| {
        let h = t.idx(&root(), 0)?;
        t.insert_after(&h, "y").map(|_| ())
    });
    let q2 = cmd(&mut q, |t| {
        let a = t.idx(&root(), 2)?;
        t.insert_after(&a, "z").map(|_| ())
    });
    assert_eq!(q.to_json(), json!(["y", "a", "z", "b", "c"]));
    deliver(&mut p, &[q1, q2]);
    deliver(&mut q, &[p1, p2]);
    assert_eq!(p.canonical_state(), q.canonical_state());
    assert_eq!(p.to_json(), q.to_json());
    p
}

#[test]
fn fig4_text_editing_order_depends_on_replica_ids() {
    assert_eq!(fig4(2, 1).to_json(), json!(["y", "a", "x", "z", "c"]));
    assert_eq!(fig4(1, 2).to_json(), json!(["y", "a", "z", "x", "c"]));
    assert_eq!(fig4(2, 1).text("").unwrap(), "yaxzc");
}

#[test]
fn fig5_map_and_list_assigned_to_one_key_live_in_separate_namespaces() {
    let (mut p, mut q) = (doc(2), doc(1));
    let a = root().get("a");
    let p1 = cmd(&mut p, |t| t.assign(&a, Value::EmptyMap));
    let p2 = cmd(&mut p, |t| t.assign(&a.get("x"), "y"));
    let q1 = cmd(&mut q, |t| t.assign(&a, Value::EmptyList));
    let q2 = cmd(&mut q, |t| {
        let h = t.idx(&a, 0)?;
        t.insert_after(&h, "z").map(|_| ())
    });
    deliver(&mut p, &[q1, q2]);
    deliver(&mut q, &[p1, p2]);
    for d in [&p, &q] {
        assert_eq!(d.keys_at(&root()).unwrap(), vec!["a"]);
        assert_eq!(d.keys_at(&a).unwrap(), vec!["x"]);
        assert_eq!(strs(d.values_at(&a.get("x")).unwrap()), vec!["y"]);
        let z = d.idx(&a, 1).unwrap();
        assert_eq!(strs(d.values_at(&z).unwrap()), vec!["z"]);
        assert!(matches!(
            d.idx(&a, 2),
            Err(DocError::IndexOutOfRange {
                index: 2,
                len: 1,
                ..
            })
        ));
        // Documented rendering: both namespaces are in conflicts(); to_json shows the one
        // written by the greatest id ((2,p) > (2,q): the map).
        let c = d.conflicts("a").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].value, json!({"x": "y"}));
        assert_eq!(c[1].value, json!(["z"]));
        assert_eq!(d.to_json(), json!({"a": {"x": "y"}}));
    }
    assert_eq!(p.canonical_state(), q.canonical_state());
}

#[test]
fn fig6_delete_vs_concurrent_update_resurrects_element_without_title() {
    let (mut p, mut q) = (doc(2), doc(1));
    let todo = root().get("todo");
    let c0 = tx(&mut p, |t| {
        t.assign(&root(), Value::EmptyMap)?;
        t.assign(&todo, Value::EmptyList)?;
        let h = t.idx(&todo, 0)?;
        let item = t.insert_after(&h, Value::EmptyMap)?;
        t.assign(&item.get("title"), "buy milk")?;
        t.assign(&item.get("done"), false)
    });
    deliver(&mut q, &[c0]);
    assert_eq!(
        q.to_json(),
        json!({"todo": [{"title": "buy milk", "done": false}]})
    );
    let elem_before = q.idx(&todo, 1).unwrap();
    let cp = cmd(&mut p, |t| {
        let item = t.idx(&todo, 1)?;
        t.delete_at(&item)
    });
    assert_eq!(p.to_json(), json!({"todo": []}));
    let cq = cmd(&mut q, |t| {
        let item = t.idx(&todo, 1)?;
        t.assign(&item.get("done"), true)
    });
    assert_eq!(
        q.to_json(),
        json!({"todo": [{"title": "buy milk", "done": true}]})
    );
    deliver(&mut p, &[cq]);
    deliver(&mut q, &[cp]);
    for d in [&p, &q] {
        assert_eq!(d.len("todo").unwrap(), 1);
        let item = d.idx(&todo, 1).unwrap();
        assert_eq!(item, elem_before, "the same element id as before");
        assert_eq!(d.keys_at(&item).unwrap(), vec!["done"]);
        assert_eq!(
            d.values_at(&item.get("done")).unwrap(),
            vec![Value::Bool(true)]
        );
        assert!(d.values_at(&item.get("title")).unwrap().is_empty());
        assert_eq!(d.to_json(), json!({"todo": [{"done": true}]}));
    }
    assert_eq!(p.canonical_state(), q.canonical_state());
}

#[test]
fn fig8_cursor_holds_element_by_identity() {
    let mut d = doc(1);
    let shopping = root().get("shopping");
    let _ = tx(&mut d, |t| {
        t.assign(&root(), Value::EmptyMap)?;
        t.assign(&shopping, Value::EmptyList)?;
        let head = t.idx(&shopping, 0)?;
        t.insert_after(&head, "eggs")?;
        let eggs = t.idx(&shopping, 1)?;
        t.insert_after(&head, "cheese")?;
        t.insert_after(&eggs, "milk")?;
        assert_eq!(strs(t.values_at(&eggs)?), vec!["eggs"]);
        Ok(())
    });
    assert_eq!(d.to_json(), json!({"shopping": ["cheese", "eggs", "milk"]}));
}

#[test]
fn departure_assigning_a_primitive_clears_all_namespaces() {
    let mut d = doc(1);
    let a = root().get("a");
    let _ = tx(&mut d, |t| {
        t.assign(&a, Value::EmptyMap)?;
        t.assign(&a.get("x"), 1)?;
        t.assign(&a, "s")
    });
    assert_eq!(d.to_json(), json!({"a": "s"}));
    assert!(
        d.keys_at(&a).unwrap().is_empty(),
        "the paper's literal rule would leave x"
    );
    assert_eq!(d.conflicts("a").unwrap().len(), 1);
    // The opposite direction clears the register, as in the paper.
    let _ = tx(&mut d, |t| t.assign(&a, Value::EmptyMap));
    assert_eq!(d.to_json(), json!({"a": {}}));
    assert!(d.values_at(&a).unwrap().is_empty());
}

#[test]
fn departure_keeps_concurrent_writes_under_the_cleared_map() {
    let (mut p, mut q) = (doc(2), doc(1));
    let a = root().get("a");
    let c0 = tx(&mut p, |t| t.assign(&a, Value::EmptyMap));
    deliver(&mut q, &[c0]);
    let cp = tx(&mut p, |t| t.assign(&a, "s"));
    let cq = tx(&mut q, |t| t.assign(&a.get("x"), 1));
    deliver(&mut p, &[cq]);
    deliver(&mut q, &[cp]);
    for d in [&p, &q] {
        // Both survive: the string ((2,p) is the greatest id, so to_json shows it) and the
        // concurrent map entry.
        let c = d.conflicts("a").unwrap();
        assert_eq!(
            c.iter().map(|c| c.value.clone()).collect::<Vec<_>>(),
            vec![json!("s"), json!({"x": 1})]
        );
        assert_eq!(d.to_json(), json!({"a": "s"}));
    }
    assert_eq!(p.canonical_state(), q.canonical_state());
}
