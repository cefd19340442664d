//! Per-connection protocol state, one half per direction, with no sockets: the frontend half
//! turns client messages into what to send upstream plus a [`Pending`] entry describing the
//! response it expects; the backend half matches server messages against those entries,
//! tracks prepared statements and portals, and produces audit events.
//!
//! The two halves run concurrently (so a server streaming results never waits on a client
//! that is still sending) and share nothing but the ordered queue of `Pending` entries.

pub mod backend;
pub mod cache;
pub mod catalog;
pub mod frontend;
pub mod gate;
pub mod pending;
pub mod resolve;

pub use backend::BackendSession;
pub use catalog::CatalogView;
pub use frontend::FrontendSession;
pub use pending::Pending;
