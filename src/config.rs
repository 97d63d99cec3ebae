//! Typed configuration: defaults, then a TOML file, then `CRM_BRIDGE_*`
//! environment variables (`__` separates sections, e.g.
//! `CRM_BRIDGE_KAFKA__BROKERS`). Validated once at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

use crate::auth::{AuthConfig, DEV_JWT_SECRET};
use crate::gateway::ClientLimits;
use crate::guard::GuardConfig;
use crate::kafka::KafkaConfig;
use crate::presence::PresenceConfig;
use crate::replay::ReplayConfig;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where HTTP and Socket.IO listen.
    pub listen: SocketAddr,
    /// Allows the dev JWT secret. Never set in production.
    pub dev_mode: bool,
    pub log: LogConfig,
    pub kafka: KafkaConfig,
    pub schemas: SchemaConfig,
    pub auth: AuthConfig,
    pub limits: ClientLimits,
    pub replay: ReplayConfig,
    pub presence: PresenceConfig,
    pub guard: GuardConfig,
    /// Shards of the subscription index: more shards, less lock contention
    /// between routing and subscribing. 64 is plenty for a few cores.
    pub index_shards: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            dev_mode: false,
            log: LogConfig::default(),
            kafka: KafkaConfig::default(),
            schemas: SchemaConfig::default(),
            auth: AuthConfig::default(),
            limits: ClientLimits::default(),
            replay: ReplayConfig::default(),
            presence: PresenceConfig::default(),
            guard: GuardConfig::default(),
            index_shards: 64,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A `tracing` filter such as `info,crm_bridge=debug`; `RUST_LOG` wins.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Where writer schemas come from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaConfig {
    /// Directory with `registry.toml` and `.avsc` files (the local registry).
    pub local_dir: PathBuf,
    /// A Confluent-compatible Schema Registry; when set, used instead of `local_dir`.
    pub registry_url: Option<String>,
}

impl Default for SchemaConfig {
    fn default() -> Self {
        Self {
            local_dir: PathBuf::from("schemas"),
            registry_url: None,
        }
    }
}

impl Config {
    /// Loads defaults ← `file` (if given) ← environment, then validates.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            anyhow::ensure!(file.exists(), "config file {} not found", file.display());
            figment = figment.merge(Toml::file(file));
        }
        let config: Config = figment
            .merge(Env::prefixed("CRM_BRIDGE_").split("__").ignore(&["config"]))
            .extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Whether tokens are verified with the public dev secret (allowed only
    /// with `dev_mode`).
    fn uses_dev_secret(&self) -> bool {
        self.auth
            .jwt
            .hs_secret
            .as_ref()
            .is_some_and(|s| s.expose() == DEV_JWT_SECRET)
    }

    /// Whether the bridge hands out dev tokens (`POST /dev/token`, for the
    /// dashboard's sign-in): only in `dev_mode` **and** with the public dev
    /// secret, so a deployment with a real secret never mints tokens, even
    /// with `dev_mode` left on by mistake.
    pub fn dev_sign_in(&self) -> bool {
        self.dev_mode && self.uses_dev_secret()
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.uses_dev_secret() || self.dev_mode,
            "auth.jwt.hs_secret is the public dev secret; set a real one (or dev_mode = true locally)"
        );
        self.limits.validate()?;
        self.replay.validate()?;
        self.presence.validate()?;
        self.guard.validate()?;
        anyhow::ensure!(
            self.kafka
                .topics
                .all()
                .all(|(_, name)| name != self.presence.topic),
            "presence.topic must not be one of the CRM topics"
        );
        anyhow::ensure!(
            self.kafka.dead_letter_topic.as_ref() != Some(&self.presence.topic),
            "kafka.dead_letter_topic must not be presence.topic"
        );
        self.kafka.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_secret_needs_dev_mode() {
        let mut config = Config::default();
        config.auth.jwt.hs_secret = Some(crate::auth::Secret::new(DEV_JWT_SECRET));
        assert!(config.validate().is_err());
        config.dev_mode = true;
        config.validate().unwrap();
    }

    #[test]
    fn dev_sign_in_needs_dev_mode_and_the_dev_secret() {
        let mut config = Config {
            dev_mode: true,
            ..Config::default()
        };
        assert!(!config.dev_sign_in(), "dev mode alone");
        config.auth.jwt.hs_secret = Some(crate::auth::Secret::new(
            "a-real-secret-0123456789abcdef0123",
        ));
        assert!(!config.dev_sign_in(), "dev mode with a real secret");
        config.auth.jwt.hs_secret = Some(crate::auth::Secret::new(DEV_JWT_SECRET));
        assert!(config.dev_sign_in());
        config.dev_mode = false;
        assert!(!config.dev_sign_in());
    }

    #[test]
    fn the_shipped_dev_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/dev/bridge.toml");
        let config = Config::load(Some(&path)).unwrap();
        assert!(config.dev_mode);
    }
}
