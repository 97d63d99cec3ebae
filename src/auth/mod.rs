//! Who is connecting: a [`Principal`] from a JWT (`auth.token`, or an
//! `Authorization: Bearer` header) or from an API key (`auth.apiKey`).
//!
//! Failures are typed for logs and metrics; clients only ever see the generic
//! `UNAUTHORIZED` message, so a probe learns nothing about which check failed.

mod api_key;
mod jwt;
mod secret;

use serde::Deserialize;

pub use api_key::{ApiKeyConfig, ApiKeys, hash_api_key};
pub use jwt::{DEV_JWT_SECRET, JwtConfig, JwtVerifier, sign_dev_token};
pub use secret::Secret;

use crate::domain::{OrgId, UserId};

/// An authenticated caller. Every routing decision is scoped by `org`.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub user: UserId,
    pub name: String,
    pub org: OrgId,
    pub roles: Vec<String>,
    pub method: AuthMethod,
    /// Unix seconds after which the credential is no longer valid.
    pub expires_at: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Jwt,
    ApiKey,
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
    /// A fixed label for counting failures by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::InvalidToken(_) => "invalid_token",
            Self::AlgorithmNotAllowed => "algorithm",
            Self::UnknownKey => "unknown_key",
            Self::BadClaims(_) => "claims",
            Self::UnknownApiKey => "api_key",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub jwt: JwtConfig,
    /// API keys, stored as SHA-256 hashes (`crm-bridge hash-api-key`).
    pub api_keys: Vec<ApiKeyConfig>,
}

/// Verifies credentials. Built once from configuration.
pub struct Authenticator {
    jwt: JwtVerifier,
    api_keys: ApiKeys,
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        Ok(Self {
            jwt: JwtVerifier::new(&config.jwt)?,
            api_keys: ApiKeys::new(&config.api_keys)?,
        })
    }

    pub fn authenticate(&self, credential: Option<Credential<'_>>) -> Result<Principal, AuthError> {
        match credential {
            None => Err(AuthError::Missing),
            Some(Credential::Token(token)) => self.jwt.verify(token),
            Some(Credential::ApiKey(key)) => self.api_keys.verify(key),
        }
    }
}
