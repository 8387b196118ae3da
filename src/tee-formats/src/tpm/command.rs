//! TPM 2.0 command marshalling and response parsing for the few commands an
//! Azure guest (and the simulated paravisor) needs. Hand-written, so that the
//! guest links no TPM software stack (tpm2-tss / tss-esapi are C libraries).
//!
//! Source: TCG TPM 2.0 Library Part 1 §18 (command/response structure) and
//! Part 3: TPM2_NV_DefineSpace (§31.3), TPM2_NV_Write (§31.8), TPM2_NV_Read
//! (§31.13), TPM2_NV_ReadPublic (§31.6), TPM2_Quote (§18.4), TPM2_PCR_Read
//! (§22.4), TPM2_ReadPublic (§12.4), TPM2_GetCapability (§30.2).
//!
//! Every authorised command uses one password session with an empty
//! password (TPM_RS_PW): the Azure vTPM's owner hierarchy, NV indices and AK
//! have empty authorisation. A response is checked as strictly as evidence:
//! its size field equals its length, the parameter area is exactly
//! accounted for, and every TPM2B is bounded by its type.

use crate::bytes::Reader;
use crate::FormatError;

use super::{put_tpm2b, tpm2b, PcrSelection, Signature, MAX_DIGEST, MAX_HA, MAX_RSA_BYTES};

/// TPM_ST_NO_SESSIONS.
pub const ST_NO_SESSIONS: u16 = 0x8001;
/// TPM_ST_SESSIONS.
pub const ST_SESSIONS: u16 = 0x8002;
/// TPM_RS_PW: the password authorisation session.
pub const RS_PW: u32 = 0x4000_0009;
/// TPM_RH_OWNER.
pub const RH_OWNER: u32 = 0x4000_0001;
/// TPM_RH_ENDORSEMENT.
pub const RH_ENDORSEMENT: u32 = 0x4000_000B;
/// Size of the command and response headers.
pub const HEADER_SIZE: usize = 10;
/// The largest command or response this module builds or accepts
/// (TPM_PT_MAX_COMMAND_SIZE / MAX_RESPONSE_SIZE of PC-client TPMs is 4096).
pub const MAX_MESSAGE: usize = 8192;
/// Bound on a TPM2B_MAX_NV_BUFFER (MAX_NV_BUFFER_SIZE; 1024 on swtpm).
pub const MAX_NV_BUFFER: usize = 4096;
/// Bound on a TPM2B_ATTEST.
pub const MAX_ATTEST: usize = 2048;
/// Bound on TPML_DIGEST.count (the TPM returns at most 8 per PCR_Read).
pub const MAX_DIGESTS: usize = 8;
/// Bound on TPML_TAGGED_TPM_PROPERTY.count.
pub const MAX_PROPERTIES: usize = 256;

/// TPM_CAP_TPM_PROPERTIES.
pub const CAP_TPM_PROPERTIES: u32 = 0x0000_0006;
/// TPM_PT_NV_BUFFER_MAX: the largest NV_Read / NV_Write chunk.
pub const PT_NV_BUFFER_MAX: u32 = 0x0000_012C;

/// TPMA_NV_OWNERWRITE.
pub const NV_OWNERWRITE: u32 = 1 << 1;
/// TPMA_NV_AUTHWRITE.
pub const NV_AUTHWRITE: u32 = 1 << 2;
/// TPMA_NV_OWNERREAD.
pub const NV_OWNERREAD: u32 = 1 << 17;
/// TPMA_NV_AUTHREAD.
pub const NV_AUTHREAD: u32 = 1 << 18;
/// TPMA_NV_NO_DA.
pub const NV_NO_DA: u32 = 1 << 25;
/// TPMA_NV_WRITTEN.
pub const NV_WRITTEN: u32 = 1 << 29;

/// TPM_RC_HANDLE | parameter 1 as returned for an undefined NV index
/// (format-1 code: handle error on handle 1).
pub const RC_HANDLE_1: u32 = 0x018B;

/// Command codes.
pub mod cc {
    /// TPM2_NV_DefineSpace.
    pub const NV_DEFINE_SPACE: u32 = 0x0000_012A;
    /// TPM2_NV_Write.
    pub const NV_WRITE: u32 = 0x0000_0137;
    /// TPM2_NV_Read.
    pub const NV_READ: u32 = 0x0000_014E;
    /// TPM2_Quote.
    pub const QUOTE: u32 = 0x0000_0158;
    /// TPM2_NV_ReadPublic.
    pub const NV_READ_PUBLIC: u32 = 0x0000_0169;
    /// TPM2_ReadPublic.
    pub const READ_PUBLIC: u32 = 0x0000_0173;
    /// TPM2_GetCapability.
    pub const GET_CAPABILITY: u32 = 0x0000_017A;
    /// TPM2_PCR_Read.
    pub const PCR_READ: u32 = 0x0000_017E;
}

/// Builds a command: header, handles, one empty password session when
/// `authorised`, then the parameters.
fn build(code: u32, handles: &[u32], authorised: bool, params: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_SIZE + 4 * handles.len() + 13 + params.len());
    out.extend_from_slice(
        &(if authorised {
            ST_SESSIONS
        } else {
            ST_NO_SESSIONS
        })
        .to_be_bytes(),
    );
    out.extend_from_slice(&[0; 4]); // size, below
    out.extend_from_slice(&code.to_be_bytes());
    for h in handles {
        out.extend_from_slice(&h.to_be_bytes());
    }
    if authorised {
        // authorizationSize, then TPMS_AUTH_COMMAND: sessionHandle, nonce
        // (empty), sessionAttributes (0), hmac = password (empty).
        out.extend_from_slice(&9u32.to_be_bytes());
        out.extend_from_slice(&RS_PW.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0]);
    }
    out.extend_from_slice(params);
    // Every caller's parameters are a few u16-length-checked TPM2B fields and
    // fixed-size fields, so the command is far below 4 GiB; were it ever not,
    // a saturated size makes the TPM reject it instead of reading a truncated one.
    let size = u32::try_from(out.len()).unwrap_or(u32::MAX).to_be_bytes();
    out[2..6].copy_from_slice(&size);
    out
}

/// TPM2_NV_ReadPublic(nvIndex).
pub fn nv_read_public(index: u32) -> Vec<u8> {
    build(cc::NV_READ_PUBLIC, &[index], false, &[])
}

/// TPM2_NV_Read(authHandle, nvIndex, size, offset).
pub fn nv_read(auth: u32, index: u32, size: u16, offset: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(4);
    p.extend_from_slice(&size.to_be_bytes());
    p.extend_from_slice(&offset.to_be_bytes());
    build(cc::NV_READ, &[auth, index], true, &p)
}

/// TPM2_NV_Write(authHandle, nvIndex, data, offset).
pub fn nv_write(auth: u32, index: u32, data: &[u8], offset: u16) -> Result<Vec<u8>, FormatError> {
    if data.len() > MAX_NV_BUFFER {
        return Err(FormatError::TooLarge {
            field: "TPM2B_MAX_NV_BUFFER",
            len: data.len(),
        });
    }
    let mut p = Vec::with_capacity(4 + data.len());
    put_tpm2b(&mut p, data, "TPM2B_MAX_NV_BUFFER")?;
    p.extend_from_slice(&offset.to_be_bytes());
    Ok(build(cc::NV_WRITE, &[auth, index], true, &p))
}

/// TPM2_NV_DefineSpace(authHandle, auth = empty, publicInfo): an ordinary
/// index of `size` bytes, name algorithm SHA-256, no policy.
pub fn nv_define_space(auth: u32, index: u32, attributes: u32, size: u16) -> Vec<u8> {
    let mut public = Vec::with_capacity(14);
    public.extend_from_slice(&index.to_be_bytes());
    public.extend_from_slice(&super::ALG_SHA256.to_be_bytes());
    public.extend_from_slice(&attributes.to_be_bytes());
    public.extend_from_slice(&0u16.to_be_bytes()); // authPolicy: empty
    public.extend_from_slice(&size.to_be_bytes());
    let mut p = Vec::with_capacity(2 + 2 + public.len());
    p.extend_from_slice(&0u16.to_be_bytes()); // auth: empty
    #[expect(
        clippy::cast_possible_truncation,
        reason = "publicInfo is the 14 bytes above"
    )]
    p.extend_from_slice(&(public.len() as u16).to_be_bytes());
    p.extend_from_slice(&public);
    build(cc::NV_DEFINE_SPACE, &[auth], true, &p)
}

/// TPM2_Quote(signHandle, qualifyingData, inScheme = TPM_ALG_NULL (the
/// key's own scheme), PCRselect).
pub fn quote(
    key: u32,
    qualifying_data: &[u8],
    selection: &PcrSelection,
) -> Result<Vec<u8>, FormatError> {
    if qualifying_data.len() > MAX_HA {
        return Err(FormatError::TooLarge {
            field: "TPM2B_DATA",
            len: qualifying_data.len(),
        });
    }
    let mut p = Vec::new();
    put_tpm2b(&mut p, qualifying_data, "TPM2B_DATA")?;
    p.extend_from_slice(&super::ALG_NULL.to_be_bytes());
    selection.write(&mut p)?;
    Ok(build(cc::QUOTE, &[key], true, &p))
}

/// TPM2_PCR_Read(pcrSelectionIn).
pub fn pcr_read(selection: &PcrSelection) -> Result<Vec<u8>, FormatError> {
    let mut p = Vec::new();
    selection.write(&mut p)?;
    Ok(build(cc::PCR_READ, &[], false, &p))
}

/// TPM2_ReadPublic(objectHandle).
pub fn read_public(handle: u32) -> Vec<u8> {
    build(cc::READ_PUBLIC, &[handle], false, &[])
}

/// TPM2_GetCapability(capability, property, propertyCount).
pub fn get_capability(capability: u32, property: u32, count: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(12);
    p.extend_from_slice(&capability.to_be_bytes());
    p.extend_from_slice(&property.to_be_bytes());
    p.extend_from_slice(&count.to_be_bytes());
    build(cc::GET_CAPABILITY, &[], false, &p)
}

/// A command's header and handles, as a proxy sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandHeader {
    /// TPM_ST_SESSIONS or TPM_ST_NO_SESSIONS.
    pub tag: u16,
    /// commandSize.
    pub size: u32,
    /// commandCode.
    pub code: u32,
}

impl CommandHeader {
    /// The header of a whole command (`size` must equal its length).
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes);
        let tag = r.u16_be("command tag")?;
        if tag != ST_SESSIONS && tag != ST_NO_SESSIONS {
            return Err(FormatError::UnsupportedValue {
                field: "command tag",
                offset: 0,
                value: tag.into(),
            });
        }
        let size = r.u32_be("commandSize")?;
        if size as usize != bytes.len() {
            return Err(FormatError::BadLength {
                field: "commandSize",
                offset: 2,
                got: size.into(),
                expected: bytes.len() as u64,
            });
        }
        let code = r.u32_be("commandCode")?;
        Ok(CommandHeader { tag, size, code })
    }

    /// Handle `i` (0-based) after the header.
    pub fn handle(bytes: &[u8], i: usize) -> Result<u32, FormatError> {
        let start = HEADER_SIZE + 4 * i;
        let b = bytes.get(start..start + 4).ok_or(FormatError::Truncated {
            what: "command handle",
            needed: start + 4,
            got: bytes.len(),
        })?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }
}

/// A response: its code and, on success, its parameter area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    /// responseCode (0 = TPM_RC_SUCCESS).
    pub code: u32,
    /// Response handles.
    pub handles: Vec<u32>,
    /// The parameter area (empty on an error).
    pub params: &'a [u8],
}

/// Parses a whole response of a command that returns `handles` handles and
/// was sent with sessions (`authorised`).
pub fn parse_response(
    bytes: &[u8],
    handles: usize,
    authorised: bool,
) -> Result<Response<'_>, FormatError> {
    let mut r = Reader::new(bytes);
    let tag = r.u16_be("response tag")?;
    let size = r.u32_be("responseSize")?;
    if size as usize != bytes.len() {
        return Err(FormatError::BadLength {
            field: "responseSize",
            offset: 2,
            got: size.into(),
            expected: bytes.len() as u64,
        });
    }
    let code = r.u32_be("responseCode")?;
    if code != 0 {
        r.finish("error response")?;
        return Ok(Response {
            code,
            handles: Vec::new(),
            params: &[],
        });
    }
    let want_tag = if authorised {
        ST_SESSIONS
    } else {
        ST_NO_SESSIONS
    };
    if tag != want_tag {
        return Err(FormatError::UnsupportedValue {
            field: "response tag",
            offset: 0,
            value: tag.into(),
        });
    }
    let mut hs = Vec::with_capacity(handles);
    for _ in 0..handles {
        hs.push(r.u32_be("response handle")?);
    }
    if !authorised {
        return Ok(Response {
            code,
            handles: hs,
            params: r.rest(),
        });
    }
    let size_offset = r.offset();
    let param_size = r.u32_be("parameterSize")?;
    let params = r
        .sub(param_size.into(), "parameterSize", size_offset)?
        .rest();
    // One TPMS_AUTH_RESPONSE (we sent one session).
    tpm2b(&mut r, MAX_DIGEST, "TPMS_AUTH_RESPONSE.nonce")?;
    r.u8("TPMS_AUTH_RESPONSE.sessionAttributes")?;
    tpm2b(&mut r, MAX_DIGEST, "TPMS_AUTH_RESPONSE.hmac")?;
    r.finish("response")?;
    Ok(Response {
        code,
        handles: hs,
        params,
    })
}

/// TPMS_NV_PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvPublic {
    /// nvIndex.
    pub index: u32,
    /// nameAlg.
    pub name_alg: u16,
    /// attributes (TPMA_NV).
    pub attributes: u32,
    /// authPolicy.
    pub auth_policy: Vec<u8>,
    /// dataSize.
    pub data_size: u16,
}

impl NvPublic {
    /// The parameters of an NV_ReadPublic response: TPM2B_NV_PUBLIC, TPM2B_NAME.
    pub fn from_response(params: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(params);
        let size_offset = r.offset();
        let size = r.u16_be("TPM2B_NV_PUBLIC.size")?;
        let mut p = r.sub(size.into(), "TPM2B_NV_PUBLIC.size", size_offset)?;
        let index = p.u32_be("TPMS_NV_PUBLIC.nvIndex")?;
        let name_alg = p.u16_be("TPMS_NV_PUBLIC.nameAlg")?;
        let attributes = p.u32_be("TPMS_NV_PUBLIC.attributes")?;
        let auth_policy = tpm2b(&mut p, MAX_DIGEST, "TPMS_NV_PUBLIC.authPolicy")?.to_vec();
        let data_size = p.u16_be("TPMS_NV_PUBLIC.dataSize")?;
        p.finish("TPMS_NV_PUBLIC")?;
        tpm2b(&mut r, MAX_HA, "TPM2B_NAME")?;
        r.finish("NV_ReadPublic response")?;
        Ok(NvPublic {
            index,
            name_alg,
            attributes,
            auth_policy,
            data_size,
        })
    }
}

/// The data of an NV_Read response (TPM2B_MAX_NV_BUFFER).
pub fn nv_read_data(params: &[u8]) -> Result<&[u8], FormatError> {
    let mut r = Reader::new(params);
    let data = tpm2b(&mut r, MAX_NV_BUFFER, "TPM2B_MAX_NV_BUFFER")?;
    r.finish("NV_Read response")?;
    Ok(data)
}

/// What TPM2_Quote returns: the TPMS_ATTEST bytes (the content of
/// TPM2B_ATTEST) and the TPMT_SIGNATURE bytes, each exactly as the TPM sent
/// them, and the signature parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteOut {
    /// TPMS_ATTEST, as signed.
    pub attest: Vec<u8>,
    /// TPMT_SIGNATURE, as sent.
    pub signature: Vec<u8>,
    /// The signature, parsed.
    pub parsed_signature: Signature,
}

impl QuoteOut {
    /// The parameters of a Quote response.
    pub fn from_response(params: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(params);
        let attest = tpm2b(&mut r, MAX_ATTEST, "TPM2B_ATTEST")?.to_vec();
        let start = r.offset();
        let parsed_signature = Signature::read(&mut r)?;
        let end = r.offset();
        r.finish("Quote response")?;
        let signature = params.get(start..end).unwrap_or_default().to_vec();
        Ok(QuoteOut {
            attest,
            signature,
            parsed_signature,
        })
    }
}

/// What TPM2_PCR_Read returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrReadOut {
    /// pcrUpdateCounter.
    pub update_counter: u32,
    /// pcrSelectionOut: the PCRs whose values follow, in order.
    pub selection: PcrSelection,
    /// pcrValues.
    pub values: Vec<Vec<u8>>,
}

impl PcrReadOut {
    /// The parameters of a PCR_Read response.
    pub fn from_response(params: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(params);
        let update_counter = r.u32_be("pcrUpdateCounter")?;
        let selection = PcrSelection::read(&mut r)?;
        let count_offset = r.offset();
        let count = r.u32_be("TPML_DIGEST.count")?;
        if count as usize > MAX_DIGESTS {
            return Err(FormatError::BadLength {
                field: "TPML_DIGEST.count",
                offset: count_offset,
                got: count.into(),
                expected: MAX_DIGESTS as u64,
            });
        }
        let mut values = Vec::with_capacity(count as usize);
        for _ in 0..count {
            values.push(tpm2b(&mut r, MAX_DIGEST, "TPML_DIGEST.digests")?.to_vec());
        }
        r.finish("PCR_Read response")?;
        let selected: usize = selection.0.iter().map(|b| b.indices().len()).sum();
        if selected != values.len() {
            return Err(FormatError::BadLength {
                field: "TPML_DIGEST.count",
                offset: count_offset,
                got: count.into(),
                expected: selected as u64,
            });
        }
        Ok(PcrReadOut {
            update_counter,
            selection,
            values,
        })
    }
}

/// The RSA public area of a key (TPMT_PUBLIC with type TPM_ALG_RSA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublic {
    /// nameAlg.
    pub name_alg: u16,
    /// objectAttributes (TPMA_OBJECT).
    pub attributes: u32,
    /// The signing scheme (TPM_ALG_RSASSA, …, or TPM_ALG_NULL).
    pub scheme: u16,
    /// The scheme's hash (TPM_ALG_NULL without a scheme).
    pub scheme_hash: u16,
    /// keyBits.
    pub key_bits: u16,
    /// The public exponent (0 in the structure means 65537).
    pub exponent: u32,
    /// The modulus, big-endian.
    pub modulus: Vec<u8>,
}

/// TPMA_OBJECT restricted.
pub const OBJECT_RESTRICTED: u32 = 1 << 16;
/// TPMA_OBJECT sign.
pub const OBJECT_SIGN: u32 = 1 << 18;

impl RsaPublic {
    /// The parameters of a ReadPublic response: TPM2B_PUBLIC, TPM2B_NAME
    /// name, TPM2B_NAME qualifiedName. Only RSA keys are accepted.
    pub fn from_read_public(params: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(params);
        let size_offset = r.offset();
        let size = r.u16_be("TPM2B_PUBLIC.size")?;
        let mut p = r.sub(size.into(), "TPM2B_PUBLIC.size", size_offset)?;
        let type_offset = p.offset();
        let ty = p.u16_be("TPMT_PUBLIC.type")?;
        if ty != super::ALG_RSA {
            return Err(FormatError::UnsupportedValue {
                field: "TPMT_PUBLIC.type",
                offset: type_offset,
                value: ty.into(),
            });
        }
        let name_alg = p.u16_be("TPMT_PUBLIC.nameAlg")?;
        let attributes = p.u32_be("TPMT_PUBLIC.objectAttributes")?;
        tpm2b(&mut p, MAX_DIGEST, "TPMT_PUBLIC.authPolicy")?;
        let sym = p.u16_be("TPMT_SYM_DEF_OBJECT.algorithm")?;
        if sym != super::ALG_NULL {
            p.u16_be("TPMT_SYM_DEF_OBJECT.keyBits")?;
            p.u16_be("TPMT_SYM_DEF_OBJECT.mode")?;
        }
        let scheme = p.u16_be("TPMT_RSA_SCHEME.scheme")?;
        let scheme_hash = if scheme == super::ALG_NULL {
            super::ALG_NULL
        } else {
            p.u16_be("TPMT_RSA_SCHEME.hashAlg")?
        };
        let key_bits = p.u16_be("TPMS_RSA_PARMS.keyBits")?;
        let exponent = p.u32_be("TPMS_RSA_PARMS.exponent")?;
        let modulus = tpm2b(&mut p, MAX_RSA_BYTES, "TPM2B_PUBLIC_KEY_RSA")?.to_vec();
        p.finish("TPMT_PUBLIC")?;
        tpm2b(&mut r, MAX_HA, "TPM2B_NAME name")?;
        tpm2b(&mut r, MAX_HA, "TPM2B_NAME qualifiedName")?;
        r.finish("ReadPublic response")?;
        Ok(RsaPublic {
            name_alg,
            attributes,
            scheme,
            scheme_hash,
            key_bits,
            exponent,
            modulus,
        })
    }

    /// The exponent as a number (0 means the default 65537).
    pub fn exponent_value(&self) -> u32 {
        if self.exponent == 0 {
            65537
        } else {
            self.exponent
        }
    }
}

/// The value of TPM property `property` in a GetCapability(TPM_PROPERTIES)
/// response, if the TPM returned it.
pub fn capability_property(params: &[u8], property: u32) -> Result<Option<u32>, FormatError> {
    let mut r = Reader::new(params);
    r.u8("moreData")?;
    let cap_offset = r.offset();
    let cap = r.u32_be("TPMS_CAPABILITY_DATA.capability")?;
    if cap != CAP_TPM_PROPERTIES {
        return Err(FormatError::UnsupportedValue {
            field: "TPMS_CAPABILITY_DATA.capability",
            offset: cap_offset,
            value: cap.into(),
        });
    }
    let count_offset = r.offset();
    let count = r.u32_be("TPML_TAGGED_TPM_PROPERTY.count")?;
    if count as usize > MAX_PROPERTIES {
        return Err(FormatError::BadLength {
            field: "TPML_TAGGED_TPM_PROPERTY.count",
            offset: count_offset,
            got: count.into(),
            expected: MAX_PROPERTIES as u64,
        });
    }
    let mut found = None;
    for _ in 0..count {
        let p = r.u32_be("TPMS_TAGGED_PROPERTY.property")?;
        let v = r.u32_be("TPMS_TAGGED_PROPERTY.value")?;
        if p == property {
            found = Some(v);
        }
    }
    r.finish("GetCapability response")?;
    Ok(found)
}

/// A short description of a TPM response code (TPM 2.0 Part 2 §6.6,
/// Table 16), for messages: format-1 codes name the parameter, handle or
/// session they refer to.
pub fn rc_description(rc: u32) -> String {
    if rc & 0x80 != 0 {
        // Format 1: bits 5:0 the error, bit 6 P (parameter), bits 11:8 N.
        let n = (rc >> 8) & 0xf;
        let what = match rc & 0x3f {
            0x01 => "asymmetric algorithm",
            0x02 => "attributes",
            0x03 => "hash algorithm",
            0x04 => "value out of range",
            0x05 => "hierarchy disabled",
            0x07 => "key size",
            0x08 => "mask generation function",
            0x09 => "mode",
            0x0A => "wrong type",
            0x0B => "handle",
            0x0C => "key derivation function",
            0x0D => "value out of range",
            0x0E => "authorization failure",
            0x0F => "nonce",
            0x10 => "physical presence",
            0x12 => "scheme",
            0x15 => "structure is the wrong size",
            0x16 => "symmetric algorithm",
            0x17 => "tag",
            0x18 => "selector",
            0x1A => "insufficient input",
            0x1B => "signature",
            0x1C => "key",
            0x1D => "policy failure",
            0x1F => "integrity check",
            0x20 => "ticket",
            0x21 => "reserved bits",
            0x22 => "bad authorization",
            0x23 => "expired",
            0x26 => "curve",
            0x27 => "ECC point",
            _ => "error",
        };
        let at = if rc & 0x40 != 0 {
            format!("parameter {n}")
        } else if n >= 8 {
            format!("session {}", n - 8)
        } else {
            format!("handle {n}")
        };
        format!("TPM_RC {rc:#x} ({what}, {at})")
    } else {
        let what = match rc {
            0x100 => "TPM not initialised",
            0x101 => "command failed",
            0x143 => "command code not supported",
            0x146 => "NV offset out of range",
            0x147 => "NV size",
            0x148 => "NV index locked",
            0x149 => "NV authorization",
            0x14A => "NV index not written yet",
            0x14B => "out of NV space",
            0x14C => "NV index already defined",
            0x908 => "TPM yielded, retry",
            0x90A => "TPM self-testing, retry",
            0x921 => "lockout (dictionary attack)",
            0x922 => "TPM busy, retry",
            0x923 => "NV unavailable",
            _ => "error",
        };
        format!("TPM_RC {rc:#x} ({what})")
    }
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]
mod tests {
    use super::*;

    #[test]
    fn commands_carry_their_size_and_session() {
        let c = nv_read(RH_OWNER, 0x0140_0001, 1024, 0);
        assert_eq!(
            CommandHeader::parse(&c).unwrap(),
            CommandHeader {
                tag: ST_SESSIONS,
                size: c.len() as u32,
                code: cc::NV_READ
            }
        );
        assert_eq!(CommandHeader::handle(&c, 1).unwrap(), 0x0140_0001);
        // header 10 + 2 handles + authorizationSize 4 + session 9 + size/offset 4.
        assert_eq!(c.len(), 10 + 8 + 4 + 9 + 4);
        let c = nv_read_public(0x0140_0001);
        assert_eq!(
            c,
            [0x80, 0x01, 0, 0, 0, 14, 0, 0, 1, 0x69, 0x01, 0x40, 0x00, 0x01]
        );
    }

    #[test]
    fn a_response_must_account_for_every_byte() {
        // Error response: 10 bytes only.
        let err = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x8B];
        assert_eq!(parse_response(&err, 0, false).unwrap().code, RC_HANDLE_1);
        let mut longer = err.to_vec();
        longer[5] = 11;
        longer.push(0);
        assert!(parse_response(&longer, 0, false).is_err());
        // Size field disagrees with the length.
        assert!(matches!(
            parse_response(&err[..9], 0, false),
            Err(FormatError::BadLength {
                field: "responseSize",
                ..
            })
        ));
        // Success with a session: parameterSize runs past the end.
        let mut ok = vec![0x80, 0x02, 0, 0, 0, 0, 0, 0, 0, 0];
        ok.extend_from_slice(&100u32.to_be_bytes());
        ok.extend_from_slice(&[0, 0, 1, 0, 0]);
        let n = ok.len() as u32;
        ok[2..6].copy_from_slice(&n.to_be_bytes());
        assert!(matches!(
            parse_response(&ok, 0, true),
            Err(FormatError::LengthOutOfBounds {
                field: "parameterSize",
                ..
            })
        ));
    }

    #[test]
    fn rc_descriptions_name_the_parameter() {
        assert_eq!(
            rc_description(0x1d5),
            "TPM_RC 0x1d5 (structure is the wrong size, parameter 1)"
        );
        assert_eq!(rc_description(0x18b), "TPM_RC 0x18b (handle, handle 1)");
        assert_eq!(
            rc_description(0x14c),
            "TPM_RC 0x14c (NV index already defined)"
        );
        // An authorization failure in the first session (format 1, N = 9: sessions count from 1).
        assert_eq!(
            rc_description(0x98e),
            "TPM_RC 0x98e (authorization failure, session 1)"
        );
    }
}
