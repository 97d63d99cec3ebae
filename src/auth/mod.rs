//! Who is connecting: a [`Principal`] from a JWT (`auth.token`, or an
//! `Authorization: Bearer` header) or from an API key (`auth.apiKey`).
//!
//! Keys can change while the bridge runs: JWT public keys are refreshed from
//! the identity provider's JWKS, and API keys from `auth.api_keys_file`, each
//! by a background task ([`Authenticator::spawn_refresh`]) that swaps the
//! whole set at once. [`Authenticator::is_revoked`] tells whether an API-key
//! principal still holds.
//!
//! Failures are typed for logs and metrics; clients only ever see the generic
//! `UNAUTHORIZED` message, so a probe learns nothing about which check failed.

mod api_key;
mod api_keys_file;
mod jwt;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::api_keys_file::ApiKeysFile;
pub use crate::secret::Secret;
pub use api_key::{ApiKeyConfig, ApiKeyId, ApiKeys, hash_api_key};
pub use jwt::{DEV_JWT_SECRET, JwtConfig, JwtVerifier, sign_dev_token};

use crate::domain::{OrgId, TeamId, UserId};

/// An authenticated caller. Every routing decision is scoped by `org`.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub user: UserId,
    pub name: String,
    pub org: OrgId,
    /// What the permissions policy looks up (`permissions.roles`).
    pub roles: Vec<String>,
    /// Teams by the credential (a token's `auth.jwt.teams_claim`, an API
    /// key's `teams`); the permissions topic may add memberships.
    pub teams: Vec<TeamId>,
    pub method: AuthMethod,
    /// Unix seconds after which the credential is no longer valid.
    pub expires_at: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Jwt,
    /// Which key: what [`Authenticator::is_revoked`] looks for.
    ApiKey(ApiKeyId),
}

/// The credential a client presented, as found in the handshake.
pub enum Credential<'a> {
    Token(&'a str),
    ApiKey(&'a str),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credential presented")]
    Missing,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("token algorithm not allowed")]
    AlgorithmNotAllowed,
    #[error("no key for the token's algorithm or kid")]
    UnknownKey,
    #[error("token claims are missing or malformed: {0}")]
    BadClaims(&'static str),
    #[error("unknown API key")]
    UnknownApiKey,
}

impl AuthError {
    /// A fixed label for counting failures by reason. Metrics are readable
    /// by anyone who reaches the node, so a label must not tell a stranger
    /// more than the refusal does: claims are checked only once the
    /// signature verified, so a token with bad claims counts as any other
    /// invalid token (the log line says which check failed). The other
    /// labels describe what the client itself sent.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::InvalidToken(_) | Self::BadClaims(_) => "invalid_token",
            Self::AlgorithmNotAllowed => "algorithm",
            Self::UnknownKey => "unknown_key",
            Self::UnknownApiKey => "api_key",
        }
    }
}

/// How clients prove who they are: a JWT, or an API key.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub jwt: JwtConfig,
    /// API keys, stored as SHA-256 hashes (`crm-bridge hash-api-key`).
    /// Fixed for the life of the process.
    pub api_keys: Vec<ApiKeyConfig>,
    /// A TOML file of `[[api_keys]]` entries (the same fields), reloaded
    /// when it changes: revoke a key by removing it.
    #[schemars(example = &"/run/secrets/api-keys.toml")]
    pub api_keys_file: Option<PathBuf>,
    /// How often `api_keys_file` is checked for changes, in seconds.
    pub reload_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt: JwtConfig::default(),
            api_keys: Vec::new(),
            api_keys_file: None,
            // A revoked key stops connecting within seconds; a stat is cheap.
            reload_seconds: 5,
        }
    }
}

/// Verifies credentials. Built from configuration; its key sets are then
/// kept current by [`Self::spawn_refresh`].
pub struct Authenticator {
    jwt: JwtVerifier,
    api_keys: ApiKeys,
    api_keys_file: Option<Arc<ApiKeysFile>>,
}

impl Authenticator {
    /// Reads `api_keys_file` (an error stops start-up); fetches no JWKS.
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        let api_keys_file = config
            .api_keys_file
            .as_deref()
            .map(|path| ApiKeysFile::load(path, Duration::from_secs(config.reload_seconds)))
            .transpose()?
            .map(Arc::new);
        Ok(Self {
            jwt: JwtVerifier::new(&config.jwt)?,
            api_keys: ApiKeys::new(&config.api_keys)?,
            api_keys_file,
        })
    }

    /// Starts the background tasks that keep keys current: the JWKS refresh
    /// (which fetches at once) and the API keys file poll. Both stop with
    /// `shutdown`.
    pub fn spawn_refresh(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        self.jwt.spawn_refresh(tasks, shutdown.clone());
        if let Some(file) = &self.api_keys_file {
            file.clone().spawn_reload(tasks, shutdown);
        }
    }

    /// Verifies a credential. Returns at once, except for a token whose
    /// `kid` is unknown: that may wait for one early JWKS refresh.
    pub async fn authenticate(
        &self,
        credential: Option<Credential<'_>>,
    ) -> Result<Principal, AuthError> {
        match credential {
            None => Err(AuthError::Missing),
            Some(Credential::Token(token)) => self.jwt.verify(token).await,
            Some(Credential::ApiKey(key)) => self.verify_api_key(key),
        }
    }

    /// Whether `principal` no longer holds: it came from an API key that is
    /// no longer configured, or now acts as another user, organisation, name
    /// or roles. Always `false` for JWTs (they lapse at `expires_at`).
    pub fn is_revoked(&self, principal: &Principal) -> bool {
        match principal.method {
            AuthMethod::Jwt => false,
            AuthMethod::ApiKey(_) => {
                let in_file = self
                    .api_keys_file
                    .as_ref()
                    .is_some_and(|file| file.current().holds(principal));
                !(self.api_keys.holds(principal) || in_file)
            }
        }
    }

    fn verify_api_key(&self, presented: &str) -> Result<Principal, AuthError> {
        let id = ApiKeyId::of(presented);
        // Both sets are searched in full, so timing tells neither apart.
        let configured = self.api_keys.find(&id).cloned();
        let from_file = self
            .api_keys_file
            .as_ref()
            .and_then(|file| file.current().find(&id).cloned());
        configured.or(from_file).ok_or(AuthError::UnknownApiKey)
    }
}

#[cfg(test)]
mod tests;
