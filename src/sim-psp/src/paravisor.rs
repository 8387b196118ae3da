//! A SIMULATED Azure paravisor (development and tests only): what OpenHCL
//! does for an Azure confidential VM's vTPM, in front of a software TPM
//! (swtpm), so that the Azure evidence path runs end to end on a machine
//! with no SEV-SNP and no Azure.
//!
//! It sits between the guest and swtpm as a TPM command relay on a Unix
//! socket (the guest's `tee.tpm = "unix:///…"`): every command goes through
//! unchanged, and when the guest's TPM2_NV_Write to the user-data index
//! `0x01400002` succeeds it does what the real paravisor does on that write,
//! before answering: it builds the runtime claims JSON (the vTPM AK at
//! `0x81000003` as the `HCLAkPub` JWK, a `vm-configuration` that says
//! `"simulation": true`, and the written bytes as upper-case hex `user-data`),
//! has this crate's simulated PSP sign an SNP-format report at VMPL 0 with
//! REPORT_DATA = SHA-256(JSON) ‖ 32 zero bytes, and writes the HCL report
//! into NV `0x01400001` with platform authorisation (the index is
//! PPWRITE: the guest cannot write it). It also serves the simulation chain
//! (VCEK, ASK, ARK) in the shape of Azure IMDS's THIM answer, for the
//! guest's `tee.azure_certs` relay.
//!
//! Trust: none. The report is signed by the SIMULATION chain: a verifier
//! accepts it only under a policy with `[sim] allowed` and this chain's ARK
//! pinned (`Policy::production` refuses such a policy), and the claims then
//! say `tee = "azure-sim"`.
//!
//! The TPM is provisioned before the paravisor starts, as Azure's HCL lays it
//! out (the tests do it with tpm2-tools): an RSA-2048 restricted signing key
//! (RSASSA/SHA-256) persisted at `0x81000003`, and NV `0x01400001` defined
//! by the platform hierarchy (PPWRITE, owner/auth read). swtpm limits an NV
//! index to 2048 bytes (Azure's is 2600): the report is padded to the index's
//! size, whatever it is.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use evidence::tpm_device::{Tpm, TpmAddr};
use sha2::{Digest, Sha256};
use tee_formats::azure::{self, HclReport, HclReportType};
use tee_formats::tpm::command::{
    self, cc, CommandHeader, NvPublic, RsaPublic, HEADER_SIZE, MAX_MESSAGE, RH_OWNER,
};

use crate::report::SimPsp;

/// TPM_RH_PLATFORM: the paravisor's hierarchy.
pub const RH_PLATFORM: u32 = 0x4000_000C;
/// The header version of the HCL reports written (the current one).
pub const HCL_VERSION: u32 = 2;
/// Bound on each exchange with the guest and with swtpm.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Why the paravisor cannot start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ParavisorError {
    /// swtpm could not be reached or refused a command.
    #[error("software TPM at {addr}")]
    Tpm {
        /// Its address.
        addr: String,
        /// The cause.
        #[source]
        source: evidence::EvidenceError,
    },
    /// The TPM is not provisioned the way Azure lays it out.
    #[error("the TPM is not provisioned as an Azure vTPM: {0} (provision the AK at 0x81000003 and NV 0x01400001 first)")]
    NotProvisioned(String),
    /// The simulated PSP refused to sign.
    #[error("the simulated PSP refused the report")]
    Report(#[source] crate::report::ReportError),
    /// The HCL report does not fit the NV index.
    #[error("the HCL report does not fit")]
    Format(#[source] tee_formats::FormatError),
    /// A listener could not be bound.
    #[error("binding {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The simulated paravisor.
pub struct Paravisor {
    psp: SimPsp,
    upstream: TpmAddr,
    ak_jwk: serde_json::Value,
    nv_size: usize,
    /// One guest connection to swtpm at a time (swtpm serves one client).
    lock: Mutex<()>,
}

impl std::fmt::Debug for Paravisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paravisor")
            .field("upstream", &self.upstream)
            .field("nv_size", &self.nv_size)
            .finish()
    }
}

fn tpm_err(addr: &TpmAddr) -> impl Fn(evidence::EvidenceError) -> ParavisorError + '_ {
    move |source| ParavisorError::Tpm {
        addr: addr.to_string(),
        source,
    }
}

impl Paravisor {
    /// Checks the provisioning of the TPM at `upstream`, reads the AK, and
    /// writes the boot-time HCL report (user-data zero).
    pub fn start(psp: SimPsp, upstream: TpmAddr) -> Result<Paravisor, ParavisorError> {
        let mut tpm = Tpm::open(&upstream, TIMEOUT).map_err(tpm_err(&upstream))?;
        let params = tpm
            .call(
                "ReadPublic",
                &command::read_public(azure::AK_HANDLE),
                0,
                false,
            )
            .map_err(|e| ParavisorError::NotProvisioned(format!("no AK at 0x81000003: {e}")))?;
        let ak = RsaPublic::from_read_public(&params)
            .map_err(|e| ParavisorError::NotProvisioned(format!("AK: {e}")))?;
        let restricted_sign = command::OBJECT_RESTRICTED | command::OBJECT_SIGN;
        if ak.attributes & restricted_sign != restricted_sign
            || ak.scheme != tee_formats::tpm::ALG_RSASSA
            || ak.scheme_hash != tee_formats::tpm::ALG_SHA256
        {
            return Err(ParavisorError::NotProvisioned(format!(
                "the AK must be a restricted RSASSA/SHA-256 signing key (attributes {:#x}, scheme {:#x}/{:#x})",
                ak.attributes, ak.scheme, ak.scheme_hash
            )));
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let ak_jwk = serde_json::json!({
            "kid": "HCLAkPub",
            "key_ops": ["sign"],
            "kty": "RSA",
            "e": b64.encode(ak.exponent_value().to_be_bytes().iter().skip_while(|&&b| b == 0).copied().collect::<Vec<u8>>()),
            "n": b64.encode(&ak.modulus),
        });
        let params = tpm
            .call(
                "NV_ReadPublic",
                &command::nv_read_public(azure::NV_INDEX_REPORT),
                0,
                false,
            )
            .map_err(|e| ParavisorError::NotProvisioned(format!("no NV index 0x01400001: {e}")))?;
        let nv = NvPublic::from_response(&params)
            .map_err(|e| ParavisorError::NotProvisioned(format!("NV 0x01400001: {e}")))?;
        let p = Paravisor {
            psp,
            upstream,
            ak_jwk,
            nv_size: usize::from(nv.data_size),
            lock: Mutex::new(()),
        };
        p.refresh(&mut tpm, &[0; azure::USER_DATA_LEN])?;
        Ok(p)
    }

    /// The runtime claims JSON for `user_data`, as the bytes that get hashed.
    pub fn variable_data(&self, user_data: &[u8; azure::USER_DATA_LEN]) -> Vec<u8> {
        let hex: String = user_data.iter().map(|b| format!("{b:02X}")).collect();
        let v = serde_json::json!({
            "keys": [self.ak_jwk],
            "vm-configuration": {
                "console-enabled": false,
                "secure-boot": false,
                "tpm-enabled": true,
                "simulation": true,
            },
            "user-data": hex,
        });
        v.to_string().into_bytes()
    }

    /// Signs a new report for `user_data` and stores the HCL report in NV.
    fn refresh(
        &self,
        tpm: &mut Tpm,
        user_data: &[u8; azure::USER_DATA_LEN],
    ) -> Result<(), ParavisorError> {
        let var = self.variable_data(user_data);
        let mut report_data = [0u8; 64];
        report_data[..32].copy_from_slice(&Sha256::digest(&var));
        let report = self
            .psp
            .report(&report_data, 0)
            .map_err(ParavisorError::Report)?;
        let hcl = HclReport::encode(HCL_VERSION, HclReportType::Snp, &report, &var, self.nv_size)
            .map_err(ParavisorError::Format)?;
        if hcl.len() > self.nv_size {
            return Err(ParavisorError::Format(tee_formats::FormatError::TooLarge {
                field: "NV index 0x01400001",
                len: hcl.len(),
            }));
        }
        for (i, chunk) in hcl.chunks(1024).enumerate() {
            let offset = u16::try_from(i * 1024).unwrap_or(u16::MAX);
            let cmd = command::nv_write(RH_PLATFORM, azure::NV_INDEX_REPORT, chunk, offset)
                .map_err(ParavisorError::Format)?;
            tpm.call("NV_Write", &cmd, 0, true)
                .map_err(tpm_err(&self.upstream))?;
        }
        Ok(())
    }

    /// Relays one guest connection to swtpm until the guest closes it.
    fn relay(&self, mut guest: UnixStream) -> Result<(), ParavisorError> {
        let _one_at_a_time = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = guest.set_read_timeout(Some(TIMEOUT));
        let _ = guest.set_write_timeout(Some(TIMEOUT));
        let mut tpm = Tpm::open(&self.upstream, TIMEOUT).map_err(tpm_err(&self.upstream))?;
        while let Some(cmd) = read_message(&mut guest) {
            let response = tpm.transact(&cmd).map_err(tpm_err(&self.upstream))?;
            let ok = command::parse_response(&response, 0, true).is_ok_and(|r| r.code == 0);
            if ok && is_user_data_write(&cmd) {
                #[expect(clippy::cast_possible_truncation, reason = "USER_DATA_LEN is 64")]
                let params = tpm
                    .call(
                        "NV_Read",
                        &command::nv_read(
                            RH_OWNER,
                            azure::NV_INDEX_USER_DATA,
                            azure::USER_DATA_LEN as u16,
                            0,
                        ),
                        0,
                        true,
                    )
                    .map_err(tpm_err(&self.upstream))?;
                let data = command::nv_read_data(&params).map_err(ParavisorError::Format)?;
                let mut user_data = [0u8; azure::USER_DATA_LEN];
                if let Some(d) = data.get(..azure::USER_DATA_LEN) {
                    user_data.copy_from_slice(d);
                }
                self.refresh(&mut tpm, &user_data)?;
            }
            if guest.write_all(&response).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// The simulation chain in the shape of IMDS's THIM answer.
    pub fn thim_document(&self) -> String {
        let pem = |der: &[u8]| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect();
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                lines.join("\n")
            )
        };
        let chain = self.psp.chain();
        serde_json::json!({
            "vcekCert": pem(chain.vcek_der()),
            "certificateChain": format!("{}{}", pem(chain.ask_der()), pem(chain.ark_der())),
            "tcbm": "simulation",
        })
        .to_string()
    }

    /// SHA-256 of the simulation ARK (what a policy accepting it pins).
    pub fn ark_sha256(&self) -> [u8; 32] {
        self.psp.ark_sha256()
    }

    /// The launch measurement in every report (the paravisor's, on Azure).
    pub fn measurement(&self) -> [u8; 48] {
        *self.psp.measurement()
    }
}

/// Whether `cmd` is a TPM2_NV_Write to the user-data index.
fn is_user_data_write(cmd: &[u8]) -> bool {
    CommandHeader::parse(cmd).is_ok_and(|h| h.code == cc::NV_WRITE)
        && CommandHeader::handle(cmd, 1).is_ok_and(|h| h == azure::NV_INDEX_USER_DATA)
}

/// One whole TPM command from the guest (`None` at EOF or on a malformed or
/// oversized header: the connection then ends).
fn read_message(s: &mut UnixStream) -> Option<Vec<u8>> {
    let mut head = [0u8; HEADER_SIZE];
    s.read_exact(&mut head).ok()?;
    let size = u32::from_be_bytes([head[2], head[3], head[4], head[5]]) as usize;
    if !(HEADER_SIZE..=MAX_MESSAGE).contains(&size) {
        return None;
    }
    let mut msg = vec![0u8; size];
    msg[..HEADER_SIZE].copy_from_slice(&head);
    s.read_exact(msg.get_mut(HEADER_SIZE..)?).ok()?;
    Some(msg)
}

fn bind(path: &Path) -> Result<UnixListener, ParavisorError> {
    if std::fs::symlink_metadata(path).is_ok() && UnixStream::connect(path).is_err() {
        let _ = std::fs::remove_file(path);
    }
    UnixListener::bind(path).map_err(|source| ParavisorError::Bind {
        path: path.to_owned(),
        source,
    })
}

/// Serves guest TPM connections on `listen` and, if given, the THIM
/// document on `certs`, each on its own thread. Returns once both listen.
pub fn serve(p: Arc<Paravisor>, listen: &Path, certs: Option<&Path>) -> Result<(), ParavisorError> {
    let tpm_listener = bind(listen)?;
    let certs_listener = certs.map(bind).transpose()?;
    let relay = Arc::clone(&p);
    std::thread::spawn(move || {
        for guest in tpm_listener.incoming().flatten() {
            let relay = Arc::clone(&relay);
            std::thread::spawn(move || {
                if let Err(e) = relay.relay(guest) {
                    eprintln!("sim-paravisor: {}", with_causes(&e));
                }
            });
        }
    });
    if let Some(l) = certs_listener {
        let doc = p.thim_document();
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let _ = c.set_write_timeout(Some(TIMEOUT));
                let _ = c.write_all(doc.as_bytes());
            }
        });
    }
    Ok(())
}

/// The error and its causes, `: `-separated.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
