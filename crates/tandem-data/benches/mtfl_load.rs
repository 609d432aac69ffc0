//! Benchmarks of loading MTFL.
fn main() {}
