//! Spawning a pgvigil proxy in front of the shared cluster, for end-to-end tests.
//!
//! Placeholder on purpose: the proxy's in-process/out-of-process start-up API belongs to
//! the `net` and `config` work and is added here by the lead once it exists, so that tests
//! do not bake in a guessed interface. The upstream to give it is
//! `super::cluster().addr()`; clients connect through it with
//! `super::connection_string(proxy_host, proxy_port, db, user, password)` and
//! `super::connect`.
