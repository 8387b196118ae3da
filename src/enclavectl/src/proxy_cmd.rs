//! `enclavectl proxy`: the untrusted host proxy (see the `proxy` crate).
//!
//! ```text
//! enclavectl proxy --egress /run/vm.vsock_8443=127.0.0.1:8443 \
//!                  --ingress 127.0.0.1:8080=/run/vm.vsock:8443
//! ```

use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::CmdResult;

/// Arguments of `enclavectl proxy`.
#[derive(clap::Args)]
pub struct Args {
    /// UDS=HOST:PORT: the guest's hybrid-vsock socket `<uds>_<port>` to one
    /// allow-listed TCP target (repeatable).
    #[arg(long)]
    egress: Vec<String>,
    /// HOST:PORT=UDS:GUEST_PORT: a TCP listener to a guest vsock port through
    /// the hybrid vsock socket (repeatable).
    #[arg(long)]
    ingress: Vec<String>,
    /// Concurrent connections per rule.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
}

pub fn run(args: Args) -> CmdResult {
    let limits = proxy::Limits { max_connections: args.max_connections, ..Default::default() };
    let mut threads = Vec::new();
    for rule in &args.egress {
        let (uds, target) = rule.split_once('=').ok_or_else(|| format!("--egress {rule:?}: want UDS=HOST:PORT"))?;
        let uds = PathBuf::from(uds);
        let _ = std::fs::remove_file(&uds);
        let listener = UnixListener::bind(&uds).map_err(|e| format!("{}: {e}", uds.display()))?;
        let target = target.to_owned();
        println!("proxy egress {} -> {target}", uds.display());
        threads.push(std::thread::spawn(move || proxy::egress_on(listener, &uds, &target, limits)));
    }
    for rule in &args.ingress {
        let (listen, to) = rule.split_once('=').ok_or_else(|| format!("--ingress {rule:?}: want HOST:PORT=UDS:PORT"))?;
        let (uds, port) = to.rsplit_once(':').ok_or_else(|| format!("--ingress {rule:?}: want HOST:PORT=UDS:PORT"))?;
        let port: u32 = port.parse().map_err(|_| format!("--ingress {rule:?}: bad guest port"))?;
        let listener = TcpListener::bind(listen).map_err(|e| format!("{listen}: {e}"))?;
        println!("proxy ingress {} -> {uds}:{port}", listener.local_addr()?);
        let (listen, uds) = (listen.to_owned(), PathBuf::from(uds));
        threads.push(std::thread::spawn(move || proxy::ingress_on(listener, &listen, uds, port, limits)));
    }
    println!("proxy ready");
    for t in threads {
        if let Ok(Err(e)) = t.join() {
            eprintln!("enclavectl proxy: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
