//! The evidence source of this enclave, chosen once at boot.
//!
//! `tee.source = "auto"` detects the hardware interface in a fixed order
//! (`evidence::detect`) and never picks the simulation: an image meant for
//! hardware that boots without it stops with the list of what was tried.
//! The simulation is used only when the measured configuration names it.

use evidence::azure_vtpm::AzureVtpm;
use evidence::configfs_tsm::ConfigfsTsm;
use evidence::sev_guest::SevGuest;
use evidence::sim::SimPsp;
use evidence::tdx_guest::TdxGuest;
use evidence::{EvidenceError, EvidenceSource, Paths, SourceKind};

use crate::config::TeeConfig;

/// Opens the configured (or detected) evidence source.
pub fn open(config: &TeeConfig) -> Result<Box<dyn EvidenceSource>, EvidenceError> {
    let paths = Paths {
        tpm: config.tpm.clone(),
        // Detection looks for the device only: the simulated NSM is used
        // only when named (`tee.source = "nitro"` with `tee.nsm = unix://…`).
        ..Paths::default()
    };
    let kind = match config.source {
        Some(kind) => kind,
        None => {
            let kind = evidence::detect(&paths)?;
            crate::info_always!(source = kind.as_str(); "evidence source detected");
            kind
        }
    };
    let source: Box<dyn EvidenceSource> = match kind {
        SourceKind::ConfigfsTsm => Box::new(ConfigfsTsm::new(&paths.tsm_root)),
        SourceKind::SevGuest => Box::new(SevGuest::open(&paths.sev_guest)),
        SourceKind::TdxGuest => Box::new(TdxGuest::open(&paths.tdx_guest, &paths.tsm_root)),
        SourceKind::CocoAa => Box::new(evidence::coco_aa::CocoAa::new(
            paths.coco_aa.clone(),
            config.timeout,
        )),
        SourceKind::AzureVtpm => Box::new(AzureVtpm::new(
            config.tpm.clone(),
            config.azure.clone(),
            config.timeout,
        )),
        SourceKind::Nitro => {
            if let evidence::nsm::NsmAddr::Unix(_) = &config.nsm {
                crate::warn_always!(nsm = config.nsm.to_string().as_str(); "SIMULATION TEE: evidence from the simulated NSM; no production policy accepts it");
            }
            Box::new(evidence::nsm::Nsm::new(config.nsm.clone(), config.timeout))
        }
        SourceKind::Sim => {
            crate::warn_always!(psp = config.sim_psp.to_string().as_str(); "SIMULATION TEE: evidence from the simulated PSP; no production policy accepts it");
            Box::new(SimPsp::new(config.sim_psp.clone(), config.timeout))
        }
    };
    crate::info_always!(source = kind.as_str(); "evidence source ready");
    Ok(match &config.tdx_collateral {
        Some(addr) => Box::new(evidence::collateral::WithCollateral::new(
            source,
            addr.clone(),
            config.timeout,
        )),
        None => source,
    })
}
