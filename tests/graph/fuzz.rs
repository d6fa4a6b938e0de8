//! Decoders and the receive path on arbitrary bytes: never a panic, always a typed error, and
//! never a state change.

use proptest::prelude::*;
use sealdoc::graph::{GraphError, Have, Received, SignedDoc, SignedNode, SyncMessage, Want};
use serde_json::json;

use crate::common::*;

fn valid_nodes() -> (SignedDoc, Vec<Vec<u8>>) {
    let mut a = replica(1);
    let mut nodes = Vec::new();
    nodes.extend(
        a.change(|tx| tx.set("t", json!({"x": [1, 2.5, "s", null, true]})))
            .unwrap()
            .nodes,
    );
    nodes.extend(a.change(|tx| tx.set("text", json!([]))).unwrap().nodes);
    nodes.extend(
        a.change(|tx| tx.splice_text("text", 0, 0, "hello"))
            .unwrap()
            .nodes,
    );
    nodes.extend(
        a.change(|tx| tx.splice_text("text", 1, 2, "EY"))
            .unwrap()
            .nodes,
    );
    (a, nodes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedNode::decode(&bytes);
        let _ = SyncMessage::decode(&bytes);
        let _ = Have::decode(&bytes);
        let _ = Want::decode(&bytes);
        let _ = sealdoc::graph::NodeBody::decode(&bytes);
    }

    #[test]
    fn mutated_nodes_never_panic_and_never_change_state(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let (_, nodes) = valid_nodes();
        let mut b = replica(2);
        deliver(&mut b, &nodes[..which]);
        let mut m = nodes[which].clone();
        for (at, byte, kind) in edits {
            let at = at % (m.len() + 1);
            match kind {
                0 if at < m.len() => m[at] = byte,
                1 => m.insert(at, byte),
                _ if at < m.len() => { m.remove(at); }
                _ => m.push(byte),
            }
        }
        let before = snapshot(&b);
        match b.receive(&m) {
            Ok(Received::Applied(_)) => prop_assert_eq!(&m, &nodes[which], "only the genuine node applies"),
            Ok(other) => prop_assert!(false, "unexpected {:?}", other),
            Err(e) => {
                prop_assert_eq!(snapshot(&b), before);
                prop_assert!(!matches!(e, GraphError::Internal(_)));
            }
        }
    }
}

#[test]
fn the_decoder_refuses_every_prefix_of_a_valid_node() {
    let (_, nodes) = valid_nodes();
    for n in &nodes {
        for cut in 0..n.len() {
            assert!(SignedNode::decode(&n[..cut]).is_err());
        }
        assert!(SignedNode::decode(n).is_ok());
    }
}
