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
    },
    /// Grant a time-bound approval through a running instance (`serve --admin`); also
    /// `--list` and `--revoke ID`. Reads PGVIGIL_ADMIN_TOKEN.
    Approve(ApproveArgs),
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Demo => pgvigil_demo(),
        Command::Check { classification } => check(&classification),
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

fn check(path: &std::path::Path) -> ExitCode {
    match Policy::load(path) {
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
    }
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
