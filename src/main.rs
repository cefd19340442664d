//! CLI wiring only: parse flags, build validated configuration, run the chosen command.
//! Exit codes: 0 ok, 1 runtime failure, 2 bad usage or invalid configuration.

use clap::{Parser, Subcommand};
use pgvigil::config::{Config, Flags};
use pgvigil::net::Proxy;
use pgvigil::policy::Policy;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pgvigil",
    version,
    about = "PostgreSQL access proxy: audit, classify, protect"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone, Default)]
struct ServeArgs {
    /// Optional YAML configuration (see pgvigil.example.yaml); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to accept clients on, e.g. 127.0.0.1:6432.
    #[arg(long)]
    listen: Option<String>,
    /// The PostgreSQL server, HOST:PORT.
    #[arg(long)]
    upstream: Option<String>,
    /// A classification file or a directory of *.yaml files.
    #[arg(long)]
    classification: Option<PathBuf>,
    /// Where the audit trail (JSON lines) is appended.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Serve the admin HTTP API on ADDR (needs PGVIGIL_ADMIN_TOKEN).
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
}

/// `pgvigil approve`: grant (default), list or revoke approvals on a running instance.
#[derive(clap::Args, Clone)]
#[command(group(clap::ArgGroup::new("what").args(["class", "table"])))]
struct ApproveArgs {
    /// Who grants the approval (their roles must hold approval:grant).
    #[arg(long, required_unless_present_any = ["list", "revoke"])]
    approver: Option<String>,
    /// The database user approved (not the approver).
    #[arg(long, required_unless_present_any = ["list", "revoke"])]
    user: Option<String>,
    /// A data class: PUBLIC, INTERNAL, CONFIDENTIAL or RESTRICTED.
    #[arg(long, required_unless_present_any = ["list", "revoke", "table"])]
    class: Option<String>,
    /// One table, SCHEMA.TABLE.
    #[arg(long)]
    table: Option<String>,
    /// How long, e.g. 30m, 2h, 1d (at most 30d).
    #[arg(long = "for", value_name = "DURATION", required_unless_present_any = ["list", "revoke"])]
    duration: Option<String>,
    /// Ticket or justification (recorded in the audit trail).
    #[arg(long, required_unless_present_any = ["list", "revoke"])]
    reason: Option<String>,
    /// The instance's admin endpoint.
    #[arg(long, value_name = "ADDR", default_value = pgvigil::admin::client::DEFAULT_ADMIN_ADDR)]
    admin: String,
    /// List the approvals in force instead of granting one.
    #[arg(long, conflicts_with_all = ["approver", "user", "class", "table", "duration", "reason", "revoke"])]
    list: bool,
    /// Revoke the approval with this id instead of granting one.
    #[arg(long, value_name = "ID", conflicts_with_all = ["approver", "user", "class", "table", "duration", "reason"])]
    revoke: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve(ServeArgs),
    /// A throwaway local PostgreSQL with a sample schema behind pgvigil; prints the psql line.
    Demo,
    /// Validate classification files; exit 2 with file, key path and reason on errors.
    Check {
        #[arg(long, default_value = "classification")]
        classification: PathBuf,
        /// Also validate this keyring: unwrap its keys (when PGVIGIL_MASTER_KEY is set) and
        /// warn when the active key is older than the rotation period (90 days).
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
    /// Manage the keyring of data keys, wrapped by the master key in PGVIGIL_MASTER_KEY.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Grant a time-bound approval through a running instance (`serve --admin`); also
    /// `--list` and `--revoke ID`. Reads PGVIGIL_ADMIN_TOKEN.
    Approve(ApproveArgs),
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create a new keyring with one active data key (refuses to overwrite a file).
    Generate {
        #[arg(long)]
        keyring: PathBuf,
    },
    /// Add a new active data key; old keys stay so old values still decrypt.
    Rotate {
        #[arg(long)]
        keyring: PathBuf,
    },
    /// List key ids, creation dates and the active key (never key material).
    List {
        #[arg(long)]
        keyring: PathBuf,
    },
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Demo => pgvigil_demo(),
        Command::Check {
            classification,
            keyring,
        } => check(&classification, keyring.as_deref()),
        Command::Keys { action } => keys(action),
        Command::Approve(args) => approve(args),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}

fn serve(args: ServeArgs) -> ExitCode {
    let flags = Flags {
        config: args.config,
        listen: args.listen,
        upstream: args.upstream,
        classification: args.classification,
        audit_log: args.audit_log,
        admin: args.admin,
    };
    let config = match Config::build(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let upstream = config.upstream.clone();
        let proxy = match Proxy::start(config).await {
            Ok(p) => p,
            Err(
                e @ (pgvigil::net::listener::StartError::Policy(_)
                | pgvigil::net::listener::StartError::Engine(_)
                | pgvigil::net::listener::StartError::Approvals(_)),
            ) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        tracing::info!(listen = %proxy.local_addr(), %upstream, "pgvigil serving");
        run_until_stopped(&proxy).await;
        tracing::info!("shutting down: closing sessions and flushing the audit trail");
        proxy.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Serve until SIGINT or SIGTERM; SIGHUP reloads the policy (an invalid one is refused and
/// the one in force stays; `Proxy::reload` logs and audits either way).
async fn run_until_stopped(proxy: &Proxy) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!(
            "cannot install the SIGHUP handler; reload via the admin API or a file change"
        );
        wait_for_signal().await;
        return;
    };
    let stop = wait_for_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            Some(()) = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the policy");
                let _ = proxy.reload().await;
            }
        }
    }
}

/// SIGINT or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn approve(args: ApproveArgs) -> ExitCode {
    use pgvigil::admin::client::{self, ApproveCommand, ApproveOutcome};
    let token = match std::env::var("PGVIGIL_ADMIN_TOKEN") {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => {
            eprintln!("error: PGVIGIL_ADMIN_TOKEN is not set (the admin endpoint's bearer token)");
            return ExitCode::from(2);
        }
    };
    let command = if args.list {
        ApproveCommand::List
    } else if let Some(id) = args.revoke {
        ApproveCommand::Revoke { id }
    } else {
        // clap guarantees these are present when neither --list nor --revoke is given.
        ApproveCommand::Grant {
            approver: args.approver.unwrap_or_default(),
            user: args.user.unwrap_or_default(),
            class: args.class,
            table: args.table,
            duration: args.duration.unwrap_or_default(),
            reason: args.reason.unwrap_or_default(),
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(client::approve(&args.admin, &token, &command)) {
        ApproveOutcome::Done(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        ApproveOutcome::Refused(text) => {
            eprintln!("refused: {text}");
            ExitCode::from(1)
        }
        ApproveOutcome::Failed(text) => {
            eprintln!("error: {text}");
            ExitCode::from(1)
        }
    }
}

fn check(path: &std::path::Path, keyring: Option<&std::path::Path>) -> ExitCode {
    let policy_code = match Policy::load(path) {
        Ok(policy) => {
            for w in pgvigil::policy::check(&policy) {
                println!("warning: {w}");
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            ExitCode::from(2)
        }
    };
    match keyring.map(check_keyring) {
        Some(code) if code != ExitCode::SUCCESS => code,
        _ => policy_code,
    }
}

/// `check --keyring`: unwrap with the master key when it is set (a wrong one is an error),
/// warn when it is not or when the active key is past the rotation period.
fn check_keyring(path: &std::path::Path) -> ExitCode {
    use pgvigil::crypto::{commands, EnvMasterKey, MasterKeyError, DEFAULT_ROTATION_PERIOD};
    let provider = match EnvMasterKey::from_env() {
        Ok(p) => Some(p),
        Err(MasterKeyError::Missing) => None,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let provider = provider
        .as_ref()
        .map(|p| p as &dyn pgvigil::crypto::KeyProvider);
    let now = time::OffsetDateTime::now_utc();
    match commands::check(path, provider, now, DEFAULT_ROTATION_PERIOD) {
        Ok(warnings) => {
            for w in warnings {
                println!("warning: {w}");
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => store_error(&e),
    }
}

/// `pgvigil keys ...`. Exit 2 for a missing or bad master key and invalid keyrings, 1 for
/// I/O failures. Prints ids and dates only, never key material.
fn keys(action: KeysAction) -> ExitCode {
    use pgvigil::crypto::commands;
    let now = time::OffsetDateTime::now_utc();
    let result = match action {
        KeysAction::List { keyring } => {
            commands::list(&keyring).map(|keys| commands::format_list(&keys, now))
        }
        KeysAction::Generate { keyring } => {
            let Some(provider) = master_key() else {
                return ExitCode::from(2);
            };
            commands::generate(&keyring, &provider, now)
                .map(|id| format!("{}: created with active key {id}\n", keyring.display()))
        }
        KeysAction::Rotate { keyring } => {
            let Some(provider) = master_key() else {
                return ExitCode::from(2);
            };
            commands::rotate(&keyring, &provider, now).map(|id| {
                format!(
                    "{}: new active key {id}; older keys kept for decryption\n",
                    keyring.display()
                )
            })
        }
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => store_error(&e),
    }
}

/// The master key from PGVIGIL_MASTER_KEY, or `None` after printing why not.
fn master_key() -> Option<pgvigil::crypto::EnvMasterKey> {
    pgvigil::crypto::EnvMasterKey::from_env()
        .map_err(|e| eprintln!("error: {e}"))
        .ok()
}

fn store_error(e: &pgvigil::crypto::StoreError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(if e.is_io() { 1 } else { 2 })
}

fn pgvigil_demo() -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(pgvigil::demo::run(wait_for_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
