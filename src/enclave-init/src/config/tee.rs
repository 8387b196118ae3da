//! `[tee]`: where evidence comes from (hardware, a host relay, or the
//! simulation).

use std::time::Duration;

use transport::Addr;

use super::fields::{Field, Fields, Kind};
use super::values::optional_addr;
use super::ConfigError;

pub(super) const FIELDS: &[Field] = &[
    ("tee.source", Kind::Str, Some("auto")),
    ("tee.sim_psp", Kind::Str, Some("vsock://2:9100")),
    ("tee.timeout_ms", Kind::Int, Some("30000")),
    ("tee.tdx_collateral", Kind::Str, Some("")),
    ("tee.tpm", Kind::Str, Some("/dev/tpmrm0")),
    ("tee.nsm", Kind::Str, Some("/dev/nsm")),
    ("tee.azure_certs", Kind::Str, Some("")),
    ("tee.azure_td_quote", Kind::Str, Some("")),
];

/// Which evidence source to use.
#[derive(Debug, Clone, PartialEq)]
pub struct TeeConfig {
    /// `None` = detect the hardware interface (never the simulation).
    pub source: Option<evidence::SourceKind>,
    /// The simulated PSP, when `source` is `sim`.
    pub sim_psp: Addr,
    /// Bound on obtaining evidence (connecting, each read and write).
    pub timeout: Duration,
    /// Where the host serves TDX collateral, if it does.
    pub tdx_collateral: Option<Addr>,
    /// The TPM (Azure vTPM): `/dev/tpmrm0`, or `unix:///PATH` in tests.
    pub tpm: evidence::tpm_device::TpmAddr,
    /// Azure: host relays of IMDS for the VCEK chain and the TD quote.
    pub azure: evidence::azure_vtpm::Endorsements,
    /// AWS Nitro: the NSM, `/dev/nsm`, or `unix:///PATH` of the SIMULATED
    /// NSM (`enclavectl sim-nsm`) in process mode and tests.
    pub nsm: evidence::nsm::NsmAddr,
}

pub(super) fn parse(fields: &Fields) -> Result<TeeConfig, ConfigError> {
    Ok(TeeConfig {
        source: fields.parsed("tee.source", |s| match s {
            "auto" => Ok(None),
            other => other.parse().map(Some),
        })?,
        sim_psp: fields.parsed("tee.sim_psp", |s| {
            let addr: Addr = s.parse()?;
            addr.check_connectable()?;
            Ok(addr)
        })?,
        timeout: fields.millis("tee.timeout_ms", 1..=600_000)?,
        tdx_collateral: optional_addr(fields, "tee.tdx_collateral")?,
        tpm: fields.parsed("tee.tpm", |s| s.parse())?,
        azure: evidence::azure_vtpm::Endorsements {
            certs: optional_addr(fields, "tee.azure_certs")?,
            td_quote: optional_addr(fields, "tee.azure_td_quote")?,
        },
        nsm: fields.parsed("tee.nsm", |s| s.parse())?,
    })
}

#[cfg(test)]
mod tests {
    use transport::Addr;

    use crate::config::parse;
    use crate::config::testing::{field_error, GOOD};

    #[test]
    fn tee_source_is_auto_unless_named() {
        assert_eq!(parse(GOOD, "").unwrap().tee.source, None);
        let c = parse(
            GOOD,
            "enclave.tee.source=sim enclave.tee.sim_psp=unix:///run/psp.sock",
        )
        .unwrap();
        assert_eq!(c.tee.source, Some(evidence::SourceKind::Sim));
        assert_eq!(c.tee.sim_psp, Addr::Unix("/run/psp.sock".into()));
        let (field, _, reason) = field_error(GOOD, "enclave.tee.source=tpm");
        assert_eq!(field, "tee.source");
        assert!(reason.contains("unknown evidence source"), "{reason}");
        // The Azure vTPM: the device by default, a socket for tests.
        let c = parse(GOOD, "enclave.tee.source=azure-vtpm enclave.tee.tpm=unix:///run/tpm.sock enclave.tee.azure_certs=vsock://2:9101").unwrap();
        assert_eq!(c.tee.source, Some(evidence::SourceKind::AzureVtpm));
        assert_eq!(
            c.tee.tpm,
            evidence::tpm_device::TpmAddr::Unix("/run/tpm.sock".into())
        );
        assert_eq!(c.tee.azure.certs, Some(Addr::Vsock { cid: 2, port: 9101 }));
        assert_eq!(
            parse(GOOD, "").unwrap().tee.tpm,
            evidence::tpm_device::TpmAddr::default()
        );
        let (field, _, reason) = field_error(GOOD, "enclave.tee.tpm=tpmrm0");
        assert_eq!(field, "tee.tpm");
        assert!(reason.contains("absolute device path"), "{reason}");
        // AWS Nitro: /dev/nsm by default, the simulated NSM's socket when named.
        let c = parse(
            GOOD,
            "enclave.tee.source=nitro enclave.tee.nsm=unix:///run/nsm.sock",
        )
        .unwrap();
        assert_eq!(c.tee.source, Some(evidence::SourceKind::Nitro));
        assert_eq!(
            c.tee.nsm,
            evidence::nsm::NsmAddr::Unix("/run/nsm.sock".into())
        );
        assert_eq!(
            parse(GOOD, "").unwrap().tee.nsm,
            evidence::nsm::NsmAddr::default()
        );
        let (field, _, reason) = field_error(GOOD, "enclave.tee.nsm=vsock://3:1");
        assert_eq!(field, "tee.nsm");
        assert!(reason.contains("absolute device path"), "{reason}");
    }
}
