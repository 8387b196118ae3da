//! The help's examples, and the manual pages and shell completions made
//! from the same command tree.
//!
//! Every subcommand's help ends with "Example: …" ([`with_examples`]); the
//! examples live in this one table so that a subcommand without one fails
//! the unit test below instead of going unnoticed. `enclavectl
//! generate-docs --out DIR` (hidden: a build step, run by
//! scripts/install-deps) writes `DIR/man/man1/enclavectl*.1` (clap_mangen)
//! and `DIR/completions/{enclavectl.bash,_enclavectl,enclavectl.fish}`
//! (clap_complete).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Command;

use crate::CmdResult;

/// Arguments of `generate-docs`.
#[derive(clap::Args)]
pub struct Args {
    /// The directory to write `man/man1/` and `completions/` into.
    #[arg(long)]
    out: PathBuf,
}

/// One example per subcommand, by its path below `enclavectl`.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "image",
        "enclavectl image build --init enclave-init --config image/config.toml --source-date-epoch 1700000000 --out initramfs.cpio",
    ),
    (
        "image build",
        "enclavectl image build --init target/x86_64-unknown-linux-musl/release/enclave-init --config image/config.toml --modules-list image/modules.list --modules-dir /opt/enclave-init/kernel/current/modules --source-date-epoch 1700000000 --out out/initramfs.cpio",
    ),
    (
        "measure",
        "enclavectl measure --ovmf OVMF.fd --kernel vmlinuz --initrd out/initramfs.cpio --cmdline-file kata-config/cmdline --vcpus 1-4 --vcpu-type EPYC-v4",
    ),
    (
        "verifier",
        "enclavectl verifier --listen 0.0.0.0:8443 --tls-cert pki/verifier.pem --tls-key pki/verifier-key.pem --token-key pki/token-key.pk8 --nonce-key pki/nonce.key --policy policy.toml",
    ),
    ("dev-pki", "enclavectl dev-pki --out pki"),
    ("evidence", "enclavectl evidence inspect report.bin"),
    ("evidence inspect", "enclavectl evidence inspect bundle.json"),
    (
        "evidence get",
        "enclavectl evidence get --report-data 00 --source sim --sim-psp unix:///run/sim-psp.sock --out bundle.json",
    ),
    (
        "proxy",
        "enclavectl proxy --egress /run/vm/vm.vsock_8443=127.0.0.1:8443 --ingress 127.0.0.1:9443=/run/vm/vm.vsock:5000",
    ),
    ("verify", "enclavectl verify --policy policy.toml --bundle bundle.json"),
    (
        "sim-psp",
        "enclavectl sim-psp --state sim-state --measurement \"$MEASUREMENT\" --listen unix:///run/sim-psp.sock",
    ),
    (
        "audit",
        "enclavectl audit verify --db /run/postgresql --verifier-key pki/token-key.pub.pem",
    ),
    (
        "audit serve",
        "enclavectl audit serve --db /run/postgresql --listen vsock://any:9300 --verifier-key pki/token-key.pub.pem",
    ),
    (
        "audit verify",
        "enclavectl audit verify --db /run/postgresql --verifier-key pki/token-key.pub.pem --retention-key pki/retention.pub.pem",
    ),
    (
        "audit export",
        "enclavectl audit export --db /run/postgresql --verifier-key pki/token-key.pub.pem --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z --out audit-november.json",
    ),
    (
        "audit retain",
        "enclavectl audit retain --db /run/postgresql --older-than 180 --key pki/retention.pk8",
    ),
    (
        "audit pubkey",
        "enclavectl audit pubkey --key pki/token-key.pk8 > pki/token-key.pub.pem",
    ),
    (
        "sim-nsm",
        "enclavectl sim-nsm --listen unix:///run/sim-nsm.sock --eif out/enclave.eif",
    ),
    (
        "sim-paravisor",
        "enclavectl sim-paravisor --state sim-state --measurement \"$MEASUREMENT\" --tpm unix:///run/swtpm.sock --listen unix:///run/paravisor.sock",
    ),
    (
        "call",
        "enclavectl call sample-call.wav --metadata @metadata.json --addr tcp://127.0.0.1:9443 --ca serving-ca.pem --cert platform-client.pem --key platform-client-key.pem",
    ),
    (
        "collateral",
        "enclavectl collateral show --collateral-cache /var/cache/enclave-verifier",
    ),
    (
        "collateral fetch",
        "enclavectl collateral fetch --collateral-cache /var/cache/enclave-verifier --out offline/ bundle.json",
    ),
    (
        "collateral show",
        "enclavectl collateral show --collateral-cache /var/cache/enclave-verifier",
    ),
    (
        "collateral prune",
        "enclavectl collateral prune --collateral-cache /var/cache/enclave-verifier",
    ),
    (
        "policy",
        "enclavectl policy check --collateral-cache /var/cache/enclave-verifier candidate-policy.toml",
    ),
    (
        "policy check",
        "enclavectl policy check --collateral-cache /var/cache/enclave-verifier candidate-policy.toml",
    ),
    ("generate-docs", "enclavectl generate-docs --out /opt/enclave-init/share"),
];

/// `cmd` with "Example: …" after the help of every subcommand in
/// [`EXAMPLES`] (recursively).
pub fn with_examples(cmd: Command) -> Command {
    fn walk(cmd: Command, path: &str) -> Command {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        let mut cmd = cmd;
        for name in names {
            let sub_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path} {name}")
            };
            cmd = cmd.mut_subcommand(&name, |sub| {
                let sub = match EXAMPLES.iter().find(|(p, _)| *p == sub_path) {
                    Some((_, e)) => sub.after_help(format!("Example: {e}")),
                    None => sub,
                };
                walk(sub, &sub_path)
            });
        }
        cmd
    }
    walk(cmd, "")
}

/// Writes the manual pages (one per command and subcommand) and the bash,
/// zsh and fish completions of `cmd` under `args.out`.
pub fn run(args: Args, cmd: Command) -> CmdResult {
    let man = args.out.join("man/man1");
    let completions = args.out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    clap_mangen::generate_to(cmd.clone(), &man)?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "enclavectl", &completions)?;
    }
    println!(
        "manual pages in {}, completions in {}",
        man.display(),
        completions.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every path of subcommands below `cmd`, e.g. "collateral fetch".
    fn paths(cmd: &Command, prefix: &str, out: &mut Vec<String>) {
        for s in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let p = if prefix.is_empty() {
                s.get_name().to_owned()
            } else {
                format!("{prefix} {}", s.get_name())
            };
            paths(s, &p, out);
            out.push(p);
        }
    }

    /// Every subcommand's rendered help ends with an example that runs that
    /// very subcommand (not a neighbour's copy), and the table names no
    /// subcommand that does not exist.
    #[test]
    fn every_subcommand_help_has_an_example() {
        let mut cmd = with_examples(crate::Cli::command());
        cmd.build();
        let mut all = Vec::new();
        paths(&cmd, "", &mut all);
        assert!(all.len() >= 20, "subcommands found: {all:?}");
        for p in &all {
            let mut sub = &cmd;
            for name in p.split(' ') {
                sub = sub.find_subcommand(name).unwrap();
            }
            let help = sub.clone().render_help().to_string();
            let example = help
                .lines()
                .find_map(|l| l.strip_prefix("Example: "))
                .unwrap_or_else(|| panic!("`enclavectl {p} --help` has no example:\n{help}"));
            // A group's example runs one of its subcommands.
            assert!(
                example.starts_with(&format!("enclavectl {p}")),
                "`enclavectl {p}`: the example runs something else: {example}"
            );
        }
        for (p, _) in EXAMPLES {
            assert!(all.contains(&(*p).to_owned()), "no subcommand {p:?}");
        }
    }
}
