//! `Stateify` for std types, grouped by kind.

mod collections;
mod net;
mod pointers;
pub use pointers::DynLoad;
mod primitives;
mod sync;
