//! The transcription API's local stand-in as a process, for the demo:
//!
//! ```text
//! transcription-standin --cert transcribe.pem --key transcribe-key.pem \
//!                       --api-key KEY --transcript TEXT [--port N]
//! ```
//!
//! Prints `listening 127.0.0.1:PORT` once it accepts connections, then
//! serves until killed (see `enclave_tests::transcription`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use enclave_tests::transcription::TranscriptionStandIn;

const USAGE: &str =
    "usage: transcription-standin --cert PEM --key PEM --api-key KEY --transcript TEXT [--port N]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("transcription-standin: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let (mut cert, mut key, mut api_key, mut transcript, mut port) = (None, None, None, None, 0u16);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--cert" => cert = Some(PathBuf::from(value()?)),
            "--key" => key = Some(PathBuf::from(value()?)),
            "--api-key" => api_key = Some(value()?),
            "--transcript" => transcript = Some(value()?),
            "--port" => {
                let v = value()?;
                port = v
                    .parse()
                    .map_err(|_| format!("--port {v:?} is not a port number"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let missing = |what: &str| format!("{what} is required");
    let cert = cert.ok_or_else(|| missing("--cert"))?;
    let key = key.ok_or_else(|| missing("--key"))?;
    let api_key = api_key.ok_or_else(|| missing("--api-key"))?;
    let transcript = transcript.ok_or_else(|| missing("--transcript"))?;
    let standin = TranscriptionStandIn::try_start(
        &format!("127.0.0.1:{port}"),
        &cert,
        &key,
        &api_key,
        &transcript,
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening 127.0.0.1:{}", standin.port)
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    drop(out);
    loop {
        std::thread::park();
    }
}
