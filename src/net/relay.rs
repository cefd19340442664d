//! The relay: two concurrent loops per connection, one per direction, each the single place
//! that dispatches on that direction's message types. Raw bytes are forwarded; writes are
//! batched and flushed whenever the reader has no complete message left (a protocol
//! boundary or an empty socket), so pipelines go out in few syscalls and nothing waits.

use super::cancel;
use super::catalog::Catalog;
use super::listener::Shared;
use crate::audit::{AuditEvent, Outcome};
use crate::error::ClientError;
use crate::policy::engine::SessionUsage;
use crate::protocol::backend::row_description;
use crate::protocol::frontend::{self, FrontendMessage};
use crate::protocol::{build, frame, Frame, FrameError};
use crate::session::backend::{Now, Reply};
use crate::session::frontend::Upstream;
use crate::session::gate::PolicyInput;
use crate::session::{BackendSession, FrontendSession, Pending};
use crate::sql::StatementKind;
use bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Expected responses in flight between the two loops; the sender flushes before it waits.
const PENDING_CAPACITY: usize = 4096;
/// Frames at least this big are written directly instead of being copied into the batch.
const DIRECT_WRITE: usize = 32 * 1024;
/// After the client leaves, how long the server gets to finish (after a cancel) and close.
const SERVER_DRAIN: Duration = Duration::from_secs(10);

pub struct Parts {
    pub client: TcpStream,
    pub client_buf: BytesMut,
    pub server: TcpStream,
    pub server_buf: BytesMut,
    pub frontend: FrontendSession,
    pub backend: BackendSession,
    pub catalog: Arc<Catalog>,
}

/// How the relay ended.
#[derive(Debug, Default)]
pub struct Ended {
    /// A framing violation or proxy failure that ended the session.
    pub error: Option<ClientError>,
}

/// Run both directions until the session ends. Returns the backend half for final events.
pub async fn run(
    parts: Parts,
    shared: &Shared,
    backend_key: Option<(i32, Bytes)>,
) -> (BackendSession, Ended) {
    let user: Arc<str> = Arc::from(parts.backend.user());
    let (client_rd, client_wr) = parts.client.into_split();
    let (server_rd, server_wr) = parts.server.into_split();
    let (tx, rx) = mpsc::channel(PENDING_CAPACITY);
    let progress = Arc::new(Progress::default());
    let usage = parts.backend.usage();
    let mut up = ClientToServer {
        client: client_rd,
        buf: parts.client_buf,
        server: server_wr,
        out: Outbox::default(),
        session: parts
            .frontend
            .with_standard_conforming_strings(parts.backend.standard_conforming_strings()),
        pending: tx,
        progress: Arc::clone(&progress),
        catalog: Arc::clone(&parts.catalog),
        shared,
        user: user.clone(),
        usage,
    };
    let mut down = ServerToClient {
        server: server_rd,
        buf: parts.server_buf,
        client: client_wr,
        out: Outbox::default(),
        session: parts.backend,
        pending: rx,
        received: 0,
        progress: Arc::clone(&progress),
        catalog: parts.catalog,
        shared,
        user,
        events: Vec::new(),
        backend_key: backend_key.clone(),
    };
    let mut shutdown = shared.shutdown.clone();
    let mut up_fut = Box::pin(up.run());
    let mut down_fut = Box::pin(down.run());
    let end = tokio::select! {
        res = &mut up_fut => End::Client(res),
        res = &mut down_fut => match res {
            Ok(DownEnd::ClientGone) => End::ClientGone,
            Ok(DownEnd::ServerClosed) => End::Server(Ok(())),
            Err(e) => End::Server(Err(e)),
        },
        _ = shutting_down(&mut shutdown) => End::Client(Err(ClientError {
            sqlstate: "57P01",
            message: "pgvigil is shutting down".into(),
            blame: crate::error::Blame::Proxy,
        })),
    };
    drop(up_fut);
    let error = match end {
        End::Client(Ok(())) => {
            // The client left: stop the server's work, then let it answer what it still
            // owes so those statements are audited, and close.
            finish_upstream(&mut up, &progress, &backend_key, shared).await;
            let _ = tokio::time::timeout(SERVER_DRAIN, &mut down_fut).await;
            None
        }
        End::ClientGone => {
            // Writing to the client failed: it left while the server was still answering.
            // Before, this ended the relay like a server close, with no cancel and no
            // Terminate, so a query that had stopped producing output kept running.
            finish_upstream(&mut up, &progress, &backend_key, shared).await;
            None
        }
        End::Client(Err(e)) | End::Server(Err(e)) => Some(e),
        End::Server(Ok(())) => None,
    };
    drop(down_fut);
    if let Some(err) = &error {
        let _ = down
            .client
            .write_all(&build::error_response("FATAL", err.sqlstate, &err.message))
            .await;
        finish_upstream(&mut up, &progress, &backend_key, shared).await;
    }
    let _ = down.client.shutdown().await;
    (down.session, Ended { error })
}

enum End {
    Client(Result<(), ClientError>),
    /// The server loop could not write to the client (the server loop has stopped).
    ClientGone,
    Server(Result<(), ClientError>),
}

/// Why the server-to-client loop stopped without a protocol error.
enum DownEnd {
    /// The server closed the connection.
    ServerClosed,
    /// The client can no longer be written to: it left, just as if its reader saw EOF.
    ClientGone,
}

/// How far the server has answered the client, shared by the two loops so that a client
/// that leaves mid-query gets its server work cancelled.
///
/// Two counters rather than an "idle" flag: a flag that the server loop computes and then
/// stores can overwrite the client loop's "busy" written in between (the client's message
/// was sent but not yet seen by the server loop), and a query then keeps running after
/// its client left. A count of what was sent versus what was answered has no such window.
#[derive(Default)]
struct Progress {
    /// Pending entries the client loop has queued (one per message the server answers).
    sent: AtomicU64,
    /// `sent` as of the last moment the server loop had answered everything it had taken
    /// from the queue; `u64::MAX` while it is still answering.
    answered: AtomicU64,
    /// The server loop cut a result off inside a transaction block the server finished
    /// without error: the client loop must make the server fail that transaction before
    /// it forwards the client's next message (see `BackendSession::end_swallow`).
    fail_transaction: AtomicBool,
}

impl Progress {
    /// Whether every message sent upstream has been answered. Exact once the client loop
    /// has stopped; a stale "no" only costs a harmless cancel.
    fn is_idle(&self) -> bool {
        self.answered.load(Ordering::Acquire) == self.sent.load(Ordering::Acquire)
    }
}

async fn shutting_down(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// Close the upstream session: cancel whatever it is still running for a client that left
/// mid-query, then Terminate, so the server rolls back and frees the backend.
async fn finish_upstream(
    up: &mut ClientToServer<'_>,
    progress: &Progress,
    backend_key: &Option<(i32, Bytes)>,
    shared: &Shared,
) {
    if !progress.is_idle() {
        if let Some((pid, secret)) = backend_key {
            cancel::send_cancel(
                &shared.config.upstream,
                &cancel::cancel_packet(*pid, secret),
            )
            .await;
        }
    }
    let _ = up.server.write_all(&build::terminate()).await;
    let _ = up.server.shutdown().await;
}

/// A write batch: small frames are copied together, big ones go out directly.
#[derive(Default)]
struct Outbox {
    buf: BytesMut,
}

impl Outbox {
    async fn push<W: AsyncWrite + Unpin>(
        &mut self,
        w: &mut W,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        if bytes.len() >= DIRECT_WRITE {
            self.flush(w).await?;
            return w.write_all(bytes).await;
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= DIRECT_WRITE {
            self.flush(w).await?;
        }
        Ok(())
    }

    async fn flush<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            w.write_all(&self.buf).await?;
            self.buf.clear();
        }
        Ok(())
    }
}

fn protocol_error(e: FrameError) -> ClientError {
    ClientError::protocol_violation(format!("pgvigil: {e}"))
}

struct ClientToServer<'a> {
    client: OwnedReadHalf,
    buf: BytesMut,
    server: OwnedWriteHalf,
    out: Outbox,
    session: FrontendSession,
    pending: mpsc::Sender<Pending>,
    progress: Arc<Progress>,
    catalog: Arc<Catalog>,
    shared: &'a Shared,
    user: Arc<str>,
    /// The session's row usage, kept by the server loop, read for `rows_per_session`.
    usage: Arc<Mutex<SessionUsage>>,
}

impl ClientToServer<'_> {
    /// Ok on Terminate or a clean close; Err on a framing violation.
    async fn run(&mut self) -> Result<(), ClientError> {
        let max = self.shared.config.max_message_bytes;
        loop {
            while let Some(frame) =
                frame::split_frame(&mut self.buf, max).map_err(protocol_error)?
            {
                if self.on_frame(frame).await? {
                    let _ = self.out.flush(&mut self.server).await;
                    return Ok(());
                }
            }
            if self.out.flush(&mut self.server).await.is_err() {
                return Ok(());
            }
            match self.client.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            }
        }
    }

    /// Returns true when the client sent Terminate.
    /// A statement text, analysed (cached) in the session's lexing mode, with the catalog
    /// names it mentions fetched.
    async fn analysed(&self, text: &str) -> (Arc<str>, Arc<crate::sql::Analysis>) {
        let text: Arc<str> = Arc::from(text);
        let analysis = self
            .shared
            .analyses
            .get_with(&text, self.session.lex_options());
        self.prefetch(&analysis).await;
        (text, analysis)
    }

    async fn on_frame(&mut self, frame: Frame) -> Result<bool, ClientError> {
        let msg = frontend::decode(&frame).map_err(protocol_error)?;
        if self.progress.fail_transaction.load(Ordering::Acquire) {
            self.fail_transaction().await?;
        }
        let audit_ok = self.shared.audit.can_record();
        let now = Instant::now();
        // Statements, Binds and function calls are decided by the policy: one snapshot of
        // the engine, approvals and time serves the whole message.
        let decided = matches!(
            msg,
            FrontendMessage::Query { .. }
                | FrontendMessage::Parse { .. }
                | FrontendMessage::Bind { .. }
                | FrontendMessage::FunctionCall { .. }
        );
        let context = decided.then(|| self.policy_context());
        let analysed = match &msg {
            FrontendMessage::Query { text } | FrontendMessage::Parse { text, .. } => {
                Some(self.analysed(text).await)
            }
            _ => None,
        };
        let input = context.as_ref().map(|(engine, approvals, wall)| {
            policy_input(
                self.shared,
                &self.user,
                &self.usage,
                engine,
                approvals,
                *wall,
            )
        });
        let step = match (&msg, &analysed, &input) {
            (FrontendMessage::Query { .. }, Some((text, analysis)), Some(input)) => self
                .session
                .on_query(text, analysis, &*self.catalog, audit_ok, input, now),
            (FrontendMessage::Parse { name, .. }, Some((text, analysis)), Some(input)) => self
                .session
                .on_parse(name, text, analysis, &*self.catalog, input),
            (other, _, input) => self
                .session
                .on_message(other, audit_ok, input.as_ref(), now),
        };
        if let Some(p) = step.pending {
            // Counted before the message goes upstream, so "answered == sent" never holds
            // while the server has work the server loop has not seen yet.
            self.progress.sent.fetch_add(1, Ordering::AcqRel);
            self.send_pending(p).await?;
        }
        let written = match &step.upstream {
            Upstream::Forward => self.out.push(&mut self.server, &frame.bytes).await,
            Upstream::Replace(bytes) => self.out.push(&mut self.server, bytes).await,
        };
        if written.is_err() {
            return Ok(true);
        }
        if step.flush && self.out.flush(&mut self.server).await.is_err() {
            return Ok(true);
        }
        Ok(step.terminate)
    }

    /// The engine in force now (a reload applies from the next statement) and the user's
    /// approvals.
    fn policy_context(
        &self,
    ) -> (
        Arc<crate::policy::engine::Engine>,
        Vec<crate::policy::engine::Approval>,
        time::OffsetDateTime,
    ) {
        let control = &self.shared.control;
        let wall = time::OffsetDateTime::now_utc();
        let approvals = control.approvals.active_for(&self.user, wall);
        (control.engine(), approvals, wall)
    }

    /// Make the server fail the open transaction, as the client was told it failed: send
    /// a Query the server rejects; its answer is dropped by the server loop.
    async fn fail_transaction(&mut self) -> Result<(), ClientError> {
        self.progress
            .fail_transaction
            .store(false, Ordering::Release);
        self.progress.sent.fetch_add(1, Ordering::AcqRel);
        self.send_pending(Pending::Injected).await?;
        let _ = self
            .out
            .push(&mut self.server, &build::query(build::REFUSED_STATEMENT))
            .await;
        Ok(())
    }

    async fn prefetch(&self, analysis: &crate::sql::Analysis) {
        let names: Vec<&str> = analysis
            .statements
            .iter()
            .flat_map(|s| {
                s.relations
                    .iter()
                    .chain(s.columns.iter().filter_map(|c| c.relation.as_ref()))
            })
            .filter(|r| r.schema.is_none())
            .map(|r| r.name.as_str())
            .collect();
        if !names.is_empty() {
            self.catalog.ensure_names(&names, &self.user).await;
        }
    }

    /// Queue the expected response; if the queue is full, flush what we hold first so the
    /// server can answer and the other loop can make room.
    async fn send_pending(&mut self, p: Pending) -> Result<(), ClientError> {
        match self.pending.try_send(p) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(p)) => {
                let _ = self.out.flush(&mut self.server).await;
                self.pending.send(p).await.map_err(|_| closed())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(closed()),
        }
    }
}

/// What the frontend half's policy decisions need from outside the session.
fn policy_input<'b>(
    shared: &'b Shared,
    user: &'b str,
    usage: &Mutex<SessionUsage>,
    engine: &'b Arc<crate::policy::engine::Engine>,
    approvals: &'b [crate::policy::engine::Approval],
    now: time::OffsetDateTime,
) -> PolicyInput<'b> {
    PolicyInput {
        engine,
        approvals,
        usage: usage.lock().map(|u| *u).unwrap_or_default(),
        now,
        rate: &shared.control.guards.rate,
        user,
    }
}

fn closed() -> ClientError {
    ClientError::upstream_unavailable("pgvigil: the server connection closed")
}

struct ServerToClient<'a> {
    server: OwnedReadHalf,
    buf: BytesMut,
    client: OwnedWriteHalf,
    out: Outbox,
    session: BackendSession,
    pending: mpsc::Receiver<Pending>,
    /// Entries taken from `pending` so far.
    received: u64,
    progress: Arc<Progress>,
    catalog: Arc<Catalog>,
    shared: &'a Shared,
    user: Arc<str>,
    events: Vec<AuditEvent>,
    /// To cancel the server's query when a row threshold cuts a result off.
    backend_key: Option<(i32, Bytes)>,
}

impl ServerToClient<'_> {
    /// Ends when the server closes or the client cannot be written to (Ok), or when the
    /// server sends something unframeable (Err).
    async fn run(&mut self) -> Result<DownEnd, ClientError> {
        let max = self.shared.config.max_message_bytes;
        loop {
            let now = Now {
                mono: Instant::now(),
                wall: SystemTime::now(),
            };
            // A reloaded policy applies to attribution from the next batch of answers.
            self.session
                .use_policy(self.shared.control.engine().policy());
            while let Some(frame) =
                frame::split_frame(&mut self.buf, max).map_err(protocol_error)?
            {
                if !self.on_frame(frame, now).await? {
                    return Ok(DownEnd::ClientGone);
                }
            }
            if self.out.flush(&mut self.client).await.is_err() {
                return Ok(DownEnd::ClientGone);
            }
            let answered = if self.session.is_idle() {
                self.received
            } else {
                u64::MAX
            };
            self.progress.answered.store(answered, Ordering::Release);
            match self.server.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Ok(DownEnd::ServerClosed),
                Ok(_) => {}
            }
        }
    }

    /// Returns false when the client can no longer be written to.
    async fn on_frame(&mut self, frame: Frame, now: Now) -> Result<bool, ClientError> {
        while let Ok(p) = self.pending.try_recv() {
            self.received += 1;
            self.session.push(p);
        }
        if frame.tag == b'T' {
            let origins = row_description(frame.body()).map_err(protocol_error)?;
            let oids: Vec<u32> = origins
                .iter()
                .map(|o| o.table_oid)
                .filter(|o| *o != 0)
                .collect();
            if !oids.is_empty() {
                self.catalog.ensure_oids(&oids, &self.user).await;
            }
        }
        let reply = self
            .session
            .on_message(&frame, &*self.catalog, now, &mut self.events)
            .map_err(protocol_error)?;
        if self.session.take_failure_owed() {
            // Set before the client can see the ReadyForQuery that follows.
            self.progress
                .fail_transaction
                .store(true, Ordering::Release);
        }
        let written = match &reply {
            Reply::Forward => self.out.push(&mut self.client, &frame.bytes).await,
            Reply::Replace(bytes) => self.out.push(&mut self.client, bytes).await,
            Reply::Drop => Ok(()),
        };
        if written.is_err() {
            return Ok(false);
        }
        if self.session.take_cancel() {
            self.cancel_server_query().await;
        }
        for ev in self.events.drain(..) {
            if ev.statement_kind == Some(StatementKind::Ddl) && ev.outcome == Some(Outcome::Ok) {
                self.catalog.invalidate();
            }
            if ev.kind == crate::audit::EventKind::Alert {
                let rule = ev.rule.clone().unwrap_or_default();
                let severity = ev.severity.unwrap_or("MEDIUM");
                let message = ev.message.clone().unwrap_or_default();
                self.shared
                    .control
                    .alerts
                    .raise(ev, &rule, severity, message)
                    .await;
            } else if self.shared.audit.record(ev).await.is_err() {
                tracing::error!("audit event dropped: the writer has shut down");
            }
        }
        Ok(true)
    }

    /// A row threshold cut a result off: the client gets its ErrorResponse now, and the
    /// server stops producing rows nobody will see. `send_cancel` returns once the server
    /// has signalled its backend, and the client only sees the ReadyForQuery (after which
    /// it may send its next statement) after that, so the cancel cannot hit the client's
    /// next statement.
    async fn cancel_server_query(&mut self) {
        let _ = self.out.flush(&mut self.client).await;
        if let Some((pid, secret)) = &self.backend_key {
            cancel::send_cancel(
                &self.shared.config.upstream,
                &cancel::cancel_packet(*pid, secret),
            )
            .await;
        }
    }
}
