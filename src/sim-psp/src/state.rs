//! The state directory: the simulation keys and certificates, kept across
//! restarts so the chain (and the ARK fingerprint verifier policies pin)
//! stays the same.
//!
//! | file | content | mode |
//! |---|---|---|
//! | `ark-key.pem`, `ask-key.pem` | RSA-4096 private keys, PKCS#8 PEM | 0600 |
//! | `vcek-key.pem` | EC P-384 private key, PKCS#8 PEM | 0600 |
//! | `ark.pem`, `ask.pem`, `vcek.pem` | the certificates, PEM | 0644 |
//! | `cert_chain.pem` | ASK then ARK, as AMD's KDS `cert_chain` | 0644 |
//! | `ark.sha256` | SHA-256 of the ARK DER, lowercase hex and a newline | 0644 |
//! | `lock` | `flock`ed while the directory is read or written | 0600 |
//!
//! A missing key is generated; a missing, unreadable, expired or mismatched
//! certificate is issued again from the keys (a new ARK certificate changes
//! the fingerprint; a new ASK or VCEK does not). Files are written to a
//! temporary name and renamed, so a crash never leaves half a key.
//!
//! RSA-4096 generation takes 1-5 s per key in an optimised build and 30 s to
//! 2 minutes in a debug build (2-core machine; the prime search is random), so
//! it happens once per state directory, the two keys in parallel.
//! Several processes or threads may open the same directory at once: the
//! lock makes the first one generate and the others wait and reuse.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use p384::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rand_core::OsRng;
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPrivateKey;
use sha2::{Digest as _, Sha256};
use x509_cert::der::{DateTime, Decode as _, Encode as _, EncodePem as _};
use x509_cert::Certificate;

use crate::chain::{self, ChainError, SimTcb, VcekInfo, RSA_BITS};

/// The simulation chain, loaded from (or created in) a state directory.
pub struct Chain {
    ark: Vec<u8>,
    ask: Vec<u8>,
    vcek: Vec<u8>,
    vcek_key: p384::ecdsa::SigningKey,
    vcek_info: VcekInfo,
    changes: Vec<Change>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("ark_sha256", &hex(&self.ark_sha256()))
            .field("vcek_info", &self.vcek_info)
            .finish_non_exhaustive()
    }
}

/// What [`Chain::load_or_create`] had to generate or issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A key file was missing and was generated.
    GeneratedKey {
        /// The file.
        file: &'static str,
        /// How long generation took.
        took: Duration,
    },
    /// A certificate was missing, unusable or expired and was issued.
    IssuedCertificate {
        /// The file.
        file: &'static str,
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::GeneratedKey { file, took } => {
                write!(f, "generated {file} in {:.1} s", took.as_secs_f64())
            }
            Change::IssuedCertificate { file, reason } => write!(f, "issued {file} ({reason})"),
        }
    }
}

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Creating the directory failed.
    #[error("creating state directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Taking the directory lock failed.
    #[error("locking {path}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading a file failed.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing a file failed.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A key file exists but is not a PKCS#8 key of the right kind. It is
    /// never replaced silently: that would change the chain.
    #[error("{path} is not a PKCS#8 {kind} private key (move it away to generate a new one)")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        kind: &'static str,
    },
    /// Generating an RSA key failed.
    #[error("generating {file}")]
    Generate {
        /// The file.
        file: &'static str,
        /// The cause.
        #[source]
        source: rsa::Error,
    },
    /// The key generation thread ended without a result.
    #[error("the key generation thread failed")]
    KeygenThread,
    /// Encoding a key or certificate as PEM failed.
    #[error("encoding {file}")]
    Encode {
        /// The file.
        file: &'static str,
    },
    /// Issuing or reading a certificate failed.
    #[error("certificate")]
    Chain(#[from] ChainError),
    /// The clock is before 1970 or after 9999.
    #[error("the system clock is out of range for a certificate")]
    Clock,
}

const ARK_KEY: &str = "ark-key.pem";
const ASK_KEY: &str = "ask-key.pem";
const VCEK_KEY: &str = "vcek-key.pem";
const ARK_CERT: &str = "ark.pem";
const ASK_CERT: &str = "ask.pem";
const VCEK_CERT: &str = "vcek.pem";
const CERT_CHAIN: &str = "cert_chain.pem";
const ARK_SHA256: &str = "ark.sha256";
const LOCK: &str = "lock";

impl Chain {
    /// Loads the chain from `dir`, generating keys and issuing certificates
    /// that are missing (see the [module documentation](self)). Blocks while
    /// another process or thread holds the directory's lock.
    pub fn load_or_create(dir: &Path) -> Result<Chain, StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StateError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| StateError::Lock {
                path: lock_path.clone(),
                source,
            })?;
        lock.lock().map_err(|source| StateError::Lock {
            path: lock_path,
            source,
        })?;
        // The lock is released when `lock` is dropped, at the end of this call.
        let chain = load_locked(dir);
        drop(lock);
        chain
    }

    /// The ARK certificate (DER).
    pub fn ark_der(&self) -> &[u8] {
        &self.ark
    }

    /// The ASK certificate (DER).
    pub fn ask_der(&self) -> &[u8] {
        &self.ask
    }

    /// The VCEK certificate (DER).
    pub fn vcek_der(&self) -> &[u8] {
        &self.vcek
    }

    /// SHA-256 of the ARK DER: the fingerprint a verifier policy pins.
    pub fn ark_sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.ark).into()
    }

    /// The VCEK's TCB and chip id, as its extensions say.
    pub fn vcek_info(&self) -> &VcekInfo {
        &self.vcek_info
    }

    /// What this load generated or issued (empty when everything was reused).
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    pub(crate) fn vcek_key(&self) -> &p384::ecdsa::SigningKey {
        &self.vcek_key
    }
}

fn load_locked(dir: &Path) -> Result<Chain, StateError> {
    let mut changes = Vec::new();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| DateTime::from_unix_duration(Duration::from_secs(d.as_secs())).ok())
        .ok_or(StateError::Clock)?;

    // Two cores halve the wait when both RSA keys are new.
    let (ark, ask) = std::thread::scope(|scope| {
        let ask = scope.spawn(|| rsa_key(dir, ASK_KEY));
        let ark = rsa_key(dir, ARK_KEY);
        (ark, ask.join().unwrap_or(Err(StateError::KeygenThread)))
    });
    let (ark_key, ark_change) = ark?;
    let (ask_key, ask_change) = ask?;
    changes.extend(ark_change.into_iter().chain(ask_change));
    let vcek_secret = p384_key(dir, &mut changes)?;
    let vcek_public = vcek_secret.public_key();

    let ark_spki = chain::rsa_spki("ARK", &ark_key.to_public_key())?
        .to_der()
        .map_err(ChainError::from_der)?;
    let ark = certificate(
        dir,
        ARK_CERT,
        &mut changes,
        |der| {
            check_reuse("ARK", der, &ark_spki, now)?;
            chain::verify_issued_by("ARK", der, "ARK", der)
        },
        || chain::issue_ark(&ark_key, now),
    )?;

    let ask_spki = chain::rsa_spki("ASK", &ask_key.to_public_key())?
        .to_der()
        .map_err(ChainError::from_der)?;
    let ask = certificate(
        dir,
        ASK_CERT,
        &mut changes,
        |der| {
            check_reuse("ASK", der, &ask_spki, now)?;
            chain::verify_issued_by("ASK", der, "ARK", &ark)
        },
        || chain::issue_ask(&ask_key.to_public_key(), &ark_key, now),
    )?;

    let vcek_spki = {
        use p384::pkcs8::EncodePublicKey as _;
        vcek_public
            .to_public_key_der()
            .map_err(|_| StateError::Encode { file: VCEK_CERT })?
            .as_bytes()
            .to_vec()
    };
    let vcek = certificate(
        dir,
        VCEK_CERT,
        &mut changes,
        |der| {
            check_reuse("VCEK", der, &vcek_spki, now)?;
            chain::verify_issued_by("VCEK", der, "ASK", &ask)?;
            VcekInfo::from_cert_der(der).map(drop)
        },
        || {
            chain::issue_vcek(
                &vcek_public,
                &ask_key,
                SimTcb::DEFAULT,
                &chain::chip_id_for(&vcek_public),
                now,
            )
        },
    )?;
    let vcek_info = VcekInfo::from_cert_der(&vcek)?;

    let chain_pem = [pem(ASK_CERT, &ask)?, pem(ARK_CERT, &ark)?].concat();
    write_if_changed(&dir.join(CERT_CHAIN), chain_pem.as_bytes(), 0o644)?;
    let fingerprint = format!("{}\n", hex(&Sha256::digest(&ark)));
    write_if_changed(&dir.join(ARK_SHA256), fingerprint.as_bytes(), 0o644)?;

    Ok(Chain {
        ark,
        ask,
        vcek,
        vcek_key: p384::ecdsa::SigningKey::from(vcek_secret),
        vcek_info,
        changes,
    })
}

impl ChainError {
    fn from_der(source: x509_cert::der::Error) -> ChainError {
        ChainError::Encode {
            what: "public key",
            source,
        }
    }
}

/// Reuses `file` if `usable` accepts it, else issues a new certificate.
fn certificate(
    dir: &Path,
    file: &'static str,
    changes: &mut Vec<Change>,
    usable: impl FnOnce(&[u8]) -> Result<(), ChainError>,
    issue: impl FnOnce() -> Result<Vec<u8>, ChainError>,
) -> Result<Vec<u8>, StateError> {
    let path = dir.join(file);
    let reason = match read_optional(&path)? {
        None => "missing".to_owned(),
        Some(text) => match pem_to_der(&text)
            .map_err(|e| e.to_string())
            .and_then(|der| usable(&der).map(|()| der).map_err(|e| error_chain(&e)))
        {
            Ok(der) => return Ok(der),
            Err(why) => why,
        },
    };
    let der = issue()?;
    write_file(&path, pem(file, &der)?.as_bytes(), 0o644)?;
    changes.push(Change::IssuedCertificate { file, reason });
    Ok(der)
}

fn check_reuse(
    cert: &'static str,
    der: &[u8],
    spki: &[u8],
    now: DateTime,
) -> Result<(), ChainError> {
    if chain::spki_der(cert, der)? != spki {
        return Err(ChainError::KeyMismatch { cert });
    }
    if chain::expired(cert, der, now)? {
        return Err(ChainError::Expired { cert });
    }
    Ok(())
}

fn rsa_key(dir: &Path, file: &'static str) -> Result<(RsaPrivateKey, Option<Change>), StateError> {
    let path = dir.join(file);
    if let Some(text) = read_optional(&path)? {
        let bad = || StateError::BadKey {
            path: path.clone(),
            kind: "RSA-4096",
        };
        let key = RsaPrivateKey::from_pkcs8_pem(&text).map_err(|_| bad())?;
        return if key.size() * 8 == RSA_BITS {
            Ok((key, None))
        } else {
            Err(bad())
        };
    }
    let start = Instant::now();
    let key = RsaPrivateKey::new(&mut OsRng, RSA_BITS)
        .map_err(|source| StateError::Generate { file, source })?;
    let took = start.elapsed();
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| StateError::Encode { file })?;
    write_file(&path, pem.as_bytes(), 0o600)?;
    Ok((key, Some(Change::GeneratedKey { file, took })))
}

fn p384_key(dir: &Path, changes: &mut Vec<Change>) -> Result<p384::SecretKey, StateError> {
    let path = dir.join(VCEK_KEY);
    if let Some(text) = read_optional(&path)? {
        return p384::SecretKey::from_pkcs8_pem(&text).map_err(|_| StateError::BadKey {
            path,
            kind: "EC P-384",
        });
    }
    let start = Instant::now();
    let key = p384::SecretKey::random(&mut OsRng);
    let took = start.elapsed();
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| StateError::Encode { file: VCEK_KEY })?;
    write_file(&path, pem.as_bytes(), 0o600)?;
    changes.push(Change::GeneratedKey {
        file: VCEK_KEY,
        took,
    });
    Ok(key)
}

fn read_optional(path: &Path) -> Result<Option<String>, StateError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `bytes` to a temporary file with `mode`, syncs it and renames it
/// over `path`.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let err = |source| StateError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    // A leftover temporary file keeps its old mode on open: set it.
    f.set_permissions(Permissions::from_mode(mode))
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)?;
    if let Some(parent) = path.parent() {
        File::open(parent).and_then(|d| d.sync_all()).map_err(err)?;
    }
    Ok(())
}

fn write_if_changed(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    match fs::read(path) {
        Ok(old) if old == bytes => Ok(()),
        _ => write_file(path, bytes, mode),
    }
}

fn pem(file: &'static str, der: &[u8]) -> Result<String, StateError> {
    Certificate::from_der(der)
        .and_then(|c| c.to_pem(LineEnding::LF))
        .map_err(|_| StateError::Encode { file })
}

/// The DER bytes of a PEM certificate, exactly as stored (not re-encoded:
/// the ARK fingerprint is over these bytes).
fn pem_to_der(text: &str) -> Result<Vec<u8>, x509_cert::der::Error> {
    let (label, der) = x509_cert::der::pem::decode_vec(text.as_bytes())?;
    if label != "CERTIFICATE" {
        return Err(x509_cert::der::ErrorKind::Pem(x509_cert::der::pem::Error::Label).into());
    }
    Certificate::from_der(&der)?;
    Ok(der)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
impl Chain {
    /// An in-memory chain with 1024-bit RSA keys: fast unit tests of what
    /// the chain signs. The real 4096-bit chain is tested in `tests/`.
    pub(crate) fn for_tests() -> Chain {
        let now = DateTime::new(2026, 1, 2, 3, 4, 5).unwrap();
        let ark_key = RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let ask_key = RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let vcek_secret = p384::SecretKey::random(&mut OsRng);
        let vcek_public = vcek_secret.public_key();
        let ark = chain::issue_ark(&ark_key, now).unwrap();
        let ask = chain::issue_ask(&ask_key.to_public_key(), &ark_key, now).unwrap();
        let vcek = chain::issue_vcek(
            &vcek_public,
            &ask_key,
            SimTcb::DEFAULT,
            &chain::chip_id_for(&vcek_public),
            now,
        )
        .unwrap();
        let vcek_info = VcekInfo::from_cert_der(&vcek).unwrap();
        Chain {
            ark,
            ask,
            vcek,
            vcek_key: p384::ecdsa::SigningKey::from(vcek_secret),
            vcek_info,
            changes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_chain_verifies() {
        let c = Chain::for_tests();
        chain::verify_issued_by("ARK", c.ark_der(), "ARK", c.ark_der()).unwrap();
        chain::verify_issued_by("ASK", c.ask_der(), "ARK", c.ark_der()).unwrap();
        chain::verify_issued_by("VCEK", c.vcek_der(), "ASK", c.ask_der()).unwrap();
        assert!(matches!(
            chain::verify_issued_by("VCEK", c.vcek_der(), "ARK", c.ark_der()),
            Err(ChainError::IssuerMismatch { .. })
        ));
        let mut tampered = c.vcek_der().to_vec();
        let at = tampered.len() - 10;
        tampered[at] ^= 1;
        assert!(matches!(
            chain::verify_issued_by("VCEK", &tampered, "ASK", c.ask_der()),
            Err(ChainError::Signature { .. })
        ));
    }

    #[test]
    fn pem_round_trip_keeps_the_exact_der() {
        let c = Chain::for_tests();
        assert_eq!(
            pem_to_der(&pem("ark.pem", c.ark_der()).unwrap()).unwrap(),
            c.ark_der()
        );
        assert!(
            pem_to_der("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err()
        );
    }
}
