//! Byte layouts of SEV-SNP and TDX evidence (placeholder; filled by the evidence issue).
#![forbid(unsafe_code)]
