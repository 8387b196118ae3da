//! `enclavectl image`: the reproducible initramfs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use sha2::{Digest, Sha256};

use crate::CmdResult;

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build the initramfs (uncompressed newc cpio), byte for byte reproducible.
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
    let bytes = image::build(&recipe)?;
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
