//! Everything that touches a socket: the listener, the per-connection handshake and relay
//! loops, catalog lookups against the upstream, and cancel routing.

pub mod cancel;
pub mod catalog;
pub mod connection;
pub mod handshake;
pub mod listener;
pub mod relay;

pub use listener::Proxy;
