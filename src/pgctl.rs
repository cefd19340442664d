//! A throwaway PostgreSQL cluster: `initdb` into a temporary directory, `postgres` on a free
//! port, stopped and removed on drop. Used by `pgvigil demo` and by the tests.
//!
//! Everything here is synchronous (`std::process`) so it works from plain tests, async tests
//! and the CLI alike; the few waits are short polls.
//!
//! Two things make it robust enough to share one cluster across a whole test binary:
//!
//! - **Running as root.** `initdb` and `postgres` refuse to run as root, so when `id -u` says
//!   0 both are started as the `postgres` user (the temp dir is chowned to it). We use
//!   `CommandExt::uid/gid` rather than `runuser`: the child *is* the postmaster then, so its
//!   pid is the one to signal and wait for, with no intermediate process.
//! - **A watchdog.** `static` values are never dropped, so a cluster kept in a `OnceLock`
//!   would outlive the test process. Each cluster gets a tiny `sh` watchdog that polls the
//!   owning process; when the owner is gone (even after `SIGKILL`), it shuts the postmaster
//!   down (fast shutdown, then `SIGKILL`) and removes the directory. It runs in its own
//!   process group so a terminal Ctrl-C does not kill it before it has cleaned up. Stale
//!   directories of dead owners are also removed when the next cluster starts.

use std::fmt;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Name prefix of cluster directories under `std::env::temp_dir()`; followed by the owner's
/// pid so stale directories can be recognised.
const DIR_PREFIX: &str = "pgvigil-pg-";
/// Major versions probed under `/usr/lib/postgresql/<v>/bin`, newest first.
const DEBIAN_VERSIONS: [u32; 4] = [17, 16, 15, 14];
/// How long a started server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown may take before the postmaster is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts at starting on a fresh port when the picked one was taken in the meantime.
const PORT_ATTEMPTS: u32 = 5;
/// Lines of `postgres.log` quoted in start errors.
const LOG_TAIL_LINES: usize = 30;

/// How to set up a throwaway cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub max_connections: u32,
    /// Extra `pg_hba.conf` lines placed before the default `trust` lines.
    pub hba_lines: Vec<String>,
    /// Extra `postgresql.conf` lines appended after the built-in settings (so they win).
    pub extra_settings: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            max_connections: 300,
            hba_lines: Vec::new(),
            extra_settings: Vec::new(),
        }
    }
}

/// Why a cluster could not be set up or used. Messages say what to do about it.
#[derive(thiserror::Error)]
pub enum PgctlError {
    #[error(
        "PostgreSQL server binaries not found (looked in: {searched}): install postgresql-15 \
         (apt-get install postgresql-15) or set PGVIGIL_PG_BIN to the directory holding \
         `postgres` and `initdb`"
    )]
    BinariesNotFound { searched: String },
    #[error(
        "running as root, but `initdb`/`postgres` refuse root and there is no `postgres` user \
         to run them as: create one (useradd --system postgres) or run as a non-root user"
    )]
    NoPostgresUser,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{program} failed ({status}):\n{output}")]
    CommandFailed {
        program: String,
        status: String,
        output: String,
    },
    #[error("postgres exited during startup ({status}); last lines of {log}:\n{log_tail}")]
    ServerExited {
        status: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error(
        "postgres did not accept connections on 127.0.0.1:{port} within {waited:?}; \
         last lines of {log}:\n{log_tail}"
    )]
    StartTimeout {
        port: u16,
        waited: Duration,
        log: PathBuf,
        log_tail: String,
    },
    #[error("psql failed on database {database:?}:\n{stderr}")]
    Sql { database: String, stderr: String },
}

/// `Debug` shows the message: tests report these through `expect`, and a log tail reads
/// better as text than as an escaped struct field.
impl fmt::Debug for PgctlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PgctlError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// The OS user the server processes run as, when we have to drop root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// A running throwaway cluster with superuser `postgres`, listening on 127.0.0.1:`port`
/// (trust authentication for `postgres`, see [`ClusterOptions::hba_lines`] for others).
#[derive(Debug)]
pub struct TempCluster {
    pub port: u16,
    pub dir: PathBuf,
    bin_dir: PathBuf,
    postmaster: Option<Child>,
    watchdog: Option<Child>,
    removed: bool,
}

impl TempCluster {
    /// Creates, configures and starts a cluster; returns once it accepts connections.
    pub fn start(opts: &ClusterOptions) -> Result<TempCluster, PgctlError> {
        let bin_dir = find_bin_dir()?;
        let run_as = server_identity()?;
        remove_stale_dirs();
        let dir = create_cluster_dir(run_as)?;
        // From here on, `cluster` owns the directory: an early return drops it and cleans up.
        let mut cluster = TempCluster {
            port: 0,
            dir,
            bin_dir,
            postmaster: None,
            watchdog: None,
            removed: false,
        };
        cluster.initdb(run_as)?;
        let base_conf = fs::read_to_string(cluster.conf_path())
            .map_err(|e| PgctlError::io(format!("reading {}", cluster.conf_path().display()), e))?;
        cluster.write_hba(opts)?;
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            cluster.write_conf(&base_conf, opts, port)?;
            match cluster.launch(run_as, port) {
                Ok(()) => return Ok(cluster),
                Err(StartFailure::PortTaken) if attempt < PORT_ATTEMPTS => attempt += 1,
                Err(StartFailure::PortTaken) => {
                    return Err(PgctlError::ServerExited {
                        status: format!("port still in use after {PORT_ATTEMPTS} attempts"),
                        log: cluster.log_path(),
                        log_tail: log_tail(&cluster.log_path()),
                    })
                }
                Err(StartFailure::Other(e)) => return Err(e),
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TCP host the server listens on.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The server address, for proxies' `--upstream`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// A libpq/tokio-postgres key-value connection string for superuser `postgres`.
    pub fn connection_string(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={}",
            self.host(),
            self.port,
            quote_conninfo_value(db)
        )
    }

    pub fn psql_path(&self) -> PathBuf {
        self.bin("psql")
    }

    /// Path of a program in the server's bin directory (`pgbench`, `pg_dump`, ...).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Also the Unix socket directory (`unix_socket_directories`).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The server's stdout/stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// The postmaster's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.postmaster.as_ref().map(Child::id)
    }

    /// Runs SQL (one or more statements) as `postgres` through `psql -X -A -t -q -v
    /// ON_ERROR_STOP=1` and returns its output (unaligned, tuples only, trailing newline cut).
    pub fn run_sql(&self, db: &str, sql: &str) -> Result<String, PgctlError> {
        let psql = self.psql_path();
        let mut child = Command::new(&psql)
            .args([
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host(),
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db, "-f", "-"])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| PgctlError::io(format!("running {}", psql.display()), e))?;
        // Write from a thread: a large script with large output would otherwise deadlock on
        // full pipes.
        let writer = child.stdin.take().map(|mut stdin| {
            let sql = sql.to_owned();
            std::thread::spawn(move || stdin.write_all(sql.as_bytes()))
        });
        let output = child
            .wait_with_output()
            .map_err(|e| PgctlError::io(format!("waiting for {}", psql.display()), e))?;
        if let Some(writer) = writer {
            // psql may exit early on an error and close its stdin; that error shows in stderr.
            let _ = writer.join();
        }
        if !output.status.success() {
            return Err(PgctlError::Sql {
                database: db.to_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        while text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    }

    /// Shuts the server down (fast shutdown, then `SIGKILL` after a timeout) and retires the
    /// watchdog. Idempotent; the directory stays until drop.
    pub fn stop(&mut self) {
        if let Some(mut postmaster) = self.postmaster.take() {
            stop_process(&mut postmaster, "-INT", STOP_TIMEOUT);
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    fn conf_path(&self) -> PathBuf {
        self.data_dir().join("postgresql.conf")
    }

    fn initdb(&self, run_as: Option<RunAs>) -> Result<(), PgctlError> {
        let mut cmd = self.server_command("initdb", run_as);
        cmd.arg("-D").arg(self.data_dir()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]);
        let output = cmd
            .output()
            .map_err(|e| PgctlError::io(format!("running {:?}", cmd.get_program()), e))?;
        if output.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        Err(PgctlError::CommandFailed {
            program: self.bin("initdb").display().to_string(),
            status: output.status.to_string(),
            output: text,
        })
    }

    /// A command for a server-side program, as the `postgres` user when we are root, run
    /// from the cluster directory (the caller's cwd may not be readable by that user).
    fn server_command(&self, program: &str, run_as: Option<RunAs>) -> Command {
        let mut cmd = Command::new(self.bin(program));
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        if let Some(RunAs { uid, gid }) = run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn write_conf(&self, base: &str, opts: &ClusterOptions, port: u16) -> Result<(), PgctlError> {
        // Durability is pointless for a throwaway cluster and costs a lot of test time.
        let mut conf = format!(
            "{base}\n# --- pgvigil pgctl ---\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket_dir}'\n\
             max_connections = {max_connections}\n\
             shared_buffers = 128MB\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             password_encryption = 'scram-sha-256'\n",
            socket_dir = self.dir.display().to_string().replace('\'', "''"),
            max_connections = opts.max_connections,
        );
        for line in &opts.extra_settings {
            conf.push_str(line);
            conf.push('\n');
        }
        let path = self.conf_path();
        fs::write(&path, conf).map_err(|e| PgctlError::io(format!("writing {}", path.display()), e))
    }

    fn write_hba(&self, opts: &ClusterOptions) -> Result<(), PgctlError> {
        let mut hba = String::from("# pgvigil pgctl: caller's lines first, then trust\n");
        for line in &opts.hba_lines {
            hba.push_str(line);
            hba.push('\n');
        }
        hba.push_str("host all all 127.0.0.1/32 trust\nlocal all all trust\n");
        let path = self.data_dir().join("pg_hba.conf");
        fs::write(&path, hba).map_err(|e| PgctlError::io(format!("writing {}", path.display()), e))
    }

    /// Starts the postmaster on `port` and waits until it is ready.
    fn launch(&mut self, run_as: Option<RunAs>, port: u16) -> Result<(), StartFailure> {
        let log_path = self.log_path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| PgctlError::io(format!("opening {}", log_path.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| PgctlError::io(format!("opening {}", log_path.display()), e))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = self.server_command("postgres", run_as);
        cmd.arg("-D")
            .arg(self.data_dir())
            .stdout(log)
            .stderr(log_err);
        let postmaster = cmd
            .spawn()
            .map_err(|e| PgctlError::io(format!("starting {:?}", cmd.get_program()), e))?;
        let postmaster_pid = postmaster.id();
        self.postmaster = Some(postmaster);
        self.port = port;
        // Spawned before the wait so a test process killed during startup leaks nothing.
        self.watchdog = Some(spawn_watchdog(postmaster_pid, &self.dir)?);
        match self.wait_ready(log_start) {
            Ok(()) => Ok(()),
            Err(failure) => {
                self.stop();
                Err(failure)
            }
        }
    }

    fn wait_ready(&mut self, log_start: u64) -> Result<(), StartFailure> {
        let started = Instant::now();
        let pid_file = self.data_dir().join("postmaster.pid");
        loop {
            let exited = match self.postmaster.as_mut() {
                Some(child) => child
                    .try_wait()
                    .map_err(|e| PgctlError::io("checking on postgres", e))?,
                None => None,
            };
            if let Some(status) = exited {
                self.postmaster = None;
                let new_log = log_since(&self.log_path(), log_start);
                if new_log.contains("Address already in use") {
                    return Err(StartFailure::PortTaken);
                }
                return Err(PgctlError::ServerExited {
                    status: status.to_string(),
                    log: self.log_path(),
                    log_tail: log_tail(&self.log_path()),
                }
                .into());
            }
            // "ready" in postmaster.pid proves it is *our* server listening, not another
            // process that grabbed the port; the connect proves the socket is up.
            if postmaster_ready(&pid_file)
                && TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)).is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(PgctlError::StartTimeout {
                    port: self.port,
                    waited: START_TIMEOUT,
                    log: self.log_path(),
                    log_tail: log_tail(&self.log_path()),
                }
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        self.stop();
        if !self.removed {
            self.removed = true;
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove cluster dir");
                }
            }
        }
    }
}

/// One start attempt's failure: a lost port race is retried, anything else is final.
enum StartFailure {
    PortTaken,
    Other(PgctlError),
}

impl From<PgctlError> for StartFailure {
    fn from(e: PgctlError) -> Self {
        StartFailure::Other(e)
    }
}

/// Finds the directory with `postgres` and `initdb`: `PGVIGIL_PG_BIN`, then the Debian
/// layout newest first, then `pg_config --bindir`.
pub fn find_bin_dir() -> Result<PathBuf, PgctlError> {
    let has_server = |dir: &Path| dir.join("postgres").is_file() && dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("PGVIGIL_PG_BIN") {
        let dir = PathBuf::from(dir);
        // An explicit setting that is wrong should fail loudly, not fall back silently.
        if has_server(&dir) {
            return Ok(dir);
        }
        return Err(PgctlError::BinariesNotFound {
            searched: format!("PGVIGIL_PG_BIN={}", dir.display()),
        });
    }
    let mut searched = Vec::new();
    for version in DEBIAN_VERSIONS {
        let dir = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        if has_server(&dir) {
            return Ok(dir);
        }
        searched.push(dir.display().to_string());
    }
    searched.push("`pg_config --bindir`".to_owned());
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        if output.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
        }
    }
    Err(PgctlError::BinariesNotFound {
        searched: searched.join(", "),
    })
}

/// `None` when we can run the server ourselves; the `postgres` user's ids when we are root.
fn server_identity() -> Result<Option<RunAs>, PgctlError> {
    let uid = id_output(&["-u"])?.ok_or(PgctlError::CommandFailed {
        program: "id -u".to_owned(),
        status: "failed".to_owned(),
        output: String::new(),
    })?;
    if uid != 0 {
        return Ok(None);
    }
    let uid = id_output(&["-u", "postgres"])?.ok_or(PgctlError::NoPostgresUser)?;
    let gid = id_output(&["-g", "postgres"])?.ok_or(PgctlError::NoPostgresUser)?;
    Ok(Some(RunAs { uid, gid }))
}

/// Runs `id ARGS`; `None` when it fails (e.g. unknown user) or prints no number.
fn id_output(args: &[&str]) -> Result<Option<u32>, PgctlError> {
    let output = Command::new("id")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| PgctlError::io("running `id`", e))?;
    if !output.status.success() {
        return Ok(None);
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().parse().ok())
}

fn create_cluster_dir(run_as: Option<RunAs>) -> Result<PathBuf, PgctlError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "{DIR_PREFIX}{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(name);
    fs::create_dir(&dir).map_err(|e| PgctlError::io(format!("creating {}", dir.display()), e))?;
    if let Some(RunAs { uid, gid }) = run_as {
        if let Err(e) = std::os::unix::fs::chown(&dir, Some(uid), Some(gid)) {
            let _ = fs::remove_dir(&dir);
            return Err(PgctlError::io(
                format!("chown {} to postgres", dir.display()),
                e,
            ));
        }
    }
    Ok(dir)
}

/// Removes cluster directories left by owners that no longer run and whose server (if any)
/// is gone too. Best effort, and only where `/proc` tells us who is alive.
fn remove_stale_dirs() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(owner) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if process_alive(owner) {
            continue;
        }
        let pid_file = entry.path().join("data").join("postmaster.pid");
        let server_pid = fs::read_to_string(pid_file).ok().and_then(|text| {
            text.lines()
                .next()
                .and_then(|l| l.trim().parse::<u32>().ok())
        });
        if server_pid.is_some_and(process_alive) {
            continue;
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Asks the OS for a free port. Another process may take it before postgres binds it, which
/// is why `start` retries.
fn free_port() -> Result<u16, PgctlError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| PgctlError::io("binding 127.0.0.1:0 to find a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| PgctlError::io("reading the free port", e))?
        .port();
    Ok(port)
}

/// Line 8 of `postmaster.pid` is the server status since PostgreSQL 10.
fn postmaster_ready(pid_file: &Path) -> bool {
    fs::read_to_string(pid_file)
        .map(|text| {
            text.lines()
                .nth(7)
                .is_some_and(|status| status.trim() == "ready")
        })
        .unwrap_or(false)
}

/// The watchdog: polls the owner (this process) and the postmaster every second. If the
/// owner dies first it stops the postmaster and removes the directory; if the postmaster
/// goes first (normal stop, failed start) it just exits, the owner cleans up.
fn spawn_watchdog(postmaster_pid: u32, dir: &Path) -> Result<Child, PgctlError> {
    const SCRIPT: &str = r#"
owner=$1 pg=$2 dir=$3
while kill -0 "$owner" 2>/dev/null && kill -0 "$pg" 2>/dev/null; do sleep 1; done
kill -0 "$owner" 2>/dev/null && exit 0
kill -INT "$pg" 2>/dev/null
i=0
while kill -0 "$pg" 2>/dev/null && [ "$i" -lt 150 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL "$pg" 2>/dev/null
rm -rf "$dir"
"#;
    Command::new("sh")
        .args(["-c", SCRIPT, "pgvigil-pg-watchdog"])
        .arg(std::process::id().to_string())
        .arg(postmaster_pid.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Own process group: a terminal's Ctrl-C goes to the test's group (stopping postgres),
        // and the watchdog survives it to remove the directory.
        .process_group(0)
        .spawn()
        .map_err(|e| PgctlError::io("starting the cluster watchdog (sh)", e))
}

/// Sends `signal` via `kill`, waits up to `timeout`, then kills and reaps the process.
fn stop_process(child: &mut Child, signal: &str, timeout: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .arg(signal)
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last lines of a log file, for error messages.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read log: {e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// What the log gained since byte `start` (the current start attempt).
fn log_since(path: &Path, start: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        if file.seek(SeekFrom::Start(start)).is_ok() {
            let _ = file.read_to_string(&mut text);
        }
    }
    text
}

/// Quotes a conninfo value the libpq way (single quotes, backslash escapes).
fn quote_conninfo_value(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
    format!("'{escaped}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_values_are_quoted() {
        assert_eq!(quote_conninfo_value("db"), "'db'");
        assert_eq!(quote_conninfo_value(r"a'b\c"), r"'a\'b\\c'");
    }

    #[test]
    fn ready_status_is_read_from_line_eight() {
        let dir = std::env::temp_dir().join(format!("pgvigil-pgctl-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create unit test dir");
        let file = dir.join("postmaster.pid");
        fs::write(&file, "1\n/d\n0\n5432\n/tmp\n127.0.0.1\n0 0\nstarting\n").expect("write");
        assert!(!postmaster_ready(&file));
        fs::write(&file, "1\n/d\n0\n5432\n/tmp\n127.0.0.1\n0 0\nready   \n").expect("write");
        assert!(postmaster_ready(&file));
        let _ = fs::remove_dir_all(&dir);
    }
}
