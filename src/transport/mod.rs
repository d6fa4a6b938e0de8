//! Ready-made transports for envelopes, each behind its cargo feature.
//!
//! A transport moves opaque envelope bytes between replicas and knows nothing else about them:
//! no keys, no ops, no ordering guarantees. Everything it hands over is untrusted input for
//! the replica, which authenticates, deduplicates and orders it. So every transport here may
//! deliver an envelope twice or out of order, and says so; none ever drops one silently.
//!
//! * `matrix` (feature `matrix`, HTTPS with `matrix-tls`): envelopes as custom room events
//!   (`org.sealdoc.v1.envelope`) through a Matrix homeserver's client-server API, armoured
//!   and chunked by [`crate::armour`]; receives by `/sync` and fills `limited` gaps from
//!   `/messages`.
//! * `email` (feature `email`, TLS with `email-tls`): one envelope per message as an
//!   `application/octet-stream` attachment, SMTP out and IMAP in.
//!
//! Both are blocking, put a timeout on every network call, and return typed errors with an
//! `is_transient` test: a transient failure (server down, timeout, rate limit) means "keep
//! the envelope and try again later", which [`Outbox`] does.
//!
//! `scripts/synapse.sh` and `scripts/mail.sh` start throw-away servers on loopback;
//! `scripts/live-tests.sh` runs `tests/matrix_live.rs` and `tests/email_live.rs` against them.

use std::collections::VecDeque;

#[cfg(feature = "email")]
pub mod email;
#[cfg(feature = "matrix")]
pub mod matrix;

/// Most envelopes an [`Outbox`] holds by default.
///
/// A replica produces an envelope per local change batch; 4096 unsent ones is hours of
/// offline editing. Past the bound [`Outbox::push`] refuses instead of growing without limit.
pub const DEFAULT_OUTBOX_CAPACITY: usize = 4096;

/// Envelopes waiting to be sent, in order, retried after transient failures.
///
/// A transport's `send` either succeeds or returns an error; the outbox keeps every envelope
/// until a send succeeds, so a server that is down for a while loses nothing. The transports
/// here make retries idempotent where the server allows it (Matrix transaction ids), and the
/// replica ignores duplicates anyway.
#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Vec<u8>>,
    capacity: usize,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new(DEFAULT_OUTBOX_CAPACITY)
    }
}

impl Outbox {
    /// An empty outbox holding at most `capacity` envelopes (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Outbox {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues an envelope behind the ones already waiting.
    ///
    /// # Errors
    ///
    /// Gives the envelope back when the outbox is full.
    pub fn push(&mut self, envelope: Vec<u8>) -> Result<(), Vec<u8>> {
        if self.queue.len() >= self.capacity {
            return Err(envelope);
        }
        self.queue.push_back(envelope);
        Ok(())
    }

    /// Number of envelopes waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Sends waiting envelopes in order with `send`, removing each one that was sent, and
    /// stops at the first failure, which keeps that envelope and everything behind it.
    /// Returns how many were sent.
    ///
    /// # Errors
    ///
    /// The first error `send` returned; the envelopes not yet sent stay queued.
    pub fn flush<E>(
        &mut self,
        mut send: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, (usize, E)> {
        let mut sent = 0;
        while let Some(front) = self.queue.front() {
            match send(front) {
                Ok(()) => {
                    self.queue.pop_front();
                    sent += 1;
                }
                Err(e) => return Err((sent, e)),
            }
        }
        Ok(sent)
    }
}

/// Lower-case hex of `bytes` (transaction ids, message ids and headers).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_keeps_everything_after_a_failure_and_resumes_in_order() {
        let mut o = Outbox::new(10);
        for i in 0..5u8 {
            o.push(vec![i]).unwrap();
        }
        let mut got = Vec::new();
        let r = o.flush(|e| {
            if e[0] == 2 {
                Err("down")
            } else {
                got.push(e[0]);
                Ok(())
            }
        });
        assert!(matches!(r, Err((2, "down"))));
        assert_eq!(o.len(), 3);
        let r: Result<usize, (usize, ())> = o.flush(|e| {
            got.push(e[0]);
            Ok(())
        });
        assert!(matches!(r, Ok(3)));
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        assert!(o.is_empty());
    }

    #[test]
    fn full_outbox_gives_the_envelope_back() {
        let mut o = Outbox::new(1);
        o.push(vec![1]).unwrap();
        assert_eq!(o.push(vec![2]), Err(vec![2]));
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
