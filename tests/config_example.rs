//! The shipped example configuration must load, so its documentation cannot drift.

use pgvigil::config::{AuditFailureMode, Config, Flags, FsyncPolicy};
use std::path::Path;

#[test]
fn example_config_loads_and_flags_override_it() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pgvigil.example.yaml");
    let config = Config::build(Flags {
        config: Some(path.clone()),
        ..Flags::default()
    })
    .expect("example config");
    assert_eq!(config.upstream, "127.0.0.1:5432");
    assert_eq!(config.audit.on_failure, AuditFailureMode::Block);
    assert_eq!(config.audit.fsync, FsyncPolicy::Interval);
    let config = Config::build(Flags {
        config: Some(path),
        upstream: Some("db.internal:6543".into()),
        ..Flags::default()
    })
    .expect("example config with a flag");
    assert_eq!(config.upstream, "db.internal:6543");
}
