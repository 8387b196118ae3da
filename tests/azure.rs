//! The Azure vTPM path with real parts: swtpm (provisioned with tpm2-tools
//! as Azure's HCL lays it out), the simulated paravisor in front of it, the
//! guest's provider speaking raw TPM 2.0, `enclavectl verify`, and the whole
//! flow in process mode to the verifier and OpenBao. tpm2-tools check what
//! the provider's hand-written commands produced (tpm2_checkquote,
//! tpm2_pcrread, tpm2_readpublic); the simulation chain keeps every
//! production policy refusing the evidence.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use enclave_tests::azure::{sim_azure_policy, Paravisor, Swtpm};
use enclave_tests::process::{boot, Boot};
use enclave_tests::stack::{enclavectl, guest_config, OpenBao, Pki, Verifier, TEST_HOOKS};
use enclave_tests::TempDir;
use evidence::azure_vtpm::{AzureVtpm, Endorsements};
use evidence::tpm_device::TpmAddr;
use evidence::{EvidenceError, EvidenceSource, Paths, SourceKind};
use tee_formats::azure::HclReport;

/// What a measured boot puts in PCR 11 here (the test's own value).
const IMAGE_DIGEST: [u8; 32] = [0x11; 32];

fn sha256(b: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .try_into()
        .unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// PCR 11 after one extend of IMAGE_DIGEST from zero: SHA-256(0^32 ‖ digest).
fn pcr11() -> String {
    let mut buf = [0u8; 64];
    buf[32..].copy_from_slice(&IMAGE_DIGEST);
    hex(&sha256(&buf))
}

fn random_measurement() -> String {
    let mut b = [0u8; 48];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    hex(&b)
}

/// swtpm provisioned as an Azure vTPM, PCR 11 extended, and the paravisor.
struct Vtpm {
    swtpm: Swtpm,
    para: Paravisor,
    dir: TempDir,
}

fn vtpm() -> Vtpm {
    let swtpm = Swtpm::start();
    swtpm.provision_azure();
    swtpm.extend(11, &IMAGE_DIGEST);
    let dir = TempDir::new("para");
    let para = Paravisor::start(&swtpm, dir.path(), &random_measurement());
    Vtpm { swtpm, para, dir }
}

fn source(v: &Vtpm) -> AzureVtpm {
    AzureVtpm::new(
        TpmAddr::Unix(v.para.tpm.clone()),
        Endorsements {
            certs: Some(transport::Addr::Unix(v.para.certs.clone())),
            td_quote: None,
        },
        Duration::from_secs(10),
    )
}

/// `enclavectl verify` of a bundle: exit code and JSON.
fn verify(
    bundle: &wire::EvidenceBundle,
    policy: &str,
    dir: &std::path::Path,
    extra: &[&str],
) -> (i32, serde_json::Value) {
    let b = dir.join(format!("bundle-{}.json", rand_suffix()));
    let p = dir.join(format!("policy-{}.toml", rand_suffix()));
    std::fs::write(&b, bundle.to_json()).unwrap();
    std::fs::write(&p, policy).unwrap();
    let out = Command::new(enclavectl())
        .arg("verify")
        .arg("--bundle")
        .arg(&b)
        .arg("--policy")
        .arg(&p)
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "verify printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

fn rand_suffix() -> String {
    let mut b = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    hex(&b)
}

#[test]
fn provider_evidence_is_what_tpm2_tools_and_the_appraisal_say() {
    let v = vtpm();
    let rd = [0x5a; 64];
    let bundle = source(&v).collect(&rd).unwrap();
    assert_eq!(bundle.tee, wire::Tee::AzureSnp);
    assert_eq!(bundle.provider, "azure-vtpm");
    let kinds: Vec<_> = bundle.certificates.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            wire::CertKind::Vcek,
            wire::CertKind::Ask,
            wire::CertKind::Ark
        ]
    );
    let tpm = bundle.tpm.as_ref().unwrap();

    // The HCL report: the paravisor refreshed it with our user data, and its
    // AK is the TPM's AK (tpm2_readpublic).
    let hcl = HclReport::parse(&bundle.evidence).unwrap();
    assert_eq!(hcl.header.version, 2);
    assert_eq!(hcl.padding_len + hcl.header.report_size as usize, 2048);
    let var: serde_json::Value = serde_json::from_slice(&hcl.variable_data).unwrap();
    assert_eq!(var["user-data"], hex(&rd).to_uppercase());
    assert_eq!(var["vm-configuration"]["simulation"], true);
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(var["keys"][0]["n"].as_str().unwrap())
        .unwrap();
    assert_eq!(hex(&n), v.swtpm.ak_modulus());
    assert_eq!(
        hcl.hardware_report.report_data(),
        &hcl.expected_report_data()
    );

    // The quote: tpm2_checkquote verifies it with the AK and extraData =
    // SHA-256(REPORT_DATA); the PCR values are tpm2_pcrread's.
    std::fs::write(v.swtpm.path("q.msg"), &tpm.quote[..]).unwrap();
    std::fs::write(v.swtpm.path("q.sig"), &tpm.signature[..]).unwrap();
    let ak = v.swtpm.ak_pem();
    v.swtpm.tpm2(
        "tpm2_checkquote",
        &[
            "-u",
            ak.to_str().unwrap(),
            "-m",
            "q.msg",
            "-s",
            "q.sig",
            "-q",
            &hex(&sha256(&rd)),
        ],
    );
    let pcrs: Vec<String> = tpm.pcrs.iter().map(|p| hex(p)).collect();
    assert_eq!(pcrs, v.swtpm.pcrs());
    assert_eq!(pcrs[11], pcr11());

    // The appraisal: accepted as azure-sim under a development policy, with
    // the session binding as REPORT_DATA.
    let dev = sim_azure_policy(&v.para.ark_sha256, &v.para.measurement, 11, &pcr11());
    let (code, claims) = verify(&bundle, &dev, v.dir.path(), &["--report-data", &hex(&rd)]);
    assert_eq!(code, 0, "{claims}");
    assert_eq!(claims["tee"], "azure-sim");
    assert_eq!(claims["measurement"], v.para.measurement);
    assert_eq!(claims["vmpl"], 0);
    assert_eq!(claims["azure"]["pcrs"][11], pcr11());
    assert_eq!(claims["azure"]["user_data"], hex(&rd));
    // Another session's binding; another PCR 11; a policy that does not
    // accept the simulation chain.
    let (code, d) = verify(
        &bundle,
        &dev,
        v.dir.path(),
        &["--report-data", &"5b".repeat(64)],
    );
    assert_eq!(
        (code, d["check"].as_str()),
        (1, Some("azure.quote.nonce")),
        "{d}"
    );
    let other_pcr = sim_azure_policy(
        &v.para.ark_sha256,
        &v.para.measurement,
        11,
        &"00".repeat(32),
    );
    let (code, d) = verify(
        &bundle,
        &other_pcr,
        v.dir.path(),
        &["--report-data", &hex(&rd)],
    );
    assert_eq!((code, d["check"].as_str()), (1, Some("azure.pcr")), "{d}");
    // Under AMD's roots the simulation VCEK is not even in KDS form.
    let production = dev.replace("[sim]\nallowed = true", "[sim]\nallowed = false");
    let (code, d) = verify(
        &bundle,
        &production,
        v.dir.path(),
        &["--report-data", &hex(&rd)],
    );
    assert_eq!(
        (code, d["check"].as_str()),
        (1, Some("snp.cert.form")),
        "{d}"
    );
    assert!(d["got"].as_str().unwrap().contains("SIMULATION"), "{d}");
}

#[test]
fn quotes_of_other_pcrs_or_by_other_keys_are_denied() {
    let v = vtpm();
    let rd = [0x33; 64];
    let bundle = source(&v).collect(&rd).unwrap();
    let dev = sim_azure_policy(&v.para.ark_sha256, &v.para.measurement, 11, &pcr11());
    let nonce = hex(&sha256(&rd));
    // The AK itself quotes PCR0-2 only (tpm2_quote): a real, valid quote of
    // the wrong selection.
    v.swtpm.tpm2(
        "tpm2_quote",
        &[
            "-Q",
            "-c",
            "0x81000003",
            "-l",
            "sha256:0,1,2",
            "-q",
            &nonce,
            "-m",
            "sel.msg",
            "-s",
            "sel.sig",
            "-g",
            "sha256",
        ],
    );
    let mut b = bundle.clone();
    let t = b.tpm.as_mut().unwrap();
    t.quote = std::fs::read(v.swtpm.path("sel.msg")).unwrap().into();
    t.signature = std::fs::read(v.swtpm.path("sel.sig")).unwrap().into();
    let (code, d) = verify(&b, &dev, v.dir.path(), &["--report-data", &hex(&rd)]);
    assert_eq!(
        (code, d["check"].as_str()),
        (1, Some("azure.quote.pcr_selection")),
        "{d}"
    );
    // Another restricted signing key (owner hierarchy) quotes PCR0-23: not the HCL report's AK.
    v.swtpm.tpm2(
        "tpm2_createprimary",
        &[
            "-Q",
            "-C",
            "o",
            "-g",
            "sha256",
            "-G",
            "rsa2048:rsassa-sha256:null",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign|noda",
            "-c",
            "other.ctx",
        ],
    );
    v.swtpm.tpm2(
        "tpm2_quote",
        &[
            "-Q",
            "-c",
            "other.ctx",
            "-l",
            "sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
            "-q",
            &nonce,
            "-m",
            "other.msg",
            "-s",
            "other.sig",
            "-g",
            "sha256",
        ],
    );
    v.swtpm.tpm2("tpm2_flushcontext", &["-t"]);
    let mut b = bundle.clone();
    let t = b.tpm.as_mut().unwrap();
    t.quote = std::fs::read(v.swtpm.path("other.msg")).unwrap().into();
    t.signature = std::fs::read(v.swtpm.path("other.sig")).unwrap().into();
    let (code, d) = verify(&b, &dev, v.dir.path(), &["--report-data", &hex(&rd)]);
    assert_eq!(
        (code, d["check"].as_str()),
        (1, Some("azure.quote.signature")),
        "{d}"
    );
    // The paravisor refreshed the report for a later session: the earlier
    // bundle's HCL report with the later one's quote has the wrong user-data.
    let later = source(&v).collect(&[0x44; 64]).unwrap();
    let mut b = later.clone();
    b.tpm = bundle.tpm.clone();
    let (code, d) = verify(&b, &dev, v.dir.path(), &["--report-data", &hex(&rd)]);
    assert_eq!(
        (code, d["check"].as_str()),
        (1, Some("azure.user_data")),
        "{d}"
    );
}

#[test]
fn detection_finds_the_vtpm_only_where_the_hcl_report_is() {
    let v = vtpm();
    let missing = TempDir::new("detect");
    let paths = |tpm: TpmAddr| Paths {
        tsm_root: missing.path().join("tsm"),
        sev_guest: missing.path().join("sev-guest"),
        tdx_guest: missing.path().join("tdx_guest"),
        coco_aa: "tcp://127.0.0.1:1".parse().unwrap(),
        ccel: evidence::ccel::CcelPaths {
            table: missing.path().join("CCEL"),
            data: missing.path().join("data/CCEL"),
        },
        tpm,
        nsm: missing.path().join("nsm"),
    };
    assert_eq!(
        evidence::detect(&paths(TpmAddr::Unix(v.para.tpm.clone()))).unwrap(),
        SourceKind::AzureVtpm
    );
    // A TPM without the Azure NV index is not an Azure vTPM.
    let plain = Swtpm::start();
    match evidence::detect(&paths(TpmAddr::Unix(plain.socket.clone()))) {
        Err(EvidenceError::NoTee { tried }) => assert!(
            tried[0].starts_with("azure-vtpm:") && tried[0].contains("not an Azure vTPM"),
            "{tried:?}"
        ),
        other => panic!("{other:?}"),
    }
    // No AK: the provider names the failed command and its response code.
    plain.tpm2(
        "tpm2_nvdefine",
        &[
            "0x01400001",
            "-C",
            "p",
            "-s",
            "2048",
            "-a",
            "ppwrite|ppread|ownerread|authread|platformcreate|no_da",
        ],
    );
    let mut src = AzureVtpm::new(
        TpmAddr::Unix(plain.socket.clone()),
        Endorsements::default(),
        Duration::from_secs(10),
    );
    let e = src.collect(&[1; 64]).unwrap_err().to_string();
    assert!(e.contains("TPM2_") && e.contains("TPM_RC"), "{e}");
}

/// The process-mode guest configuration with the vTPM as its TEE.
fn azure_guest_config(
    dir: &std::path::Path,
    v: &Vtpm,
    verifier: &Verifier,
    pki: &Pki,
    bao: Option<&OpenBao>,
) -> String {
    let c = guest_config(dir, &v.para.tpm, Some((verifier, pki)), bao);
    let sim_line = format!("sim_psp = \"unix://{}\"", v.para.tpm.display());
    assert!(
        c.contains("source = \"sim\"") && c.contains(&sim_line),
        "{c}"
    );
    c.replace("source = \"sim\"", "source = \"azure-vtpm\"")
        .replace(
            &sim_line,
            &format!(
                "tpm = \"unix://{}\"\nazure_certs = \"unix://{}\"",
                v.para.tpm.display(),
                v.para.certs.display()
            ),
        )
}

#[test]
fn the_guest_attests_through_the_vtpm_and_gets_its_secrets() {
    let v = vtpm();
    let pki = Pki::new();
    let policy = sim_azure_policy(&v.para.ark_sha256, &v.para.measurement, 11, &pcr11());
    let verifier = Verifier::start(&pki, &policy, v.dir.path(), &[]);
    let bao = OpenBao::start(&pki);
    bao.setup(
        &verifier,
        &pki,
        &[&v.para.measurement],
        "azure-sim",
        &[("ENCLAVE_SEED_HUME_API_KEY", "canary-azure-hume")],
    );
    let gdir = TempDir::new("guest");
    let config = azure_guest_config(gdir.path(), &v, &verifier, &pki, Some(&bao)) + TEST_HOOKS;
    let (guest, report) = boot(gdir, &config).ready();
    assert_eq!(report["attested"]["tee"], "azure-snp", "{report}");
    assert_eq!(report["secrets_provisioned"], 5, "{report}");
    let key = [0x42u8; 32];
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        b"canary-azure-hume",
    );
    assert_eq!(
        guest.command(&report, &format!("secret-hash hume/api-key {}", hex(&key))),
        hex(tag.as_ref())
    );
    let logs = guest.logs();
    assert!(logs.contains("source=azure-vtpm"), "{logs}");
    assert!(!logs.contains("canary-azure-hume"));
    assert_eq!(guest.command(&report, "poweroff"), "ok");
}

#[test]
fn production_policies_and_unpinned_pcrs_refuse_the_simulated_paravisor() {
    let v = vtpm();
    let pki = Pki::new();
    // A production verifier: [sim] off, the AMD roots only.
    let production = sim_azure_policy(&v.para.ark_sha256, &v.para.measurement, 11, &pcr11())
        .replace("[sim]\nallowed = true", "[sim]\nallowed = false");
    let verifier = Verifier::start_with(&pki, &production, v.dir.path(), &[]);
    let gdir = TempDir::new("guest");
    let config = azure_guest_config(gdir.path(), &v, &verifier, &pki, None);
    match boot(gdir, &config) {
        Boot::Failed { status, stderr } => {
            assert_eq!(status, 1);
            assert!(
                stderr.contains("verifier denied the evidence: check snp.cert.form"),
                "{stderr}"
            );
            assert!(stderr.contains("SEV-VCEK SIMULATION"), "{stderr}");
        }
        Boot::Ready(_, r) => panic!("the simulated paravisor passed a production policy: {r}"),
    }
    // A development verifier that pins another image in PCR 11.
    let other = sim_azure_policy(
        &v.para.ark_sha256,
        &v.para.measurement,
        11,
        &"00".repeat(32),
    );
    let verifier = Verifier::start(&pki, &other, v.dir.path(), &[]);
    let gdir = TempDir::new("guest");
    let config = azure_guest_config(gdir.path(), &v, &verifier, &pki, None);
    match boot(gdir, &config) {
        Boot::Failed { stderr, .. } => assert!(stderr.contains("check azure.pcr"), "{stderr}"),
        Boot::Ready(_, r) => panic!("another PCR 11 was accepted: {r}"),
    }
}
