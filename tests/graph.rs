//! Public-API tests of the signed operation graph (`sealdoc::graph`), built as one binary with
//! submodules to save link time.

// Helpers outside `#[test]` functions are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "graph/common.rs"]
mod common;

#[path = "graph/api.rs"]
mod api;
#[path = "graph/buffer.rs"]
mod buffer;
#[path = "graph/convergence.rs"]
mod convergence;
#[path = "graph/equivocation.rs"]
mod equivocation;
#[path = "graph/forged.rs"]
mod forged;
#[path = "graph/fuzz.rs"]
mod fuzz;
