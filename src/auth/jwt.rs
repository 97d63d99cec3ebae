//! JWT verification with pinned algorithms and keys chosen by `kid`.
//!
//! The allowed algorithms come from configuration, never from the token: `none`
//! cannot be configured, and a token's `alg` only selects among keys of the
//! same family ([`keys`]), so an RSA public key can never be used as an HMAC
//! secret. Public keys come from configuration and, when `jwks_url` is set,
//! from the identity provider ([`jwks`]); a token whose `kid` neither holds
//! asks for an early, rate-limited JWKS refresh before it is refused.

mod jwks;
mod keys;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::jwks::Jwks;
use self::keys::KeySet;
use super::{AuthError, AuthMethod, Principal, Secret};
use crate::domain::{OrgId, TeamId, UserId};

/// The HS256 secret `make run` and `crm-bridge token` use. The bridge refuses
/// to start with it unless `dev_mode` is on.
/// The longest `sub`, `name` or `organizationId` a token may carry, in bytes:
/// presence broadcasts a user's id and name to everyone in their rooms, so an
/// unbounded claim would be an amplifier. Real ids and names are far shorter.
pub const MAX_CLAIM_BYTES: usize = 256;

/// The most teams a token's teams claim may name.
pub const MAX_TEAMS: usize = 64;

pub const DEV_JWT_SECRET: &str = "crm-bridge-dev-secret-not-for-production";

/// How tokens are verified: the algorithms accepted and their keys.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// Algorithms accepted, e.g. `["HS256", "RS256", "ES256"]`: pinned here,
    /// never taken from the token; `none` cannot be configured.
    #[schemars(with = "Vec<String>")]
    pub algorithms: Vec<Algorithm>,
    /// Shared secret for HS256/384/512 tokens, at least 32 bytes; or
    /// `hs_secret_file`.
    #[schemars(example = &"<at least 32 random bytes>")]
    pub hs_secret: Option<Secret>,
    /// A file holding `hs_secret` instead (read at start-up).
    #[schemars(example = &"/run/secrets/jwt-hs-secret")]
    pub hs_secret_file: Option<std::path::PathBuf>,
    /// Public keys for RS*/PS*/ES*/EdDSA tokens.
    pub keys: Vec<PublicKeyConfig>,
    /// The identity provider's JWKS: more public keys, chosen by `kid`.
    /// `https://` (trusting the system's roots), or `http://` to a loopback
    /// address only.
    #[schemars(example = &"https://idp.example.com/.well-known/jwks.json")]
    pub jwks_url: Option<String>,
    /// How often the JWKS is fetched again, in seconds (also early, at most
    /// every 10 s, when a token names an unknown `kid`).
    pub jwks_refresh_seconds: u64,
    /// Required `iss`, when set.
    #[schemars(example = &"https://idp.example.com/")]
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    #[schemars(example = &"crm-bridge")]
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway_seconds: u64,
    /// The claim listing the user's teams (an array of strings, at most 64),
    /// for `see = "granted"` rules of `permissions`; none when unset.
    #[schemars(example = &"teams")]
    pub teams_claim: Option<String>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            algorithms: vec![Algorithm::HS256],
            hs_secret: None,
            hs_secret_file: None,
            keys: Vec::new(),
            jwks_url: None,
            // Five minutes: rotations are announced well ahead, and an unknown
            // `kid` triggers an early refresh anyway.
            jwks_refresh_seconds: 300,
            issuer: None,
            audience: None,
            // Small enough not to matter for security, large enough for NTP drift.
            leeway_seconds: 30,
            teams_claim: None,
        }
    }
}

/// A public key tokens may be signed with.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyConfig {
    /// Matched against the token header's `kid`; optional when one key per algorithm.
    #[schemars(example = &"2026-01")]
    pub kid: Option<String>,
    /// The algorithm the key verifies (one of `algorithms`).
    #[schemars(with = "String", example = &"RS256")]
    pub algorithm: Algorithm,
    /// PEM text of the public key (`-----BEGIN PUBLIC KEY-----`).
    #[schemars(example = &"-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----\n")]
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
    /// Every other claim: where `teams_claim` is looked up.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

pub struct JwtVerifier {
    allowed: HashSet<Algorithm>,
    hs_secret: Option<DecodingKey>,
    configured: KeySet,
    jwks: Option<Arc<Jwks>>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
    teams_claim: Option<String>,
}

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

impl JwtVerifier {
    /// Builds the verifier; fetches nothing (see [`Self::spawn_refresh`]).
    pub fn new(config: &JwtConfig) -> anyhow::Result<Self> {
        let configured = KeySet::from_config(&config.keys)?;
        let jwks = config
            .jwks_url
            .as_deref()
            .map(|url| Jwks::new(url, Duration::from_secs(config.jwks_refresh_seconds)))
            .transpose()?
            .map(Arc::new);
        let hs_secret = config
            .hs_secret
            .as_ref()
            .map(|s| DecodingKey::from_secret(s.expose().as_bytes()));
        for alg in &config.algorithms {
            let has_key = if is_hmac(*alg) {
                hs_secret.is_some()
            } else {
                // The JWKS may serve any public-key algorithm.
                jwks.is_some() || configured.offers(*alg)
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
            configured,
            jwks,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway_seconds,
            teams_claim: config.teams_claim.clone(),
        })
    }

    /// Starts the JWKS refresh task, when a JWKS URL is configured.
    pub fn spawn_refresh(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        if let Some(jwks) = &self.jwks {
            jwks.clone().spawn_refresh(tasks, shutdown);
        }
    }

    /// Verifies `token`. Waits only when its `kid` is unknown and an early
    /// JWKS refresh may run (at most one per 10 s, bounded by its timeout).
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        refuse_critical_extensions(token)?;
        if !self.allowed.contains(&header.alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let Some(jwks) = &self.jwks else {
            return self.verify_with(token, &header, &KeySet::default());
        };
        let seen = jwks.current();
        match self.verify_with(token, &header, &seen) {
            Err(AuthError::UnknownKey)
                if header.kid.is_some()
                    && !is_hmac(header.alg)
                    && jwks.refresh_for_unknown_kid(&seen).await =>
            {
                self.verify_with(token, &header, &jwks.current())
            }
            verified => verified,
        }
    }

    fn verify_with(
        &self,
        token: &str,
        header: &Header,
        fetched: &KeySet,
    ) -> Result<Principal, AuthError> {
        let key = if is_hmac(header.alg) {
            self.hs_secret.as_ref().ok_or(AuthError::UnknownKey)?
        } else {
            let all = self.configured.iter().chain(fetched.iter());
            keys::select(all, header.alg, header.kid.as_deref())?
        };
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
        let too_long = [
            ("sub", Some(&claims.sub)),
            ("name", claims.name.as_ref()),
            ("organizationId", Some(&claims.organization_id)),
        ]
        .into_iter()
        .find(|(_, value)| value.is_some_and(|v| v.len() > MAX_CLAIM_BYTES));
        if let Some((claim, _)) = too_long {
            return Err(AuthError::BadClaims(claim));
        }
        let teams = self.teams(&claims)?;
        Ok(Principal {
            user: UserId::new(&claims.sub).ok_or(AuthError::BadClaims("sub"))?,
            name: claims.name.unwrap_or_else(|| claims.sub.clone()),
            org: OrgId::new(&claims.organization_id)
                .ok_or(AuthError::BadClaims("organizationId"))?,
            teams,
            roles: claims.roles,
            method: AuthMethod::Jwt,
            expires_at: Some(claims.exp),
        })
    }
}

impl JwtVerifier {
    /// The teams `teams_claim` names: absent is none, anything but an
    /// array of at most [`MAX_TEAMS`] valid ids is a bad claim.
    fn teams(&self, claims: &Claims) -> Result<Vec<TeamId>, AuthError> {
        let Some(value) = self.teams_claim.as_ref().and_then(|c| claims.other.get(c)) else {
            return Ok(Vec::new());
        };
        let bad = AuthError::BadClaims("teams");
        let serde_json::Value::Array(teams) = value else {
            return Err(bad);
        };
        if teams.len() > MAX_TEAMS {
            return Err(bad);
        }
        teams
            .iter()
            .map(|team| {
                team.as_str()
                    .filter(|t| t.len() <= MAX_CLAIM_BYTES)
                    .and_then(TeamId::new)
            })
            .collect::<Option<_>>()
            .ok_or(bad)
    }
}

/// RFC 7515 §4.1.11: a recipient must reject a token whose `crit` header
/// names an extension it does not understand, and the bridge understands
/// none. jsonwebtoken ignores header fields it does not know, so the header
/// is read again here (decode_header already checked it is valid base64url
/// JSON).
fn refuse_critical_extensions(token: &str) -> Result<(), AuthError> {
    use base64::Engine;
    let header = token.split('.').next().unwrap_or_default();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
    #[derive(Deserialize)]
    struct Critical {
        crit: Option<serde_json::Value>,
    }
    let header: Critical =
        serde_json::from_slice(&json).map_err(|e| AuthError::InvalidToken(e.to_string()))?;
    match header.crit {
        None => Ok(()),
        Some(_) => Err(AuthError::InvalidToken(
            "the token names critical extensions (crit), which the bridge does not support".into(),
        )),
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
        other: serde_json::Map::new(),
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
