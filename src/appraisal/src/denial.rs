//! [`Denial`]: the first check that failed, what it saw, what the policy
//! wanted and what to do about it; [`Check`]: the stable check names.
//!
//! A denial describes a peer fault (the evidence, its certificates or its
//! collateral do not satisfy the policy). It never carries secret material:
//! every field is built from evidence bytes and policy values, which are
//! public.

use std::fmt;

/// Every check the appraisal makes, in the order it makes them (per TEE).
/// [`Check::as_str`] is the stable name used on the wire, in logs and in
/// tests; a name never changes meaning once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Check {
    // ---- common -----------------------------------------------------------
    /// `snp.not_allowed`: the policy does not accept SEV-SNP evidence.
    SnpNotAllowed,
    /// `tdx.not_allowed`: the policy does not accept TDX evidence.
    TdxNotAllowed,
    /// `sim.not_allowed`: the policy does not accept simulated evidence.
    SimNotAllowed,
    /// `report_data`: REPORT_DATA is not the binding the verifier recomputed.
    ReportData,

    // ---- SEV-SNP (also simulation), in order ---------------------------------
    /// `snp.report.format`: the report is not a well-formed ATTESTATION_REPORT.
    SnpReportFormat,
    /// `snp.report.version`: the report version is below the policy minimum.
    SnpReportVersion,
    /// `snp.signature_algo`: SIGNATURE_ALGO is not ECDSA P-384 with SHA-384.
    SnpSignatureAlgo,
    /// `snp.signer`: KEY_INFO names no usable signing key, or one the policy refuses.
    SnpSigner,
    /// `snp.vek.missing`: the bundle has no certificate for the report's signing key.
    SnpVekMissing,
    /// `snp.cert.form`: a certificate is malformed or not in the KDS form
    /// (version, algorithms, key type, names, basic constraints, key usage).
    SnpCertForm,
    /// `snp.product`: the product (Milan, Genoa, Turin) cannot be determined, or
    /// the VCEK productName and the report's CPUID disagree.
    SnpProduct,
    /// `snp.chain.ark`: the root is not a pinned ARK (or the simulation pin),
    /// or its self-signature fails.
    SnpChainArk,
    /// `snp.chain.intermediate`: the ASK/ASVK is not the pinned one, or the ARK
    /// did not sign it.
    SnpChainIntermediate,
    /// `snp.chain.vek`: the ASK/ASVK did not sign the VCEK/VLEK.
    SnpChainVek,
    /// `snp.cert.validity`: a certificate is not valid at the verifier's time.
    SnpCertValidity,
    /// `snp.crl.unavailable`: no CRL from the ARK and the policy requires one.
    SnpCrlUnavailable,
    /// `snp.crl.invalid`: a CRL is malformed, not signed by the ARK, or not
    /// current at the verifier's time.
    SnpCrlInvalid,
    /// `snp.crl.revoked`: the ASK/ASVK or the VCEK/VLEK is revoked.
    SnpCrlRevoked,
    /// `snp.vcek.tcb`: the endorsement key's TCB extensions (VCEK or VLEK) are
    /// not REPORTED_TCB.
    SnpVcekTcb,
    /// `snp.vcek.chip_id`: the VCEK's hwID is not the report's CHIP_ID.
    SnpVcekChipId,
    /// `snp.vlek.csp_id`: the VLEK's CSP id is not in the policy allowlist.
    SnpVlekCspId,
    /// `snp.signature`: the report signature does not verify.
    SnpSignature,
    /// `snp.tcb.current`: REPORTED_TCB is above CURRENT_TCB.
    SnpTcbCurrent,
    /// `snp.tcb.reported`: REPORTED_TCB is below the policy minimum.
    SnpTcbReported,
    /// `snp.tcb.launch`: LAUNCH_TCB is below the policy minimum.
    SnpTcbLaunch,
    /// `snp.tcb.committed`: committed and current TCB/firmware differ while
    /// provisional firmware is not allowed (or committed is above current).
    SnpTcbCommitted,
    /// `snp.firmware`: current or committed firmware is below the policy minimum.
    SnpFirmware,
    /// `snp.policy.reserved`: a reserved guest policy bit has the wrong value.
    SnpPolicyReserved,
    /// `snp.policy.abi`: the guest policy's ABI version is below the policy minimum.
    SnpPolicyAbi,
    /// `snp.policy.debug`: the guest policy allows debugging.
    SnpPolicyDebug,
    /// `snp.policy.migrate_ma`: the guest policy allows a migration agent.
    SnpPolicyMigrateMa,
    /// `snp.policy.smt`: the guest policy allows SMT and the policy forbids it.
    SnpPolicySmt,
    /// `snp.policy.single_socket`: single-socket is required but not set.
    SnpPolicySingleSocket,
    /// `snp.policy.cxl`: the guest policy allows CXL and the policy forbids it.
    SnpPolicyCxl,
    /// `snp.policy.mem_aes_256_xts`: AES-256-XTS is required but not set.
    SnpPolicyMemAes256Xts,
    /// `snp.policy.rapl_dis`: RAPL_DIS is required but not set.
    SnpPolicyRaplDis,
    /// `snp.policy.ciphertext_hiding`: ciphertext hiding is required but not set.
    SnpPolicyCiphertextHiding,
    /// `snp.policy.page_swap_disable`: PAGE_SWAP_DISABLE is required but not set.
    SnpPolicyPageSwapDisable,
    /// `snp.platform.reserved`: a reserved PLATFORM_INFO bit is set.
    SnpPlatformReserved,
    /// `snp.platform.smt`: SMT is enabled on the platform and the policy forbids it.
    SnpPlatformSmt,
    /// `snp.platform.tsme`: TSME is required but not enabled.
    SnpPlatformTsme,
    /// `snp.platform.ecc`: ECC memory is required but not reported.
    SnpPlatformEcc,
    /// `snp.platform.alias_check`: ALIAS_CHECK_COMPLETE is required but not set
    /// (CVE-2024-21944).
    SnpPlatformAliasCheck,
    /// `snp.platform.ciphertext_hiding`: ciphertext hiding is required but not enabled.
    SnpPlatformCiphertextHiding,
    /// `snp.vmpl`: VMPL is not one the policy allows.
    SnpVmpl,
    /// `snp.guest_svn`: GUEST_SVN is below the policy minimum.
    SnpGuestSvn,
    /// `snp.report_id_ma`: a migration agent is bound but not allowed.
    SnpReportIdMa,
    /// `snp.measurement`: MEASUREMENT is not in the allowlist.
    SnpMeasurement,
    /// `snp.host_data`: HOST_DATA is not the expected value.
    SnpHostData,
    /// `snp.chip_id`: CHIP_ID is not in the allowlist.
    SnpChipId,
    /// `snp.id_key_digest`: ID_KEY_DIGEST is not in the allowlist.
    SnpIdKeyDigest,
    /// `snp.family_id`: FAMILY_ID is not the expected value.
    SnpFamilyId,
    /// `snp.image_id`: IMAGE_ID is not the expected value.
    SnpImageId,
    /// `snp.mitigations`: a required mitigation bit is missing from the
    /// launch or current mitigation vector (or the report predates them).
    SnpMitigations,

    // ---- TDX, in order ------------------------------------------------------
    /// `tdx.collateral.missing`: the bundle carries no collateral (a TDX quote is
    /// never appraised without TCB info, QE identity and CRLs).
    TdxCollateralMissing,
    /// `tdx.collateral`: the collateral is malformed or inconsistent with the
    /// quote (FMSPC, TEE type, id/version).
    TdxCollateral,
    /// `tdx.collateral.expired`: TCB info or QE identity is not current.
    TdxCollateralExpired,
    /// `tdx.collateral.signature`: the TCB info or QE identity signature does
    /// not verify.
    TdxCollateralSignature,
    /// `tdx.collateral_chain`: the TCB info or QE identity signing chain does
    /// not lead to the pinned Intel SGX Root CA, or a certificate of it is not
    /// valid at the verifier's time.
    TdxCollateralChain,
    /// `tdx.crl`: a CRL is malformed, unsigned, not current at the verifier's
    /// time (checked to the second), or revokes a certificate.
    TdxCrl,
    /// `tdx.quote.format`: the quote is malformed or of an unsupported type.
    TdxQuoteFormat,
    /// `tdx.pck_chain`: the quote's PCK chain does not lead to the pinned
    /// Intel root, a certificate of it is not valid at the verifier's time,
    /// or its PCK CA is not the one that issued the collateral's PCK CRL.
    TdxPckChain,
    /// `tdx.qe_report`: the QE report signature does not verify with the
    /// PCK certificate's key.
    TdxQeReport,
    /// `tdx.qe`: the QE report does not bind the attestation key, or the QE
    /// does not match Intel's QE identity.
    TdxQe,
    /// `tdx.signature`: the quote signature does not verify.
    TdxSignature,
    /// `tdx.tcb_level`: no TCB level of the TCB info matches the platform.
    TdxTcbLevel,
    /// `tdx.module_identity`: the TDX module signer/attributes do not match.
    TdxModuleIdentity,
    /// `tdx.td_attributes`: TD attributes not acceptable (reserved bits,
    /// migratable, service TD, SEPT_VE_DISABLE off).
    TdxTdAttributes,
    /// `tdx.tcb_status`: the TCB status is not in the allowed list.
    TdxTcbStatus,
    /// `tdx.advisory`: an advisory id is not in the allowed list.
    TdxAdvisory,
    /// `tdx.tcb_evaluation_data_number`: collateral older than the policy minimum.
    TdxTcbEvaluationDataNumber,
    /// `tdx.qe_svn`: the quoting enclave's ISVSVN is below the policy minimum.
    TdxQeSvn,
    /// `tdx.pce_svn`: the platform's PCE SVN is below the policy minimum.
    TdxPceSvn,
    /// `tdx.piid`: the platform instance id is not in the allowlist.
    TdxPiid,
    /// `tdx.debug`: the TD is debuggable.
    TdxDebug,
    /// `tdx.xfam`: XFAM is not in the allowlist.
    TdxXfam,
    /// `tdx.mr_seam`: MRSEAM is not in the allowlist.
    TdxMrSeam,
    /// `tdx.mrtd`: MRTD is not in the allowlist.
    TdxMrtd,
    /// `tdx.rtmr0`: RTMR0 is not the expected value.
    TdxRtmr0,
    /// `tdx.rtmr1`: RTMR1 is not the expected value.
    TdxRtmr1,
    /// `tdx.rtmr2`: RTMR2 is not the expected value.
    TdxRtmr2,
    /// `tdx.rtmr3`: RTMR3 is not the expected value.
    TdxRtmr3,
    /// `tdx.mr_config_id`: MRCONFIGID is not the expected value.
    TdxMrConfigId,
    /// `tdx.mr_owner`: MROWNER is not the expected value.
    TdxMrOwner,
    /// `tdx.mr_owner_config`: MROWNERCONFIG is not the expected value.
    TdxMrOwnerConfig,

    // ---- TDX whole image (event log, OS components) and CoCo pods -----------
    // Made right after `tdx.mrtd`, in this order: log form, replay, RTMR pins
    // (`tdx.rtmr0`..`tdx.rtmr3` above), components, then `coco.init_data`.
    /// `tdx.eventlog`: the CC event log in the bundle is malformed or cannot
    /// be replayed (got: the parser's error with its offset); or it is missing
    /// while the policy pins components against it; or it holds an event in
    /// a component-pinned RTMR that no pin accounts for.
    TdxEventLog,
    /// `tdx.eventlog.replay`: an RTMR replayed from the event log differs
    /// from the quote's (got names the RTMR, its events and the first event
    /// that differs where it can be told).
    TdxEventLogReplay,
    /// `tdx.component.kernel`: the kernel event of the log (RTMR1) is missing,
    /// repeated, or not in `tdx.kernel`.
    TdxComponentKernel,
    /// `tdx.component.initrd`: the initrd event of the log (RTMR2) is missing,
    /// repeated, or not in `tdx.initrd`.
    TdxComponentInitrd,
    /// `tdx.component.cmdline`: the command-line event of the log (RTMR2) is
    /// missing, repeated, or not in `tdx.cmdline`.
    TdxComponentCmdline,
    /// `coco.init_data`: evidence of a CoCo pod image (`[coco]`) whose
    /// init-data (SEV-SNP HOST_DATA, TDX MRCONFIGID) is not a pinned digest.
    CocoInitData,
    /// `tdx.quote`: dcap-qvl refused the quote for a reason not classified above.
    TdxQuote,

    // ---- Azure confidential VMs (HCL report + vTPM quote), in order --------
    // Then the hardware report's own checks (`snp.*` or `tdx.*`, against
    // `[azure.snp]` / `[azure.tdx]`).
    /// `azure.not_allowed`: the policy does not accept Azure evidence (or not
    /// this hardware kind).
    AzureNotAllowed,
    /// `azure.hcl.format`: the HCL report is malformed, or holds another
    /// hardware report type than the bundle's TEE type.
    AzureHclFormat,
    /// `azure.ak`: no usable attestation key in the variable data (not JSON,
    /// no `HCLAkPub`, not an RSA JWK of 2048, 3072 or 4096 bits with e = 65537).
    AzureAk,
    /// `azure.hcl.binding`: the hardware report's REPORT_DATA is not
    /// SHA-256(variable data) followed by 32 zero bytes.
    AzureHclBinding,
    /// `azure.td_quote`: `azure-tdx` without a TD quote, or a TD quote that
    /// does not quote the HCL report's TDREPORT.
    AzureTdQuote,
    /// `azure.quote.format`: the vTPM quote or its signature is malformed, or
    /// not RSASSA with SHA-256.
    AzureQuoteFormat,
    /// `azure.quote.signature`: the quote is not signed by the HCL report's AK.
    AzureQuoteSignature,
    /// `azure.quote.nonce`: the quote's extraData is not this session's.
    AzureQuoteNonce,
    /// `azure.quote.pcr_selection`: the quote does not cover exactly PCR0-23
    /// of the SHA-256 bank, or the bundle does not carry those 24 values.
    AzureQuotePcrSelection,
    /// `azure.quote.pcr_digest`: the PCR values do not hash to the quote's
    /// pcrDigest.
    AzureQuotePcrDigest,
    /// `azure.pcr`: a PCR is not in the policy's allow-list.
    AzurePcr,
    /// `azure.user_data`: the `user-data` in the variable data is missing,
    /// malformed, or not this session's binding.
    AzureUserData,

    // ---- AWS Nitro Enclaves (NSM attestation documents), in order --------
    /// `nitro.not_allowed`: the policy does not accept Nitro documents (`nitro.allowed`).
    NitroNotAllowed,
    /// `nitro.format`: the document is not a well-formed COSE_Sign1 attestation document (CBOR shape, types, limits; got names the offset).
    NitroFormat,
    /// `nitro.signature`: the COSE ES384 signature does not verify with the leaf certificate's P-384 key (checked before the chain), or the leaf has no usable P-384 key.
    NitroSignature,
    /// `nitro.chain`: `cabundle` + `certificate` do not chain (names, CA flags, ECDSA P-384 SHA-384 signatures) to the pinned AWS Nitro Enclaves root or to a simulated NSM root the policy pins.
    NitroChain,
    /// `nitro.time`: a certificate is not valid at the document's timestamp or at the verifier's time, or the timestamp is in the verifier's future.
    NitroTime,
    /// `nitro.digest`: `digest` is not SHA384, a PCR is not 48 bytes, or PCR0, PCR1 or PCR2 is missing.
    NitroDigest,
    /// `nitro.debug`: PCR0 is all zero (a debug enclave) and the policy does not allow debug.
    NitroDebug,
    /// `nitro.pcr0`: PCR0 is not in `nitro.pcr0`.
    NitroPcr0,
    /// `nitro.pcr1`: PCR1 is not in `nitro.pcr1`.
    NitroPcr1,
    /// `nitro.pcr2`: PCR2 is not in `nitro.pcr2`.
    NitroPcr2,
    /// `nitro.pcr3`: PCR3 is missing or not in `nitro.pcr3`.
    NitroPcr3,
    /// `nitro.pcr4`: PCR4 is missing or not in `nitro.pcr4`.
    NitroPcr4,
    /// `nitro.pcr8`: PCR8 is missing or not in `nitro.pcr8`.
    NitroPcr8,
    /// `nitro.binding.user_data`: `user_data` is not the 64-byte REPORT_DATA binding the verifier recomputed.
    NitroBindingUserData,
    /// `nitro.binding.nonce`: `nonce` is not the verifier's nonce.
    NitroBindingNonce,
    /// `nitro.binding.enclave_key`: `public_key` is not the enclave key's SPKI (DER).
    NitroBindingEnclaveKey,
}

impl Check {
    /// Every check, in declaration order: the one list of the appraisal's
    /// check names (`Check::ALL.iter().map(|c| c.as_str())`). The unit test
    /// `all_lists_every_variant_once` keeps it equal to the arms of
    /// [`Check::as_str`], the only producer of the names.
    pub const ALL: &'static [Check] = &[
        Check::SnpNotAllowed,
        Check::TdxNotAllowed,
        Check::SimNotAllowed,
        Check::ReportData,
        Check::SnpReportFormat,
        Check::SnpReportVersion,
        Check::SnpSignatureAlgo,
        Check::SnpSigner,
        Check::SnpVekMissing,
        Check::SnpCertForm,
        Check::SnpProduct,
        Check::SnpChainArk,
        Check::SnpChainIntermediate,
        Check::SnpChainVek,
        Check::SnpCertValidity,
        Check::SnpCrlUnavailable,
        Check::SnpCrlInvalid,
        Check::SnpCrlRevoked,
        Check::SnpVcekTcb,
        Check::SnpVcekChipId,
        Check::SnpVlekCspId,
        Check::SnpSignature,
        Check::SnpTcbCurrent,
        Check::SnpTcbReported,
        Check::SnpTcbLaunch,
        Check::SnpTcbCommitted,
        Check::SnpFirmware,
        Check::SnpPolicyReserved,
        Check::SnpPolicyAbi,
        Check::SnpPolicyDebug,
        Check::SnpPolicyMigrateMa,
        Check::SnpPolicySmt,
        Check::SnpPolicySingleSocket,
        Check::SnpPolicyCxl,
        Check::SnpPolicyMemAes256Xts,
        Check::SnpPolicyRaplDis,
        Check::SnpPolicyCiphertextHiding,
        Check::SnpPolicyPageSwapDisable,
        Check::SnpPlatformReserved,
        Check::SnpPlatformSmt,
        Check::SnpPlatformTsme,
        Check::SnpPlatformEcc,
        Check::SnpPlatformAliasCheck,
        Check::SnpPlatformCiphertextHiding,
        Check::SnpVmpl,
        Check::SnpGuestSvn,
        Check::SnpReportIdMa,
        Check::SnpMeasurement,
        Check::SnpHostData,
        Check::SnpChipId,
        Check::SnpIdKeyDigest,
        Check::SnpFamilyId,
        Check::SnpImageId,
        Check::SnpMitigations,
        Check::TdxCollateralMissing,
        Check::TdxCollateral,
        Check::TdxCollateralExpired,
        Check::TdxCollateralSignature,
        Check::TdxCollateralChain,
        Check::TdxCrl,
        Check::TdxQuoteFormat,
        Check::TdxPckChain,
        Check::TdxQeReport,
        Check::TdxQe,
        Check::TdxSignature,
        Check::TdxTcbLevel,
        Check::TdxModuleIdentity,
        Check::TdxTdAttributes,
        Check::TdxTcbStatus,
        Check::TdxAdvisory,
        Check::TdxTcbEvaluationDataNumber,
        Check::TdxQeSvn,
        Check::TdxPceSvn,
        Check::TdxPiid,
        Check::TdxDebug,
        Check::TdxXfam,
        Check::TdxMrSeam,
        Check::TdxMrtd,
        Check::TdxRtmr0,
        Check::TdxRtmr1,
        Check::TdxRtmr2,
        Check::TdxRtmr3,
        Check::TdxMrConfigId,
        Check::TdxMrOwner,
        Check::TdxMrOwnerConfig,
        Check::TdxEventLog,
        Check::TdxEventLogReplay,
        Check::TdxComponentKernel,
        Check::TdxComponentInitrd,
        Check::TdxComponentCmdline,
        Check::CocoInitData,
        Check::TdxQuote,
        Check::AzureNotAllowed,
        Check::AzureHclFormat,
        Check::AzureAk,
        Check::AzureHclBinding,
        Check::AzureTdQuote,
        Check::AzureQuoteFormat,
        Check::AzureQuoteSignature,
        Check::AzureQuoteNonce,
        Check::AzureQuotePcrSelection,
        Check::AzureQuotePcrDigest,
        Check::AzurePcr,
        Check::AzureUserData,
        Check::NitroNotAllowed,
        Check::NitroFormat,
        Check::NitroSignature,
        Check::NitroChain,
        Check::NitroTime,
        Check::NitroDigest,
        Check::NitroDebug,
        Check::NitroPcr0,
        Check::NitroPcr1,
        Check::NitroPcr2,
        Check::NitroPcr3,
        Check::NitroPcr4,
        Check::NitroPcr8,
        Check::NitroBindingUserData,
        Check::NitroBindingNonce,
        Check::NitroBindingEnclaveKey,
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        use Check::*;
        match self {
            SnpNotAllowed => "snp.not_allowed",
            TdxNotAllowed => "tdx.not_allowed",
            SimNotAllowed => "sim.not_allowed",
            ReportData => "report_data",
            SnpReportFormat => "snp.report.format",
            SnpReportVersion => "snp.report.version",
            SnpSignatureAlgo => "snp.signature_algo",
            SnpSigner => "snp.signer",
            SnpVekMissing => "snp.vek.missing",
            SnpCertForm => "snp.cert.form",
            SnpProduct => "snp.product",
            SnpChainArk => "snp.chain.ark",
            SnpChainIntermediate => "snp.chain.intermediate",
            SnpChainVek => "snp.chain.vek",
            SnpCertValidity => "snp.cert.validity",
            SnpCrlUnavailable => "snp.crl.unavailable",
            SnpCrlInvalid => "snp.crl.invalid",
            SnpCrlRevoked => "snp.crl.revoked",
            SnpVcekTcb => "snp.vcek.tcb",
            SnpVcekChipId => "snp.vcek.chip_id",
            SnpVlekCspId => "snp.vlek.csp_id",
            SnpSignature => "snp.signature",
            SnpTcbCurrent => "snp.tcb.current",
            SnpTcbReported => "snp.tcb.reported",
            SnpTcbLaunch => "snp.tcb.launch",
            SnpTcbCommitted => "snp.tcb.committed",
            SnpFirmware => "snp.firmware",
            SnpPolicyReserved => "snp.policy.reserved",
            SnpPolicyAbi => "snp.policy.abi",
            SnpPolicyDebug => "snp.policy.debug",
            SnpPolicyMigrateMa => "snp.policy.migrate_ma",
            SnpPolicySmt => "snp.policy.smt",
            SnpPolicySingleSocket => "snp.policy.single_socket",
            SnpPolicyCxl => "snp.policy.cxl",
            SnpPolicyMemAes256Xts => "snp.policy.mem_aes_256_xts",
            SnpPolicyRaplDis => "snp.policy.rapl_dis",
            SnpPolicyCiphertextHiding => "snp.policy.ciphertext_hiding",
            SnpPolicyPageSwapDisable => "snp.policy.page_swap_disable",
            SnpPlatformReserved => "snp.platform.reserved",
            SnpPlatformSmt => "snp.platform.smt",
            SnpPlatformTsme => "snp.platform.tsme",
            SnpPlatformEcc => "snp.platform.ecc",
            SnpPlatformAliasCheck => "snp.platform.alias_check",
            SnpPlatformCiphertextHiding => "snp.platform.ciphertext_hiding",
            SnpVmpl => "snp.vmpl",
            SnpGuestSvn => "snp.guest_svn",
            SnpReportIdMa => "snp.report_id_ma",
            SnpMeasurement => "snp.measurement",
            SnpHostData => "snp.host_data",
            SnpChipId => "snp.chip_id",
            SnpIdKeyDigest => "snp.id_key_digest",
            SnpFamilyId => "snp.family_id",
            SnpImageId => "snp.image_id",
            SnpMitigations => "snp.mitigations",
            TdxCollateralMissing => "tdx.collateral.missing",
            TdxCollateral => "tdx.collateral",
            TdxCollateralExpired => "tdx.collateral.expired",
            TdxCollateralSignature => "tdx.collateral.signature",
            TdxCollateralChain => "tdx.collateral_chain",
            TdxCrl => "tdx.crl",
            TdxQuoteFormat => "tdx.quote.format",
            TdxPckChain => "tdx.pck_chain",
            TdxQeReport => "tdx.qe_report",
            TdxQe => "tdx.qe",
            TdxSignature => "tdx.signature",
            TdxTcbLevel => "tdx.tcb_level",
            TdxModuleIdentity => "tdx.module_identity",
            TdxTdAttributes => "tdx.td_attributes",
            TdxTcbStatus => "tdx.tcb_status",
            TdxAdvisory => "tdx.advisory",
            TdxTcbEvaluationDataNumber => "tdx.tcb_evaluation_data_number",
            TdxQeSvn => "tdx.qe_svn",
            TdxPceSvn => "tdx.pce_svn",
            TdxPiid => "tdx.piid",
            TdxDebug => "tdx.debug",
            TdxXfam => "tdx.xfam",
            TdxMrSeam => "tdx.mr_seam",
            TdxMrtd => "tdx.mrtd",
            TdxRtmr0 => "tdx.rtmr0",
            TdxRtmr1 => "tdx.rtmr1",
            TdxRtmr2 => "tdx.rtmr2",
            TdxRtmr3 => "tdx.rtmr3",
            TdxMrConfigId => "tdx.mr_config_id",
            TdxMrOwner => "tdx.mr_owner",
            TdxMrOwnerConfig => "tdx.mr_owner_config",
            TdxEventLog => "tdx.eventlog",
            TdxEventLogReplay => "tdx.eventlog.replay",
            TdxComponentKernel => "tdx.component.kernel",
            TdxComponentInitrd => "tdx.component.initrd",
            TdxComponentCmdline => "tdx.component.cmdline",
            CocoInitData => "coco.init_data",
            TdxQuote => "tdx.quote",
            AzureNotAllowed => "azure.not_allowed",
            AzureHclFormat => "azure.hcl.format",
            AzureAk => "azure.ak",
            AzureHclBinding => "azure.hcl.binding",
            AzureTdQuote => "azure.td_quote",
            AzureQuoteFormat => "azure.quote.format",
            AzureQuoteSignature => "azure.quote.signature",
            AzureQuoteNonce => "azure.quote.nonce",
            AzureQuotePcrSelection => "azure.quote.pcr_selection",
            AzureQuotePcrDigest => "azure.quote.pcr_digest",
            AzurePcr => "azure.pcr",
            AzureUserData => "azure.user_data",
            NitroNotAllowed => "nitro.not_allowed",
            NitroFormat => "nitro.format",
            NitroSignature => "nitro.signature",
            NitroChain => "nitro.chain",
            NitroTime => "nitro.time",
            NitroDigest => "nitro.digest",
            NitroDebug => "nitro.debug",
            NitroPcr0 => "nitro.pcr0",
            NitroPcr1 => "nitro.pcr1",
            NitroPcr2 => "nitro.pcr2",
            NitroPcr3 => "nitro.pcr3",
            NitroPcr4 => "nitro.pcr4",
            NitroPcr8 => "nitro.pcr8",
            NitroBindingUserData => "nitro.binding.user_data",
            NitroBindingNonce => "nitro.binding.nonce",
            NitroBindingEnclaveKey => "nitro.binding.enclave_key",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Check {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why evidence was refused: the first failed [`Check`], what the evidence
/// had (`got`), what the policy wanted (`want`) and a hint for the operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Denial {
    /// The check that failed.
    pub check: Check,
    /// What the evidence had.
    pub got: String,
    /// What the policy (or the specification) wants.
    pub want: String,
    /// What to do about it.
    pub hint: String,
}

impl Denial {
    /// A denial by `check`.
    pub fn new(
        check: Check,
        got: impl Into<String>,
        want: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            check,
            got: got.into(),
            want: want.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: got {}, want {} ({})",
            self.check, self.got, self.want, self.hint
        )
    }
}

impl std::error::Error for Denial {}

impl From<Denial> for wire::verifier::Denial {
    fn from(d: Denial) -> Self {
        wire::verifier::Denial {
            check: d.check.as_str().to_owned(),
            got: d.got,
            want: d.want,
            hint: d.hint,
        }
    }
}

/// Shorthand for building a denial in the check functions.
pub(crate) fn deny<T>(
    check: Check,
    got: impl Into<String>,
    want: impl Into<String>,
    hint: impl Into<String>,
) -> Result<T, Denial> {
    Err(Denial::new(check, got, want, hint))
}

#[cfg(test)]
mod tests {
    use super::Check;
    use std::collections::BTreeSet;

    /// `Check::ALL` holds every variant once: its names are exactly the
    /// string literals of `as_str`'s arms, read from this file's source
    /// (a variant added to the enum needs an arm, which this test then
    /// requires in `ALL`).
    #[test]
    fn all_lists_every_variant_once() {
        let src = include_str!("denial.rs");
        let start = src.find("pub const fn as_str").unwrap_or(0);
        let end = src[start..]
            .find("impl fmt::Display for Check")
            .map_or(src.len(), |e| start + e);
        let arms: BTreeSet<&str> = src[start..end]
            .lines()
            .filter_map(|l| l.split_once(" => \""))
            .filter_map(|(_, rest)| rest.split_once('"'))
            .map(|(name, _)| name)
            .collect();
        let all: BTreeSet<&str> = Check::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            all.len(),
            Check::ALL.len(),
            "a check is listed twice in ALL"
        );
        assert_eq!(all, arms, "Check::ALL and the arms of Check::as_str differ");
        assert!(all.len() > 100, "{} names", all.len());
    }
}
