//! Public-API tests of the group layer (`sealdoc::group`), built as one binary with submodules
//! to save link time.

// Helpers outside `#[test]` functions are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "group/common.rs"]
mod common;

#[path = "group/api.rs"]
mod api;
#[path = "group/basics.rs"]
mod basics;
#[path = "group/context.rs"]
mod context;
#[path = "group/forge.rs"]
mod forge;
#[path = "group/fuzz.rs"]
mod fuzz;
#[path = "group/graph_hooks.rs"]
mod graph_hooks;
#[path = "group/history.rs"]
mod history;
#[path = "group/order.rs"]
mod order;
#[path = "group/property.rs"]
mod property;
#[path = "group/removal.rs"]
mod removal;
#[path = "group/replay.rs"]
mod replay;
#[path = "group/roles.rs"]
mod roles;
#[path = "group/rules.rs"]
mod rules;
#[path = "group/tamper.rs"]
mod tamper;
#[path = "group/vectors.rs"]
mod vectors;
