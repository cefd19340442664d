//! Messages the proxy makes itself: its own ErrorResponse, the 'N' answer to SSL/GSS
//! requests, and the substitutes it sends upstream in place of a refused message.

use bytes::{BufMut, Bytes, BytesMut};
use pgwire::messages::response::ErrorResponse;
use pgwire::messages::Message;

/// The one-byte refusal of SSLRequest / GSSENCRequest.
pub const NO_ENCRYPTION: &[u8] = b"N";

/// An ErrorResponse with severity, SQLSTATE and message.
pub fn error_response(severity: &str, sqlstate: &str, message: &str) -> Bytes {
    let fields = vec![
        (b'S', severity.to_owned()),
        (b'V', severity.to_owned()),
        (b'C', sqlstate.to_owned()),
        (b'M', message.to_owned()),
    ];
    let mut buf = BytesMut::new();
    // Encoding into a BytesMut cannot fail for a message this small; fall back to an empty
    // buffer rather than panic if pgwire ever says otherwise.
    if ErrorResponse::new(fields).encode(&mut buf).is_err() {
        buf.clear();
    }
    buf.freeze()
}

fn message(tag: u8, parts: &[&[u8]]) -> Bytes {
    let len: usize = 4 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut buf = BytesMut::with_capacity(len + 1);
    buf.put_u8(tag);
    buf.put_i32(len as i32);
    for p in parts {
        buf.put_slice(p);
    }
    buf.freeze()
}

pub fn query(text: &str) -> Bytes {
    message(b'Q', &[text.as_bytes(), b"\0"])
}

/// A Parse with no declared parameter types.
pub fn parse(name: &str, text: &str) -> Bytes {
    message(
        b'P',
        &[name.as_bytes(), b"\0", text.as_bytes(), b"\0", &[0, 0]],
    )
}

/// A Bind of `statement` into `portal` with no parameters and no format codes.
pub fn bind(portal: &str, statement: &str) -> Bytes {
    message(
        b'B',
        &[
            portal.as_bytes(),
            b"\0",
            statement.as_bytes(),
            b"\0",
            &[0, 0, 0, 0, 0, 0],
        ],
    )
}

/// A FunctionCall of the function `oid` with no arguments and a text result.
pub fn function_call(oid: u32) -> Bytes {
    let oid = oid.to_be_bytes();
    message(b'F', &[&oid, &[0, 0], &[0, 0], &[0, 0]])
}

pub fn terminate() -> Bytes {
    message(b'X', &[])
}

/// The text sent upstream in place of a refused statement: a syntax error, so the server
/// fails it at parse time in any transaction state and with no side effect, and keeps its
/// own protocol state (skip-until-Sync, failed transaction) exactly as for a real error.
/// The proxy swaps the server's error for its own on the way back.
pub const REFUSED_STATEMENT: &str = "pgvigil refused this statement";

/// The substitute for a refused statement that follows a `BEGIN` in the same Query: the
/// BEGIN runs, then a call to a function that cannot exist fails at run time, leaving the
/// transaction block open and failed exactly as a server error there would.
pub const REFUSED_IN_TRANSACTION: &str = "BEGIN; SELECT \"pgvigil: statement refused\"()";

/// A statement name that cannot exist, for refusing a Bind: the server answers 26000.
pub const REFUSED_STATEMENT_NAME: &str = "pgvigil refused this bind";

/// A function OID that cannot exist, for refusing a FunctionCall: the server answers with
/// an error (42883, or 25P02 in a failed transaction) and then ReadyForQuery.
pub const REFUSED_FUNCTION_OID: u32 = 0;
