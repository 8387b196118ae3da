//! scripts/check-manifests (run by scripts/test) accepts the deployment
//! files as they are and refuses each kind of breakage it claims to catch,
//! naming the file: a misspelt Kubernetes field, a wrong type, a Kata
//! template that is not TOML, and alert rules that drifted from the file
//! promtool tests. Each breakage is made in a copy of kata-config/ that
//! passes first, so the failure is the breakage's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use enclave_tests::{repo_root, TempDir};

/// A copy of kata-config/ under `dir`.
fn copy(dir: &Path) -> std::path::PathBuf {
    let st = Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("kata-config"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
    dir.join("kata-config")
}

/// Runs the check on `dir`: success, and everything it printed.
fn check(dir: &Path) -> (bool, String) {
    let out = Command::new(repo_root().join("scripts/check-manifests"))
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Replaces `from` (which must occur) by `to` in `file`.
fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn the_deployment_files_pass_and_each_breakage_fails() {
    let tmp = TempDir::new("manifests");
    let pristine = copy(tmp.path());
    let (ok, out) = check(&pristine);
    assert!(ok, "the repository's files fail: {out}");
    assert!(out.contains("manifests valid"), "{out}");

    let cases: [(&str, &str, &str, &str); 4] = [
        // A misspelt field: only a strict schema check sees it.
        (
            "k8s/verifier.yaml",
            "  replicas: 2",
            "  replica: 2",
            "verifier.yaml",
        ),
        // A wrong type.
        (
            "k8s/verifier.yaml",
            "containerPort: 8443",
            "containerPort: https-port",
            "verifier.yaml",
        ),
        (
            "coco-pod/kata-overrides.toml",
            "[",
            "[[ [",
            "kata-overrides.toml",
        ),
        (
            "alerts/enclave-attestation.rules.yaml",
            "groups:",
            "groups: # edited",
            "prometheus-rules.yaml",
        ),
    ];
    for (i, (file, from, to, named)) in cases.iter().enumerate() {
        let d = tmp.path().join(format!("case{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let copy = copy(&d);
        edit(&copy.join(file), from, to);
        let (ok, out) = check(&copy);
        assert!(!ok, "{file}: {from:?} -> {to:?} passed: {out}");
        assert!(
            out.contains(named),
            "{file}: the failure does not name {named}: {out}"
        );
    }
}
