//! JWT verification with pinned algorithms and keys chosen by `kid`.
//!
//! The allowed algorithms come from configuration, never from the token: `none`
//! cannot be configured, and a token's `alg` only selects among configured keys
//! of the same family, so an RSA public key can never be used as an HMAC secret.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{AuthError, AuthMethod, Principal, Secret};
use crate::domain::{OrgId, UserId};

/// The HS256 secret `make run` and `crm-bridge token` use. The bridge refuses
/// to start with it unless `dev_mode` is on.
pub const DEV_JWT_SECRET: &str = "crm-bridge-dev-secret-not-for-production";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// Algorithms accepted, e.g. `["HS256", "RS256", "ES256"]`.
    pub algorithms: Vec<Algorithm>,
    /// Shared secret for HS256/384/512 tokens.
    pub hs_secret: Option<Secret>,
    /// Public keys for RS*/PS*/ES*/EdDSA tokens.
    pub keys: Vec<PublicKeyConfig>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway_seconds: u64,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            algorithms: vec![Algorithm::HS256],
            hs_secret: None,
            keys: Vec::new(),
            issuer: None,
            audience: None,
            // Small enough not to matter for security, large enough for NTP drift.
            leeway_seconds: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyConfig {
    /// Matched against the token header's `kid`; optional when one key per algorithm.
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    /// PEM text of the public key (`-----BEGIN PUBLIC KEY-----`).
    pub pem: String,
}

/// The claims the bridge reads. `sub` is the user id; `organizationId` scopes
/// everything the connection can see.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub name: Option<String>,
    pub organization_id: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub exp: u64,
}

struct PublicKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

pub struct JwtVerifier {
    allowed: HashSet<Algorithm>,
    hs_secret: Option<DecodingKey>,
    keys: Vec<PublicKey>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

impl JwtVerifier {
    pub fn new(config: &JwtConfig) -> anyhow::Result<Self> {
        let keys = config
            .keys
            .iter()
            .map(|k| {
                let pem = k.pem.as_bytes();
                let key = match k.algorithm {
                    Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem)?,
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem)?,
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(pem)?,
                    hmac => anyhow::bail!("{hmac:?} uses `hs_secret`, not a public key"),
                };
                Ok(PublicKey {
                    kid: k.kid.clone(),
                    algorithm: k.algorithm,
                    key,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let hs_secret = config
            .hs_secret
            .as_ref()
            .map(|s| DecodingKey::from_secret(s.expose().as_bytes()));
        for alg in &config.algorithms {
            let has_key = if is_hmac(*alg) {
                hs_secret.is_some()
            } else {
                keys.iter().any(|k| k.algorithm == *alg)
            };
            anyhow::ensure!(
                has_key,
                "auth.jwt.algorithms lists {alg:?} but no key for it is configured"
            );
        }
        if let Some(secret) = &config.hs_secret {
            // RFC 7518 §3.2: an HS256 key must be at least 256 bits.
            anyhow::ensure!(
                secret.expose().len() >= 32,
                "auth.jwt.hs_secret must be at least 32 bytes"
            );
        }
        Ok(Self {
            allowed: config.algorithms.iter().copied().collect(),
            hs_secret,
            keys,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway_seconds,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        if !self.allowed.contains(&header.alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let key = self.key_for(header.alg, header.kid.as_deref())?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?
            .claims;
        Ok(Principal {
            user: UserId::new(&claims.sub).ok_or(AuthError::BadClaims("sub"))?,
            name: claims.name.unwrap_or_else(|| claims.sub.clone()),
            org: OrgId::new(&claims.organization_id)
                .ok_or(AuthError::BadClaims("organizationId"))?,
            roles: claims.roles,
            method: AuthMethod::Jwt,
            expires_at: Some(claims.exp),
        })
    }

    fn key_for(&self, alg: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, AuthError> {
        if is_hmac(alg) {
            return self.hs_secret.as_ref().ok_or(AuthError::UnknownKey);
        }
        let mut candidates = self.keys.iter().filter(|k| k.algorithm == alg);
        let key = match kid {
            Some(kid) => candidates.find(|k| k.kid.as_deref() == Some(kid)),
            None => match (candidates.next(), candidates.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            },
        };
        key.map(|k| &k.key).ok_or(AuthError::UnknownKey)
    }
}

/// Signs an HS256 token, as `crm-bridge token` and the tests do.
pub fn sign_dev_token(secret: &str, user: &str, name: &str, org: &str, ttl_seconds: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        sub: user.into(),
        name: Some(name.into()),
        organization_id: org.into(),
        roles: vec!["user".into()],
        exp: now + ttl_seconds,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing with an in-memory secret cannot fail")
}

#[cfg(test)]
mod tests;
