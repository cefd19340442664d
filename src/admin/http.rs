//! A deliberately small HTTP/1.1 codec over any async stream: one request or response per
//! connection (`Connection: close`), `Content-Length` bodies only, hard size limits. Enough
//! for the admin API, the `approve` client and webhook delivery without hyper.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request or response head (start line + headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("the peer closed the connection early")]
    Closed,
    #[error("{0} too large")]
    TooLarge(&'static str),
    #[error("malformed HTTP: {0}")]
    Malformed(&'static str),
    #[error("a body needs Content-Length (chunked transfer encoding is not supported)")]
    LengthRequired,
}

/// A parsed request. `path` is still percent-encoded; `query` is without the `?`.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Header lookup, case-insensitive on the name.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The head (start line and headers) and whatever body bytes arrived with it.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
    rest: Vec<u8>,
}

async fn read_head<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Head, HttpError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(HttpError::TooLarge("head"));
        }
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if end > MAX_HEAD_BYTES {
        return Err(HttpError::TooLarge("head"));
    }
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| HttpError::Malformed("head"))?;
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(HttpError::Malformed("header line"))?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(HttpError::Malformed("header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
        if headers.len() > 100 {
            return Err(HttpError::TooLarge("header count"));
        }
    }
    let rest = buf[end + 4..].to_vec();
    Ok(Head {
        start,
        headers,
        rest,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `Content-Length`, refusing transfer encodings and conflicting values.
fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, HttpError> {
    if header(headers, "transfer-encoding").is_some() {
        return Err(HttpError::LengthRequired);
    }
    let mut found: Option<usize> = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| HttpError::Malformed("Content-Length"))?;
            if found.is_some_and(|f| f != n) {
                return Err(HttpError::Malformed("conflicting Content-Length"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut body: Vec<u8>,
    length: usize,
    max: usize,
) -> Result<Vec<u8>, HttpError> {
    if length > max {
        return Err(HttpError::TooLarge("body"));
    }
    if body.len() > length {
        body.truncate(length);
    }
    let mut chunk = [0u8; 4096];
    while body.len() < length {
        let want = (length - body.len()).min(chunk.len());
        let n = reader.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(body)
}

/// Read one request's head. The body is read separately (after authentication) by
/// [`read_request_body`].
pub async fn read_request_head<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<(Request, Vec<u8>), HttpError> {
    let head = read_head(reader).await?;
    let mut parts = head.start.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed("request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("HTTP version"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HttpError::Malformed("method"));
    }
    if !target.starts_with('/') {
        return Err(HttpError::Malformed("request target"));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let request = Request {
        method: method.to_owned(),
        path,
        query,
        headers: head.headers,
        body: Vec::new(),
    };
    Ok((request, head.rest))
}

/// Read the body announced by the request's `Content-Length` (none: empty).
pub async fn read_request_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    request: &mut Request,
    already: Vec<u8>,
    max: usize,
) -> Result<(), HttpError> {
    let length = content_length(&request.headers)?.unwrap_or(0);
    request.body = read_body(reader, already, length, max).await?;
    Ok(())
}

/// Read a whole response: by `Content-Length`, else until the peer closes.
pub async fn read_response<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_body: usize,
) -> Result<Response, HttpError> {
    let head = read_head(reader).await?;
    let mut parts = head.start.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("status line"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or(HttpError::Malformed("status code"))?;
    let body = match content_length(&head.headers)? {
        Some(length) => read_body(reader, head.rest, length, max_body).await?,
        None => {
            let mut body = head.rest;
            let mut chunk = [0u8; 4096];
            loop {
                let n = reader.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                if body.len() + n > max_body {
                    return Err(HttpError::TooLarge("body"));
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body
        }
    };
    Ok(Response {
        status,
        headers: head.headers,
        body,
    })
}

/// Reason phrases for the statuses the admin API uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Write a JSON response and close the exchange (`Connection: close`).
pub async fn write_json_response<W: AsyncWrite + Unpin>(
    writer: &mut W,
    status: u16,
    extra_headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    text.push(b'\n');
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
        reason(status),
        text.len()
    );
    for (name, value) in extra_headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&text);
    writer.write_all(&bytes).await?;
    writer.flush().await?;
    writer.shutdown().await
}

/// Write a request with an optional JSON body.
pub async fn write_request<W: AsyncWrite + Unpin>(
    writer: &mut W,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<()> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: pgvigil/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || method == "POST" || method == "PUT" {
        out.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    writer.write_all(&bytes).await?;
    writer.flush().await
}

/// Percent-decode a path segment (`%2F` etc.); `None` on bad escapes or non-UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encode everything but unreserved characters (for path segments).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_head_and_body_parse() {
        let raw = b"POST /approvals?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
        let mut r = &raw[..];
        let (mut req, rest) = read_request_head(&mut r).await.unwrap();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/approvals")
        );
        assert_eq!(req.query.as_deref(), Some("x=1"));
        read_request_body(&mut r, &mut req, rest, 100)
            .await
            .unwrap();
        assert_eq!(req.body, b"hello");
    }

    #[tokio::test]
    async fn malformed_and_oversized_requests_are_errors() {
        for raw in [
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
            b"GET / HTTP/1.1\r\n",
        ] {
            let mut r = raw;
            assert!(read_request_head(&mut r).await.is_err(), "{raw:?}");
        }
        let big = vec![b'a'; MAX_HEAD_BYTES + 10];
        let mut r = &big[..];
        assert!(matches!(
            read_request_head(&mut r).await,
            Err(HttpError::TooLarge(_))
        ));
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n";
        let mut r = &raw[..];
        let (mut req, rest) = read_request_head(&mut r).await.unwrap();
        assert!(read_request_body(&mut r, &mut req, rest, 100)
            .await
            .is_err());
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut r = &raw[..];
        let (mut req, rest) = read_request_head(&mut r).await.unwrap();
        assert!(matches!(
            read_request_body(&mut r, &mut req, rest, 100).await,
            Err(HttpError::LengthRequired)
        ));
    }

    #[tokio::test]
    async fn responses_parse_with_and_without_length() {
        let raw = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
        let mut r = &raw[..];
        let resp = read_response(&mut r, 100).await.unwrap();
        assert_eq!((resp.status, resp.body.as_slice()), (201, &b"{}"[..]));
        let raw = b"HTTP/1.0 500 Oops\r\n\r\nbody until close";
        let mut r = &raw[..];
        let resp = read_response(&mut r, 100).await.unwrap();
        assert_eq!(resp.status, 500);
        assert_eq!(resp.body, b"body until close");
    }

    #[test]
    fn percent_round_trip() {
        assert_eq!(percent_decode(&percent_encode("a b/ü")).unwrap(), "a b/ü");
        assert!(percent_decode("%zz").is_none());
        assert!(percent_decode("%4").is_none());
    }
}
