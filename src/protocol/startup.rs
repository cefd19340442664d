//! The untyped first packets a client sends: SSLRequest, GSSENCRequest, CancelRequest and
//! StartupMessage (protocol 3.x). They carry a length but no type byte.

use super::frame::FrameError;
use super::reader::BodyReader;
use bytes::{Bytes, BytesMut};

/// Startup packets are small; PostgreSQL itself caps them at 10000 bytes.
pub const MAX_STARTUP_PACKET: usize = 10_000;

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
const PROTOCOL_MAJOR_3: i32 = 3;

/// A parsed startup-phase packet; `raw` is forwarded upstream unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    SslRequest,
    GssEncRequest,
    /// Protocol 3.2 allows a secret key of up to 256 bytes, so the key is kept as bytes.
    Cancel {
        pid: i32,
        secret: Bytes,
        raw: Bytes,
    },
    Startup {
        params: Vec<(String, String)>,
        raw: Bytes,
    },
}

/// Cut one startup-phase packet off `buf`, or `None` if it is incomplete.
pub fn split_startup(buf: &mut BytesMut) -> Result<Option<StartupPacket>, FrameError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let declared = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if declared < 8 || declared as usize > MAX_STARTUP_PACKET {
        return Err(FrameError::BadLength(declared.into()));
    }
    let len = declared as usize;
    if buf.len() < len {
        return Ok(None);
    }
    let raw = buf.split_to(len).freeze();
    parse_startup(raw).map(Some)
}

fn parse_startup(raw: Bytes) -> Result<StartupPacket, FrameError> {
    let mut r = BodyReader::new(&raw[4..]);
    let code = r.i32()?;
    match code {
        SSL_REQUEST if raw.len() == 8 => Ok(StartupPacket::SslRequest),
        GSSENC_REQUEST if raw.len() == 8 => Ok(StartupPacket::GssEncRequest),
        CANCEL_REQUEST => {
            let pid = r.i32()?;
            let key = r.rest();
            if key.is_empty() || key.len() > 256 {
                return Err(FrameError::BadLength(raw.len() as i64));
            }
            let secret = raw.slice(12..);
            Ok(StartupPacket::Cancel { pid, secret, raw })
        }
        c if c >> 16 == PROTOCOL_MAJOR_3 => {
            let params = parse_params(&mut r)?;
            Ok(StartupPacket::Startup { params, raw })
        }
        other => Err(FrameError::UnknownStartupCode(other)),
    }
}

fn parse_params(r: &mut BodyReader<'_>) -> Result<Vec<(String, String)>, FrameError> {
    let mut params = Vec::new();
    loop {
        // Values need not be UTF-8 (Postgres accepts any bytes, e.g. an application_name
        // in LATIN1); the raw packet is forwarded unchanged, this copy is for the audit.
        let name = lossy_cstr(r)?;
        if name.is_empty() {
            return Ok(params);
        }
        let value = lossy_cstr(r)?;
        params.push((name, value));
    }
}

fn lossy_cstr(r: &mut BodyReader<'_>) -> Result<String, FrameError> {
    let rest = r.rest();
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(FrameError::Truncated)?;
    let bytes = r.bytes(end + 1)?;
    Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_parameter_values_are_accepted() {
        let mut b = packet(196_608, b"user\0alice\0application_name\0caf\xe9\0\0");
        let Some(StartupPacket::Startup { params, .. }) = split_startup(&mut b).unwrap() else {
            panic!("not a startup packet");
        };
        assert_eq!(params[1].1, "caf\u{fffd}");
    }

    fn packet(code: i32, body: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.extend_from_slice(&((8 + body.len()) as i32).to_be_bytes());
        b.extend_from_slice(&code.to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn parses_startup_parameters() {
        let mut b = packet(196_608, b"user\0alice\0database\0db\0\0");
        let Some(StartupPacket::Startup { params, .. }) = split_startup(&mut b).unwrap() else {
            panic!("not a startup packet");
        };
        assert_eq!(params[0], ("user".into(), "alice".into()));
        assert_eq!(params[1], ("database".into(), "db".into()));
    }

    #[test]
    fn recognises_negotiation_and_cancel() {
        let mut b = packet(SSL_REQUEST, b"");
        assert_eq!(
            split_startup(&mut b).unwrap(),
            Some(StartupPacket::SslRequest)
        );
        let mut b = packet(GSSENC_REQUEST, b"");
        assert_eq!(
            split_startup(&mut b).unwrap(),
            Some(StartupPacket::GssEncRequest)
        );
        let mut b = packet(CANCEL_REQUEST, &[0, 0, 0, 7, 1, 2, 3, 4]);
        let Some(StartupPacket::Cancel { pid, secret, .. }) = split_startup(&mut b).unwrap() else {
            panic!("not a cancel");
        };
        assert_eq!((pid, &secret[..]), (7, &[1u8, 2, 3, 4][..]));
    }

    #[test]
    fn rejects_unknown_codes_and_bad_lengths() {
        let mut b = packet(1234, b"");
        assert_eq!(
            split_startup(&mut b).unwrap_err(),
            FrameError::UnknownStartupCode(1234)
        );
        let mut b = BytesMut::from(&[0u8, 0, 0, 4, 0, 0, 0, 0][..]);
        assert!(split_startup(&mut b).is_err());
        let mut b = BytesMut::from(&[0x7fu8, 0, 0, 0, 0, 3, 0, 0][..]);
        assert!(split_startup(&mut b).is_err());
        let mut b = packet(196_608, b"user\0alice");
        assert_eq!(split_startup(&mut b).unwrap_err(), FrameError::Truncated);
    }
}
