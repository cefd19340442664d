//! The backend half driven by scripted server messages, around COPY FROM STDIN.

use super::*;
use crate::session::catalog::StaticCatalog;

fn session() -> BackendSession {
    let info = Arc::new(SessionInfo {
        session_id: "s".into(),
        user: "u".into(),
        database: "d".into(),
        client_addr: "127.0.0.1".into(),
        client_port: 1,
        tls: false,
    });
    BackendSession::new(info, Arc::new(Policy::unclassified()), None)
}

fn frame(tag: u8, body: &[u8]) -> Frame {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    Frame {
        tag,
        bytes: Bytes::from(v),
    }
}

/// Feed server messages; returns the number of audit events produced.
fn server(s: &mut BackendSession, frames: &[Frame]) -> usize {
    let now = Now {
        mono: Instant::now(),
        wall: SystemTime::now(),
    };
    let mut events = Vec::new();
    for f in frames {
        s.on_message(f, &StaticCatalog::default(), now, &mut events)
            .unwrap();
    }
    events.len()
}

#[test]
fn parameter_status_records_standard_conforming_strings() {
    use std::sync::atomic::Ordering;
    let mut s = session();
    let flag = s.standard_conforming_strings();
    assert!(flag.load(Ordering::Acquire));
    s.on_startup_parameter("standard_conforming_strings", "off");
    assert!(!flag.load(Ordering::Acquire));
    server(&mut s, &[frame(b'S', b"standard_conforming_strings\0on\0")]);
    assert!(flag.load(Ordering::Acquire));
    server(
        &mut s,
        &[frame(b'S', b"standard_conforming_strings\0off\0")],
    );
    assert!(!flag.load(Ordering::Acquire));
    server(&mut s, &[frame(b'S', b"application_name\0x\0")]);
    assert!(!flag.load(Ordering::Acquire));
}

fn copy_in_response() -> Frame {
    frame(b'G', &[0, 0, 0])
}

fn error() -> Frame {
    let e = build::error_response("ERROR", "22P02", "bad row");
    Frame {
        tag: b'E',
        bytes: e,
    }
}

fn complete(tag: &str) -> Frame {
    frame(b'C', format!("{tag}\0").as_bytes())
}

fn ready() -> Frame {
    frame(b'Z', b"I")
}

fn bind_execute_sync(s: &mut BackendSession) {
    s.push(Pending::Bind {
        portal: "".into(),
        statement: "".into(),
        refusal: None,
        decided: None,
    });
    s.push(Pending::Execute {
        portal: "".into(),
        started: Instant::now(),
    });
    s.push(Pending::Sync);
}

fn query(s: &mut BackendSession) {
    s.push(Pending::Query {
        statements: Vec::new(),
        decisions: Vec::new(),
        started: Instant::now(),
        refusal: None,
    });
}

#[test]
fn extended_copy_success_drops_the_sync_sent_before_the_data() {
    let mut s = session();
    bind_execute_sync(&mut s);
    server(&mut s, &[frame(b'2', &[]), copy_in_response()]);
    s.push(Pending::CopyEnd);
    s.push(Pending::Sync);
    assert_eq!(server(&mut s, &[complete("COPY 1"), ready()]), 1);
    assert!(s.is_idle());
}

#[test]
fn extended_copy_failing_while_the_client_streams_stays_in_step() {
    let mut s = session();
    bind_execute_sync(&mut s);
    // The server fails on a row before the client's CopyDone/CopyFail has arrived.
    assert_eq!(
        server(&mut s, &[frame(b'2', &[]), copy_in_response(), error()]),
        1
    );
    s.push(Pending::CopyEnd);
    s.push(Pending::Sync);
    server(&mut s, &[ready()]);
    assert!(s.is_idle(), "{:?}", s.queue);
    query(&mut s);
    assert_eq!(server(&mut s, &[complete("SELECT 1"), ready()]), 1);
    assert!(s.is_idle());
}

#[test]
fn simple_copy_failing_while_the_client_streams_stays_in_step() {
    let mut s = session();
    query(&mut s);
    assert_eq!(server(&mut s, &[copy_in_response(), error(), ready()]), 1);
    assert!(s.is_idle());
    // psql ends the COPY after the server already has; the server drops that message.
    s.push(Pending::CopyEnd);
    query(&mut s);
    assert_eq!(server(&mut s, &[complete("SELECT 1"), ready()]), 1);
    assert!(s.is_idle(), "{:?}", s.queue);
}

#[test]
fn an_owed_copy_end_is_forgotten_once_the_client_moves_on() {
    let mut s = session();
    query(&mut s);
    server(&mut s, &[copy_in_response(), error(), ready()]);
    // No CopyDone ever comes; a later COPY's end must still be expected.
    query(&mut s);
    server(&mut s, &[copy_in_response()]);
    s.push(Pending::CopyEnd);
    assert_eq!(server(&mut s, &[complete("COPY 3"), ready()]), 1);
    assert!(s.is_idle(), "{:?}", s.queue);
}
