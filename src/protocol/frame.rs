//! Framing on the 5-byte header (type byte + big-endian length that includes itself).
//!
//! Frames are cut out of the read buffer without copying: `Frame::bytes` is the whole
//! message, header included, ready to forward as-is.

use bytes::{Bytes, BytesMut};

/// Largest message accepted by default: PostgreSQL's own limit for a single field is 1 GB,
/// so a DataRow or Bind may legitimately approach it; anything longer is a framing error.
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 30 | 1 << 20;

/// A complete message: type byte plus the raw bytes (header included).
#[derive(Debug, Clone)]
pub struct Frame {
    pub tag: u8,
    pub bytes: Bytes,
}

impl Frame {
    /// The body after the 5-byte header.
    pub fn body(&self) -> &[u8] {
        &self.bytes[5..]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("invalid message length {0}")]
    BadLength(i64),
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("message body is truncated")]
    Truncated,
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("unknown startup request code {0}")]
    UnknownStartupCode(i32),
}

/// Length of the next message if its header is complete, after checking it.
pub fn peek_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let declared = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if declared < 4 {
        return Err(FrameError::BadLength(declared.into()));
    }
    let total = declared as usize + 1;
    if total > max {
        return Err(FrameError::TooLarge { len: total, max });
    }
    Ok(Some(total))
}

/// Cut the next complete message off the front of `buf`, or `None` if more bytes are needed.
/// On `None`, `buf` has been reserved to hold the whole message so reads land in place.
pub fn split_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Frame>, FrameError> {
    let Some(total) = peek_len(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let tag = buf[0];
    Ok(Some(Frame {
        tag,
        bytes: buf.split_to(total).freeze(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_complete_messages_and_waits_for_partial_ones() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x08abc\0Q\0\0"[..]);
        let f = split_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(f.tag, b'Q');
        assert_eq!(f.body(), b"abc\0");
        assert!(split_frame(&mut buf, 1024).unwrap().is_none());
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn rejects_impossible_and_oversized_lengths() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x03"[..]);
        assert_eq!(
            split_frame(&mut buf, 1024).unwrap_err(),
            FrameError::BadLength(3)
        );
        let mut buf = BytesMut::from(&b"Q\xff\xff\xff\xff"[..]);
        assert_eq!(
            split_frame(&mut buf, 1024).unwrap_err(),
            FrameError::BadLength(-1)
        );
        let mut buf = BytesMut::from(&b"D\x10\0\0\0"[..]);
        assert!(matches!(
            split_frame(&mut buf, 1024),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn every_prefix_of_a_message_is_incomplete_not_an_error() {
        let msg = b"P\0\0\0\x0bs\0x\0\0\0\0";
        for n in 0..msg.len() {
            let mut buf = BytesMut::from(&msg[..n]);
            assert!(split_frame(&mut buf, 1024).unwrap().is_none(), "prefix {n}");
        }
    }
}
