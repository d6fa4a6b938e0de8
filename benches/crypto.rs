//! Cost of the crypto layer next to the raw primitives it is built from, measured in one run:
//! group envelope seal/open for a small op (~100 B) and a large one (10 KiB), raw
//! XChaCha20-Poly1305 on the same plaintexts, Ed25519 sign / `verify_strict`, X25519 sealing of
//! an epoch secret, direct envelopes and the group key derivation.
//!
//! Custom harness, about 15 s in total: `cargo bench --bench crypto`. Set
//! `SEALDOC_BENCH_MS` to change the time spent per row (default 400 ms).

use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signer, SigningKey};
use rand_core::OsRng;
use sealdoc::crypto::{
    open_direct, open_group, parse_group_header, seal_direct, seal_epoch_secret, seal_group,
    DeviceKemSecret, DirectContent, DirectRecipient, EnvelopeLimits, EpochRoot, EpochSecret,
    GroupHeaderFields, GroupKeys, GroupKind, SealContext, SealRecipient,
};

struct Row {
    name: String,
    bytes: usize,
    ns_per_op: f64,
}

/// Runs `f` repeatedly for `budget` (after a short warm-up) and records the mean time per call.
fn measure(
    rows: &mut Vec<Row>,
    name: &str,
    bytes: usize,
    budget: Duration,
    mut f: impl FnMut() -> Result<(), Box<dyn Error>>,
) -> Result<(), Box<dyn Error>> {
    let warm = Instant::now();
    while warm.elapsed() < budget / 8 {
        f()?;
    }
    let mut iters: u64 = 0;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..16 {
            f()?;
        }
        iters += 16;
    }
    let ns_per_op = start.elapsed().as_nanos() as f64 / iters as f64;
    rows.push(Row {
        name: name.to_owned(),
        bytes,
        ns_per_op,
    });
    Ok(())
}

/// `chacha20poly1305::Error` does not implement `std::error::Error` without its `std` feature.
fn aead_err(_: chacha20poly1305::Error) -> Box<dyn Error> {
    "AEAD failure".into()
}

fn main() -> Result<(), Box<dyn Error>> {
    // `cargo test --benches` runs bench binaries with `--bench` absent; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let ms = std::env::var("SEALDOC_BENCH_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400u64);
    let budget = Duration::from_millis(ms);
    let limits = EnvelopeLimits::default();
    let mut rows = Vec::new();

    let root = EpochRoot::derive(&EpochSecret::generate(&mut OsRng), &[1; 32], &[2; 32]);
    let keys = GroupKeys::derive(&[&root])?;
    let fields = GroupHeaderFields {
        kind: GroupKind::Group,
        group_tag: keys.epoch_tag(),
    };
    let cipher = XChaCha20Poly1305::new(&[7u8; 32].into());
    let nonce = XNonce::from([9u8; 24]);

    for size in [100usize, 10 * 1024] {
        let pt = vec![0x5au8; size];
        measure(&mut rows, "group envelope seal", size, budget, || {
            black_box(seal_group(
                &keys,
                &fields,
                black_box(&pt),
                &limits,
                &mut OsRng,
            )?);
            Ok(())
        })?;
        let env = seal_group(&keys, &fields, &pt, &limits, &mut OsRng)?;
        measure(
            &mut rows,
            "group envelope parse + open",
            size,
            budget,
            || {
                let h = parse_group_header(black_box(&env), &limits)?;
                black_box(open_group(&h, &keys)?);
                Ok(())
            },
        )?;
        let mut buf = pt.clone();
        measure(
            &mut rows,
            "raw XChaCha20-Poly1305 encrypt",
            size,
            budget,
            || {
                buf.copy_from_slice(&pt);
                black_box(
                    cipher
                        .encrypt_in_place_detached(&nonce, b"", &mut buf)
                        .map_err(aead_err)?,
                );
                Ok(())
            },
        )?;
        let mut ct = pt.clone();
        let tag = cipher
            .encrypt_in_place_detached(&nonce, b"", &mut ct)
            .map_err(aead_err)?;
        measure(
            &mut rows,
            "raw XChaCha20-Poly1305 decrypt",
            size,
            budget,
            || {
                buf.copy_from_slice(&ct);
                cipher
                    .decrypt_in_place_detached(&nonce, b"", &mut buf, &tag)
                    .map_err(aead_err)?;
                black_box(&buf);
                Ok(())
            },
        )?;
    }

    let sig = SigningKey::generate(&mut OsRng);
    let msg = [0x42u8; 100];
    measure(&mut rows, "Ed25519 sign", msg.len(), budget, || {
        black_box(sig.sign(black_box(&msg)));
        Ok(())
    })?;
    let signature = sig.sign(&msg);
    let vk = sig.verifying_key();
    measure(
        &mut rows,
        "Ed25519 verify_strict",
        msg.len(),
        budget,
        || {
            vk.verify_strict(black_box(&msg), &signature)?;
            Ok(())
        },
    )?;

    let kem = DeviceKemSecret::generate(&mut OsRng);
    let secret = EpochSecret::generate(&mut OsRng);
    let ctx = SealContext {
        group: [1; 32],
        author: [2; 32],
        salt: [3; 16],
    };
    let recipient = SealRecipient {
        index: 0,
        device: vk.to_bytes(),
        kem_public: kem.public_key(),
    };
    measure(&mut rows, "X25519 seal epoch secret", 32, budget, || {
        black_box(seal_epoch_secret(&secret, &ctx, &recipient, &mut OsRng)?);
        Ok(())
    })?;
    let sealed = seal_epoch_secret(&secret, &ctx, &recipient, &mut OsRng)?;
    measure(&mut rows, "X25519 open epoch secret", 32, budget, || {
        black_box(kem.open_epoch_secret(&sealed, &ctx, &vk.to_bytes())?);
        Ok(())
    })?;

    let payload = vec![0x11u8; 1024];
    let content = DirectContent {
        group: [1; 32],
        content_type: 1,
        payload: &payload,
    };
    let to = DirectRecipient {
        device: vk.to_bytes(),
        kem_public: kem.public_key(),
    };
    measure(
        &mut rows,
        "direct envelope seal (sign + X25519)",
        1024,
        budget,
        || {
            black_box(seal_direct(&sig, &to, &content, &limits, &mut OsRng)?);
            Ok(())
        },
    )?;
    let direct = seal_direct(&sig, &to, &content, &limits, &mut OsRng)?;
    measure(
        &mut rows,
        "direct envelope open (X25519 + verify)",
        1024,
        budget,
        || {
            black_box(open_direct(&direct, &kem, &vk.to_bytes(), &limits)?);
            Ok(())
        },
    )?;

    let heads: Vec<EpochRoot> = (0..4u8)
        .map(|i| EpochRoot::derive(&EpochSecret::generate(&mut OsRng), &[i; 32], &[2; 32]))
        .collect();
    measure(&mut rows, "GroupKeys::derive, 1 head", 0, budget, || {
        black_box(GroupKeys::derive(&[&heads[0]])?);
        Ok(())
    })?;
    let refs: Vec<&EpochRoot> = heads.iter().collect();
    measure(
        &mut rows,
        "GroupKeys::derive, 4 heads merged",
        0,
        budget,
        || {
            black_box(GroupKeys::derive(&refs)?);
            Ok(())
        },
    )?;

    println!();
    println!("| operation | bytes | µs/op | ops/s | MiB/s |");
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        let us = r.ns_per_op / 1000.0;
        let ops = 1e9 / r.ns_per_op;
        let mibs = if r.bytes > 0 {
            format!("{:.1}", r.bytes as f64 * ops / (1024.0 * 1024.0))
        } else {
            "-".to_owned()
        };
        println!(
            "| {} | {} | {:.2} | {:.0} | {} |",
            r.name, r.bytes, us, ops, mibs
        );
    }
    Ok(())
}
