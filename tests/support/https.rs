//! A small HTTPS client for tests: TLS 1.3 pinned to one CA, over any
//! transport address, with raw access for misbehaving-client tests.

use std::io::{BufReader, Write};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// A TLS connection.
pub type Conn = BufReader<rustls::StreamOwned<rustls::ClientConnection, transport::Stream>>;

/// A response.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The error code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// Client settings: where and whom to trust.
#[derive(Clone)]
pub struct Client {
    /// The service's address (`tcp://…`, `unix://…`).
    pub addr: transport::Addr,
    /// The name its certificate carries.
    pub server_name: String,
    config: Arc<rustls::ClientConfig>,
    roots: Arc<rustls::RootCertStore>,
    /// Read/write timeout of each connection (30 s unless set).
    pub timeout: std::time::Duration,
}

/// TLS 1.3 with ring, trusting only `roots`; the client certificate is
/// chosen next.
fn tls13(
    roots: Arc<rustls::RootCertStore>,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
}

impl Client {
    /// Trusting only `ca_pem`.
    pub fn new(addr: &str, ca_pem: &str, server_name: &str) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let roots = Arc::new(roots);
        let config = tls13(Arc::clone(&roots)).with_no_client_auth();
        Client {
            addr: addr.parse().unwrap(),
            server_name: server_name.to_owned(),
            config: Arc::new(config),
            roots,
            timeout: std::time::Duration::from_secs(30),
        }
    }

    /// The same client presenting a client certificate (`cert_pem`, leaf
    /// first) with its key (`key_pem`) for mutual TLS.
    pub fn with_identity(mut self, cert_pem: &str, key_pem: &str) -> Client {
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let config = tls13(Arc::clone(&self.roots))
            .with_client_auth_cert(chain, key)
            .unwrap();
        self.config = Arc::new(config);
        self
    }

    /// The same client choosing its certificate through `resolver` (an
    /// attacker's client presenting a certificate whose key it lacks).
    pub fn with_resolver(
        mut self,
        resolver: Arc<dyn rustls::client::ResolvesClientCert>,
    ) -> Client {
        let config = tls13(Arc::clone(&self.roots)).with_client_cert_resolver(resolver);
        self.config = Arc::new(config);
        self
    }

    /// The same client presenting no certificate.
    pub fn anonymous(mut self) -> Client {
        let config = tls13(Arc::clone(&self.roots)).with_no_client_auth();
        self.config = Arc::new(config);
        self
    }

    /// The same client with another per-connection read/write timeout.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// A new connection (the handshake runs on first use).
    pub fn connect(&self) -> std::io::Result<Conn> {
        let stream = transport::connect(&self.addr)?;
        stream.set_timeouts(self.timeout)?;
        let conn = rustls::ClientConnection::new(
            Arc::clone(&self.config),
            ServerName::try_from(self.server_name.clone()).unwrap(),
        )
        .unwrap();
        Ok(BufReader::new(rustls::StreamOwned::new(conn, stream)))
    }

    /// One request on `conn`.
    pub fn send(
        &self,
        conn: &mut Conn,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Resp, String> {
        bounded_http::write_request(
            conn.get_mut(),
            method,
            &self.server_name,
            path,
            headers,
            body,
        )
        .map_err(|e| e.to_string())?;
        conn.get_mut().flush().map_err(|e| e.to_string())?;
        let r = bounded_http::read_response(
            conn,
            bounded_http::Limits {
                head_bytes: 64 * 1024,
                body_bytes: 64 * 1024 * 1024,
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(Resp {
            status: r.status,
            headers: r.headers,
            body: r.body,
        })
    }

    /// The leaf certificate the server presented on `conn` (DER), after a
    /// request on it.
    pub fn peer_leaf(conn: &Conn) -> Vec<u8> {
        conn.get_ref()
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    /// One request on a new connection.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut conn = self.connect().unwrap();
        self.send(&mut conn, method, path, headers, body).unwrap()
    }

    /// `POST /v1/calls` with `metadata` and `audio` parts.
    pub fn call(&self, metadata: &str, wav: &[u8]) -> Resp {
        let (ct, body) = multipart(&[
            ("metadata", None, "application/json", metadata.as_bytes()),
            ("audio", Some("call.wav"), "audio/wav", wav),
        ]);
        self.request("POST", "/v1/calls", &[("content-type", &ct)], &body)
    }
}

/// A multipart/form-data body: (name, filename, content type, bytes) each;
/// returns the Content-Type header and the body.
pub fn multipart(parts: &[(&str, Option<&str>, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----enclave-test-boundary-7d41";
    let mut body = Vec::new();
    for (name, filename, ct, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n")
                    .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(format!("Content-Type: {ct}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A mono WAV file: `secs` seconds at `rate` Hz, a 440 Hz tone every other
/// half second (speech-like on/off), in `encoding` (`pcm16`, `mulaw`,
/// `alaw`).
pub fn wav(encoding: &str, rate: u32, secs: f64) -> Vec<u8> {
    let n = (f64::from(rate) * secs) as usize;
    let samples: Vec<i16> = (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let on = ((t * 2.0) as u64).is_multiple_of(2);
            if on {
                (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
            } else {
                0
            }
        })
        .collect();
    let (tag, bits, data): (u16, u16, Vec<u8>) = match encoding {
        "pcm16" => (
            1,
            16,
            samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
        ),
        "mulaw" => (7, 8, samples.iter().map(|s| linear_to_mulaw(*s)).collect()),
        "alaw" => (6, 8, samples.iter().map(|s| linear_to_alaw(*s)).collect()),
        other => panic!("encoding {other}"),
    };
    let block = bits / 8;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    out.extend_from_slice(&block.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// G.711 μ-law (ITU-T reference algorithm).
fn linear_to_mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = (s + BIAS).min(32635 + BIAS);
    let mut exponent = 7;
    let mut mask = 0x4000;
    while s & mask == 0 && exponent > 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// G.711 A-law.
fn linear_to_alaw(sample: i16) -> u8 {
    let mut s = i32::from(sample) >> 3;
    let mask = if s >= 0 {
        0xd5
    } else {
        s = -s - 1;
        0x55
    };
    let seg_ends = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let seg = seg_ends.iter().position(|e| s <= *e).unwrap_or(8) as i32;
    let aval = if seg >= 8 {
        0x7f
    } else {
        let mut a = seg << 4;
        a |= if seg < 2 {
            (s >> 1) & 0x0f
        } else {
            (s >> seg) & 0x0f
        };
        a
    };
    (aval ^ mask) as u8
}
