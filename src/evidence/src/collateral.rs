//! TDX collateral supplied by the host.
//!
//! A TDX quote is appraised against Intel's collateral (TCB info, QE
//! identity, CRLs). The verifier can hold it itself; where the host caches
//! it instead (as a PCCS would), the guest fetches the document from a host
//! port and ships it in the bundle. Trust: none needed. The collateral is
//! signed by Intel and the verifier checks every signature against its
//! pinned root; a host that lies gets its guest denied, nothing more.
//!
//! Protocol: connect, read one JSON document (dcap-qvl's QuoteCollateralV3
//! form) until EOF, at most [`MAX_BYTES`].

use std::io::Read;
use std::time::Duration;

use transport::Addr;

use crate::{EvidenceError, EvidenceSource, SourceKind, REPORT_DATA_LEN};

/// An evidence source whose TDX bundles carry the host's collateral.
pub struct WithCollateral<S: EvidenceSource> {
    inner: S,
    addr: Addr,
    timeout: Duration,
}

impl<S: EvidenceSource> WithCollateral<S> {
    /// Wraps `inner`; TDX bundles get the document served at `addr`.
    pub fn new(inner: S, addr: Addr, timeout: Duration) -> Self {
        WithCollateral {
            inner,
            addr,
            timeout,
        }
    }
}

impl<S: EvidenceSource> WithCollateral<S> {
    /// TDX bundles get the collateral document; others pass unchanged.
    fn with_collateral(
        &self,
        mut bundle: wire::EvidenceBundle,
    ) -> Result<wire::EvidenceBundle, EvidenceError> {
        if matches!(bundle.tee, wire::Tee::Tdx | wire::Tee::AzureTdx) {
            bundle.tdx_collateral = Some(fetch(&self.addr, self.timeout)?);
        }
        Ok(bundle)
    }
}

impl<S: EvidenceSource> EvidenceSource for WithCollateral<S> {
    fn kind(&self) -> SourceKind {
        self.inner.kind()
    }

    fn collect(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<wire::EvidenceBundle, EvidenceError> {
        let bundle = self.inner.collect(report_data)?;
        self.with_collateral(bundle)
    }

    fn collect_bound(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
        binding: &crate::Binding<'_>,
    ) -> Result<wire::EvidenceBundle, EvidenceError> {
        let bundle = self.inner.collect_bound(report_data, binding)?;
        self.with_collateral(bundle)
    }
}

impl EvidenceSource for Box<dyn EvidenceSource> {
    fn kind(&self) -> SourceKind {
        self.as_ref().kind()
    }

    fn collect(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<wire::EvidenceBundle, EvidenceError> {
        self.as_mut().collect(report_data)
    }

    fn collect_bound(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
        binding: &crate::Binding<'_>,
    ) -> Result<wire::EvidenceBundle, EvidenceError> {
        self.as_mut().collect_bound(report_data, binding)
    }
}

/// The largest collateral document accepted.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// Fetches the collateral document from `addr`.
pub fn fetch(addr: &Addr, timeout: Duration) -> Result<serde_json::Value, EvidenceError> {
    let err = |what: String| EvidenceError::Collateral(what);
    let stream = transport::connect(addr).map_err(|e| err(format!("cannot reach {addr}: {e}")))?;
    stream
        .set_timeouts(timeout)
        .map_err(|e| err(e.to_string()))?;
    let mut body = Vec::new();
    stream
        .take(MAX_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| err(format!("reading: {e}")))?;
    if body.len() as u64 > MAX_BYTES {
        return Err(err(format!("document larger than {MAX_BYTES} bytes")));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| err(format!("not JSON: {e}")))?;
    if !v.is_object() {
        return Err(err("not a JSON object".into()));
    }
    Ok(v)
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]
mod tests {
    use super::*;
    use std::io::Write;

    fn serve(body: Vec<u8>) -> Addr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("tcp://{}", l.local_addr().unwrap())
            .parse()
            .unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let _ = s.write_all(&body);
            }
        });
        addr
    }

    #[test]
    fn fetches_the_fixture_collateral() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/tdx/dcap-qvl/tdx_quote_collateral.json"
        );
        let body = std::fs::read(
            std::env::var("ENCLAVE_FIXTURES")
                .map(|f| format!("{f}/tdx/dcap-qvl/tdx_quote_collateral.json"))
                .unwrap_or(p.into()),
        )
        .unwrap();
        let v = fetch(&serve(body), Duration::from_secs(5)).unwrap();
        assert!(v.get("tcb_info").is_some(), "{v}");
    }

    struct Fixed(wire::Tee);

    impl EvidenceSource for Fixed {
        fn kind(&self) -> SourceKind {
            SourceKind::ConfigfsTsm
        }
        fn collect(&mut self, _: &[u8; 64]) -> Result<wire::EvidenceBundle, EvidenceError> {
            Ok(wire::EvidenceBundle::new(self.0, "test", vec![1]))
        }
    }

    #[test]
    fn tdx_bundles_carry_the_collateral_and_others_do_not_fetch_it() {
        let body = br#"{"tcb_info":"x"}"#.to_vec();
        let mut tdx =
            WithCollateral::new(Fixed(wire::Tee::Tdx), serve(body), Duration::from_secs(5));
        let b = tdx.collect(&[0; 64]).unwrap();
        assert_eq!(b.tdx_collateral.unwrap()["tcb_info"], "x");
        // An SNP bundle does not touch the collateral port (nothing listens there).
        let mut snp = WithCollateral::new(
            Fixed(wire::Tee::Snp),
            "tcp://127.0.0.1:1".parse().unwrap(),
            Duration::from_secs(1),
        );
        assert!(snp.collect(&[0; 64]).unwrap().tdx_collateral.is_none());
    }

    #[test]
    fn refuses_garbage_oversize_and_silence() {
        let e = fetch(&serve(b"nope".to_vec()), Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        let e = fetch(&serve(b"[1,2]".to_vec()), Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("not a JSON object"), "{e}");
        let e = fetch(
            &serve(vec![b' '; (MAX_BYTES + 10) as usize]),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        let e = fetch(
            &"tcp://127.0.0.1:1".parse().unwrap(),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot reach"), "{e}");
    }
}
