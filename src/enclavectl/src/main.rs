//! `enclavectl`: the operator's and the release pipeline's tools. Argument
//! parsing and dispatch only; the work happens in the library crates.
//!
//! Subcommands:
//! - `image build`: the reproducible initramfs ([`image`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sha2::{Digest, Sha256};

/// Host-side tools of enclave-init.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The guest image.
    #[command(subcommand)]
    Image(ImageCommand),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build the initramfs (uncompressed newc cpio), byte for byte reproducible.
    Build(ImageBuild),
}

#[derive(clap::Args)]
struct ImageBuild {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Image(ImageCommand::Build(args)) => image_build(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enclavectl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn image_build(args: ImageBuild) -> Result<(), Box<dyn std::error::Error>> {
    let recipe = image::Recipe {
        init: args.init,
        config: args.config,
        modules_list: args.modules_list,
        modules_dir: args.modules_dir,
        mtime: args.source_date_epoch,
    };
    let bytes = image::build(&recipe)?;
    std::fs::write(&args.out, &bytes).map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    println!("{hex}  {}  ({} bytes)", args.out.display(), bytes.len());
    Ok(())
}
