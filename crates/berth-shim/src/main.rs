//! berth-shim: the per-container supervisor (see berth-shim-protocol for its contract).
fn main() {}
