//! Configuration: command-line flags merged over an optional YAML file (flags win), validated
//! into [`Config`] before anything runs. Secrets come from the environment, never the YAML.

use crate::admin::AdminToken;
use crate::control::alerts::WebhookTarget;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What to do when the audit trail cannot record (SPEC section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditFailureMode {
    /// A statement that cannot be audited is not run (default).
    Block,
    /// Statements run; events wait in memory until the trail recovers.
    Continue,
}

/// When the audit writer calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// After every batch the writer takes off the queue.
    Always,
    /// At most once a second, and at shutdown (default).
    Interval,
    /// Only at shutdown.
    Never,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub path: PathBuf,
    pub on_failure: AuditFailureMode,
    pub fsync: FsyncPolicy,
    pub queue_capacity: usize,
    pub query_max_chars: usize,
    /// Key for the HMAC of full statement texts (`PGVIGIL_AUDIT_KEY`, base64); random per
    /// process when unset, so the HMAC can never be brute-forced back to a value.
    pub key: Vec<u8>,
}

/// How the proxy reads the upstream catalog to attribute result columns.
#[derive(Debug, Clone, Default)]
pub struct CatalogConfig {
    /// Role for catalog lookups; `None` means the session's own user.
    pub user: Option<String>,
    pub password: Option<String>,
}

/// The validated configuration `serve` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub upstream: String,
    pub classification: Option<PathBuf>,
    pub audit: AuditConfig,
    pub catalog: CatalogConfig,
    pub max_message_bytes: usize,
    /// The admin HTTP endpoint, when `--admin` / `admin:` is given (always with a token).
    pub admin: Option<AdminConfig>,
    /// Where approvals are kept across restarts (default: next to the audit log).
    pub approvals_file: PathBuf,
    /// Where alerts are POSTed, if anywhere.
    pub alert_webhook: Option<WebhookTarget>,
    /// How often the classification files are checked for changes (hot reload).
    pub policy_poll: std::time::Duration,
    /// How long a client gets for the whole startup and authentication phase (like
    /// PostgreSQL's authentication_timeout); `startup_timeout_ms`, default 60 s.
    pub startup_timeout: std::time::Duration,
}

/// Default of `startup_timeout_ms`: PostgreSQL's authentication_timeout default.
pub const DEFAULT_STARTUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The admin endpoint: address and the bearer token every request must carry.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: String,
    pub token: AdminToken,
}

/// The YAML file (`pgvigil.example.yaml` documents every key).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    upstream: Option<String>,
    classification: Option<PathBuf>,
    audit_log: Option<PathBuf>,
    on_audit_failure: Option<AuditFailureMode>,
    audit_fsync: Option<FsyncPolicy>,
    audit_queue: Option<usize>,
    query_max_chars: Option<usize>,
    catalog_user: Option<String>,
    catalog_password_env: Option<String>,
    max_message_bytes: Option<usize>,
    admin: Option<String>,
    approvals_file: Option<PathBuf>,
    alert_webhook: Option<String>,
    startup_timeout_ms: Option<usize>,
}

/// Flags given on the command line; each overrides the file.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub classification: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    pub admin: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Config {
    /// Merge flags over the optional file and validate.
    pub fn build(flags: Flags) -> Result<Self, ConfigError> {
        let config_path = flags.config.clone();
        Self::build_inner(flags).map_err(|e| match (e, config_path) {
            // Name the file too: the value may have come from it (a flag would override).
            (ConfigError::Invalid { key, reason }, Some(path)) => ConfigError::File {
                file: path.display().to_string(),
                reason: format!("{key}: {reason} (from this file or its command-line flag)"),
            },
            (e, _) => e,
        })
    }

    fn build_inner(flags: Flags) -> Result<Self, ConfigError> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = flags
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:6432".into());
        let upstream = flags
            .upstream
            .or(file.upstream)
            .ok_or(ConfigError::Invalid {
                key: "upstream",
                reason: "missing: give --upstream HOST:PORT or `upstream:` in the config file"
                    .into(),
            })?;
        check_host_port("listen", &listen)?;
        check_host_port("upstream", &upstream)?;
        let password = match &file.catalog_password_env {
            Some(var) => Some(std::env::var(var).map_err(|_| ConfigError::Invalid {
                key: "catalog_password_env",
                reason: format!("environment variable {var} is not set"),
            })?),
            None => std::env::var("PGVIGIL_CATALOG_PASSWORD").ok(),
        };
        let audit = AuditConfig {
            path: flags
                .audit_log
                .or(file.audit_log)
                .unwrap_or_else(|| "pgvigil-audit.jsonl".into()),
            on_failure: file.on_audit_failure.unwrap_or(AuditFailureMode::Block),
            fsync: file.audit_fsync.unwrap_or(FsyncPolicy::Interval),
            queue_capacity: positive("audit_queue", file.audit_queue.unwrap_or(65_536))?,
            query_max_chars: positive("query_max_chars", file.query_max_chars.unwrap_or(4096))?,
            key: audit_key_from_env()?,
        };
        let admin = match flags.admin.or(file.admin) {
            Some(addr) => {
                check_host_port("admin", &addr)?;
                Some(AdminConfig {
                    listen: addr,
                    token: admin_token_from_env()?,
                })
            }
            None => None,
        };
        let alert_webhook = match file.alert_webhook {
            Some(url) => {
                Some(
                    WebhookTarget::parse(&url).map_err(|reason| ConfigError::Invalid {
                        key: "alert_webhook",
                        reason,
                    })?,
                )
            }
            None => None,
        };
        let approvals_file = file
            .approvals_file
            .unwrap_or_else(|| audit.path.with_file_name("pgvigil-approvals.json"));
        Ok(Config {
            admin,
            approvals_file,
            alert_webhook,
            policy_poll: crate::control::reload::POLL_INTERVAL,
            startup_timeout: match file.startup_timeout_ms {
                Some(ms) => {
                    std::time::Duration::from_millis(positive("startup_timeout_ms", ms)? as u64)
                }
                None => DEFAULT_STARTUP_TIMEOUT,
            },
            listen,
            upstream,
            classification: flags.classification.or(file.classification),
            audit,
            catalog: CatalogConfig {
                user: file.catalog_user,
                password,
            },
            max_message_bytes: positive(
                "max_message_bytes",
                file.max_message_bytes
                    .unwrap_or(crate::protocol::frame::DEFAULT_MAX_MESSAGE),
            )?,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let err = |reason: String| ConfigError::File {
        file: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    serde_yaml::from_str(&text).map_err(|e| err(e.to_string()))
}

fn check_host_port(key: &'static str, value: &str) -> Result<(), ConfigError> {
    let ok = value
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key,
            reason: format!("{value:?} is not HOST:PORT"),
        })
    }
}

fn positive(key: &'static str, v: usize) -> Result<usize, ConfigError> {
    if v == 0 {
        return Err(ConfigError::Invalid {
            key,
            reason: "must be greater than 0".into(),
        });
    }
    Ok(v)
}

/// `PGVIGIL_ADMIN_TOKEN`: required whenever the admin endpoint is on.
fn admin_token_from_env() -> Result<AdminToken, ConfigError> {
    let token = std::env::var("PGVIGIL_ADMIN_TOKEN").map_err(|_| ConfigError::Invalid {
        key: "PGVIGIL_ADMIN_TOKEN",
        reason: "the admin endpoint (--admin / admin:) needs a bearer token in the environment \
                 variable PGVIGIL_ADMIN_TOKEN; refusing to serve it unauthenticated"
            .into(),
    })?;
    AdminToken::new(token).map_err(|reason| ConfigError::Invalid {
        key: "PGVIGIL_ADMIN_TOKEN",
        reason,
    })
}

fn audit_key_from_env() -> Result<Vec<u8>, ConfigError> {
    use base64::Engine;
    match std::env::var("PGVIGIL_AUDIT_KEY") {
        Ok(b64) => {
            let key = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| ConfigError::Invalid {
                    key: "PGVIGIL_AUDIT_KEY",
                    reason: format!("not base64: {e}"),
                })?;
            if key.len() < 16 {
                return Err(ConfigError::Invalid {
                    key: "PGVIGIL_AUDIT_KEY",
                    reason: "must decode to at least 16 bytes".into(),
                });
            }
            Ok(key)
        }
        Err(_) => Ok(uuid::Uuid::new_v4()
            .as_bytes()
            .iter()
            .chain(uuid::Uuid::new_v4().as_bytes())
            .copied()
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_missing_upstream_is_named() {
        let err = Config::build(Flags::default()).unwrap_err();
        assert!(err.to_string().starts_with("upstream:"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "listen: 127.0.0.1:7000\nupstream: db:5432\n").unwrap();
        let cfg = Config::build(Flags {
            config: Some(path.clone()),
            listen: Some("0.0.0.0:6000".into()),
            ..Flags::default()
        })
        .unwrap();
        assert_eq!(
            (cfg.listen.as_str(), cfg.upstream.as_str()),
            ("0.0.0.0:6000", "db:5432")
        );
        std::fs::write(&path, "upstream: db:5432\nlisten_port: 1\n").unwrap();
        let err = Config::build(Flags {
            config: Some(path),
            ..Flags::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
    }

    #[test]
    fn bad_addresses_are_rejected() {
        let flags = Flags {
            upstream: Some("nohost".into()),
            ..Flags::default()
        };
        assert!(Config::build(flags).is_err());
    }
}
