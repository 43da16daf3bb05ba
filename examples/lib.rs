//! Example programs built on stateify: a userspace netstack whose listening
//! sockets come back through `after_load`/`defer` hooks, and a timer wheel
//! re-armed against the restoring process's clock. `sandbox.rs` puts them
//! into a whole sandbox that is checkpointed in one process and restored in
//! another.

pub mod netstack;
pub mod timers;
