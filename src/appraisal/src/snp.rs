//! SEV-SNP appraisal (and simulation, which is SNP-shaped): the checks of
//! `attestation-landscape.md` §4.2 and `tee-formats.md` §1.6, one function
//! each, in a fixed order:
//!
//! report form → signer → endorsement key present → the report against
//! that key, read but not yet trusted (product → VCEK TCB = REPORTED_TCB →
//! chip id or CSP id → report signature: a forged report costs no chain
//! work) → chain (ARK → ASK/ASVK → VCEK/VLEK; validity, CRL) → TCB
//! (current, minima, committed) → firmware → guest policy → platform info
//! → VMPL → guest SVN → migration agent → measurement (an appliance
//! image of `[snp]`, or a CoCo pod's Kata guest of `[coco]`, whose HOST_DATA
//! must then be a pinned init-data digest: `coco.init_data`) → host data →
//! chip allowlist → ID key → REPORT_DATA.

use tee_formats::snp::{AttestationReport, Generation, ReceivedReport, SigningKey, TcbVersion};
use wire::EvidenceBundle;

use crate::claims::{Claims, PolicyFlags, SnpPolicyFlags, SnpTcb, SnpTcbComponents, Tcb};
use crate::collateral::{Collateral, CollateralClaims, Source};
use crate::denial::{deny, Check, Denial};
use crate::ecdsa::{self, PreparedKey};
use crate::hex;
use crate::policy::{MinTcb, Policy, Signer, SnpPolicy};
use crate::roots::Roots;
use crate::snp_chain::{vek_der, vek_preview, ChainCache, Trust, VerifiedChain};
use crate::trace::Trace;
use crate::x509::VekExtensions;

/// Appraises an SNP-format report (real, or simulated when `trust` is `Sim`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn appraise(
    roots: &Roots,
    cache: &ChainCache,
    bundle: &EvidenceBundle,
    policy: &Policy,
    trust: Trust<'_>,
    now: i64,
    expected_report_data: Option<&[u8; 64]>,
    collateral: &Collateral,
    t: &mut Trace,
) -> Result<Claims, Denial> {
    use Check::*;
    let p = &policy.snp;
    let received = t.step(&[SnpReportFormat], parse(&bundle.evidence))?;
    let r = received.report();
    t.step(&[SnpReportVersion], check_version(r, p))?;
    t.step(&[SnpSignatureAlgo], check_signature_algo(r))?;
    let signer = t.step(&[SnpSigner], check_signer(r, p))?;
    let report_product = r.cpuid().map(|c| Generation::from_cpuid(c.family, c.model));
    let cpuid_product = match report_product {
        // Recorded with the chain's product check (one `snp.product`
        // entry), unless it fails here.
        Some(Err(e)) => {
            return t.step(
                &[],
                deny(
                    SnpProduct,
                    e.to_string(),
                    "Milan, Genoa or Turin CPUID",
                    "this verifier pins no chain for that CPU",
                ),
            )
        }
        Some(Ok(g)) => Some(g),
        None => None,
    };
    // The verifier's VCEK (fetched for this CHIP_ID and REPORTED_TCB) wins
    // over the bundle's; a VLEK only ever comes from the host.
    let (vek, vek_source) = match (&collateral.snp_vcek, signer, trust) {
        (Some(v), Signer::Vcek, Trust::Amd) => (&v.value[..], v.source),
        _ => match vek_der(bundle, signer) {
            Ok(d) => (d, Source::Bundle),
            Err(mut d) => {
                d.got.push_str(&collateral.problems_suffix());
                return t.step(&[SnpVekMissing], Err(d));
            }
        },
    };
    t.pass(SnpVekMissing);
    let verifier_crl = match trust {
        Trust::Amd => collateral.snp_crl.as_ref(),
        Trust::Sim(_) => None,
    };
    // The report against its endorsement key first: product, TCB, chip
    // id, then the signature (one ECDSA verification), so that a forged
    // report costs no chain work (issue 18). The certificate is only
    // trusted once the chain below verifies it; a certificate not in KDS
    // form gives no preview and is denied by the chain's form check, the
    // report checks then following the chain.
    let cached = cache.get(bundle, vek, signer, trust, verifier_crl);
    let preview = match &cached {
        Some(_) => None,
        None => vek_preview(vek, signer, trust, cpuid_product),
    };
    let before_chain = match (&cached, &preview) {
        (Some(c), _) => Some((ReportKey::Prepared(&c.key), &c.ext, c.product)),
        (None, Some(v)) => Some((ReportKey::Plain(&v.key), &v.ext, v.product)),
        (None, None) => None,
    };
    let checked_before_chain = before_chain.is_some();
    if let Some((key, ext, product)) = before_chain {
        check_against_vek(t, &received, key, signer, ext, product, cpuid_product, p)?;
    }
    let chain = match cached {
        // Verified for these very bytes (certificates, CRLs, trust) by an
        // earlier appraisal.
        Some(c) => {
            for check in [SnpCertForm, SnpChainArk, SnpChainIntermediate, SnpChainVek] {
                t.pass(check);
            }
            c
        }
        None => t.step(
            &[SnpCertForm, SnpChainArk, SnpChainIntermediate, SnpChainVek],
            cache.get_or_verify(
                roots,
                bundle,
                vek,
                signer,
                trust,
                cpuid_product,
                verifier_crl,
            ),
        )?,
    };
    let crl = chain.check_time_and_crl(now, p.crl, &collateral.problems_suffix());
    if crl.is_ok() && chain.crl_source().is_none() {
        t.pass(SnpCertValidity);
        let why = "no CRL and the policy allows it (snp.crl = \"if-present\")";
        t.skip(SnpCrlUnavailable, why);
        t.skip(SnpCrlInvalid, why);
        t.skip(SnpCrlRevoked, why);
    } else {
        t.step(
            &[
                SnpCertValidity,
                SnpCrlUnavailable,
                SnpCrlInvalid,
                SnpCrlRevoked,
            ],
            crl,
        )?;
    }
    if !checked_before_chain {
        let key = ReportKey::Prepared(&chain.key);
        check_against_vek(
            t,
            &received,
            key,
            signer,
            &chain.ext,
            chain.product,
            cpuid_product,
            p,
        )?;
    }
    let g = chain.product;
    t.step(&[SnpTcbCurrent], check_tcb_current(r, g))?;
    t.step(
        &[SnpTcbReported],
        check_min_tcb(
            SnpTcbReported,
            "REPORTED_TCB",
            r.reported_tcb,
            &p.min_reported_tcb,
            g,
        ),
    )?;
    t.step(
        &[SnpTcbLaunch],
        check_min_tcb(
            SnpTcbLaunch,
            "LAUNCH_TCB",
            r.launch_tcb,
            &p.min_launch_tcb,
            g,
        ),
    )?;
    t.step(&[SnpTcbCommitted], check_committed(r, p, g))?;
    t.step(&[SnpFirmware], check_firmware(r, p))?;
    t.step(GUEST_POLICY_CHECKS, check_guest_policy(r, p))?;
    t.step(PLATFORM_INFO_CHECKS, check_platform_info(r, p))?;
    t.step(&[SnpVmpl], check_vmpl(r, p))?;
    t.step(&[SnpGuestSvn], check_guest_svn(r, p))?;
    t.step(&[SnpReportIdMa], check_report_id_ma(r, p))?;
    let init_data = match check_measurement(r, policy) {
        Ok(None) => {
            t.pass(SnpMeasurement);
            t.skip(CocoInitData, "an appliance image, not a CoCo pod");
            None
        }
        other => t.step(&[SnpMeasurement, CocoInitData], other)?,
    };
    t.step(&[SnpHostData], check_host_data(r, p))?;
    t.step(&[SnpChipId], check_chip_allowlist(r, p))?;
    t.step(&[SnpIdKeyDigest], check_id_key(r, p))?;
    t.step(&[SnpFamilyId, SnpImageId], check_id_block_ids(r, p))?;
    t.step(&[SnpMitigations], check_mitigations(r, p))?;
    crate::check_report_data_traced(t, &r.report_data, expected_report_data)?;
    let mut sources = std::collections::BTreeMap::new();
    sources.insert(signer.as_str(), vek_source);
    // The chain may come from the warm cache: the CRL's source is this
    // call's (the bytes are the same, the path they came by may not be).
    let crl_source = match (chain.crl_source(), verifier_crl) {
        (Some(Source::Bundle), _) => Some(Source::Bundle),
        (Some(_), Some(v)) => Some(v.source),
        (s, _) => s,
    };
    if let Some(s) = crl_source {
        sources.insert("crl", s);
    }
    let collateral = CollateralClaims {
        sources,
        revocation_checked: crl_source.is_some(),
    };
    Ok(claims(r, &chain, policy, trust, init_data, collateral))
}

fn parse(bytes: &[u8]) -> Result<ReceivedReport, Denial> {
    ReceivedReport::parse(bytes).map_err(|e| {
        Denial::new(
            Check::SnpReportFormat,
            e.to_string(),
            "a 1184-byte ATTESTATION_REPORT, version 2 to 5, reserved bytes zero",
            "send the report exactly as the PSP produced it",
        )
    })
}

fn check_version(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    if r.version < p.min_report_version {
        return deny(
            Check::SnpReportVersion,
            format!("version {}", r.version),
            format!(
                "version >= {} (policy snp.min_report_version)",
                p.min_report_version
            ),
            "update the SEV firmware",
        );
    }
    Ok(())
}

fn check_signature_algo(r: &AttestationReport) -> Result<(), Denial> {
    if r.signature_algo != 1 {
        return deny(
            Check::SnpSignatureAlgo,
            format!("SIGNATURE_ALGO {}", r.signature_algo),
            "1 (ECDSA P-384 with SHA-384)",
            "the report is not signed with a supported algorithm",
        );
    }
    Ok(())
}

fn check_signer(r: &AttestationReport, p: &SnpPolicy) -> Result<Signer, Denial> {
    let ki = r.key_info;
    if ki.reserved_bits() != 0 {
        return deny(
            Check::SnpSigner,
            format!("KEY_INFO {:#x} has reserved bits set", ki.raw()),
            "KEY_INFO bits 31:5 zero",
            "the report is malformed",
        );
    }
    if ki.mask_chip_key() {
        return deny(
            Check::SnpSigner,
            "MASK_CHIP_KEY set: the report is unsigned",
            "a signed report",
            "do not mask the chip key on the host (SNP_CONFIG)",
        );
    }
    let signer = match ki.signing_key() {
        SigningKey::Vcek => Signer::Vcek,
        SigningKey::Vlek => Signer::Vlek,
        other => {
            return deny(
                Check::SnpSigner,
                format!("SIGNING_KEY {other}"),
                "VCEK or VLEK",
                "the report is not signed by an endorsement key",
            )
        }
    };
    if !p.signers.contains(&signer) {
        let allowed: Vec<&str> = p.signers.iter().map(|s| s.as_str()).collect();
        return deny(
            Check::SnpSigner,
            signer.as_str(),
            format!("one of {allowed:?} (policy snp.signers)"),
            "the policy does not accept this key type",
        );
    }
    Ok(signer)
}

/// The report against its endorsement key certificate, in order: product,
/// the key's TCB, chip id (VCEK) or CSP id (VLEK), the report signature.
#[allow(clippy::too_many_arguments)]
fn check_against_vek(
    t: &mut Trace,
    received: &ReceivedReport,
    key: ReportKey<'_>,
    signer: Signer,
    ext: &VekExtensions,
    product: Generation,
    cpuid_product: Option<Generation>,
    p: &SnpPolicy,
) -> Result<(), Denial> {
    let r = received.report();
    t.step(&[Check::SnpProduct], check_product(product, cpuid_product))?;
    t.step(
        &[Check::SnpVcekTcb],
        check_vek_tcb(ext, r.reported_tcb, product),
    )?;
    if ext.hw_id.is_some() {
        t.step(&[Check::SnpVcekChipId], check_chip_id(ext, r))?;
        t.skip(Check::SnpVlekCspId, "signed by a VCEK, not a VLEK");
    } else {
        t.skip(
            Check::SnpVcekChipId,
            "signed by a VLEK, which has no chip id",
        );
        t.step(&[Check::SnpVlekCspId], check_csp_id(ext, p))?;
    }
    t.step(
        &[Check::SnpSignature],
        check_signature(key, signer, received),
    )
}

fn check_product(product: Generation, cpuid: Option<Generation>) -> Result<(), Denial> {
    if let Some(g) = cpuid {
        if g != product {
            return deny(
                Check::SnpProduct,
                format!("report CPUID says {g}"),
                format!("{product} (the endorsement key's product)"),
                "the certificate is for another CPU generation",
            );
        }
    }
    Ok(())
}

fn components(t: TcbVersion, g: Generation) -> SnpTcbComponents {
    let c = t.decode(g);
    SnpTcbComponents {
        bootloader: c.boot_loader,
        tee: c.tee,
        snp: c.snp,
        microcode: c.microcode,
        fmc: c.fmc,
    }
}

fn show(c: &SnpTcbComponents) -> String {
    let fmc = c.fmc.map(|f| format!("fmc {f}, ")).unwrap_or_default();
    format!(
        "{fmc}bootloader {}, tee {}, snp {}, microcode {}",
        c.bootloader, c.tee, c.snp, c.microcode
    )
}

fn check_vek_tcb(ext: &VekExtensions, reported: TcbVersion, g: Generation) -> Result<(), Denial> {
    let want = components(reported, g);
    let got = SnpTcbComponents {
        bootloader: ext.bootloader,
        tee: ext.tee,
        snp: ext.snp,
        microcode: ext.microcode,
        // The FMC SPL exists from Turin on; earlier certificates have none.
        fmc: want.fmc.map(|_| ext.fmc.unwrap_or(0)),
    };
    let fmc_missing = want.fmc.is_some() && ext.fmc.is_none();
    if got != want || fmc_missing {
        return deny(
            Check::SnpVcekTcb,
            format!(
                "certificate TCB {}{}",
                show(&got),
                if fmc_missing { " (no fmcSPL)" } else { "" }
            ),
            format!("REPORTED_TCB {} ({reported})", show(&want)),
            "fetch the VCEK/VLEK for the report's REPORTED_TCB from AMD KDS",
        );
    }
    Ok(())
}

fn check_chip_id(ext: &VekExtensions, r: &AttestationReport) -> Result<(), Denial> {
    let Some(hw_id) = &ext.hw_id else {
        return Ok(());
    }; // VLEK: no chip binding
    if r.chip_id.iter().all(|&b| b == 0) {
        return Ok(()); // MASK_CHIP_ID: the host hides the chip id; nothing to compare
    }
    // Turin and later use only the first 8 bytes; the rest must be zero.
    let n = hw_id.len();
    let ok = (n == 64 || n == 8)
        && r.chip_id.get(..n) == Some(hw_id.as_slice())
        && r.chip_id[n..].iter().all(|&b| b == 0);
    if !ok {
        return deny(
            Check::SnpVcekChipId,
            format!("CHIP_ID {}", hex::encode(&r.chip_id)),
            format!("the VCEK's hwID {}", hex::encode(hw_id)),
            "the VCEK is for another chip: fetch the one for this CHIP_ID",
        );
    }
    Ok(())
}

fn check_csp_id(ext: &VekExtensions, p: &SnpPolicy) -> Result<(), Denial> {
    let Some(allowed) = &p.vlek_csp_ids else {
        return Ok(());
    };
    if ext.hw_id.is_some() {
        return Ok(()); // VCEK
    }
    let got = ext.csp_id.clone().unwrap_or_default();
    if !allowed.contains(&got) {
        return deny(
            Check::SnpVlekCspId,
            format!("csp_id {got:?}"),
            format!("one of {allowed:?} (policy snp.vlek_csp_ids)"),
            "the VLEK belongs to another cloud provider",
        );
    }
    Ok(())
}

/// The key a report signature is checked with: the cached chain's
/// prepared key, or the endorsement certificate's key before its chain is
/// verified.
enum ReportKey<'a> {
    Prepared(&'a PreparedKey),
    Plain(&'a p384::PublicKey),
}

fn check_signature(
    key: ReportKey<'_>,
    signer: Signer,
    received: &ReceivedReport,
) -> Result<(), Denial> {
    let sig = &received.report().signature;
    let (msg, r, s) = (received.signed_bytes(), sig.r_be(), sig.s_be());
    let verifies = match key {
        ReportKey::Prepared(k) => k.verify(msg, &r, &s),
        ReportKey::Plain(k) => ecdsa::verify_once(k, msg, &r, &s),
    };
    if !sig.high_bytes_zero() || !verifies {
        return deny(
            Check::SnpSignature,
            "ECDSA P-384 signature over bytes 0x000..0x2A0 does not verify",
            format!("a signature by the {}", signer.as_str().to_uppercase()),
            "the report was altered after signing, or is signed by another key",
        );
    }
    Ok(())
}

/// The checks of [`check_guest_policy`], in its order.
const GUEST_POLICY_CHECKS: &[Check] = &[
    Check::SnpPolicyReserved,
    Check::SnpPolicyAbi,
    Check::SnpPolicyDebug,
    Check::SnpPolicyMigrateMa,
    Check::SnpPolicySmt,
    Check::SnpPolicySingleSocket,
    Check::SnpPolicyCxl,
    Check::SnpPolicyMemAes256Xts,
    Check::SnpPolicyRaplDis,
    Check::SnpPolicyCiphertextHiding,
    Check::SnpPolicyPageSwapDisable,
];

/// The checks of [`check_platform_info`], in its order.
const PLATFORM_INFO_CHECKS: &[Check] = &[
    Check::SnpPlatformReserved,
    Check::SnpPlatformSmt,
    Check::SnpPlatformTsme,
    Check::SnpPlatformEcc,
    Check::SnpPlatformAliasCheck,
    Check::SnpPlatformCiphertextHiding,
];

fn le(a: &SnpTcbComponents, b: &SnpTcbComponents) -> bool {
    a.bootloader <= b.bootloader
        && a.tee <= b.tee
        && a.snp <= b.snp
        && a.microcode <= b.microcode
        && a.fmc.unwrap_or(0) <= b.fmc.unwrap_or(0)
}

fn check_tcb_current(r: &AttestationReport, g: Generation) -> Result<(), Denial> {
    let (rep, cur) = (components(r.reported_tcb, g), components(r.current_tcb, g));
    if !le(&rep, &cur) {
        return deny(
            Check::SnpTcbCurrent,
            format!("REPORTED_TCB {}", show(&rep)),
            format!("<= CURRENT_TCB {}", show(&cur)),
            "the report claims a TCB the platform does not run",
        );
    }
    Ok(())
}

fn check_min_tcb(
    check: Check,
    field: &str,
    t: TcbVersion,
    min: &MinTcb,
    g: Generation,
) -> Result<(), Denial> {
    let got = components(t, g);
    let want = SnpTcbComponents {
        bootloader: min.bootloader,
        tee: min.tee,
        snp: min.snp,
        microcode: min.microcode,
        fmc: got.fmc.map(|_| min.fmc),
    };
    if !le(&want, &got) {
        return deny(
            check,
            format!("{field} {}", show(&got)),
            format!("each component >= {}", show(&want)),
            "update the platform's SEV firmware and microcode",
        );
    }
    Ok(())
}

fn check_committed(r: &AttestationReport, p: &SnpPolicy, g: Generation) -> Result<(), Denial> {
    let (com, cur) = (components(r.committed_tcb, g), components(r.current_tcb, g));
    let (com_v, cur_v) = (r.committed_version(), r.current_version());
    if p.provisional_firmware_allowed {
        if !le(&com, &cur) || com_v > cur_v {
            return deny(
                Check::SnpTcbCommitted,
                format!("COMMITTED_TCB {} firmware {com_v}", show(&com)),
                format!("<= CURRENT_TCB {} firmware {cur_v}", show(&cur)),
                "the committed firmware is newer than the running one",
            );
        }
    } else if com != cur || com_v != cur_v {
        return deny(
            Check::SnpTcbCommitted,
            format!("COMMITTED_TCB {} firmware {com_v}", show(&com)),
            format!("= CURRENT_TCB {} firmware {cur_v} (policy snp.provisional_firmware_allowed = false)", show(&cur)),
            "commit the running firmware (SNP_COMMIT), or allow provisional firmware",
        );
    }
    Ok(())
}

fn check_firmware(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    let Some(min) = p.min_firmware else {
        return Ok(());
    };
    for (name, v) in [
        ("current", r.current_version()),
        ("committed", r.committed_version()),
    ] {
        if (v.major, v.minor, v.build) < (min.major, min.minor, min.build) {
            return deny(
                Check::SnpFirmware,
                format!("{name} firmware {v}"),
                format!(">= {min} (policy snp.min_firmware)"),
                "update the SEV firmware",
            );
        }
    }
    Ok(())
}

fn check_guest_policy(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    let gp = r.policy;
    if !gp.reserved_must_be_one() || gp.reserved_bits() != 0 {
        return deny(
            Check::SnpPolicyReserved,
            format!("POLICY {:#x}", gp.raw()),
            "bit 17 set, bits 63:26 clear",
            "the guest policy is malformed",
        );
    }
    if let Some(min) = &p.min_abi {
        if (gp.abi_major(), gp.abi_minor()) < (min.major, min.minor) {
            return deny(
                Check::SnpPolicyAbi,
                format!("ABI {}.{}", gp.abi_major(), gp.abi_minor()),
                format!(">= {}.{} (policy snp.min_abi)", min.major, min.minor),
                "launch with a higher minimum ABI in the guest policy",
            );
        }
    }
    let flag = |check: Check,
                set: bool,
                ok: bool,
                name: &str,
                want: &str,
                hint: &str|
     -> Result<(), Denial> {
        if ok {
            Ok(())
        } else {
            deny(
                check,
                format!(
                    "POLICY {:#x}: {name} {}",
                    gp.raw(),
                    if set { "set" } else { "clear" }
                ),
                want.to_owned(),
                hint.to_owned(),
            )
        }
    };
    flag(
        Check::SnpPolicyDebug,
        gp.debug_allowed(),
        !gp.debug_allowed() || p.debug_allowed,
        "DEBUG",
        "DEBUG clear (policy snp.debug_allowed = false)",
        "launch without debugging: the host can read a debuggable guest's memory",
    )?;
    flag(
        Check::SnpPolicyMigrateMa,
        gp.migrate_ma_allowed(),
        !gp.migrate_ma_allowed() || p.migrate_ma_allowed,
        "MIGRATE_MA",
        "MIGRATE_MA clear (policy snp.migrate_ma_allowed = false)",
        "launch without a migration agent",
    )?;
    flag(
        Check::SnpPolicySmt,
        gp.smt_allowed(),
        !gp.smt_allowed() || p.smt_allowed,
        "SMT",
        "SMT clear (policy snp.smt_allowed = false)",
        "launch with SMT disallowed in the guest policy",
    )?;
    flag(
        Check::SnpPolicySingleSocket,
        gp.single_socket_required(),
        gp.single_socket_required() || !p.single_socket_required,
        "SINGLE_SOCKET",
        "SINGLE_SOCKET set (policy snp.single_socket_required)",
        "launch with SINGLE_SOCKET in the guest policy",
    )?;
    flag(
        Check::SnpPolicyCxl,
        gp.cxl_allowed(),
        !gp.cxl_allowed() || p.cxl_allowed,
        "CXL_ALLOW",
        "CXL_ALLOW clear (policy snp.cxl_allowed = false)",
        "launch without CXL_ALLOW",
    )?;
    flag(
        Check::SnpPolicyMemAes256Xts,
        gp.mem_aes_256_xts(),
        gp.mem_aes_256_xts() || !p.mem_aes_256_xts_required,
        "MEM_AES_256_XTS",
        "MEM_AES_256_XTS set (policy snp.mem_aes_256_xts_required)",
        "launch with MEM_AES_256_XTS",
    )?;
    flag(
        Check::SnpPolicyRaplDis,
        gp.rapl_dis(),
        gp.rapl_dis() || !p.rapl_dis_required,
        "RAPL_DIS",
        "RAPL_DIS set (policy snp.rapl_dis_required)",
        "launch with RAPL_DIS",
    )?;
    flag(
        Check::SnpPolicyCiphertextHiding,
        gp.ciphertext_hiding(),
        gp.ciphertext_hiding() || !p.ciphertext_hiding_required,
        "CIPHERTEXT_HIDING",
        "CIPHERTEXT_HIDING set (policy snp.ciphertext_hiding_required)",
        "launch with CIPHERTEXT_HIDING",
    )?;
    flag(
        Check::SnpPolicyPageSwapDisable,
        gp.page_swap_disable(),
        gp.page_swap_disable() || !p.page_swap_disable_required,
        "PAGE_SWAP_DISABLE",
        "PAGE_SWAP_DISABLE set (policy snp.page_swap_disable_required)",
        "launch with PAGE_SWAP_DISABLE",
    )
}

fn check_platform_info(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    let pi = r.platform_info;
    let q = &p.platform;
    let got = |name: &str, set: bool| {
        format!(
            "PLATFORM_INFO {:#x}: {name} {}",
            pi.raw(),
            if set { "set" } else { "clear" }
        )
    };
    if pi.reserved_bits() != 0 {
        return deny(
            Check::SnpPlatformReserved,
            format!("PLATFORM_INFO {:#x}", pi.raw()),
            "reserved bits (6, 63:8) clear",
            "the report is malformed or from firmware this verifier does not know",
        );
    }
    if pi.smt_en() && !q.smt_enabled_allowed {
        return deny(
            Check::SnpPlatformSmt,
            got("SMT_EN", true),
            "SMT_EN clear (policy snp.platform.smt_enabled_allowed = false)",
            "disable SMT on the host",
        );
    }
    if !pi.tsme_en() && q.tsme_required {
        return deny(
            Check::SnpPlatformTsme,
            got("TSME_EN", false),
            "TSME_EN set",
            "enable TSME in the host BIOS",
        );
    }
    if !pi.ecc_en() && q.ecc_required {
        return deny(
            Check::SnpPlatformEcc,
            got("ECC_EN", false),
            "ECC_EN set",
            "run on a host with ECC memory",
        );
    }
    if !pi.alias_check_complete() && q.alias_check_required {
        return deny(
            Check::SnpPlatformAliasCheck,
            got("ALIAS_CHECK_COMPLETE", false),
            "ALIAS_CHECK_COMPLETE set (CVE-2024-21944)",
            "update the host BIOS/firmware so the alias check runs",
        );
    }
    if !pi.ciphertext_hiding_en() && q.ciphertext_hiding_required {
        return deny(
            Check::SnpPlatformCiphertextHiding,
            got("CIPHERTEXT_HIDING_EN", false),
            "CIPHERTEXT_HIDING_EN set",
            "enable ciphertext hiding on the host",
        );
    }
    Ok(())
}

fn check_vmpl(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    if !p.vmpls.contains(&r.vmpl) {
        return deny(
            Check::SnpVmpl,
            format!("VMPL {}", r.vmpl),
            format!("one of {:?} (policy snp.vmpls)", p.vmpls),
            "request the report at VMPL 0 (Some(0), not the sev crate's default 1)",
        );
    }
    Ok(())
}

fn check_guest_svn(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    if r.guest_svn < p.min_guest_svn {
        return deny(
            Check::SnpGuestSvn,
            format!("GUEST_SVN {}", r.guest_svn),
            format!(">= {}", p.min_guest_svn),
            "launch with a newer ID block",
        );
    }
    Ok(())
}

fn check_report_id_ma(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    let unbound =
        r.report_id_ma.iter().all(|&b| b == 0xff) || r.report_id_ma.iter().all(|&b| b == 0);
    if !unbound && !p.migrate_ma_allowed {
        return deny(
            Check::SnpReportIdMa,
            format!("REPORT_ID_MA {}", hex::encode(&r.report_id_ma)),
            "no migration agent (all 0xFF or zero)",
            "launch without a migration agent",
        );
    }
    Ok(())
}

/// MEASUREMENT is an appliance image (`Ok(None)`) or, when `[coco]` accepts
/// pods, a Kata guest image whose HOST_DATA is a pinned init-data digest
/// (`Ok(Some(host_data))`).
fn check_measurement(r: &AttestationReport, policy: &Policy) -> Result<Option<[u8; 32]>, Denial> {
    let p = &policy.snp;
    if p.measurements.iter().any(|m| m.0 == r.measurement) {
        return Ok(None);
    }
    let c = &policy.coco;
    if c.allowed && c.snp_measurements.iter().any(|m| m.0 == r.measurement) {
        if c.init_data_snp.iter().any(|d| d.0 == r.host_data) {
            return Ok(Some(r.host_data));
        }
        return deny(
            Check::CocoInitData,
            format!("HOST_DATA {}", hex::encode(&r.host_data)),
            format!("{} (policy coco.init_data_snp)", hex::list(&c.init_data_snp)),
            "this pod runs the accepted Kata guest with other init-data (or none): its agent policy and configuration are not the pinned ones; `enclavectl measure --initdata FILE` gives the digest of the intended init-data",
        );
    }
    deny(
        Check::SnpMeasurement,
        hex::encode(&r.measurement),
        hex::list(&p.measurements),
        "add this image's launch digest (enclavectl measure) to snp.measurements, if you built it",
    )
}

fn check_host_data(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    if let Some(want) = &p.host_data {
        if want.0 != r.host_data {
            return deny(
                Check::SnpHostData,
                hex::encode(&r.host_data),
                want.to_string(),
                "launch with HOST_DATA = the configuration digest the policy names",
            );
        }
    }
    Ok(())
}

fn check_chip_allowlist(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    if let Some(ids) = &p.chip_ids {
        if !ids.iter().any(|c| c.0 == r.chip_id) {
            return deny(
                Check::SnpChipId,
                hex::encode(&r.chip_id),
                hex::list(ids),
                "run on an allowed machine, or add its CHIP_ID",
            );
        }
    }
    Ok(())
}

fn check_id_key(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    if let Some(ids) = &p.id_key_digests {
        if !ids.iter().any(|c| c.0 == r.id_key_digest) {
            return deny(
                Check::SnpIdKeyDigest,
                hex::encode(&r.id_key_digest),
                hex::list(ids),
                "launch with an ID block signed by a trusted ID key",
            );
        }
    }
    Ok(())
}

fn check_id_block_ids(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    if let Some(want) = &p.family_id {
        if want.0 != r.family_id {
            return deny(
                Check::SnpFamilyId,
                hex::encode(&r.family_id),
                want.to_string(),
                "launch with the ID block of the expected family",
            );
        }
    }
    if let Some(want) = &p.image_id {
        if want.0 != r.image_id {
            return deny(
                Check::SnpImageId,
                hex::encode(&r.image_id),
                want.to_string(),
                "launch with the ID block of the expected image",
            );
        }
    }
    Ok(())
}

fn check_mitigations(r: &AttestationReport, p: &SnpPolicy) -> Result<(), Denial> {
    let need = p.required_mitigations;
    if need == 0 {
        return Ok(());
    }
    let Some((launch, current)) = r.mitigation_vectors() else {
        return deny(
            Check::SnpMitigations,
            format!("report version {} has no mitigation vectors", r.version),
            format!("LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR with bits {need:#x} (report v5+)"),
            "update the SEV firmware so reports carry mitigation vectors",
        );
    };
    for (name, v) in [
        ("LAUNCH_MIT_VECTOR", launch),
        ("CURRENT_MIT_VECTOR", current),
    ] {
        if v & need != need {
            return deny(
                Check::SnpMitigations,
                format!("{name} {v:#x}"),
                format!("bits {need:#x} set (policy snp.required_mitigations)"),
                "apply the missing mitigations (firmware update, then relaunch for the launch vector)",
            );
        }
    }
    Ok(())
}

fn claims(
    r: &AttestationReport,
    chain: &VerifiedChain,
    policy: &Policy,
    trust: Trust<'_>,
    init_data: Option<[u8; 32]>,
    collateral: CollateralClaims,
) -> Claims {
    let g = chain.product;
    let tee = match trust {
        Trust::Amd => "snp",
        Trust::Sim(_) => "sim",
    };
    let gp = r.policy;
    Claims {
        tee,
        measurement: hex::encode(&r.measurement),
        tcb: Tcb::Snp(SnpTcb {
            reported: components(r.reported_tcb, g),
            launch_tcb: components(r.launch_tcb, g),
            committed_tcb: components(r.committed_tcb, g),
        }),
        policy_flags: PolicyFlags::Snp(SnpPolicyFlags {
            abi_major: gp.abi_major(),
            abi_minor: gp.abi_minor(),
            smt: gp.smt_allowed(),
            migrate_ma: gp.migrate_ma_allowed(),
            debug: gp.debug_allowed(),
            single_socket: gp.single_socket_required(),
            cxl: gp.cxl_allowed(),
            mem_aes_256_xts: gp.mem_aes_256_xts(),
            rapl_dis: gp.rapl_dis(),
            ciphertext_hiding: gp.ciphertext_hiding(),
            page_swap_disable: gp.page_swap_disable(),
        }),
        chip_id: Some(hex::encode(&r.chip_id)),
        host_data: Some(hex::encode(&r.host_data)),
        signer: Some(chain.signer.as_str()),
        product: Some(g.kds_product()),
        vmpl: Some(r.vmpl),
        rtmrs: None,
        mr_td: None,
        os_pinned: None,
        init_data: init_data.map(|d| hex::encode(&d)),
        mr_config_id: None,
        mr_seam: None,
        xfam: None,
        td_attributes: None,
        report_data: hex::encode(&r.report_data),
        policy_digest: hex::encode(policy.digest()),
        azure: None,
        nitro: None,
        collateral,
        relaxations: policy.relaxations(tee),
    }
}
