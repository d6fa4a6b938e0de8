#!/usr/bin/env bash
# The live transport tests, against throw-away servers on loopback:
#
#   bash scripts/live-tests.sh [extra cargo test args]
#
# starts (installing on first use) Synapse (scripts/synapse.sh) and Postfix + Dovecot
# (scripts/mail.sh, needs root and apt the first time), runs tests/matrix_live.rs,
# tests/email_live.rs (envelope bytes) and tests/replica_live.rs (whole replicas) with their
# figures printed, then the `matrix` and `email` examples once, and stops the servers it
# started (set SEALDOC_KEEP_SERVERS=1 to leave them running; SEALDOC_SKIP_EXAMPLES=1 skips the
# examples). Server state and logs are under target/live/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=()
cleanup() {
    if [[ ${SEALDOC_KEEP_SERVERS:-0} != 1 ]]; then
        for s in "${started[@]}"; do
            bash "scripts/$s.sh" stop || true
        done
    fi
}
trap cleanup EXIT

for s in synapse mail; do
    t0=$SECONDS
    if ! bash "scripts/$s.sh" status >/dev/null 2>&1; then
        started+=("$s")
    fi
    bash "scripts/$s.sh" start
    echo "live-tests.sh: $s ready after $((SECONDS - t0)) s"
    eval "$(bash "scripts/$s.sh" env)"
done

# Missing settings are failures here, and the outage tests may stop and restart the servers.
export SEALDOC_REQUIRE_LIVE=1 SEALDOC_LIVE_CONTROL=1
cargo test --all-features --test matrix_live --test email_live --test replica_live "$@" -- --nocapture
if [[ ${SEALDOC_SKIP_EXAMPLES:-0} != 1 ]]; then
    cargo run --profile test --all-features --example matrix
    cargo run --profile test --all-features --example email
fi
