//! `enclavectl image`: the reproducible initramfs, alone (`--format cpio`) or
//! in an AWS Nitro Enclave Image File with the kernel and command line
//! (`--format eif`, `image::eif`), both bit for bit reproducible.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use sha2::{Digest, Sha256};

use crate::CmdResult;

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build the initramfs (uncompressed newc cpio), or an EIF holding it, byte for byte reproducible.
    Build(Build),
}

#[derive(clap::Args)]
pub struct Build {
    /// The static enclave-init binary (becomes /init).
    #[arg(long)]
    init: PathBuf,
    /// The configuration (becomes /etc/enclave/config.toml).
    #[arg(long)]
    config: PathBuf,
    /// Module list, in load order (becomes /lib/modules/modules.list).
    #[arg(long, requires = "modules_dir")]
    modules_list: Option<PathBuf>,
    /// A kernel's lib/modules/<version> tree to take the listed modules from.
    #[arg(long)]
    modules_dir: Option<PathBuf>,
    /// mtime of every entry; defaults to $SOURCE_DATE_EPOCH.
    #[arg(long, env = "SOURCE_DATE_EPOCH")]
    source_date_epoch: u32,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// `cpio` (the initramfs) or `eif` (an AWS Nitro Enclave Image File:
    /// kernel, command line and the initramfs as its one ramdisk).
    #[arg(long, default_value = "cpio", value_parser = ["cpio", "eif"])]
    format: String,
    /// With --format eif: the kernel (bzImage).
    #[arg(long, required_if_eq("format", "eif"))]
    kernel: Option<PathBuf>,
    /// With --format eif: the kernel command line.
    #[arg(long, required_if_eq("format", "eif"))]
    cmdline: Option<String>,
}

pub fn run(command: ImageCommand) -> CmdResult {
    match command {
        ImageCommand::Build(args) => build(args),
    }
}

fn build(args: Build) -> CmdResult {
    let recipe = image::Recipe {
        init: args.init,
        config: args.config,
        modules_list: args.modules_list,
        modules_dir: args.modules_dir,
        mtime: args.source_date_epoch,
    };
    let mut bytes = image::build(&recipe)?;
    if args.format == "eif" {
        let kernel_path = args.kernel.as_ref().ok_or("--format eif needs --kernel")?;
        let kernel = std::fs::read(kernel_path)
            .map_err(|e| format!("cannot read {}: {e}", kernel_path.display()))?;
        let cmdline = args
            .cmdline
            .as_deref()
            .ok_or("--format eif needs --cmdline")?;
        let metadata = image::eif::metadata_json(env!("CARGO_PKG_VERSION"), args.source_date_epoch);
        bytes = image::eif::build(&image::eif::EifInputs {
            kernel: &kernel,
            cmdline,
            ramdisks: vec![&bytes],
            metadata: &metadata,
            signature: None,
        })?;
    }
    std::fs::write(&args.out, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    println!(
        "{}  {}  ({} bytes)",
        crate::hex(&Sha256::digest(&bytes)),
        args.out.display(),
        bytes.len()
    );
    Ok(ExitCode::SUCCESS)
}
