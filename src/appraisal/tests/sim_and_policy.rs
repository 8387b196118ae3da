//! The simulation path (same chain, signature and TCB code as SNP; the ARK
//! trusted only by the policy's pin), CRLs, and one-thing changes for every
//! SEV-SNP policy check, on reports signed by a test PSP.
// Helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use appraisal::{Appraiser, Check};
use common::sim::{Options, Sim, LONG};
use common::*;
use sha2::{Digest, Sha256};

fn sim() -> &'static Sim {
    static SIM: OnceLock<Sim> = OnceLock::new();
    SIM.get_or_init(|| Sim::new(Options::default()))
}

const NOW: &str = "2025-06-01T00:00:00Z";

/// A policy accepting the simulated chain, with a fresh CRL required.
fn sim_policy(extra: &str) -> appraisal::Policy {
    policy(&format!(
        "[snp]\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n{extra}\n[sim]\nallowed = true\nark_sha256 = [\"{}\"]\n",
        sim().ark_pin()
    ))
}

fn crl() -> Vec<u8> {
    static CRL: OnceLock<Vec<u8>> = OnceLock::new();
    CRL.get_or_init(|| sim().crl(LONG, &[]).clone()).clone()
}

/// A signed report after `edit`, in a bundle with a valid CRL.
fn bundle(edit: impl FnOnce(&mut Vec<u8>)) -> wire::EvidenceBundle {
    sim().bundle(sim().report(edit), vec![crl()])
}

fn run(
    b: &wire::EvidenceBundle,
    p: &appraisal::Policy,
) -> Result<appraisal::Claims, appraisal::Denial> {
    appraise(b, p, NOW)
}

fn set_u64(r: &mut [u8], off: usize, v: u64) {
    r[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn simulation_is_accepted_only_when_the_policy_pins_its_ark() {
    let file = format!(
        "[snp]\nmin_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n[sim]\nallowed = true\nark_sha256 = [\"{}\"]\n",
        sim().ark_pin()
    );
    let p = policy(&file);
    let c = accepted(run(&bundle(|_| {}), &p));
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["tee"], "sim");
    // The only relaxation of this policy is simulation itself; the CRL came
    // with the bundle and was checked.
    assert_eq!(
        j["relaxations"],
        serde_json::json!(["sim.allowed = true (simulated evidence: no hardware guarantee)"])
    );
    assert_eq!(
        j["collateral"]["sources"],
        serde_json::json!({"vcek": "bundle", "crl": "bundle"})
    );
    assert_eq!(j["collateral"]["revocation_checked"], true);
    assert_eq!(j["signer"], "vcek");
    assert_eq!(
        j["policy_digest"],
        appraisal::hex::encode(&Sha256::digest(file.as_bytes()))
    );
    // Not allowed: by an empty policy, and by Policy::production at load.
    denied(run(&bundle(|_| {}), &policy("")), Check::SimNotAllowed);
    assert!(appraisal::Policy::production(file.as_bytes()).is_err());
    // Another ARK pinned.
    let other = sim_policy("").sim.ark_sha256.len();
    assert_eq!(other, 1);
    let wrong = policy(&format!("[snp]\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n[sim]\nallowed = true\nark_sha256 = [\"{}\"]\n", "ab".repeat(32)));
    denied(run(&bundle(|_| {}), &wrong), Check::SnpChainArk);
    // A simulated chain sent as real SNP: its ARK is not AMD's (product Milan → ARK-Milan).
    let mut b = bundle(|_| {});
    b.tee = wire::Tee::Snp;
    let real = policy(&format!(
        "[snp]\nallowed = true\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n"
    ));
    denied(run(&b, &real), Check::SnpChainArk);
    // Without the ARK in the bundle there is nothing to pin against.
    let mut b = bundle(|_| {});
    b.certificates.retain(|c| c.kind != wire::CertKind::Ark);
    denied(run(&b, &sim_policy("")), Check::SnpChainArk);
}

#[test]
fn crl_checks() {
    // Required by default: missing → unavailable.
    let b = sim().bundle(sim().report(|_| {}), vec![]);
    denied(run(&b, &sim_policy("")), Check::SnpCrlUnavailable);
    accepted(run(&b, &sim_policy("crl = \"if-present\"")));
    // Revoked ASK.
    let revoked = sim().crl(LONG, &[sim().opts.ask_serial]);
    let b = sim().bundle(sim().report(|_| {}), vec![revoked]);
    let d = denied(run(&b, &sim_policy("")), Check::SnpCrlRevoked);
    assert!(d.got.contains("ASK serial 02"), "{d}");
    // Expired CRL (the clock decides).
    let window = (
        appraisal::parse_rfc3339("2025-05-01T00:00:00Z").unwrap() as u64,
        appraisal::parse_rfc3339("2025-05-31T00:00:00Z").unwrap() as u64,
    );
    let b = sim().bundle(sim().report(|_| {}), vec![sim().crl(window, &[])]);
    let d = denied(run(&b, &sim_policy("")), Check::SnpCrlInvalid);
    assert!(d.got.contains("2025-05-31T00:00:00Z"), "{d}");
    accepted(appraise(&b, &sim_policy(""), "2025-05-15T00:00:00Z"));
    // A CRL whose signature is altered.
    let mut bad = crl();
    let n = bad.len();
    bad[n - 5] ^= 1;
    let b = sim().bundle(sim().report(|_| {}), vec![bad]);
    denied(run(&b, &sim_policy("")), Check::SnpCrlInvalid);
    // Garbage in the CRL list.
    let b = sim().bundle(sim().report(|_| {}), vec![vec![0x30, 0x03, 1, 2, 3]]);
    denied(run(&b, &sim_policy("")), Check::SnpCrlInvalid);
}

#[test]
fn certificate_changes_are_denied() {
    // An expired VCEK.
    let s = Sim::new(Options {
        vcek_validity: (1_577_836_800, 1_700_000_000),
        ..Options::default()
    });
    let b = s.bundle(s.report(|_| {}), vec![s.crl(LONG, &[])]);
    let p = policy(&format!("[snp]\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n[sim]\nallowed = true\nark_sha256 = [\"{}\"]\n", s.ark_pin()));
    denied(appraise(&b, &p, NOW), Check::SnpCertValidity);
    // A VCEK for another TCB.
    let s = Sim::new(Options {
        vcek_tcb: [3, 0, 8, 116],
        ..Options::default()
    });
    let b = s.bundle(s.report(|_| {}), vec![s.crl(LONG, &[])]);
    let p = policy(&format!("[snp]\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n[sim]\nallowed = true\nark_sha256 = [\"{}\"]\n", s.ark_pin()));
    denied(appraise(&b, &p, NOW), Check::SnpVcekTcb);
    // sim-psp marks its VCEK `SEV-VCEK SIMULATION`: accepted for simulation; other names are not.
    for (cn, ok) in [("SEV-VCEK SIMULATION", true), ("SEV-VCEK2", false)] {
        let s = Sim::new(Options {
            vcek_cn: cn,
            ..Options::default()
        });
        let b = s.bundle(s.report(|_| {}), vec![s.crl(LONG, &[])]);
        let p = policy(&format!("[snp]\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n[sim]\nallowed = true\nark_sha256 = [\"{}\"]\n", s.ark_pin()));
        match appraise(&b, &p, NOW) {
            Ok(_) => assert!(ok, "{cn}"),
            Err(d) => assert!(!ok && d.check == Check::SnpCertForm, "{cn}: {d}"),
        }
    }
    // The ASK of another chain.
    let mut b = bundle(|_| {});
    for c in &mut b.certificates {
        if c.kind == wire::CertKind::Ask {
            c.der = wire::Bytes(sim().ark.clone());
        }
    }
    denied(run(&b, &sim_policy("")), Check::SnpChainVek);
}

#[test]
fn guest_policy_bits_each_deny() {
    let policy_bit = |bit: u32| {
        move |r: &mut Vec<u8>| {
            let v = u64::from_le_bytes(r[8..16].try_into().unwrap()) | (1 << bit);
            set_u64(r, 8, v);
        }
    };
    accepted(run(&bundle(|_| {}), &sim_policy("")));
    denied(
        run(&bundle(policy_bit(19)), &sim_policy("")),
        Check::SnpPolicyDebug,
    );
    accepted(run(
        &bundle(policy_bit(19)),
        &sim_policy("debug_allowed = true"),
    ));
    denied(
        run(&bundle(policy_bit(18)), &sim_policy("")),
        Check::SnpPolicyMigrateMa,
    );
    denied(
        run(&bundle(|_| {}), &sim_policy("smt_allowed = false")),
        Check::SnpPolicySmt,
    );
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy("single_socket_required = true"),
        ),
        Check::SnpPolicySingleSocket,
    );
    accepted(run(
        &bundle(policy_bit(20)),
        &sim_policy("single_socket_required = true"),
    ));
    denied(
        run(&bundle(policy_bit(21)), &sim_policy("")),
        Check::SnpPolicyCxl,
    );
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy("mem_aes_256_xts_required = true"),
        ),
        Check::SnpPolicyMemAes256Xts,
    );
    denied(
        run(&bundle(|_| {}), &sim_policy("rapl_dis_required = true")),
        Check::SnpPolicyRaplDis,
    );
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy("ciphertext_hiding_required = true"),
        ),
        Check::SnpPolicyCiphertextHiding,
    );
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy("page_swap_disable_required = true"),
        ),
        Check::SnpPolicyPageSwapDisable,
    );
    denied(
        run(&bundle(policy_bit(40)), &sim_policy("")),
        Check::SnpPolicyReserved,
    );
    denied(
        run(&bundle(|r| r[10] &= !0x02), &sim_policy("")),
        Check::SnpPolicyReserved,
    ); // bit 17 cleared
    denied(
        run(&bundle(|_| {}), &sim_policy("min_abi = \"1.51\"")),
        Check::SnpPolicyAbi,
    );
}

#[test]
fn platform_info_bits_each_deny() {
    let plat = |v: u64| move |r: &mut Vec<u8>| set_u64(r, 0x40, v);
    denied(
        run(&bundle(plat(0x41)), &sim_policy("")),
        Check::SnpPlatformReserved,
    );
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy("[snp.platform]\nsmt_enabled_allowed = false"),
        ),
        Check::SnpPlatformSmt,
    );
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy("[snp.platform]\ntsme_required = true"),
        ),
        Check::SnpPlatformTsme,
    );
    accepted(run(
        &bundle(plat(0x03)),
        &sim_policy("[snp.platform]\ntsme_required = true"),
    ));
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy("[snp.platform]\necc_required = true"),
        ),
        Check::SnpPlatformEcc,
    );
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy("[snp.platform]\nalias_check_required = true"),
        ),
        Check::SnpPlatformAliasCheck,
    );
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy("[snp.platform]\nciphertext_hiding_required = true"),
        ),
        Check::SnpPlatformCiphertextHiding,
    );
}

#[test]
fn tcb_fields_each_deny() {
    // Reported TCB 03 00 .. 08 73 (= current = committed = launch).
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy("min_reported_tcb = { microcode = 116 }"),
        ),
        Check::SnpTcbReported,
    );
    accepted(run(
        &bundle(|_| {}),
        &sim_policy("min_reported_tcb = { bootloader = 3, snp = 8, microcode = 115 }"),
    ));
    denied(
        run(&bundle(|_| {}), &sim_policy("min_launch_tcb = { snp = 9 }")),
        Check::SnpTcbLaunch,
    );
    // CURRENT_TCB below REPORTED_TCB.
    denied(
        run(&bundle(|r| r[0x3f] = 0x72), &sim_policy("")),
        Check::SnpTcbCurrent,
    );
    // COMMITTED_TCB below CURRENT_TCB: provisional firmware.
    let committed_low = |r: &mut Vec<u8>| r[0x1e7] = 0x72;
    denied(
        run(&bundle(committed_low), &sim_policy("")),
        Check::SnpTcbCommitted,
    );
    accepted(run(
        &bundle(committed_low),
        &sim_policy("provisional_firmware_allowed = true"),
    ));
    // Committed firmware version differs from current.
    denied(
        run(&bundle(|r| r[0x1ec] = 3), &sim_policy("")),
        Check::SnpTcbCommitted,
    );
    // Firmware 1.52.4 below a minimum of 1.55.0.
    denied(
        run(&bundle(|_| {}), &sim_policy("min_firmware = \"1.55.0\"")),
        Check::SnpFirmware,
    );
    accepted(run(
        &bundle(|_| {}),
        &sim_policy("min_firmware = \"1.52.4\""),
    ));
}

#[test]
fn reference_values_each_deny() {
    denied(
        run(&bundle(|r| r[0x30] = 1), &sim_policy("")),
        Check::SnpVmpl,
    );
    accepted(run(&bundle(|r| r[0x30] = 1), &sim_policy("vmpls = [0, 1]")));
    denied(
        run(&bundle(|_| {}), &sim_policy("min_guest_svn = 1")),
        Check::SnpGuestSvn,
    );
    denied(
        run(&bundle(|r| r[0x160] = 0x00), &sim_policy("")),
        Check::SnpReportIdMa,
    );
    denied(
        run(&bundle(|r| r[0x90] ^= 1), &sim_policy("")),
        Check::SnpMeasurement,
    );
    let hd = "11".repeat(32);
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy(&format!("host_data = \"{hd}\"")),
        ),
        Check::SnpHostData,
    );
    accepted(run(
        &bundle(|r| r[0xc0..0xe0].fill(0x11)),
        &sim_policy(&format!("host_data = \"{hd}\"")),
    ));
    let chip = appraisal::hex::encode(&sim().opts.hw_id);
    accepted(run(
        &bundle(|_| {}),
        &sim_policy(&format!("chip_ids = [\"{chip}\"]")),
    ));
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy(&format!("chip_ids = [\"{}\"]", "00".repeat(64))),
        ),
        Check::SnpChipId,
    );
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy(&format!("id_key_digests = [\"{}\"]", "22".repeat(48))),
        ),
        Check::SnpIdKeyDigest,
    );
    // CHIP_ID changed (a report from another chip for this VCEK).
    denied(
        run(&bundle(|r| r[0x1a0] ^= 1), &sim_policy("")),
        Check::SnpVcekChipId,
    );
}

#[test]
fn id_block_ids_and_mitigation_vectors() {
    let fam = "11".repeat(16);
    let img = "22".repeat(16);
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy(&format!("family_id = \"{fam}\"")),
        ),
        Check::SnpFamilyId,
    );
    denied(
        run(
            &bundle(|_| {}),
            &sim_policy(&format!("image_id = \"{img}\"")),
        ),
        Check::SnpImageId,
    );
    let ids = |r: &mut Vec<u8>| {
        r[0x10..0x20].fill(0x11);
        r[0x20..0x30].fill(0x22);
    };
    accepted(run(
        &bundle(ids),
        &sim_policy(&format!("family_id = \"{fam}\"\nimage_id = \"{img}\"")),
    ));
    // A v2 report has no mitigation vectors.
    let d = denied(
        run(&bundle(|_| {}), &sim_policy("required_mitigations = 1")),
        Check::SnpMitigations,
    );
    assert!(d.got.contains("version 2"), "{d}");
    // A v5 Milan report: launch vector 0b11, current 0b01.
    let v5 = |r: &mut Vec<u8>| {
        r[0] = 5;
        r[0x188..0x18b].copy_from_slice(&[0x19, 0x01, 0x01]);
        set_u64(r, 0x1f8, 0b11);
        set_u64(r, 0x200, 0b01);
    };
    accepted(run(&bundle(v5), &sim_policy("required_mitigations = 1")));
    let d = denied(
        run(&bundle(v5), &sim_policy("required_mitigations = 2")),
        Check::SnpMitigations,
    );
    assert!(d.got.contains("CURRENT_MIT_VECTOR 0x1"), "{d}");
}

#[test]
fn report_data_binds_nonce_key_and_exporter() {
    use tee_formats::binding;
    let (nonce, spki, exporter) = ([7u8; 32], b"enclave key SPKI DER".as_slice(), [9u8; 32]);
    let rd = binding::report_data(&nonce, spki, &exporter);
    let b = bundle(|r| r[0x50..0x90].copy_from_slice(&rd));
    let p = sim_policy("");
    let a = Appraiser::new().unwrap();
    let now = t(NOW);
    consistent(a.appraise_traced(&b, &p, now, Some(&rd), &appraisal::Collateral::none())).unwrap();
    let mut other_nonce = nonce;
    other_nonce[0] ^= 1;
    let mut other_exporter = exporter;
    other_exporter[31] ^= 1;
    for want in [
        binding::report_data(&other_nonce, spki, &exporter),
        binding::report_data(&nonce, spki, &other_exporter),
        binding::report_data(&nonce, b"another key", &exporter),
    ] {
        let d = a
            .appraise(&b, &p, now, Some(&want), &appraisal::Collateral::none())
            .unwrap_err();
        assert_eq!(d.check, Check::ReportData, "{d}");
        assert_eq!(d.got, appraisal::hex::encode(&rd));
    }
}

#[test]
fn denial_converts_to_the_wire_form() {
    let d = denied(
        run(&bundle(|r| r[0x90] ^= 1), &sim_policy("")),
        Check::SnpMeasurement,
    );
    let w: wire::verifier::Denial = d.clone().into();
    assert_eq!(w.check, "snp.measurement");
    assert_eq!(w.got, d.got);
    assert!(w.want.contains(VIRTEE_MEASUREMENT));
}

#[test]
fn coco_pods_need_their_init_data_in_host_data() {
    // Kata (runtime-rs kata-types initdata.rs, kata-agent initdata.rs) hashes
    // the init-data TOML with the algorithm it names and truncates or pads the
    // digest to HOST_DATA's 32 bytes: for "sha256", SHA-256 of the file.
    let toml = b"algorithm = \"sha256\"\nversion = \"0.1.0\"\n\n[data]\n\"policy.rego\" = '''\npackage agent_policy\n'''\n";
    let digest: [u8; 32] = Sha256::digest(toml).into();
    let init = appraisal::hex::encode(&digest);
    let coco = |pin: &str| {
        policy(&format!(
            "[snp]\n[coco]\nallowed = true\nsnp_measurements = [\"{VIRTEE_MEASUREMENT}\"]\ninit_data_snp = [\"{pin}\"]\n[sim]\nallowed = true\nark_sha256 = [\"{}\"]\n",
            sim().ark_pin()
        ))
    };
    let pod = bundle(|r| r[0xc0..0xe0].copy_from_slice(&digest));
    let c = accepted(run(&pod, &coco(&init)));
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["init_data"], init);
    assert_eq!(j["host_data"], init);
    assert_eq!(j["measurement"], VIRTEE_MEASUREMENT);
    // Launched without init-data, or with another.
    let d = denied(run(&bundle(|_| {}), &coco(&init)), Check::CocoInitData);
    assert_eq!(d.got, format!("HOST_DATA {}", "00".repeat(32)));
    assert!(
        d.want.contains(&init) && d.want.ends_with("(policy coco.init_data_snp)"),
        "{d}"
    );
    denied(run(&pod, &coco(&"11".repeat(32))), Check::CocoInitData);
    // Appliance evidence carries no init_data claim.
    let j = serde_json::to_value(accepted(run(&bundle(|_| {}), &sim_policy("")))).unwrap();
    assert!(j.get("init_data").is_none());
    // Real evidence: the virtee report, listed as a Kata guest, HOST_DATA zero.
    let p = policy(&format!(
        "[snp]\nallowed = true\ncrl = \"if-present\"\n[coco]\nallowed = true\nsnp_measurements = [\"{VIRTEE_MEASUREMENT}\"]\ninit_data_snp = [\"{init}\"]\n"
    ));
    let d = denied(appraise(&virtee(), &p, SNP_NOW), Check::CocoInitData);
    assert_eq!(d.got, format!("HOST_DATA {}", "00".repeat(32)));
    // Neither an appliance nor a pod image.
    let p = policy(&format!(
        "[snp]\nallowed = true\ncrl = \"if-present\"\n[coco]\nallowed = true\nsnp_measurements = [\"{}\"]\ninit_data_snp = [\"{init}\"]\n",
        "12".repeat(48)
    ));
    denied(appraise(&virtee(), &p, SNP_NOW), Check::SnpMeasurement);
}
