//! `enclavectl proxy`: the untrusted host proxy (see the `proxy` crate).
//!
//! ```text
//! enclavectl proxy --config proxy.toml
//! enclavectl proxy --egress /run/vm.vsock_8443=127.0.0.1:8443 \
//!                  --ingress 127.0.0.1:8080=/run/vm.vsock:8443 [--record DIR]
//! # an AWS Nitro parent (kernel vsock; the enclave is CID 16 here):
//! enclavectl proxy --egress vsock://any:8443=127.0.0.1:8443 \
//!                  --ingress 127.0.0.1:8080=vsock://16:8443
//! ```

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use proxy::config::{Config, Egress, Ingress};

use crate::CmdResult;

/// Arguments of `enclavectl proxy`.
#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (TOML; see the proxy crate's config module).
    #[arg(long)]
    config: Option<PathBuf>,
    /// UDS=HOST:PORT: the guest's hybrid-vsock socket `<uds>_<port>` (or
    /// vsock://any:PORT with kernel vsock, e.g. on a Nitro parent) to one
    /// allow-listed TCP target (repeatable; added to the file's rules).
    #[arg(long)]
    egress: Vec<String>,
    /// HOST:PORT=UDS:GUEST_PORT: a TCP listener to a guest vsock port through
    /// the hybrid vsock socket, or HOST:PORT=vsock://CID:GUEST_PORT with
    /// kernel vsock (a Nitro enclave's CID) (repeatable).
    #[arg(long)]
    ingress: Vec<String>,
    /// Record every forwarded byte under DIR (audits and tests: what the
    /// host can see).
    #[arg(long)]
    record: Option<PathBuf>,
}

pub fn run(args: Args) -> CmdResult {
    let mut config = match &args.config {
        Some(p) => {
            Config::parse(&std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?)
                .map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => Config::parse("")?,
    };
    for rule in &args.egress {
        let (uds, target) = rule
            .split_once('=')
            .ok_or_else(|| format!("--egress {rule:?}: want UDS=HOST:PORT"))?;
        config.egress.push(Egress {
            listen: PathBuf::from(uds),
            target: target.to_owned(),
        });
    }
    for rule in &args.ingress {
        let (listen, to) = rule
            .split_once('=')
            .ok_or_else(|| format!("--ingress {rule:?}: want HOST:PORT=UDS:PORT"))?;
        if to.starts_with("vsock://") {
            match to.parse::<transport::Addr>() {
                Ok(transport::Addr::Vsock { cid, port }) => {
                    config.ingress.push(Ingress {
                        listen: listen.to_owned(),
                        uds: None,
                        cid: Some(cid),
                        port,
                    });
                    continue;
                }
                _ => {
                    return Err(
                        format!("--ingress {rule:?}: want HOST:PORT=vsock://CID:PORT").into(),
                    )
                }
            }
        }
        let (uds, port) = to
            .rsplit_once(':')
            .ok_or_else(|| format!("--ingress {rule:?}: want HOST:PORT=UDS:PORT"))?;
        let port: u32 = port
            .parse()
            .map_err(|_| format!("--ingress {rule:?}: bad guest port"))?;
        config.ingress.push(Ingress {
            listen: listen.to_owned(),
            uds: Some(PathBuf::from(uds)),
            cid: None,
            port,
        });
    }
    let limits = config.limits();
    let tap = match &args.record {
        Some(dir) => proxy::Tap::into_dir(dir)?,
        None => proxy::Tap::default(),
    };
    let mut threads = proxy::serve_egress(&config.egress, limits, &tap)?;
    for e in &config.egress {
        println!("proxy egress {} -> {}", e.listen.display(), e.target);
    }
    for i in config.ingress {
        let guest = i.guest()?;
        let listener = TcpListener::bind(&i.listen).map_err(|e| format!("{}: {e}", i.listen))?;
        println!("proxy ingress {} -> {guest}", listener.local_addr()?);
        let tap = tap.clone();
        threads.push(std::thread::spawn(move || {
            proxy::ingress_on(listener, &i.listen, guest, limits, tap)
        }));
    }
    println!("proxy ready");
    for t in threads {
        if let Ok(Err(e)) = t.join() {
            eprintln!("enclavectl proxy: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
