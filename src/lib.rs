//! pgvigil: a PostgreSQL wire-protocol proxy that attributes, classifies and records every
//! statement between applications and one upstream PostgreSQL server.
//!
//! Module map and dependency rules (dependencies point one way, left to right):
//!
//! ```text
//! net ──> session ──> protocol, sql, policy, crypto, audit (types) ──> error
//! ```
//!
//! - [`protocol`]: framing on the 5-byte header and the few messages we decode or build. No I/O.
//! - [`sql`]: statement analysis (kind, tables, columns), normalization, sqlcommenter tags. No I/O.
//! - [`policy`]: classification files -> compiled [`policy::Policy`]. No I/O beyond reading files.
//!   [`policy::engine`] turns a statement's access into a `Verdict`; it uses `sql` types
//!   (`StatementKind`), the one edge between those two siblings: `sql` never uses `policy`.
//! - [`crypto`]: field encryption: stored form, keyring (file + master-key provider), AES-256-GCM
//!   with `dataset.schema.table.column` as associated data, blind index, masks. No I/O except
//!   the keyring file and the master key variable; uses `policy::Mask`.
//! - [`audit`]: the [`audit::AuditEvent`] record and the bounded writer task (JSON lines).
//! - [`session`]: per-connection state for each direction: messages in, actions out. No sockets.
//! - [`net`]: listener, handshake, relay loops, catalog lookups, cancel routing: the only sockets.
//! - [`config`]: flags + optional YAML file -> validated [`config::Config`].
//! - [`pgctl`]: a throwaway PostgreSQL cluster (initdb + postgres) used by `demo` and tests.
//! - [`control`]: live engine (reloads), approvals, login/rate guards, alerts (webhook).
//! - [`admin`]: the admin HTTP API (`serve --admin`) and its client (`approve`).
//! - [`demo`]: `pgvigil demo`, the sample schema behind the proxy.

pub mod admin;
pub mod audit;
pub mod config;
pub mod control;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod net;
pub mod pgctl;
pub mod policy;
pub mod protocol;
pub mod session;
pub mod sql;
