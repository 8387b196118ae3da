//! The attacked set-up: the real parts on loopback (sim-psp, the verifier,
//! OpenBao configured by `scripts/openbao-setup`, the transcription
//! stand-in), a process-mode guest with its call service, and the host's
//! own relays between the guest and each peer, which the attacks steer.
//!
//! Lifetimes are short (seconds, not minutes): a deadline that holds at
//! 8 s holds at 300 s, and the suite stays inside CI's budget.
#![allow(
    dead_code,
    reason = "shared by attacks; not every attack uses every part"
)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use enclave_tests::https::{self, Client};
use enclave_tests::process::{boot, Guest};
use enclave_tests::stack::{
    platform_client, service_config, sim_policy, OpenBao, Pki, SimPsp, Verifier,
};
use enclave_tests::transcription::TranscriptionStandIn;
use enclave_tests::TempDir;

pub const TRANSCRIPTION_KEY: &str = "canary-transcription-key-5e0b7c";
pub const RETELL_KEY: &str = "canary-retell-key-a41f09";
pub const PEPPER: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
pub const CANARY_PHONE: &str = "+39 333 987 6543";
pub const CANARY_PHRASE: &str = "ornitorinco viola";

/// How the rig is built.
pub struct Options {
    /// The verifier's token lifetime, seconds.
    pub token_ttl_secs: u64,
    /// Extra verifier arguments.
    pub verifier_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token_ttl_secs: 8,
            verifier_args: Vec::new(),
        }
    }
}

/// The real parts and the host's relays in front of them.
pub struct Rig {
    pub pki: Pki,
    pub psp: SimPsp,
    pub verifier: Verifier,
    pub bao: OpenBao,
    pub standin: TranscriptionStandIn,
    /// Guest → verifier.
    pub to_verifier: Relay,
    /// Guest → OpenBao.
    pub to_vault: Relay,
    /// Guest → transcription upstream.
    pub to_upstream: Relay,
    pub dir: TempDir,
    pub policy: String,
    pub token_ttl_secs: u64,
    pub verifier_args: Vec<String>,
}

pub fn transcript() -> String {
    format!("Questa è una trascrizione di prova. Mi richiami al {CANARY_PHONE}, la parola è {CANARY_PHRASE}.")
}

pub fn metadata(call_id: &str) -> String {
    serde_json::json!({
        "call_id": call_id, "shipment_id": "SHP-42", "agent_type": "sara",
        "caller_phone": CANARY_PHONE, "language": "it",
    })
    .to_string()
}

impl Rig {
    pub fn new(opts: Options) -> Rig {
        let dir = TempDir::new("hostile");
        let pki = Pki::new();
        let m = "c3".repeat(48);
        let psp = SimPsp::start(&dir.path().join("psp.sock"), &["--measurement", &m]);
        let policy = sim_policy(&psp.ark_sha256, &[&psp.measurement]);
        let ttl = opts.token_ttl_secs.to_string();
        let (ca_cert, ca_key) = client_ca_args(&pki);
        let mut vargs: Vec<&str> = vec![
            "--token-ttl-secs",
            &ttl,
            "--client-ca-cert",
            &ca_cert,
            "--client-ca-key",
            &ca_key,
        ];
        vargs.extend(opts.verifier_args.iter().map(String::as_str));
        let verifier = Verifier::start(&pki, &policy, dir.path(), &vargs);
        let bao = OpenBao::start(&pki);
        bao.setup(
            &verifier,
            &pki,
            &[&psp.measurement],
            "sim",
            &[
                ("ENCLAVE_SEED_TRANSCRIPTION_API_KEY", TRANSCRIPTION_KEY),
                ("ENCLAVE_SEED_RETELL_API_KEY", RETELL_KEY),
                ("ENCLAVE_SEED_PII_PEPPER", PEPPER),
            ],
        );
        let standin = TranscriptionStandIn::start(
            &pki.path("transcribe.pem"),
            &pki.path("transcribe-key.pem"),
            TRANSCRIPTION_KEY,
            &transcript(),
        );
        let to_verifier = Relay::start(verifier.port);
        let to_vault = Relay::start(bao.port);
        let to_upstream = Relay::start(standin.port);
        Rig {
            pki,
            psp,
            verifier,
            bao,
            standin,
            to_verifier,
            to_vault,
            to_upstream,
            dir,
            policy,
            token_ttl_secs: opts.token_ttl_secs,
            verifier_args: opts.verifier_args,
        }
    }

    /// The guest configuration: peers through the host's relays, the call
    /// service on loopback TCP, `extra` appended (TOML).
    pub fn guest_config(&self, gdir: &TempDir, extra: &str) -> String {
        let mut c = self.plain_config(gdir, "");
        c.push_str(&service_config(
            "tcp://127.0.0.1:0",
            &format!("tcp://127.0.0.1:{}", self.to_upstream.port),
            &self.pki,
            "",
        ));
        c.push_str(extra);
        c
    }

    /// A guest configuration without the call service (fleet attacks boot
    /// many of these), `extra` appended.
    pub fn plain_config(&self, gdir: &TempDir, extra: &str) -> String {
        let ca = self.pki.ca_pem();
        let mut c = format!(
            "[host]\nready = \"unix://{}\"\ncontrol = \"tcp://127.0.0.1:0\"\nconnect_timeout_ms = 10000\n\n\
             [tee]\nsource = \"sim\"\nsim_psp = \"unix://{}\"\ntimeout_ms = 10000\n\n\
             [verifier]\naddr = \"tcp://127.0.0.1:{}\"\nserver_name = \"verifier.enclave.local\"\nca = \"\"\"\n{ca}\"\"\"\n\n\
             [vault]\naddr = \"tcp://127.0.0.1:{}\"\nserver_name = \"vault.enclave.local\"\nca = \"\"\"\n{}\"\"\"\n",
            gdir.path().join("ready.sock").display(),
            self.psp.socket.display(),
            self.to_verifier.port,
            self.to_vault.port,
            self.bao.ca_pem(),
        );
        c.push_str(extra);
        c
    }

    /// Kills the verifier, and (after `down`) starts a new one with the same
    /// keys and policy behind the same relay: the guest sees one address
    /// go away and come back.
    pub fn restart_verifier(&mut self, down: Duration) {
        self.verifier.proc.stop();
        std::thread::sleep(down);
        let ttl = self.token_ttl_secs.to_string();
        let (ca_cert, ca_key) = client_ca_args(&self.pki);
        let mut vargs: Vec<&str> = vec![
            "--token-ttl-secs",
            &ttl,
            "--client-ca-cert",
            &ca_cert,
            "--client-ca-key",
            &ca_key,
        ];
        vargs.extend(self.verifier_args.iter().map(String::as_str));
        // The same address: the verifier's issuer URL, which OpenBao's OIDC
        // discovery points at, is its address.
        self.verifier = Verifier::start_on(
            &self.pki,
            &self.policy,
            self.dir.path(),
            &vargs,
            self.verifier.port,
        );
    }

    /// Boots a guest with the call service; the guest, its readiness
    /// report and a client pinned to the serving CA.
    pub fn guest(&self, extra: &str) -> (Guest, serde_json::Value, Client) {
        let gdir = TempDir::new("hguest");
        let config = self.guest_config(&gdir, extra);
        let (g, report) = boot(gdir, &config).ready();
        let addr = report["call_service"]
            .as_str()
            .unwrap_or_else(|| panic!("no call service in {report}"))
            .to_owned();
        let client = platform_client(&self.pki, &addr, &self.bao.serving_ca_pem());
        (g, report, client)
    }
}

/// The verifier's client CA (certificate mode): every rig's verifier has
/// one; guests in JWT mode never ask it for a certificate.
fn client_ca_args(pki: &Pki) -> (String, String) {
    (
        pki.path("client-ca.pem").display().to_string(),
        pki.path("client-ca-key.pem").display().to_string(),
    )
}

/// Polls calls from a well-behaved client every 100 ms until `until` (Unix
/// seconds); the time of the last one answered 200, if any.
pub fn last_answered(client: &Client, until: f64, tag: &str) -> Option<f64> {
    let mut last = None;
    let mut n = 0;
    while unix_now() < until {
        n += 1;
        if call(client, &format!("{tag}-{n}")).0 == 200 {
            last = Some(unix_now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

/// Watches a guest whose trust is about to end (the host has cut its
/// renewal): keeps calling as a well-behaved client and reading health,
/// following the trust deadline (a renewal already in flight when the path
/// was cut may still move it), until health shows trust ended and 3 s more
/// have passed (or `give_up`). Returns how long after the last deadline a
/// call was still answered 200 (0 if none was), and that deadline.
pub fn watch_trust_end(client: &Client, give_up: Duration, tag: &str) -> Option<(f64, f64)> {
    let end = Instant::now() + give_up;
    let mut deadline: Option<f64> = None;
    let mut last_ok: Option<f64> = None;
    let mut ended_at: Option<f64> = None;
    let mut n = 0;
    while Instant::now() < end {
        match health(client) {
            Some((_, h)) if h["attestation"]["valid"] == true => {
                if let Some(left) = h["attestation"]["expires_in_s"].as_f64() {
                    deadline = Some(unix_now() + left);
                }
            }
            Some(_) => {
                ended_at.get_or_insert_with(unix_now);
            }
            None => {}
        }
        n += 1;
        if call(client, &format!("{tag}-{n}")).0 == 200 {
            last_ok = Some(unix_now());
        }
        if ended_at.is_some_and(|t| unix_now() > t + 3.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = deadline?;
    ended_at?;
    Some((last_ok.map_or(0.0, |t| (t - deadline).max(0.0)), deadline))
}

/// The guest's trust deadline (Unix seconds) from its health document.
pub fn trust_deadline(client: &Client) -> Option<f64> {
    let (_, h) = health(client)?;
    let left = h["attestation"]["expires_in_s"].as_f64()?;
    (h["attestation"]["valid"] == true).then(|| unix_now() + left)
}

/// Waits up to `secs` for the guest's health to satisfy `done`.
pub fn wait_health(
    client: &Client,
    secs: u64,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Some((_, h)) = health(client) {
            if done(&h) {
                return Some(h);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// A host-side client of the verifier: what a host (or anyone on the
/// network) can do with the verifier's public API and the simulated PSP it
/// runs itself in process mode.
pub mod host_client {
    use std::io::BufReader;
    use std::net::TcpStream;
    use std::sync::Arc;

    use wire::verifier::{AttestRequest, Challenge, EXPORTER_LABEL};

    /// A TLS connection to the verifier.
    pub type Tls = BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

    pub fn connect(ca_pem: &str, port: u16) -> Tls {
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("verifier.enclave.local").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        BufReader::new(rustls::StreamOwned::new(
            conn,
            TcpStream::connect(("127.0.0.1", port)).unwrap(),
        ))
    }

    pub fn post(tls: &mut Tls, path: &str, body: &[u8]) -> bounded_http::Response {
        bounded_http::write_request(
            tls.get_mut(),
            "POST",
            "verifier.enclave.local",
            path,
            &[],
            body,
        )
        .unwrap();
        bounded_http::read_response(tls, bounded_http::Limits::default()).unwrap()
    }

    pub fn exporter(tls: &Tls) -> [u8; 32] {
        let mut e = [0u8; 32];
        tls.get_ref()
            .conn
            .export_keying_material(&mut e, EXPORTER_LABEL, None)
            .unwrap();
        e
    }

    pub fn challenge(tls: &mut Tls) -> [u8; 32] {
        let r = post(tls, "/v1/challenge", b"{}");
        assert_eq!(r.status, 200);
        let c: Challenge = serde_json::from_slice(&r.body).unwrap();
        c.nonce[..].try_into().unwrap()
    }

    /// A fresh P-256 SPKI (the "enclave key" of a host posing as a guest).
    pub fn spki() -> Vec<u8> {
        use ring::signature::KeyPair as _;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &rng,
        )
        .unwrap();
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        spki
    }

    /// A complete attest request for this connection: challenge, sim
    /// evidence for the binding from the sim-psp at `psp`.
    pub fn attest_request(tls: &mut Tls, psp: &std::path::Path, spki: &[u8]) -> Vec<u8> {
        attest_request_asking(tls, psp, spki, false)
    }

    /// [`attest_request`], asking for a client certificate (certificate mode).
    pub fn attest_request_asking(
        tls: &mut Tls,
        psp: &std::path::Path,
        spki: &[u8],
        client_certificate: bool,
    ) -> Vec<u8> {
        let nonce = challenge(tls);
        let rd = tee_formats::binding::report_data(&nonce, spki, &exporter(tls));
        let addr: transport::Addr = format!("unix://{}", psp.display()).parse().unwrap();
        let mut source = evidence::sim::SimPsp::new(addr, std::time::Duration::from_secs(10));
        let bundle = evidence::EvidenceSource::collect(&mut source, &rd).unwrap();
        let req = AttestRequest {
            nonce: nonce.to_vec().into(),
            enclave_key_spki: spki.to_vec().into(),
            bundle,
            client_certificate,
        };
        serde_json::to_vec(&req).unwrap()
    }

    /// The check a 403 names.
    pub fn denied_check(r: &bounded_http::Response) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        v["denial"]["check"].as_str().map(str::to_owned)
    }
}

/// One call from a well-behaved client: the status (0: no answer), and how
/// long it took.
pub fn call(client: &Client, id: &str) -> (u16, Duration) {
    let t = Instant::now();
    let wav = https::wav("mulaw", 8000, 1.0);
    let status = match client.connect() {
        Ok(mut conn) => {
            let (ct, body) = https::multipart(&[
                (
                    "metadata",
                    None,
                    "application/json",
                    metadata(id).as_bytes(),
                ),
                ("audio", Some("call.wav"), "audio/wav", &wav),
            ]);
            client
                .send(
                    &mut conn,
                    "POST",
                    "/v1/calls",
                    &[("content-type", &ct)],
                    &body,
                )
                .map(|r| r.status)
                .unwrap_or(0)
        }
        Err(_) => 0,
    };
    (status, t.elapsed())
}

/// The guest's health document (its status and body), or None.
pub fn health(client: &Client) -> Option<(u16, serde_json::Value)> {
    let mut conn = client.connect().ok()?;
    let r = client
        .send(&mut conn, "GET", "/health/enclave", &[], b"")
        .ok()?;
    Some((r.status, serde_json::from_slice(&r.body).ok()?))
}

/// Unix time now, seconds (fractional).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// What a relay does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Forward both ways.
    Pass = 0,
    /// Accept, read what comes, answer nothing, hold the connection.
    Stall = 1,
    /// Forward the request; drip the answer one byte per second.
    Drip = 2,
    /// Accept and close at once.
    Cut = 3,
}

/// The host's relay in front of one peer: a TCP listener forwarding to
/// `127.0.0.1:<target>`, steered by [`Relay::set`]. A mode change applies
/// to new connections and to connections it is still relaying.
pub struct Relay {
    pub port: u16,
    mode: Arc<AtomicU8>,
    /// Where new connections go (a restarted peer may listen elsewhere).
    target: Arc<std::sync::atomic::AtomicU16>,
    /// Connections accepted so far.
    accepted: Arc<AtomicU64>,
    /// Connections open now, and the most at once.
    open: Arc<(AtomicU64, AtomicU64)>,
}

impl Relay {
    pub fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let accepted = Arc::new(AtomicU64::new(0));
        let target = Arc::new(std::sync::atomic::AtomicU16::new(target));
        let open = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let (m, n, t, o) = (
            Arc::clone(&mode),
            Arc::clone(&accepted),
            Arc::clone(&target),
            Arc::clone(&open),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                n.fetch_add(1, Ordering::Relaxed);
                let (m, o) = (Arc::clone(&m), Arc::clone(&o));
                let to = t.load(Ordering::SeqCst);
                std::thread::spawn(move || {
                    let now = o.0.fetch_add(1, Ordering::SeqCst) + 1;
                    o.1.fetch_max(now, Ordering::SeqCst);
                    relay(client, to, &m);
                    o.0.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Relay {
            port,
            mode,
            target,
            accepted,
            open,
        }
    }

    /// Sends new connections to `port` from now on.
    pub fn set_target(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The most connections relayed at once.
    pub fn peak(&self) -> u64 {
        self.open.1.load(Ordering::SeqCst)
    }
}

fn mode_of(m: &AtomicU8) -> Mode {
    match m.load(Ordering::SeqCst) {
        1 => Mode::Stall,
        2 => Mode::Drip,
        3 => Mode::Cut,
        _ => Mode::Pass,
    }
}

fn relay(client: TcpStream, target: u16, mode: &Arc<AtomicU8>) {
    let _ = client.set_nodelay(true);
    match mode_of(mode) {
        Mode::Cut => {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        Mode::Stall => {
            stall(client, mode);
            return;
        }
        _ => {}
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up_mode = Arc::clone(mode);
    let up = std::thread::spawn(move || pump(c2, s2, &up_mode, false));
    pump(server, client, mode, true);
    let _ = up.join();
}

/// Holds a connection, reading and discarding, never answering, until the
/// mode changes away from Stall (then closes it).
fn stall(mut client: TcpStream, mode: &AtomicU8) {
    let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    while mode_of(mode) == Mode::Stall {
        match client.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Copies `from` → `to`; the answer direction (`answer`) drips one byte per
/// second in Drip mode and goes silent in Stall mode.
fn pump(mut from: TcpStream, mut to: TcpStream, mode: &AtomicU8, answer: bool) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        match (answer, mode_of(mode)) {
            (true, Mode::Drip) => {
                for b in &buf[..n] {
                    if to.write_all(std::slice::from_ref(b)).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            (true, Mode::Stall) => {}
            _ => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Rig {
    /// [`Rig::guest`] with `service` (TOML lines) added to the guest's
    /// `[service]` section: the starvation attacks tune the pool and its
    /// timeouts. The client is made exactly as [`Rig::guest`] makes it;
    /// keep the two in step.
    pub fn guest_with_service(
        &self,
        service: &str,
        extra: &str,
    ) -> (Guest, serde_json::Value, Client) {
        let gdir = TempDir::new("hguest");
        let listen = "listen = \"tcp://127.0.0.1:0\"\n";
        let config = self.guest_config(&gdir, extra);
        assert!(
            config.contains(listen),
            "no service listen line in {config}"
        );
        let config = config.replacen(listen, &format!("{listen}{service}\n"), 1);
        let (g, report) = boot(gdir, &config).ready();
        let addr = report["call_service"]
            .as_str()
            .unwrap_or_else(|| panic!("no call service in {report}"))
            .to_owned();
        let client = platform_client(&self.pki, &addr, &self.bao.serving_ca_pem());
        (g, report, client)
    }
}

/// The resident set of a process and its peak, KiB (`VmRSS`, `VmHWM` of
/// `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
