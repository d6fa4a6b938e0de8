//! Tampering with group envelopes at the pipeline level: every flipped byte, truncation,
//! extension and swapped ciphertext is refused with its own typed error (or, for a flipped
//! epoch id, parked as an unknown epoch and never applied), and leaves the member as it was.

use sealdoc::crypto::CryptoError;
use sealdoc::group::{GroupError, GroupPolicy, Member, Pending, Received, Role};
use serde_json::json;

use crate::common::*;

/// Alice (admin) and Bob (writer); Alice's change, not yet delivered to Bob.
fn setup() -> (Vec<Member>, Vec<u8>, Vec<u8>) {
    let mut r = rng(10);
    let mut ms = group(2, GroupPolicy::full_history(), Role::Writer, &mut r);
    let one = ms[0]
        .change(|tx| tx.set("k", "v1"), &mut r)
        .unwrap()
        .outbound;
    let two = ms[0]
        .change(|tx| tx.set("j", "v2"), &mut r)
        .unwrap()
        .outbound;
    assert_eq!((one.broadcast.len(), two.broadcast.len()), (1, 1));
    (ms, one.broadcast[0].clone(), two.broadcast[0].clone())
}

/// Asserts `bytes` is refused with an error matching `check`, and nothing changed.
fn refused(m: &mut Member, bytes: &[u8], check: impl Fn(&GroupError) -> bool) {
    let before = snapshot(m);
    let res = m.receive(bytes, &mut rng(0));
    match &res {
        Err(e) => assert!(check(e), "unexpected error {e:?}"),
        Ok(r) => panic!("accepted: {r:?}"),
    }
    assert_eq!(snapshot(m), before);
}

fn auth_failed(e: &GroupError) -> bool {
    matches!(e, GroupError::Envelope(CryptoError::AuthenticationFailed))
}

/// Header layout with one epoch: magic 0..2, version 2, suite 3, kind 4, tag 5..21, count 21,
/// epoch 22..38, nonce 38..62, commitment 62..94, ciphertext 94..len-16, tag len-16..len.
const EPOCH: std::ops::Range<usize> = 22..38;
const NONCE: std::ops::Range<usize> = 38..62;
const COMMIT: std::ops::Range<usize> = 62..94;
const BODY: usize = 94;

#[test]
fn every_flipped_header_byte_is_refused() {
    let (mut ms, env, _) = setup();
    let b = &mut ms[1];
    for i in 0..BODY {
        let mut t = env.clone();
        t[i] ^= 0x80;
        if EPOCH.contains(&i) {
            // An epoch id nobody knows: parked, never applied.
            let before = snapshot(b);
            let r = b.receive(&t, &mut rng(0)).unwrap();
            assert!(
                matches!(r, Received::Pending(Pending::UnknownEpoch(_))),
                "byte {i}: {r:?}"
            );
            let after = snapshot(b);
            assert_eq!(after.parked.0, before.parked.0 + 1);
            assert_eq!((after.heads, after.state), (before.heads, before.state));
            continue;
        }
        refused(b, &t, |e| match i {
            0 | 1 => matches!(e, GroupError::Envelope(CryptoError::BadMagic { .. })),
            2 => matches!(
                e,
                GroupError::Envelope(CryptoError::UnsupportedVersion { .. })
            ),
            3 => matches!(
                e,
                GroupError::Envelope(CryptoError::UnsupportedSuite { .. })
            ),
            4 => matches!(e, GroupError::Envelope(CryptoError::UnexpectedKind { .. })),
            21 => matches!(e, GroupError::Envelope(CryptoError::EpochCount { .. })),
            // Group tag (associated data), nonce (commitment), commitment.
            _ => auth_failed(e),
        });
    }
    // The genuine envelope still applies, exactly once.
    assert!(applied(&b.receive(&env, &mut rng(0)).unwrap()));
    assert_eq!(b.doc().get("k"), Some(json!("v1")));
    assert_eq!(b.receive(&env, &mut rng(0)).unwrap(), Received::Duplicate);
}

#[test]
fn every_flipped_nonce_commitment_ciphertext_and_tag_byte_is_refused() {
    let (mut ms, env, _) = setup();
    let b = &mut ms[1];
    let regions = [
        NONCE,
        COMMIT,
        BODY..env.len() - 16,
        env.len() - 16..env.len(),
    ];
    for region in regions {
        for i in region {
            for bit in [0x01u8, 0x80] {
                let mut t = env.clone();
                t[i] ^= bit;
                refused(b, &t, auth_failed);
            }
        }
    }
    assert!(applied(&b.receive(&env, &mut rng(0)).unwrap()));
}

#[test]
fn truncated_and_extended_envelopes_are_refused() {
    let (mut ms, env, _) = setup();
    let b = &mut ms[1];
    for len in [
        0,
        1,
        4,
        21,
        30,
        BODY - 1,
        BODY,
        BODY + 100,
        env.len() - 17,
        env.len() - 1,
    ] {
        refused(b, &env[..len], |e| {
            matches!(
                e,
                GroupError::Envelope(
                    CryptoError::Truncated { .. }
                        | CryptoError::CiphertextTooShort { .. }
                        | CryptoError::AuthenticationFailed
                )
            )
        });
    }
    for extra in [&[0u8][..], &[0; 16], &[0xff; 300]] {
        let mut t = env.clone();
        t.extend_from_slice(extra);
        refused(b, &t, auth_failed);
    }
    let mut huge = env.clone();
    huge.resize(40 * 1024, 0);
    refused(b, &huge, |e| {
        matches!(e, GroupError::Envelope(CryptoError::TooLarge { .. }))
    });
    assert!(applied(&b.receive(&env, &mut rng(0)).unwrap()));
}

#[test]
fn swapped_ciphertexts_are_refused() {
    let (mut ms, one, two) = setup();
    let b = &mut ms[1];
    assert_eq!(one.len(), two.len());
    // Header and nonce of one, ciphertext of the other, and the reverse.
    let mut x = one[..BODY].to_vec();
    x.extend_from_slice(&two[BODY..]);
    let mut y = two[..BODY].to_vec();
    y.extend_from_slice(&one[BODY..]);
    refused(b, &x, auth_failed);
    refused(b, &y, auth_failed);
    // Swapping only the tags.
    let mut z = one.clone();
    let n = z.len();
    z[n - 16..].copy_from_slice(&two[n - 16..]);
    refused(b, &z, auth_failed);
    assert!(applied(&b.receive(&one, &mut rng(0)).unwrap()));
    assert!(applied(&b.receive(&two, &mut rng(0)).unwrap()));
    assert_eq!(b.doc().get("j"), Some(json!("v2")));
}
