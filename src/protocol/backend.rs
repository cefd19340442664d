//! Views of the server messages the proxy inspects: authentication codes, backend keys,
//! ReadyForQuery status, CommandComplete row counts, ErrorResponse fields, RowDescription.

use super::frame::FrameError;
use super::reader::BodyReader;
use bytes::Bytes;

/// `AuthenticationOk`; other codes are requests the client must answer (or SASL final).
pub const AUTH_OK: i32 = 0;
pub const AUTH_SASL_FINAL: i32 = 12;

pub fn auth_code(body: &[u8]) -> Result<i32, FrameError> {
    BodyReader::new(body).i32()
}

/// BackendKeyData: process id and secret (4 bytes in 3.0, up to 256 in 3.2).
pub fn backend_key(body: &Bytes) -> Result<(i32, Bytes), FrameError> {
    let pid = BodyReader::new(body).i32()?;
    Ok((pid, body.slice(4..)))
}

/// ReadyForQuery transaction status: `I` idle, `T` in a transaction, `E` failed transaction.
pub fn ready_status(body: &[u8]) -> Result<u8, FrameError> {
    BodyReader::new(body).u8()
}

/// The command tag of a CommandComplete.
pub fn command_tag(body: &[u8]) -> Result<&str, FrameError> {
    BodyReader::new(body).cstr()
}

/// Rows a command reports in its tag (`SELECT 5`, `INSERT 0 5`, `COPY 10`, `FETCH 3`).
pub fn tag_rows(tag: &str) -> Option<u64> {
    let mut words = tag.split(' ');
    let verb = words.next()?;
    let last = tag.rsplit(' ').next()?;
    match verb {
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "COPY" | "FETCH" | "MOVE" => {
            last.parse().ok()
        }
        _ => None,
    }
}

/// The fields of an ErrorResponse or NoticeResponse the audit trail needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorInfo {
    pub severity: String,
    pub sqlstate: String,
}

pub fn error_info(body: &[u8]) -> Result<ErrorInfo, FrameError> {
    let mut r = BodyReader::new(body);
    let mut info = ErrorInfo::default();
    loop {
        let code = r.u8()?;
        if code == 0 {
            return Ok(info);
        }
        let value = r.cstr()?;
        match code {
            b'V' => info.severity = value.to_owned(),
            b'S' if info.severity.is_empty() => info.severity = value.to_owned(),
            b'C' => info.sqlstate = value.to_owned(),
            _ => {}
        }
    }
}

/// One result column's origin as the server reports it: table OID (0 if computed) and
/// attribute number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ColumnOrigin {
    pub table_oid: u32,
    pub attnum: i16,
}

pub fn row_description(body: &[u8]) -> Result<Vec<ColumnOrigin>, FrameError> {
    let mut r = BodyReader::new(body);
    let count = r.i16()?;
    let count = usize::try_from(count).map_err(|_| FrameError::BadLength(count.into()))?;
    let mut cols = Vec::with_capacity(count.min(1600));
    for _ in 0..count {
        r.cstr()?;
        let table_oid = r.i32()? as u32;
        let attnum = r.i16()?;
        r.bytes(4 + 2 + 4 + 2)?;
        cols.push(ColumnOrigin { table_oid, attnum });
    }
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rows_reads_the_last_number() {
        assert_eq!(tag_rows("SELECT 5"), Some(5));
        assert_eq!(tag_rows("INSERT 0 7"), Some(7));
        assert_eq!(tag_rows("COPY 10"), Some(10));
        assert_eq!(tag_rows("CREATE TABLE"), None);
        assert_eq!(tag_rows(""), None);
    }

    #[test]
    fn error_info_reads_sqlstate() {
        let body = b"SERROR\0VERROR\0C42601\0Msyntax error\0\0";
        let info = error_info(body).unwrap();
        assert_eq!(
            (info.severity.as_str(), info.sqlstate.as_str()),
            ("ERROR", "42601")
        );
        assert!(error_info(b"SERROR").is_err());
    }

    #[test]
    fn row_description_reads_origins() {
        let mut body = vec![0, 1];
        body.extend_from_slice(b"ssn\0");
        body.extend_from_slice(&16384i32.to_be_bytes());
        body.extend_from_slice(&4i16.to_be_bytes());
        body.extend_from_slice(&[0; 12]);
        let cols = row_description(&body).unwrap();
        assert_eq!(
            cols,
            vec![ColumnOrigin {
                table_oid: 16384,
                attnum: 4
            }]
        );
        assert!(row_description(&body[..body.len() - 1]).is_err());
        assert!(row_description(&[0xff, 0xff]).is_err());
    }
}
