//! The connection's first phase: SSL/GSS negotiation answered 'N', cancel requests routed,
//! the startup packet forwarded unchanged, and authentication relayed message by message
//! until the server's first ReadyForQuery.

use super::cancel::CancelRegistry;
use crate::protocol::backend as msg;
use crate::protocol::startup::{split_startup, StartupPacket};
use crate::protocol::{build, frame, FrameError};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the startup phase ended.
pub enum Startup {
    /// A StartupMessage: its parameters and raw bytes.
    Session {
        params: Vec<(String, String)>,
        raw: Bytes,
    },
    /// A cancel request was handled; close the socket.
    Cancelled,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("protocol violation: {0}")]
    Protocol(#[from] FrameError),
    #[error("protocol violation: {0}")]
    Unexpected(&'static str),
    #[error("unsupported frontend protocol request: {0}")]
    Unsupported(&'static str),
    #[error("connection closed during startup")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Read the client's startup-phase packets until a StartupMessage or a CancelRequest.
pub async fn read_startup(
    client: &mut TcpStream,
    buf: &mut BytesMut,
    cancels: &CancelRegistry,
) -> Result<Startup, HandshakeError> {
    // Each encryption request may come once (GSSENC then SSL is the libpq order); a repeat
    // is refused as Postgres refuses it, as an unsupported protocol request.
    let (mut ssl_done, mut gss_done) = (false, false);
    loop {
        let Some(packet) = split_startup(buf)? else {
            if client.read_buf(buf).await? == 0 {
                return Err(HandshakeError::Closed);
            }
            continue;
        };
        match packet {
            StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                let done = if packet == StartupPacket::SslRequest {
                    &mut ssl_done
                } else {
                    &mut gss_done
                };
                if std::mem::replace(done, true) {
                    return Err(HandshakeError::Unsupported(
                        "encryption was already negotiated on this connection",
                    ));
                }
                // Bytes sent before our answer would be read as plaintext by one side and as
                // a TLS record by the other: PostgreSQL treats them as a violation too.
                if !buf.is_empty() {
                    return Err(HandshakeError::Unexpected(
                        "data sent before the encryption answer",
                    ));
                }
                client.write_all(build::NO_ENCRYPTION).await?;
            }
            StartupPacket::Cancel { pid, secret, raw } => {
                cancels.forward(pid, &secret, &raw).await;
                return Ok(Startup::Cancelled);
            }
            StartupPacket::Startup { params, raw } => return Ok(Startup::Session { params, raw }),
        }
    }
}

/// What authentication produced.
pub struct AuthResult {
    /// The server sent AuthenticationOk.
    pub authenticated: bool,
    /// The server reached ReadyForQuery: the session is usable.
    pub ready: bool,
    pub backend_key: Option<(i32, Bytes)>,
    /// The server's ErrorResponse when authentication (or startup) failed.
    pub sqlstate: Option<String>,
    /// ParameterStatus reports sent during startup (name, value).
    pub parameters: Vec<(String, String)>,
}

/// Relay authentication until the first ReadyForQuery (ok) or an ErrorResponse (failed).
pub async fn relay_auth(
    client: &mut TcpStream,
    client_buf: &mut BytesMut,
    server: &mut TcpStream,
    server_buf: &mut BytesMut,
) -> Result<AuthResult, HandshakeError> {
    let mut result = AuthResult {
        authenticated: false,
        ready: false,
        backend_key: None,
        sqlstate: None,
        parameters: Vec::new(),
    };
    loop {
        let frame = read_frame(server, server_buf).await?;
        client.write_all(&frame.bytes).await?;
        match frame.tag {
            b'R' => {
                let code = msg::auth_code(frame.body())?;
                if code == msg::AUTH_OK {
                    result.authenticated = true;
                } else if code != msg::AUTH_SASL_FINAL {
                    let answer = read_frame(client, client_buf).await?;
                    if answer.tag != b'p' {
                        return Err(HandshakeError::Unexpected(
                            "expected a password or SASL message",
                        ));
                    }
                    server.write_all(&answer.bytes).await?;
                }
            }
            b'S' => {
                let mut r = crate::protocol::reader::BodyReader::new(frame.body());
                if let (Ok(name), Ok(value)) = (r.cstr(), r.cstr()) {
                    result.parameters.push((name.to_owned(), value.to_owned()));
                }
            }
            b'K' => result.backend_key = Some(msg::backend_key(&frame.bytes.slice(5..))?),
            b'E' => {
                let info = msg::error_info(frame.body())?;
                result.sqlstate = Some(info.sqlstate);
                return Ok(result);
            }
            b'Z' => {
                result.ready = true;
                return Ok(result);
            }
            _ => {}
        }
    }
}

async fn read_frame(
    sock: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<frame::Frame, HandshakeError> {
    loop {
        if let Some(f) = frame::split_frame(buf, startup_limit())? {
            return Ok(f);
        }
        if sock.read_buf(buf).await? == 0 {
            return Err(HandshakeError::Closed);
        }
    }
}

/// Authentication messages are small; a SASL exchange stays well under this.
fn startup_limit() -> usize {
    64 * 1024
}
