//! Zero-copy views of the client messages the proxy inspects. Everything else is forwarded
//! without being decoded (hand-written rather than pgwire's decoders because pgwire wants an
//! owned, mutable buffer per message, and this runs for every message on the hot path).

use super::frame::{Frame, FrameError};
use super::reader::BodyReader;
use std::borrow::Cow;

/// What a client message means to the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage<'a> {
    /// Statement text; lossy because a non-UTF-8 client_encoding must still be audited.
    Query {
        text: Cow<'a, str>,
    },
    Parse {
        name: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    Bind {
        portal: Cow<'a, str>,
        statement: Cow<'a, str>,
    },
    Describe {
        portal: bool,
        name: Cow<'a, str>,
    },
    Execute {
        portal: Cow<'a, str>,
        max_rows: i32,
    },
    Close {
        portal: bool,
        name: Cow<'a, str>,
    },
    Sync,
    Flush,
    Terminate,
    CopyData,
    CopyDone,
    CopyFail,
    /// A fast-path function call: only the function's OID is read (never the arguments).
    FunctionCall {
        oid: u32,
    },
    /// Anything else (password messages after startup are a server error, not ours).
    Other {
        tag: u8,
    },
}

/// Decode the parts of a client message the proxy needs.
pub fn decode(frame: &Frame) -> Result<FrontendMessage<'_>, FrameError> {
    let mut r = BodyReader::new(frame.body());
    let msg = match frame.tag {
        b'Q' => FrontendMessage::Query {
            text: lossy_cstr(&mut r)?,
        },
        b'P' => FrontendMessage::Parse {
            name: lossy_cstr(&mut r)?,
            text: lossy_cstr(&mut r)?,
        },
        b'B' => FrontendMessage::Bind {
            portal: lossy_cstr(&mut r)?,
            statement: lossy_cstr(&mut r)?,
        },
        b'D' => {
            let portal = target_is_portal(r.u8()?)?;
            FrontendMessage::Describe {
                portal,
                name: lossy_cstr(&mut r)?,
            }
        }
        b'E' => FrontendMessage::Execute {
            portal: lossy_cstr(&mut r)?,
            max_rows: r.i32()?,
        },
        b'C' => {
            let portal = target_is_portal(r.u8()?)?;
            FrontendMessage::Close {
                portal,
                name: lossy_cstr(&mut r)?,
            }
        }
        b'S' => FrontendMessage::Sync,
        b'H' => FrontendMessage::Flush,
        b'X' => FrontendMessage::Terminate,
        b'd' => FrontendMessage::CopyData,
        b'c' => FrontendMessage::CopyDone,
        b'f' => FrontendMessage::CopyFail,
        b'F' => FrontendMessage::FunctionCall {
            oid: r.i32()? as u32,
        },
        tag => FrontendMessage::Other { tag },
    };
    Ok(msg)
}

fn target_is_portal(b: u8) -> Result<bool, FrameError> {
    match b {
        b'P' => Ok(true),
        b'S' => Ok(false),
        _ => Err(FrameError::Truncated),
    }
}

fn lossy_cstr<'a>(r: &mut BodyReader<'a>) -> Result<Cow<'a, str>, FrameError> {
    let rest = r.rest();
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(FrameError::Truncated)?;
    let bytes = r.bytes(end + 1)?;
    Ok(String::from_utf8_lossy(&bytes[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::build;

    fn frame(bytes: bytes::Bytes) -> Frame {
        Frame {
            tag: bytes[0],
            bytes,
        }
    }

    #[test]
    fn decodes_query_and_parse() {
        let f = frame(build::query("SELECT 1"));
        assert_eq!(
            decode(&f).unwrap(),
            FrontendMessage::Query {
                text: "SELECT 1".into()
            }
        );
        let f = frame(build::parse("s1", "SELECT $1"));
        assert_eq!(
            decode(&f).unwrap(),
            FrontendMessage::Parse {
                name: "s1".into(),
                text: "SELECT $1".into()
            }
        );
    }

    #[test]
    fn truncated_bodies_are_errors_not_panics() {
        let full = build::parse("s1", "SELECT 1");
        for n in 5..full.len() - 1 {
            let mut b = bytes::BytesMut::from(&full[..n]);
            let len = (n - 1) as i32;
            b[1..5].copy_from_slice(&len.to_be_bytes());
            let _ = decode(&frame(b.freeze()));
        }
        let f = frame(bytes::Bytes::from_static(b"E\0\0\0\x05x"));
        assert!(decode(&f).is_err());
    }
}
