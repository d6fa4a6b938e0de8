//! Golden vectors (fixed seeds, ChaCha20 RNG): a group's genesis, an Add with its welcome, a
//! content envelope, a key update and its history link, and their epoch ids. Any change to a
//! wire format or to the key schedule breaks them on purpose; regenerate only with
//! `SEALDOC_BLESS=1 cargo test --test group vectors` after bumping the version.
//!
//! The stored bytes are also replayed into a fresh member, which must open every envelope and
//! reach the stored document: the vectors check decoding, not only encoding.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sealdoc::crypto::{parse_group_header, EnvelopeLimits, EpochId};
use sealdoc::graph::SignedNode;
use sealdoc::group::{GroupPolicy, Joined, Member, Role, KDF_HISTORY_CONTEXT};
use serde_json::{json, Value};

use crate::common::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/group/group.json")
}

fn hash_of(node: &[u8]) -> String {
    hex(SignedNode::decode(node).unwrap().hash().as_bytes())
}

/// The scenario, from fixed seeds: Alice creates a `Full` group, adds Bob, writes, rotates,
/// writes again.
fn generate() -> (Value, Member) {
    let mut r = ChaCha20Rng::from_seed([0x5e; 32]);
    let mut alice = create(1, GroupPolicy::full_history(), &mut r);
    let genesis = alice.log().node_bytes(&alice.heads()[0]).unwrap().to_vec();
    let add = alice.add(&card(2), Role::Writer, &mut r).unwrap().outbound;
    let bob = welcome(joiner(2), &add);
    let add_node = alice.open_envelope(&add.broadcast[0]);
    let change = alice
        .change(|tx| tx.set("title", "Groceries"), &mut r)
        .unwrap()
        .outbound;
    let rotate = alice.key_update(&mut r).unwrap().outbound;
    let second = alice
        .change(|tx| tx.set("items", json!(["milk"])), &mut r)
        .unwrap()
        .outbound;
    let mut bob = bob;
    for out in [&change, &rotate, &second] {
        deliver(&mut bob, out, &mut r);
    }
    assert_eq!(bob.doc().to_json(), alice.doc().to_json());
    let open = |m: &mut Member, env: &[u8]| m.open_envelope(env).unwrap().to_vec();
    let change_node = open(&mut bob, &change.broadcast[0]);
    let rotate_node = open(&mut bob, &rotate.broadcast[0]);
    let epochs: Vec<String> = alice
        .epochs()
        .iter()
        .map(|(id, _)| hex(id.as_bytes()))
        .collect();
    let header = parse_group_header(&change.broadcast[0], &EnvelopeLimits::default()).unwrap();
    let v = json!({
        "about": "sealdoc group layer golden vectors; see tests/group/vectors.rs",
        "labels": { "KDF_HISTORY_CONTEXT": KDF_HISTORY_CONTEXT },
        "group_id": hex(alice.group().as_bytes()),
        "genesis_node": hex(&genesis),
        "genesis_hash": hash_of(&genesis),
        "genesis_control": hex(SignedNode::decode(&genesis).unwrap().body().payload.group_bytes().unwrap()),
        "add_node": hex(&add_node.unwrap()),
        "add_envelope": hex(&add.broadcast[0]),
        "welcome_envelopes": add.direct.iter().map(|(_, e)| hex(e)).collect::<Vec<_>>(),
        "content_node": hex(&change_node),
        "content_hash": hash_of(&change_node),
        "content_envelope": hex(&change.broadcast[0]),
        "content_group_tag": hex(header.group_tag().as_bytes()),
        "key_update_node": hex(&rotate_node),
        "key_update_envelope": hex(&rotate.broadcast[0]),
        "second_envelope": hex(&second.broadcast[0]),
        "epoch_ids": epochs,
        "epoch_id_of_genesis": hex(EpochId::for_op(&unhex(&hash_of(&genesis)).try_into().unwrap()).as_bytes()),
        "document": alice.doc().to_json(),
    });
    (v, bob)
}

#[test]
fn golden_vectors_are_stable() {
    let (generated, _) = generate();
    let path = path();
    if std::env::var("SEALDOC_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&generated).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with SEALDOC_BLESS=1", path.display()));
    let stored: Value = serde_json::from_str(&text).unwrap();
    for (k, v) in generated.as_object().unwrap() {
        assert_eq!(
            &stored[k], v,
            "{k} differs from the stored vector: the wire format or key schedule changed. \
             If intended, bump the version and re-bless with SEALDOC_BLESS=1."
        );
    }
}

#[test]
fn stored_vectors_open_and_replay() {
    if std::env::var("SEALDOC_BLESS").as_deref() == Ok("1") {
        return;
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let s = |k: &str| unhex(v[k].as_str().unwrap());
    // Bob, rebuilt from his seeds, joins from the stored welcome alone.
    let mut j = joiner(2);
    for w in v["welcome_envelopes"].as_array().unwrap() {
        let _ = j.receive(&unhex(w.as_str().unwrap())).unwrap();
    }
    let Joined { mut member, .. } = j.finish().unwrap();
    assert_eq!(
        hex(member.group().as_bytes()),
        v["group_id"].as_str().unwrap()
    );
    assert_eq!(v["group_id"], v["genesis_hash"]);
    let mut r = rng(0);
    // The stored envelopes open to the stored nodes, and apply.
    assert_eq!(
        member
            .open_envelope(&s("content_envelope"))
            .unwrap()
            .to_vec(),
        s("content_node")
    );
    for k in [
        "add_envelope",
        "content_envelope",
        "key_update_envelope",
        "second_envelope",
    ] {
        let _ = member.receive(&s(k), &mut r).unwrap();
    }
    assert_eq!(
        member
            .open_envelope(&s("key_update_envelope"))
            .unwrap()
            .to_vec(),
        s("key_update_node")
    );
    assert_eq!(member.doc().to_json(), v["document"]);
    let ids: Vec<String> = member
        .epochs()
        .iter()
        .map(|(id, _)| hex(id.as_bytes()))
        .collect();
    assert_eq!(json!(ids), v["epoch_ids"]);
    assert_eq!(v["epoch_ids"][0], v["epoch_id_of_genesis"]);
}
