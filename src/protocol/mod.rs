//! The PostgreSQL v3 wire format as plain functions over bytes: framing on the 5-byte header,
//! zero-copy views of the few messages the proxy inspects, and builders for the ones it makes.
//! No I/O here; every length from a peer is checked before it is trusted.

pub mod backend;
pub mod build;
pub mod frame;
pub mod frontend;
pub mod reader;
pub mod startup;

pub use frame::{Frame, FrameError};
