//! The PCRs of an AWS Nitro enclave booted from an EIF (`image::eif`).
//!
//! As aws/aws-nitro-enclaves-image-format defines them (README, "EIF
//! Measurements"; `src/utils/mod.rs` `get_pcrs` with
//! `EifHasher::tpm_extend_finalize_reset`): each is one TPM-style extend of
//! 48 zero bytes, `PCRx = SHA-384(0^48 ‖ SHA-384(content_x))`, where, in file
//! order and over section data only (no headers):
//!
//! - PCR0 content: kernel ‖ cmdline ‖ every ramdisk;
//! - PCR1 content: kernel ‖ cmdline ‖ the first ramdisk;
//! - PCR2 content: every ramdisk but the first (empty for one ramdisk);
//! - PCR8 content: the DER of the certificate that signed PCR0 (signed
//!   images only).
//!
//! The verifier's `measurement` claim for Nitro is SHA-384(PCR0 ‖ PCR1 ‖
//! PCR2) ([`NitroPcrs::measurement`]).

use sha2::{Digest, Sha384};

/// Bytes of a PCR.
pub const PCR_LEN: usize = 48;

/// PCR0, PCR1, PCR2 and, for a signed image, PCR8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NitroPcrs {
    /// Kernel, command line and all ramdisks.
    pub pcr0: [u8; PCR_LEN],
    /// Kernel, command line and the first ramdisk.
    pub pcr1: [u8; PCR_LEN],
    /// The other ramdisks.
    pub pcr2: [u8; PCR_LEN],
    /// The signing certificate, when the image is signed.
    pub pcr8: Option<[u8; PCR_LEN]>,
}

impl NitroPcrs {
    /// From the section data: `kernel`, `cmdline`, `ramdisks` in file order,
    /// and the DER of the signing certificate if the image is signed.
    pub fn compute(
        kernel: &[u8],
        cmdline: &[u8],
        ramdisks: &[&[u8]],
        signing_cert_der: Option<&[u8]>,
    ) -> NitroPcrs {
        let mut image = Sha384::new();
        image.update(kernel);
        image.update(cmdline);
        let mut boot = image.clone();
        let mut app = Sha384::new();
        for (i, r) in ramdisks.iter().enumerate() {
            image.update(r);
            if i == 0 {
                boot.update(r);
            } else {
                app.update(r);
            }
        }
        NitroPcrs {
            pcr0: extend(&image.finalize()),
            pcr1: extend(&boot.finalize()),
            pcr2: extend(&app.finalize()),
            pcr8: signing_cert_der.map(|der| extend(&Sha384::digest(der))),
        }
    }

    /// The `measurement` claim: SHA-384(PCR0 ‖ PCR1 ‖ PCR2).
    pub fn measurement(&self) -> [u8; PCR_LEN] {
        let mut h = Sha384::new();
        h.update(self.pcr0);
        h.update(self.pcr1);
        h.update(self.pcr2);
        h.finalize().into()
    }
}

/// SHA-384(48 zero bytes ‖ digest).
fn extend(digest: &[u8]) -> [u8; PCR_LEN] {
    let mut h = Sha384::new();
    h.update([0u8; PCR_LEN]);
    h.update(digest);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Known answers computed independently with Python's hashlib from the
    /// README's rule (`sha384(b"\0" * 48 + sha384(content))`).
    #[test]
    fn pcrs_follow_the_eif_rule() {
        let p = NitroPcrs::compute(
            b"KERNEL",
            b"console=ttyS0",
            &[b"RD0", b"RD1"],
            Some(b"\x30\x03\x02\x01\x01"),
        );
        assert_eq!(hex(&p.pcr0), "4e0fe8a033babccd181a1ce2e0b592536ee0ff6cfcfa50d77f8888e2d99c1061d92bfe48659198333dc0cbaf3e82720a");
        assert_eq!(hex(&p.pcr1), "6e37b98d2c46c98c1630f0bc35d86ee43577562c3f033e3659fc0a279d9c64dc1b16de25f838321106a94f057097e10e");
        assert_eq!(hex(&p.pcr2), "f3b9e4b60fc5388f37bc184a220c35daf39386a0c7f9ae4668c433efb337833dfbd0917d919504d3077c4f740b7e46ec");
        assert_eq!(hex(&p.pcr8.unwrap()), "a3842483d4c57a51580f01d2916c33bfef54672f73e1ca7e83850627b2b95f73bb852f42e1b53cb8de11ed14726cca4a");
        assert_eq!(hex(&p.measurement()), "e17c0f4e6159c8a882bd1ae0d3b7dc7b73d4ae23d1664454ccc7d1e79a1c3d11478cb53e60d3d4b89893c52b080825cf");
    }

    #[test]
    fn one_ramdisk_leaves_pcr2_the_extend_of_nothing() {
        let p = NitroPcrs::compute(b"K", b"c", &[b"R"], None);
        assert_eq!(hex(&p.pcr2), "21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c10edb30948c90ba67310f7b964fc500a");
        assert_eq!(p.pcr8, None);
        // With one ramdisk, PCR0 and PCR1 measure the same bytes.
        assert_eq!(p.pcr0, p.pcr1);
    }
}
