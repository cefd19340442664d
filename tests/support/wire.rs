//! A raw PostgreSQL wire client for tests: send exact message sequences (pipelines, Flush,
//! partial batches, malformed bytes) and read back exactly what arrives, so the same input
//! can be sent directly and through the proxy and the two answers compared.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One server message: its type byte and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// The SQLSTATE of an ErrorResponse / NoticeResponse.
    pub fn sqlstate(&self) -> Option<String> {
        field(&self.body, b'C')
    }

    pub fn message(&self) -> Option<String> {
        field(&self.body, b'M')
    }
}

fn field(body: &[u8], code: u8) -> Option<String> {
    let mut i = 0;
    while i < body.len() && body[i] != 0 {
        let c = body[i];
        let end = i + 1 + body[i + 1..].iter().position(|&b| b == 0)?;
        if c == code {
            return Some(String::from_utf8_lossy(&body[i + 1..end]).into_owned());
        }
        i = end + 1;
    }
    None
}

/// The tags of a message list, space separated (`1 2 T D C Z`), as in the cases files.
pub fn tags(msgs: &[Msg]) -> String {
    msgs.iter()
        .map(|m| (m.tag as char).to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    /// Open a session (trust authentication) and read up to the first ReadyForQuery.
    pub fn connect(addr: SocketAddr, user: &str, db: &str) -> RawConn {
        let mut conn = RawConn::open(addr);
        conn.send(&startup(&[("user", user), ("database", db)]));
        let msgs = conn.read_until_ready(1);
        assert!(
            msgs.iter().any(|m| m.tag == b'R'),
            "no authentication message: {}",
            tags(&msgs)
        );
        conn
    }

    /// Open a session (trust authentication) with these startup parameters; returns the
    /// connection and the startup messages (including BackendKeyData 'K').
    pub fn connect_params(addr: SocketAddr, params: &[(&str, &str)]) -> (RawConn, Vec<Msg>) {
        let mut conn = RawConn::open(addr);
        conn.send(&startup(params));
        let msgs = conn.read_until_ready(1);
        (conn, msgs)
    }

    /// Just the TCP connection, nothing sent.
    pub fn open(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect(addr).expect("tcp connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        RawConn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Read messages until `n` ReadyForQuery have arrived.
    pub fn read_until_ready(&mut self, n: usize) -> Vec<Msg> {
        let mut out = Vec::new();
        let mut seen = 0;
        while seen < n {
            let m = self
                .read_msg()
                .unwrap_or_else(|| panic!("connection ended after {}", tags(&out)));
            if m.tag == b'Z' {
                seen += 1;
            }
            out.push(m);
        }
        out
    }

    /// Read whatever arrives within `wait` (for Flush and no-reply checks).
    pub fn read_for(&mut self, wait: Duration) -> Vec<Msg> {
        self.stream.set_read_timeout(Some(wait)).expect("timeout");
        let mut out = Vec::new();
        while let Some(m) = self.read_msg() {
            out.push(m);
        }
        self.stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        out
    }

    /// Read raw bytes until the peer closes or the timeout passes.
    pub fn read_raw(&mut self, wait: Duration) -> Vec<u8> {
        self.stream.set_read_timeout(Some(wait)).expect("timeout");
        let mut out = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        while let Ok(n) = self.stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        out
    }

    /// The next message, or None on timeout / close.
    pub fn read_msg(&mut self) -> Option<Msg> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf.len() > len {
                    let msg = Msg {
                        tag: self.buf[0],
                        body: self.buf[5..len + 1].to_vec(),
                    };
                    self.buf.drain(..len + 1);
                    return Some(msg);
                }
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn cstr(v: &mut Vec<u8>, s: &str) {
    v.extend_from_slice(s.as_bytes());
    v.push(0);
}

pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (k, v) in params {
        cstr(&mut body, k);
        cstr(&mut body, v);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

pub fn q(text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, text);
    msg(b'Q', &b)
}

pub fn p(name: &str, text: &str, types: &[u32]) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, name);
    cstr(&mut b, text);
    b.extend_from_slice(&(types.len() as u16).to_be_bytes());
    for t in types {
        b.extend_from_slice(&t.to_be_bytes());
    }
    msg(b'P', &b)
}

/// Bind with explicit parameter format codes, values (None = NULL) and result formats.
pub fn b_full(
    portal: &str,
    stmt: &str,
    formats: &[i16],
    params: &[Option<&[u8]>],
    results: &[i16],
) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, portal);
    cstr(&mut b, stmt);
    b.extend_from_slice(&(formats.len() as u16).to_be_bytes());
    for f in formats {
        b.extend_from_slice(&f.to_be_bytes());
    }
    b.extend_from_slice(&(params.len() as u16).to_be_bytes());
    for p in params {
        match p {
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    b.extend_from_slice(&(results.len() as u16).to_be_bytes());
    for r in results {
        b.extend_from_slice(&r.to_be_bytes());
    }
    msg(b'B', &b)
}

/// Bind with text parameters.
pub fn b(portal: &str, stmt: &str, params: &[Option<&str>]) -> Vec<u8> {
    let params: Vec<Option<&[u8]>> = params.iter().map(|p| p.map(str::as_bytes)).collect();
    b_full(portal, stmt, &[], &params, &[])
}

pub fn d_s(name: &str) -> Vec<u8> {
    let mut b = vec![b'S'];
    cstr(&mut b, name);
    msg(b'D', &b)
}

pub fn d_p(name: &str) -> Vec<u8> {
    let mut b = vec![b'P'];
    cstr(&mut b, name);
    msg(b'D', &b)
}

pub fn e(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, portal);
    b.extend_from_slice(&max_rows.to_be_bytes());
    msg(b'E', &b)
}

pub fn c_s(name: &str) -> Vec<u8> {
    let mut b = vec![b'S'];
    cstr(&mut b, name);
    msg(b'C', &b)
}

pub fn c_p(name: &str) -> Vec<u8> {
    let mut b = vec![b'P'];
    cstr(&mut b, name);
    msg(b'C', &b)
}

pub fn s() -> Vec<u8> {
    msg(b'S', &[])
}

pub fn h() -> Vec<u8> {
    msg(b'H', &[])
}

pub fn x() -> Vec<u8> {
    msg(b'X', &[])
}

pub fn copy_data(data: &[u8]) -> Vec<u8> {
    msg(b'd', data)
}

pub fn copy_done() -> Vec<u8> {
    msg(b'c', &[])
}

pub fn copy_fail(reason: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, reason);
    msg(b'f', &b)
}

/// The (pid, secret) of a BackendKeyData message among `msgs`.
pub fn backend_key(msgs: &[Msg]) -> Option<(i32, Vec<u8>)> {
    let k = msgs.iter().find(|m| m.tag == b'K')?;
    let pid = i32::from_be_bytes(k.body.get(..4)?.try_into().ok()?);
    Some((pid, k.body[4..].to_vec()))
}

/// A CancelRequest packet (sent on a fresh connection instead of a startup packet).
pub fn cancel_request(pid: i32, secret: &[u8]) -> Vec<u8> {
    let mut v = ((12 + secret.len()) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&80_877_102u32.to_be_bytes());
    v.extend_from_slice(&pid.to_be_bytes());
    v.extend_from_slice(secret);
    v
}

pub fn ssl_request() -> Vec<u8> {
    let mut v = 8u32.to_be_bytes().to_vec();
    v.extend_from_slice(&80_877_103u32.to_be_bytes());
    v
}

pub fn gssenc_request() -> Vec<u8> {
    let mut v = 8u32.to_be_bytes().to_vec();
    v.extend_from_slice(&80_877_104u32.to_be_bytes());
    v
}

/// Concatenate messages into one write.
pub fn batch(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}
