//! The `schemas` section: where writer schemas come from (the local
//! registry's directory, or an HTTP registry with its credentials and TLS).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{HttpRegistry, RegistryAccess};
use crate::secret::Secret;

/// Where writer schemas come from, and how the HTTP registry is reached.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaConfig {
    /// Directory with `registry.toml` and `.avsc` files (the local registry).
    pub local_dir: PathBuf,
    /// A Confluent-compatible Schema Registry; when set, used instead of
    /// `local_dir`: the root of its Confluent API (`http://host:8081` for
    /// Confluent's, `http://host:port/apis/ccompat/v7` for Apicurio's, which
    /// `make run` uses). `http://` or `https://`, without credentials in it
    /// (URLs get logged; a URL with `user:password@` is refused): those go in
    /// `registry_username` and `registry_password`.
    #[schemars(example = &"http://localhost:8081")]
    pub registry_url: Option<String>,
    /// HTTP basic authentication's user (Confluent Cloud: the API key);
    /// with `registry_password`, both or neither.
    #[schemars(example = &"crm-bridge")]
    pub registry_username: Option<String>,
    /// HTTP basic authentication's password (Confluent Cloud: the API
    /// secret); or `registry_password_file`.
    #[schemars(example = &"<password>")]
    pub registry_password: Option<Secret>,
    /// A file holding `registry_password`.
    #[schemars(example = &"/run/secrets/registry-password")]
    pub registry_password_file: Option<PathBuf>,
    /// A bearer token instead of basic authentication (a registry behind an
    /// OAuth proxy); or `registry_token_file`.
    #[schemars(example = &"<token>")]
    pub registry_token: Option<Secret>,
    /// A file holding `registry_token`.
    #[schemars(example = &"/run/secrets/registry-token")]
    pub registry_token_file: Option<PathBuf>,
    /// PEM certificates trusted besides the system's roots (a private CA);
    /// or `registry_ca_file`.
    #[schemars(example = &"-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n")]
    pub registry_ca: Option<String>,
    /// A file holding `registry_ca`.
    #[schemars(example = &"/etc/ssl/private-ca.pem")]
    pub registry_ca_file: Option<PathBuf>,
    /// Mutual TLS: the PEM certificate (chain) the bridge presents to the
    /// registry, with `registry_client_key`, both or neither; or
    /// `registry_client_cert_file`.
    #[schemars(example = &"-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n")]
    pub registry_client_cert: Option<String>,
    /// A file holding `registry_client_cert`.
    #[schemars(example = &"/run/secrets/registry-client.pem")]
    pub registry_client_cert_file: Option<PathBuf>,
    /// Mutual TLS: the PEM private key of `registry_client_cert`; or
    /// `registry_client_key_file`.
    #[schemars(example = &"-----BEGIN PRIVATE KEY-----\n…\n-----END PRIVATE KEY-----\n")]
    pub registry_client_key: Option<Secret>,
    /// A file holding `registry_client_key`.
    #[schemars(example = &"/run/secrets/registry-client.key")]
    pub registry_client_key_file: Option<PathBuf>,
}

impl Default for SchemaConfig {
    fn default() -> Self {
        Self {
            local_dir: PathBuf::from("schemas"),
            registry_url: None,
            registry_username: None,
            registry_password: None,
            registry_password_file: None,
            registry_token: None,
            registry_token_file: None,
            registry_ca: None,
            registry_ca_file: None,
            registry_client_cert: None,
            registry_client_cert_file: None,
            registry_client_key: None,
            registry_client_key_file: None,
        }
    }
}

impl SchemaConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.registry_url {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| anyhow::anyhow!("schemas.registry_url is not a URL: {e}"))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https"),
                "schemas.registry_url must be http:// or https://"
            );
            anyhow::ensure!(
                parsed.username().is_empty() && parsed.password().is_none(),
                "schemas.registry_url must not hold credentials (URLs get logged): \
                 use schemas.registry_username and schemas.registry_password(_file)"
            );
        }
        anyhow::ensure!(
            self.registry_username.is_some() == self.registry_password.is_some(),
            "schemas.registry_username and schemas.registry_password go together"
        );
        anyhow::ensure!(
            self.registry_password.is_none() || self.registry_token.is_none(),
            "schemas.registry_password and schemas.registry_token exclude each other: \
             basic authentication or a bearer token"
        );
        anyhow::ensure!(
            self.registry_client_cert.is_some() == self.registry_client_key.is_some(),
            "schemas.registry_client_cert and schemas.registry_client_key go together"
        );
        Ok(())
    }

    /// The HTTP registry `registry_url` names, with its credentials and
    /// TLS settings (`None`: the local registry). Resolve secrets first.
    pub fn http_registry(&self) -> anyhow::Result<Option<HttpRegistry>> {
        let Some(url) = &self.registry_url else {
            return Ok(None);
        };
        let access = RegistryAccess {
            basic: self
                .registry_username
                .as_deref()
                .zip(self.registry_password.as_ref().map(Secret::expose)),
            bearer: self.registry_token.as_ref().map(Secret::expose),
            ca_pem: self.registry_ca.as_deref(),
            identity_pem: self
                .registry_client_cert
                .as_deref()
                .zip(self.registry_client_key.as_ref().map(Secret::expose)),
        };
        HttpRegistry::new(url, &access).map(Some)
    }
}
