//! `Stateify` for std types, grouped by kind.

mod collections;
mod net;
mod pointers;
mod primitives;
mod sync;
