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
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Demo => pgvigil_demo(),
        Command::Check { classification } => check(&classification),
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
                | pgvigil::net::listener::StartError::Engine(_)),
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
        wait_for_signal().await;
        tracing::info!("shutting down: closing sessions and flushing the audit trail");
        proxy.shutdown().await;
        ExitCode::SUCCESS
    })
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
