//! CLI wiring only.
fn main() {}
