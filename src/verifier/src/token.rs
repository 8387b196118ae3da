//! The attestation token: a JWT signed ES384, and the keys Vault/OpenBao
//! needs to check it (JWKS, OIDC discovery).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use serde_json::{json, Map, Value};

/// Signs tokens.
pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    kid: String,
    jwk: Value,
}

/// Why a key was refused.
#[derive(Debug)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

impl Signer {
    /// From a PKCS#8 P-384 private key (DER).
    pub fn from_pkcs8(der: &[u8]) -> Result<Signer, KeyError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng)
            .map_err(|e| KeyError(format!("token signing key is not a PKCS#8 P-384 key: {e}")))?;
        let point = key.public_key().as_ref();
        let (x, y) = point
            .get(1..49)
            .zip(point.get(49..97))
            .ok_or_else(|| KeyError("unexpected public key form".into()))?;
        let (x, y) = (B64URL.encode(x), B64URL.encode(y));
        let kid = jwk_thumbprint("P-384", &x, &y);
        let jwk = json!({"kty": "EC", "crv": "P-384", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES384"});
        Ok(Signer { key, rng, kid, jwk })
    }

    /// Generates a new PKCS#8 P-384 key (for development set-ups).
    pub fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
            .map(|d| d.as_ref().to_vec())
            .map_err(|e| KeyError(format!("key generation failed: {e}")))
    }

    /// The JWK Set to publish.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk.clone()]})
    }

    /// Signs `claims` as a compact JWT.
    pub fn sign(&self, claims: &Map<String, Value>) -> Result<String, KeyError> {
        let header = json!({"alg": "ES384", "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(Value::Object(claims.clone()).to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|e| KeyError(format!("signing failed: {e}")))?;
        Ok(format!("{signing_input}.{}", B64URL.encode(sig.as_ref())))
    }

    /// Verifies a token made by this signer (tests and self-checks).
    pub fn verify(&self, token: &str) -> Option<Map<String, Value>> {
        let (input, sig) = token.rsplit_once('.')?;
        let sig = B64URL.decode(sig).ok()?;
        let pk = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P384_SHA384_FIXED,
            self.key.public_key().as_ref(),
        );
        pk.verify(input.as_bytes(), &sig).ok()?;
        let payload = input.split_once('.')?.1;
        match serde_json::from_slice(&B64URL.decode(payload).ok()?).ok()? {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
}

/// RFC 7638 thumbprint of an EC JWK: base64url(SHA-256 of the members
/// crv, kty, x, y in lexicographic order, no whitespace).
pub fn jwk_thumbprint(crv: &str, x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#);
    B64URL.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}

/// DER prefixes of EC SubjectPublicKeyInfo with an uncompressed point.
const SPKI_P256: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const SPKI_P384: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];

/// The `cnf` claim for an enclave key (RFC 7800 `jkt`): P-256 or P-384 SPKI.
pub fn cnf_for_spki(spki: &[u8]) -> Option<Value> {
    let (crv, point, n) = if let Some(p) = spki.strip_prefix(SPKI_P256) {
        ("P-256", p, 32)
    } else {
        ("P-384", spki.strip_prefix(SPKI_P384)?, 48)
    };
    if point.len() != 1 + 2 * n || point.first() != Some(&4) {
        return None;
    }
    let x = B64URL.encode(&point[1..=n]);
    let y = B64URL.encode(&point[1 + n..]);
    Some(json!({"jkt": jwk_thumbprint(crv, &x, &y)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_tampering_fails() {
        let s = Signer::from_pkcs8(&Signer::generate_pkcs8().unwrap()).unwrap();
        let mut claims = Map::new();
        claims.insert("tee".into(), json!("sim"));
        let t = s.sign(&claims).unwrap();
        assert_eq!(s.verify(&t).unwrap()["tee"], "sim");
        let bad = t.replacen("eyJ0ZWUiOiJzaW0ifQ", "eyJ0ZWUiOiJzbnAifQ", 1);
        assert_ne!(bad, t);
        assert!(s.verify(&bad).is_none());
        let jwks = s.jwks();
        assert_eq!(jwks["keys"][0]["alg"], "ES384");
        let header: Value =
            serde_json::from_slice(&B64URL.decode(t.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // Checked against an independent computation (Python hashlib over the
        // RFC 7638 canonical JSON of this RFC 7517 example key).
        let t = jwk_thumbprint(
            "P-256",
            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        );
        assert_eq!(t, "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
    }

    #[test]
    fn cnf_needs_an_ec_spki() {
        assert!(cnf_for_spki(b"not a key").is_none());
        let mut spki = SPKI_P256.to_vec();
        spki.push(4);
        spki.extend_from_slice(&[1; 64]);
        assert!(cnf_for_spki(&spki).unwrap()["jkt"].is_string());
        spki[SPKI_P256.len()] = 2;
        assert!(cnf_for_spki(&spki).is_none());
    }
}
