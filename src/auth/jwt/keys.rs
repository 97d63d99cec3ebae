//! Public keys for RS*/PS*/ES*/EdDSA tokens, from configured PEMs or from a
//! JWKS document, and the choice of one key for a token's `alg` and `kid`.
//!
//! Each key carries the algorithms it may verify, derived from its key type
//! (and narrowed by the JWK's `alg` when present), so a token can only ever
//! be checked with a key of its own family. Symmetric (`oct`) JWKs are never
//! taken: a JWKS is public, and HMAC secrets come only from `hs_secret`.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::PublicKeyConfig;
use crate::auth::AuthError;

const RSA_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

pub(super) struct PublicKey {
    kid: Option<String>,
    /// The token algorithms this key may verify.
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// The keys one source provides (configuration, or one JWKS fetch).
#[derive(Default)]
pub(super) struct KeySet(Vec<PublicKey>);

impl KeySet {
    pub fn from_config(configs: &[PublicKeyConfig]) -> anyhow::Result<Self> {
        configs
            .iter()
            .map(|k| {
                let pem = k.pem.as_bytes();
                let key = match k.algorithm {
                    alg if RSA_ALGORITHMS.contains(&alg) => DecodingKey::from_rsa_pem(pem)?,
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem)?,
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(pem)?,
                    hmac => anyhow::bail!("{hmac:?} uses `hs_secret`, not a public key"),
                };
                Ok(PublicKey {
                    kid: k.kid.clone(),
                    algorithms: vec![k.algorithm],
                    key,
                })
            })
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    /// Parses a JWKS document. Keys the bridge cannot or must not use
    /// (encryption keys, symmetric keys, unsupported curves, malformed
    /// entries) are skipped with a warning; a document with no usable key at
    /// all is an error, so a broken response never replaces a good key set.
    pub fn from_jwks(document: &[u8]) -> anyhow::Result<Self> {
        /// Entries are parsed one by one: one exotic key must not hide the others.
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_slice(document)?;
        let keys: Vec<PublicKey> = document
            .keys
            .into_iter()
            .filter_map(|entry| {
                let parsed = serde_json::from_value::<Jwk>(entry)
                    .map_err(|e| e.to_string())
                    .and_then(|jwk| from_jwk(&jwk));
                parsed
                    .inspect_err(|reason| tracing::warn!(%reason, "JWKS key skipped"))
                    .ok()
            })
            .collect();
        anyhow::ensure!(!keys.is_empty(), "the JWKS holds no usable signing key");
        Ok(Self(keys))
    }

    pub fn count(&self) -> usize {
        self.0.len()
    }

    pub fn offers(&self, alg: Algorithm) -> bool {
        self.0.iter().any(|k| k.algorithms.contains(&alg))
    }

    pub fn iter(&self) -> impl Iterator<Item = &PublicKey> {
        self.0.iter()
    }
}

/// The key for a token: with a `kid`, the key of that id, which must accept
/// the token's algorithm (else `AlgorithmNotAllowed`); without one, the only
/// key accepting that algorithm. `UnknownKey` when there is none.
pub(super) fn select<'a>(
    keys: impl Iterator<Item = &'a PublicKey>,
    alg: Algorithm,
    kid: Option<&str>,
) -> Result<&'a DecodingKey, AuthError> {
    match kid {
        Some(kid) => {
            let mut same_kid = keys.filter(|k| k.kid.as_deref() == Some(kid)).peekable();
            if same_kid.peek().is_none() {
                return Err(AuthError::UnknownKey);
            }
            same_kid
                .find(|k| k.algorithms.contains(&alg))
                .map(|k| &k.key)
                .ok_or(AuthError::AlgorithmNotAllowed)
        }
        None => {
            let mut candidates = keys.filter(|k| k.algorithms.contains(&alg));
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => Ok(&only.key),
                _ => Err(AuthError::UnknownKey),
            }
        }
    }
}

fn from_jwk(jwk: &Jwk) -> Result<PublicKey, String> {
    let kid = jwk.common.key_id.clone();
    let label = kid.as_deref().unwrap_or("(no kid)");
    if let Some(usage) = &jwk.common.public_key_use
        && *usage != PublicKeyUse::Signature
    {
        return Err(format!("key {label} is not a signing key"));
    }
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA_ALGORITHMS,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return Err(format!("key {label}: unsupported curve")),
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(format!("key {label} is symmetric; never taken from a JWKS"));
        }
        _ => return Err(format!("key {label}: unsupported key type")),
    };
    let algorithms = match jwk.common.key_algorithm {
        None => family.to_vec(),
        Some(declared) => match Algorithm::try_from(declared) {
            Ok(alg) if family.contains(&alg) => vec![alg],
            _ => return Err(format!("key {label}: `alg` does not match its key type")),
        },
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {label}: {e}"))?;
    Ok(PublicKey {
        kid,
        algorithms,
        key,
    })
}
