//! The hooks the group layer builds on: opaque group payloads, the genesis rule, skeletons
//! (opaque nodes), and refusals that are not remembered.

use sealdoc::graph::wire::NODE_VERSION;
use sealdoc::graph::{
    Apply, DecodeError, Device, GraphError, GroupId, Log, NodeBody, Outcome, Payload, Ready,
    Received, SignedDoc, SignedNode,
};
use serde_json::json;

fn group() -> GroupId {
    GroupId::from_bytes([0x42; 32])
}

fn device(seed: u8) -> Device {
    Device::from_seed(&[seed; 32])
}

fn replica(seed: u8) -> SignedDoc {
    SignedDoc::new(device(seed), group())
}

fn one(nodes: Vec<Vec<u8>>) -> Vec<u8> {
    assert_eq!(nodes.len(), 1);
    nodes.into_iter().next().unwrap()
}

fn body_of(bytes: &[u8]) -> NodeBody {
    SignedNode::decode(bytes).unwrap().body().clone()
}

fn deliver(to: &mut SignedDoc, nodes: &[Vec<u8>]) {
    for n in nodes {
        let _ = to.receive(n).unwrap();
    }
}

fn group_node(
    d: &Device,
    group: GroupId,
    seq: u64,
    lamport: u64,
    deps: Vec<sealdoc::graph::NodeHash>,
    bytes: &[u8],
) -> Vec<u8> {
    d.sign(&NodeBody {
        version: NODE_VERSION,
        group,
        author: d.id(),
        seq,
        lamport,
        deps,
        payload: Payload::Group(bytes.to_vec()),
    })
    .unwrap()
}

#[test]
fn a_group_payload_is_opaque_takes_no_counter_and_changes_no_document() {
    let mut a = replica(1);
    let mut b = replica(2);
    let first = one(a.change(|tx| tx.set("x", 1)).unwrap().nodes);
    deliver(&mut b, std::slice::from_ref(&first));
    let h = SignedNode::decode(&first).unwrap().hash();
    let ctl = group_node(&device(2), group(), 1, 2, vec![h], b"membership op");
    let before = b.doc().canonical_state();
    assert!(matches!(b.receive(&ctl).unwrap(), Received::Applied(p) if p.is_empty()));
    assert_eq!(b.doc().canonical_state(), before);
    let body = body_of(&ctl);
    assert_eq!(body.payload.group_bytes(), Some(&b"membership op"[..]));
    assert_eq!((body.op_count(), body.lamport_end()), (0, 1));
    // The next change's counter is as if the group node were not there.
    let next = one(b.change(|tx| tx.set("y", 2)).unwrap().nodes);
    assert_eq!(body_of(&next).lamport, 2);
    deliver(&mut a, &[ctl, next]);
    assert_eq!(a.doc().get("y"), Some(json!(2)));
    // An empty group payload is malformed.
    let empty = group_node(&device(2), group(), 1, 1, vec![], b"");
    assert!(matches!(
        SignedNode::decode(&empty),
        Err(DecodeError::Empty { .. })
    ));
}

#[test]
fn only_the_genesis_may_name_the_zero_group_and_its_hash_is_the_group_id() {
    let d = device(1);
    let genesis = group_node(&d, GroupId::GENESIS, 1, 1, vec![], b"genesis");
    let id = GroupId::from_genesis(SignedNode::decode(&genesis).unwrap().hash());
    let mut s = SignedDoc::new(device(1), id);
    assert!(matches!(s.receive(&genesis).unwrap(), Received::Applied(_)));
    // Another zero-group node is refused, in this group and in others.
    let other = group_node(
        &device(2),
        GroupId::GENESIS,
        1,
        1,
        vec![],
        b"another genesis",
    );
    assert!(matches!(
        s.receive(&other),
        Err(GraphError::WrongGroup { .. })
    ));
    let mut t = replica(3);
    assert!(matches!(
        t.receive(&genesis),
        Err(GraphError::WrongGroup { .. })
    ));
}

#[test]
fn a_skeleton_places_a_node_without_its_content() {
    let mut a = replica(1);
    let n1 = one(a.change(|tx| tx.set("list", json!(["a"]))).unwrap().nodes);
    let n2 = one(a.change(|tx| tx.push("list", "b")).unwrap().nodes);
    let h1 = SignedNode::decode(&n1).unwrap().hash();
    let h2 = SignedNode::decode(&n2).unwrap().hash();
    let s1 = a.log().skeleton(&h1).unwrap();
    let s2 = a.log().skeleton(&h2).unwrap();
    let mut log = Log::new(group());
    assert!(matches!(
        log.insert_skeleton(&s2),
        Err(GraphError::MissingDependency { dep }) if dep == h1
    ));
    assert!(log.insert_skeleton(&s1).unwrap());
    assert!(log.insert_skeleton(&s2).unwrap());
    assert!(!log.insert_skeleton(&s2).unwrap());
    assert!(log.is_opaque(&h1) && log.node_bytes(&h1).is_none());
    assert_eq!(log.heads(), a.heads());
    // The node itself is then a duplicate, and opaque nodes are never offered to peers.
    struct Nothing;
    impl Apply for Nothing {
        type Effect = ();
        fn apply(&mut self, _: &Ready<'_>) -> Result<(), GraphError> {
            Ok(())
        }
    }
    assert_eq!(log.receive(&n1, &mut Nothing).unwrap(), Outcome::Duplicate);
    let have = replica(9).have();
    assert!(log.answer_have(&have).unwrap().is_empty());
    assert_eq!(
        sealdoc::graph::Skeleton::decode(&s2.encode().unwrap()).unwrap(),
        s2
    );
}

#[test]
fn a_refusal_for_the_delivery_is_not_remembered() {
    struct Refuse(bool);
    impl Apply for Refuse {
        type Effect = ();
        fn apply(&mut self, _: &Ready<'_>) -> Result<(), GraphError> {
            if self.0 {
                Err(GraphError::NotApplied("delivered in the wrong envelope"))
            } else {
                Err(GraphError::Refused("author is not a member"))
            }
        }
    }
    let mut a = replica(1);
    let n = one(a.change(|tx| tx.set("x", 1)).unwrap().nodes);
    let h = SignedNode::decode(&n).unwrap().hash();
    let mut log = Log::new(group());
    assert!(matches!(
        log.receive(&n, &mut Refuse(true)),
        Err(GraphError::NotApplied(_))
    ));
    assert!(!log.is_invalid(&h) && log.is_empty());
    let err = log.receive(&n, &mut Refuse(false)).unwrap_err();
    assert!(err.is_invalid_node());
    assert!(log.is_invalid(&h));
}
