//! Golden vectors: the exact bytes of a fixed set of messages, in `tests/vectors/<name>.hex`
//! at the repository root, checked both ways (encode == file, decode(file) == message).
//! The Python tests of `btu_client` check the same files, so both sides agree byte for byte.
//!
//! To (re)write the files after a deliberate wire change (which also needs a protocol version
//! bump): `BTU_BLESS_VECTORS=1 cargo test -p btu-protocol --test golden`.

mod common;

use btu_protocol::*;
use common::{Golden, from_hex, golden_cases, to_hex, vectors_dir};

fn read_vector(name: &str) -> Vec<u8> {
    let path = vectors_dir().join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    from_hex(&text).unwrap_or_else(|| panic!("{}: not hex", path.display()))
}

#[test]
fn golden_vectors_encode_and_decode_exactly() {
    let bless = std::env::var_os("BTU_BLESS_VECTORS").is_some();
    for (name, golden) in golden_cases() {
        let encoded = golden.encode().unwrap_or_else(|e| panic!("{name}: encode failed: {e}"));
        if bless {
            let path = vectors_dir().join(format!("{name}.hex"));
            std::fs::write(&path, format!("{}\n", to_hex(&encoded)))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        let vector = read_vector(name);
        assert_eq!(to_hex(&encoded), to_hex(&vector), "{name}: encoding differs from the golden vector");

        let header: [u8; 4] = vector[..4].try_into().expect("vector has a header");
        let len = decode_frame_len(header, MAX_FRAME_LEN).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(len, vector.len() - 4, "{name}: length prefix");
        let body = &vector[4..];
        match golden {
            Golden::Request(expected) if expected.v == PROTOCOL_VERSION => {
                assert_eq!(decode_request(body).ok(), Some(expected), "{name}: decode");
            }
            Golden::Request(expected) => match decode_request(body) {
                Err(ProtocolError::UnsupportedVersion { client, daemon }) => {
                    assert_eq!((client, daemon), (expected.v, PROTOCOL_VERSION), "{name}");
                    assert_eq!(peek_request_id(body), Some(expected.id), "{name}: id still readable");
                }
                other => panic!("{name}: expected UnsupportedVersion, got {other:?}"),
            },
            Golden::Response(expected) if expected.v == PROTOCOL_VERSION => {
                assert_eq!(decode_response(body).ok(), Some(expected), "{name}: decode");
            }
            Golden::Response(expected) => match decode_response(body) {
                Err(ProtocolError::UnsupportedVersion { client, daemon }) => {
                    assert_eq!((client, daemon), (PROTOCOL_VERSION, expected.v), "{name}");
                }
                other => panic!("{name}: expected UnsupportedVersion, got {other:?}"),
            },
        }
    }
}

#[test]
fn every_vector_file_belongs_to_a_case() {
    let names: Vec<&str> = golden_cases().iter().map(|(n, _)| *n).collect();
    let dir = vectors_dir();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("hex") {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            assert!(names.contains(&stem.as_str()), "{} has no golden case", path.display());
        }
    }
}

#[test]
fn version_mismatch_is_reported_with_both_versions() {
    let future = RequestEnvelope { v: 7, id: 99, request: Request::Status };
    let body = encode_body(&future).expect("encode");
    let err = decode_request(&body).expect_err("v7 must be refused");
    assert_eq!(
        err.to_string(),
        format!("protocol version mismatch: client speaks 7, daemon speaks {PROTOCOL_VERSION}")
    );
    assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
    // The daemon can still answer with the request's id.
    let answer = ResponseEnvelope::from_protocol_error(peek_request_id(&body).unwrap_or(0), &err);
    assert_eq!(answer.id, 99);
    assert_eq!(answer.v, PROTOCOL_VERSION);

    // A future request of a shape this version cannot read at all is still judged by `v` alone.
    #[derive(serde::Serialize)]
    struct AlienRequest {
        v: u32,
        id: u64,
        op: u8,
        args: Vec<Vec<u8>>,
    }
    let alien = encode_body(&AlienRequest { v: 3, id: 5, op: 1, args: vec![vec![1, 2]] }).expect("encode");
    assert!(matches!(
        decode_request(&alien),
        Err(ProtocolError::UnsupportedVersion { client: 3, daemon: PROTOCOL_VERSION })
    ));

    let old_daemon = ResponseEnvelope {
        v: 0,
        id: 1,
        response: Response::Pong(Pong { daemon_version: "x".into(), protocol_version: 0 }),
    };
    let body = encode_body(&old_daemon).expect("encode");
    let err = decode_response(&body).expect_err("v0 must be refused");
    assert_eq!(
        err.to_string(),
        format!("protocol version mismatch: client speaks {PROTOCOL_VERSION}, daemon speaks 0")
    );
}

/// A client of this version against a daemon of version 1 (which knows none of the operator
/// actions): the old daemon answers any request of ours with its frozen error shape in ITS
/// version, and the client reports the mismatch instead of misreading or crashing.
#[test]
fn newer_client_against_a_version_1_daemon_gets_the_version_error() {
    let old_answer = read_vector("response_error_unsupported_version_v1");
    let request =
        RequestEnvelope::new(11, Request::Pause { schedule: "TS-1".into(), site: None, until: None, note: None });
    let mut exchange = Duplex { input: std::io::Cursor::new(old_answer), output: Vec::new() };
    match call(&mut exchange, &request, MAX_FRAME_LEN) {
        Err(e @ ProtocolError::UnsupportedVersion { client: 2, daemon: 1 }) => {
            assert_eq!(e.to_string(), "protocol version mismatch: client speaks 2, daemon speaks 1");
        }
        other => panic!("expected the version error, got {other:?}"),
    }
    // And the version-1 client's ping is refused by this version the same way.
    let body = &read_vector("request_ping_v1")[4..];
    assert!(matches!(
        decode_request(body),
        Err(ProtocolError::UnsupportedVersion { client: 1, daemon: PROTOCOL_VERSION })
    ));
}

struct Duplex {
    input: std::io::Cursor<Vec<u8>>,
    output: Vec<u8>,
}
impl std::io::Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}
impl std::io::Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn missing_or_non_integer_version_is_malformed() {
    #[derive(serde::Serialize)]
    struct NoV {
        id: u64,
        r#type: &'static str,
    }
    #[derive(serde::Serialize)]
    struct StrV {
        v: &'static str,
        id: u64,
    }
    let no_v = encode_body(&NoV { id: 1, r#type: "ping" }).expect("encode");
    assert!(matches!(decode_request(&no_v), Err(ProtocolError::Malformed(m)) if m.contains("'v'")));
    assert_eq!(peek_request_id(&no_v), Some(1));
    let str_v = encode_body(&StrV { v: "1", id: 2 }).expect("encode");
    assert!(matches!(decode_request(&str_v), Err(ProtocolError::Malformed(_))));
    assert!(matches!(decode_request(&[0x93, 1, 2, 3]), Err(ProtocolError::Malformed(_))));
}

#[test]
fn unknown_request_type_is_malformed_and_names_it() {
    #[derive(serde::Serialize)]
    struct Unknown {
        v: u32,
        id: u64,
        r#type: &'static str,
    }
    let body = encode_body(&Unknown { v: PROTOCOL_VERSION, id: 3, r#type: "self_destruct" }).expect("encode");
    match decode_request(&body) {
        Err(ProtocolError::Malformed(m)) => assert!(m.contains("self_destruct"), "{m}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn optional_fields_may_be_omitted_by_hand_written_clients() {
    #[derive(serde::Serialize)]
    struct MinimalNotify {
        v: u32,
        id: u64,
        r#type: &'static str,
        schedules: Vec<&'static str>,
    }
    let body = encode_body(&MinimalNotify { v: PROTOCOL_VERSION, id: 4, r#type: "notify", schedules: vec!["TS-1"] })
        .expect("encode");
    assert_eq!(
        decode_request(&body).ok(),
        Some(RequestEnvelope::new(4, Request::Notify { schedules: vec!["TS-1".into()], site: None }))
    );
}

#[test]
fn call_checks_the_echoed_id() {
    let pong = Response::Pong(Pong { daemon_version: "0.1.0".into(), protocol_version: 2 });
    let reply = encode_response(&ResponseEnvelope::new(1, pong.clone())).expect("encode");
    let mut ok = Duplex { input: std::io::Cursor::new(reply.clone()), output: Vec::new() };
    assert_eq!(call(&mut ok, &RequestEnvelope::new(1, Request::Ping), MAX_FRAME_LEN).ok(), Some(pong));
    if std::env::var_os("BTU_BLESS_VECTORS").is_none() {
        assert_eq!(ok.output, read_vector("request_ping"));
    }
    let mut wrong = Duplex { input: std::io::Cursor::new(reply), output: Vec::new() };
    assert!(matches!(
        call(&mut wrong, &RequestEnvelope::new(2, Request::Ping), MAX_FRAME_LEN),
        Err(ProtocolError::IdMismatch { expected: 2, got: 1 })
    ));
}
