//! The initial VMSA (SEV-ES save area) page of a vCPU, as KVM/QEMU (or EC2, GCE) set it up
//! at launch (sev-snp-measure `vmsa.py`, `SevEsSaveArea`; AMD APM vol. 2 table B-4).

use crate::gctx::sha384;
use crate::ovmf::PAGE_SIZE;
use crate::snp::VmmType;
use crate::Digest48;

/// Reset EIP of the bootstrap processor.
pub(crate) const BSP_EIP: u32 = 0xFFFF_FFF0;

// Offsets in the save area.
const ES: usize = 0x00;
const CS: usize = 0x10;
const SS: usize = 0x20;
const DS: usize = 0x30;
const FS: usize = 0x40;
const GS: usize = 0x50;
const GDTR: usize = 0x60;
const LDTR: usize = 0x70;
const IDTR: usize = 0x80;
const TR: usize = 0x90;
const EFER: usize = 0xD0;
const CR4: usize = 0x148;
const CR0: usize = 0x158;
const DR7: usize = 0x160;
const DR6: usize = 0x168;
const RFLAGS: usize = 0x170;
const RIP: usize = 0x178;
const G_PAT: usize = 0x268;
const RDX: usize = 0x310;
const SEV_FEATURES: usize = 0x3B0;
const XCR0: usize = 0x3E8;
const MXCSR: usize = 0x408;
const X87_FCW: usize = 0x410;

struct Page([u8; PAGE_SIZE]);

impl Page {
    fn put(&mut self, offset: usize, bytes: &[u8]) {
        if let Some(dst) = self.0.get_mut(offset..offset + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }

    fn u64(&mut self, offset: usize, v: u64) {
        self.put(offset, &v.to_le_bytes());
    }

    /// A `vmcb_seg`: `u16 selector, u16 attrib, u32 limit, u64 base`.
    fn seg(&mut self, offset: usize, selector: u16, attrib: u16, limit: u32, base: u64) {
        self.put(offset, &selector.to_le_bytes());
        self.put(offset + 2, &attrib.to_le_bytes());
        self.put(offset + 4, &limit.to_le_bytes());
        self.put(offset + 8, &base.to_le_bytes());
    }
}

/// The 4096-byte VMSA page of a vCPU starting at `eip`.
pub(crate) fn page(eip: u32, sev_features: u64, vcpu_sig: u32, vmm: VmmType) -> [u8; PAGE_SIZE] {
    let mut g_pat: u64 = 0x0007_0406_0007_0406; // PAT MSR reset value (APM vol. 2 §A.3)
    let (mut cs_flags, ss_flags, tr_flags, rdx, mxcsr, fcw): (u16, u16, u16, u64, u32, u16) =
        match vmm {
            VmmType::Qemu => (0x9b, 0x93, 0x8b, u64::from(vcpu_sig), 0x1f80, 0x37f),
            VmmType::Ec2 => (0x9b, 0x92, 0x83, 0x600, 0, 0),
            VmmType::Gce => (0x9b, 0x93, 0x8b, 0x600, 0, 0),
        };
    match vmm {
        VmmType::Ec2 if eip == BSP_EIP => cs_flags = 0x9a,
        VmmType::Gce => g_pat = 0x0007_0106,
        _ => {}
    }
    let mut p = Page([0; PAGE_SIZE]);
    p.seg(ES, 0, 0x93, 0xffff, 0);
    p.seg(CS, 0xf000, cs_flags, 0xffff, u64::from(eip & 0xffff_0000));
    p.seg(SS, 0, ss_flags, 0xffff, 0);
    p.seg(DS, 0, 0x93, 0xffff, 0);
    p.seg(FS, 0, 0x93, 0xffff, 0);
    p.seg(GS, 0, 0x93, 0xffff, 0);
    p.seg(GDTR, 0, 0, 0xffff, 0);
    p.seg(IDTR, 0, 0, 0xffff, 0);
    p.seg(LDTR, 0, 0x82, 0xffff, 0);
    p.seg(TR, 0, tr_flags, 0xffff, 0);
    p.u64(EFER, 0x1000); // KVM sets EFER.SVME
    p.u64(CR4, 0x40); // KVM sets CR4.MCE
    p.u64(CR0, 0x10);
    p.u64(DR7, 0x400);
    p.u64(DR6, 0xffff_0ff0);
    p.u64(RFLAGS, 0x2);
    p.u64(RIP, u64::from(eip & 0xffff));
    p.u64(G_PAT, g_pat);
    p.u64(RDX, rdx);
    p.u64(SEV_FEATURES, sev_features);
    p.u64(XCR0, 0x1);
    p.put(MXCSR, &mxcsr.to_le_bytes());
    p.put(X87_FCW, &fcw.to_le_bytes());
    p.0
}

/// SHA-384 of [`page`]: the contents of its VMSA launch update.
pub(crate) fn digest(eip: u32, sev_features: u64, vcpu_sig: u32, vmm: VmmType) -> Digest48 {
    sha384(&page(eip, sev_features, vcpu_sig, vmm))
}
