//! The server over Unix sockets (process mode and the host side of hybrid
//! vsock): answers with bundles, refuses malformed requests with a JSON error
//! and keeps serving, and stays within its limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

mod common;

use std::io::{Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{shared_chain, Scratch};
use sim_psp::client::{self, ClientError};
use sim_psp::protocol::{self, Answer};
use sim_psp::{ListenAddr, ServeError, Server, ServerHandle, SimPsp};
use tee_formats::snp::ReceivedReport;
use wire::Tee;

const MEASUREMENT: [u8; 48] = [0x11; 48];

fn psp() -> Arc<SimPsp> {
    Arc::new(SimPsp::new(shared_chain(), MEASUREMENT))
}

fn start(addrs: &[ListenAddr]) -> ServerHandle {
    Server::bind(psp(), addrs).unwrap().spawn().unwrap()
}

fn error_of(line: &[u8]) -> String {
    match protocol::parse_answer(line).unwrap() {
        Answer::Error(e) => e,
        Answer::Bundle(_) => panic!("expected an error, got a bundle"),
    }
}

#[test]
fn serves_a_bundle_over_a_unix_socket() {
    let dir = Scratch::new("serve");
    let path = dir.path("psp.sock");
    let server = start(&[ListenAddr::Unix(path.clone())]);
    let report_data: [u8; 64] = std::array::from_fn(|i| 255 - i as u8);
    let bundle = client::request(&path, &report_data, 0).unwrap();
    assert_eq!(bundle.tee, Tee::Sim);
    assert_eq!(bundle.provider, "sim-psp");
    assert_eq!(bundle.certificates.len(), 3);
    let r = ReceivedReport::parse(&bundle.evidence).unwrap();
    assert_eq!(r.report().report_data, report_data);
    assert_eq!(r.report().measurement, MEASUREMENT);
    assert_eq!(server.requests(), 1);
    server.shutdown();
    assert!(!path.exists(), "shutdown removes the socket");
    assert!(matches!(
        client::request(&path, &report_data, 0),
        Err(ClientError::Connect { .. })
    ));
}

#[test]
fn hybrid_vsock_address_is_a_unix_listener_at_the_uds_path_with_port_suffix() {
    let dir = Scratch::new("hybrid");
    // What vhost-device-vsock connects to for the guest's connect(CID 2, 9100)
    // when started with uds-path=<dir>/vm.vsock.
    let path = dir.path("vm.vsock_9100");
    let addr: ListenAddr = format!("hybrid://{}", path.display()).parse().unwrap();
    assert_eq!(
        addr,
        ListenAddr::Hybrid {
            path: path.clone(),
            port: 9100
        }
    );
    let server = start(&[addr, ListenAddr::Unix(dir.path("b.sock"))]);
    assert!(client::request(&path, &[3; 64], 0).is_ok());
    assert!(client::request(&dir.path("b.sock"), &[3; 64], 0).is_ok());
    server.shutdown();
}

#[test]
fn malformed_requests_get_a_json_error_and_the_server_keeps_serving() {
    let dir = Scratch::new("malformed");
    let path = dir.path("psp.sock");
    let server = start(&[ListenAddr::Unix(path.clone())]);
    let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
    let mut oversized = format!("{{\"report_data\":\"{}\",\"pad\":\"", b64(64)).into_bytes();
    oversized.resize(5000, b'x');
    oversized.extend_from_slice(b"\"}\n");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"hello\n".to_vec(), "malformed request"),
        (
            b"{\"report_data\":\"***\",\"vmpl\":0}\n".to_vec(),
            "not base64",
        ),
        (
            format!("{{\"report_data\":\"{}\",\"vmpl\":0}}\n", b64(63)).into_bytes(),
            "63 bytes, want 64",
        ),
        (
            format!("{{\"report_data\":\"{}\",\"vmpl\":7}}\n", b64(64)).into_bytes(),
            "vmpl 7 is not 0..=3",
        ),
        (
            format!("{{\"report_data\":\"{}\",\"vmpl\":\"0\"}}\n", b64(64)).into_bytes(),
            "malformed request",
        ),
        (oversized, "exceeds 4096 bytes"),
        (b"\n".to_vec(), "malformed request"),
        (vec![0xFF, 0xFE, b'\n'], "malformed request"),
    ];
    for (request, want) in cases {
        let answer = client::exchange(&path, &request).unwrap();
        assert_eq!(answer.last(), Some(&b'\n'));
        let e = error_of(&answer);
        assert!(e.contains(want), "{e:?} does not contain {want:?}");
        // Still serving.
        assert!(client::request(&path, &[1; 64], 0).is_ok());
    }
    assert!(
        matches!(client::request(&path, &[1; 64], 4), Err(ClientError::Refused(e)) if e == "vmpl 4 is not 0..=3")
    );
    server.shutdown();
}

#[test]
fn one_connection_can_carry_several_requests() {
    let dir = Scratch::new("several");
    let path = dir.path("psp.sock");
    let server = start(&[ListenAddr::Unix(path.clone())]);
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut both = protocol::encode_request(&[1; 64], 0);
    both.extend(protocol::encode_request(&[2; 64], 1));
    s.write_all(&both).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let lines: Vec<_> = all.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 2);
    for (line, (rd, vmpl)) in lines.iter().zip([([1u8; 64], 0), ([2; 64], 1)]) {
        let Answer::Bundle(b) = protocol::parse_answer(line).unwrap() else {
            panic!("error answer")
        };
        let r = ReceivedReport::parse(&b.evidence).unwrap();
        assert_eq!((r.report().report_data, r.report().vmpl), (rd, vmpl));
    }
    server.shutdown();
}

#[test]
fn connections_beyond_the_cap_are_refused_busy_and_served_again_later() {
    let dir = Scratch::new("busy");
    let path = dir.path("psp.sock");
    let server = Server::bind(psp(), &[ListenAddr::Unix(path.clone())])
        .unwrap()
        .with_limits(1, Duration::from_secs(30))
        .spawn()
        .unwrap();
    // Holds the only slot.
    let mut holder = UnixStream::connect(&path).unwrap();
    holder.write_all(b"{").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let answer = client::exchange(&path, &protocol::encode_request(&[0; 64], 0)).unwrap();
    assert!(
        error_of(&answer).starts_with("busy"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Finishing the held request frees the slot.
    holder.write_all(b"}\n").unwrap();
    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client::request(&path, &[0; 64], 0) {
            Ok(_) => break,
            Err(ClientError::Refused(e)) if e.starts_with("busy") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    server.shutdown();
}

#[test]
fn a_silent_client_is_dropped_after_the_read_timeout() {
    let dir = Scratch::new("timeout");
    let path = dir.path("psp.sock");
    let server = Server::bind(psp(), &[ListenAddr::Unix(path.clone())])
        .unwrap()
        .with_limits(16, Duration::from_millis(300))
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut silent = UnixStream::connect(&path).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        silent.read(&mut buf).unwrap(),
        0,
        "the server closes the connection"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // A client trickling bytes is bounded the same way.
    let mut slow = UnixStream::connect(&path).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut closed = false;
    for _ in 0..40 {
        if slow.write_all(b" ").is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !closed {
        assert_eq!(slow.read(&mut buf).unwrap(), 0);
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(client::request(&path, &[0; 64], 0).is_ok());
    server.shutdown();
}

#[test]
fn concurrent_clients_are_all_served() {
    let dir = Scratch::new("concurrent");
    let path = dir.path("psp.sock");
    let server = start(&[ListenAddr::Unix(path.clone())]);
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let p = path.clone();
            std::thread::spawn(move || {
                for i in 0..3u8 {
                    let rd = [t * 16 + i; 64];
                    let b = client::request(&p, &rd, 0).unwrap();
                    assert_eq!(
                        ReceivedReport::parse(&b.evidence)
                            .unwrap()
                            .report()
                            .report_data,
                        rd
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(server.requests(), 24);
    server.shutdown();
}

#[test]
fn binding_replaces_a_stale_socket_but_not_a_live_one_or_a_file() {
    let dir = Scratch::new("bind");
    let stale = dir.path("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let server = start(&[ListenAddr::Unix(stale.clone())]);
    assert!(client::request(&stale, &[0; 64], 0).is_ok());

    let live = Server::bind(psp(), &[ListenAddr::Unix(stale.clone())]);
    assert!(matches!(live, Err(ServeError::InUse { .. })));
    server.shutdown();

    let file = dir.path("file");
    std::fs::write(&file, "keep me").unwrap();
    assert!(matches!(
        Server::bind(psp(), &[ListenAddr::Unix(file.clone())]),
        Err(ServeError::NotASocket { .. })
    ));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    let missing_dir = dir.path("no/such/dir/psp.sock");
    let e = Server::bind(psp(), &[ListenAddr::Unix(missing_dir)])
        .err()
        .unwrap();
    assert!(matches!(e, ServeError::Bind { .. }), "{e:?}");
}
