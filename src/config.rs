//! Typed configuration ([`Config`]: its doc says where settings come from),
//! loaded and validated once at start-up. Secrets may come from files, and
//! librdkafka properties from the environment in a form of their own
//! ([`secrets`]). The reference of every key is generated from the doc
//! comments of [`Config`] and its sections ([`mod@reference`], checked in as
//! `docs/bridge.example.toml`).

mod reference;
pub mod secrets;

pub use reference::reference;

use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::access::PermissionsConfig;
use crate::auth::{AuthConfig, DEV_JWT_SECRET};
use crate::decode::SchemaConfig;
use crate::drain::DrainConfig;
use crate::gateway::ClientLimits;
use crate::guard::GuardConfig;
use crate::kafka::KafkaConfig;
use crate::presence::PresenceConfig;
use crate::replay::ReplayConfig;
use crate::telemetry::LogConfig;

/// The crm-bridge configuration: a TOML file (`--config FILE` or
/// `CRM_BRIDGE_CONFIG`), overridden by environment variables
/// `CRM_BRIDGE_<SECTION>__<KEY>` (e.g. `CRM_BRIDGE_KAFKA__BROKERS`).
/// Unknown keys are errors. Each secret or PEM setting `X` may be given as
/// `X_file` instead, and each librdkafka property `x.y` as `x.y.file`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The public port: Socket.IO, the client module, the dashboard and
    /// `/healthz` (containers: `0.0.0.0:3000`).
    pub listen: SocketAddr,
    /// The internal port: `/healthz`, `/readyz`, `/stats` and `/metrics`,
    /// for probes, Prometheus and operators; keep it off the load balancer
    /// (containers: `0.0.0.0:9090`).
    pub internal_listen: SocketAddr,
    /// Allows the public dev JWT secret (and with it the dashboard's dev
    /// sign-in, `/dev/*`). Never set in production.
    pub dev_mode: bool,
    pub log: LogConfig,
    pub kafka: KafkaConfig,
    pub schemas: SchemaConfig,
    pub auth: AuthConfig,
    pub permissions: PermissionsConfig,
    pub limits: ClientLimits,
    pub replay: ReplayConfig,
    pub presence: PresenceConfig,
    pub guard: GuardConfig,
    pub drain: DrainConfig,
    /// Shards of the subscription index: more shards, less lock contention
    /// between routing and subscribing. 64 is plenty for a few cores.
    pub index_shards: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            internal_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            dev_mode: false,
            log: LogConfig::default(),
            kafka: KafkaConfig::default(),
            schemas: SchemaConfig::default(),
            auth: AuthConfig::default(),
            permissions: PermissionsConfig::default(),
            limits: ClientLimits::default(),
            replay: ReplayConfig::default(),
            presence: PresenceConfig::default(),
            guard: GuardConfig::default(),
            drain: DrainConfig::default(),
            index_shards: 64,
        }
    }
}

/// Reads the `*_file` settings of `schemas` ([`secrets`]).
fn resolve_schema_secrets(schemas: &mut SchemaConfig) -> anyhow::Result<()> {
    use secrets::{resolve, resolve_secret};
    resolve_secret(
        "schemas.registry_password",
        &mut schemas.registry_password,
        &mut schemas.registry_password_file,
    )?;
    resolve_secret(
        "schemas.registry_token",
        &mut schemas.registry_token,
        &mut schemas.registry_token_file,
    )?;
    resolve(
        "schemas.registry_ca",
        &mut schemas.registry_ca,
        &mut schemas.registry_ca_file,
        |pem| pem,
    )?;
    resolve(
        "schemas.registry_client_cert",
        &mut schemas.registry_client_cert,
        &mut schemas.registry_client_cert_file,
        |pem| pem,
    )?;
    resolve_secret(
        "schemas.registry_client_key",
        &mut schemas.registry_client_key,
        &mut schemas.registry_client_key_file,
    )
}

impl Config {
    /// Loads defaults ← `file` (if given) ← environment, then validates.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            anyhow::ensure!(file.exists(), "config file {} not found", file.display());
            figment = figment.merge(Toml::file(file));
        }
        let mut config: Config = figment
            .merge(
                Env::prefixed("CRM_BRIDGE_")
                    .split("__")
                    .ignore(&["config"])
                    .filter(|key| !secrets::is_property_variable(key.as_str())),
            )
            .extract()?;
        let from_env = secrets::properties_from_env(std::env::vars_os())?;
        config.kafka.properties =
            secrets::merge_under(from_env, std::mem::take(&mut config.kafka.properties));
        config.resolve_secrets()?;
        config.validate()?;
        Ok(config)
    }

    /// Reads every secret given as a file ([`secrets`]) into its setting.
    /// Resolving again changes nothing: [`crate::app::start`] does it too,
    /// for configurations built in code.
    pub fn resolve_secrets(&mut self) -> anyhow::Result<()> {
        secrets::resolve_secret(
            "auth.jwt.hs_secret",
            &mut self.auth.jwt.hs_secret,
            &mut self.auth.jwt.hs_secret_file,
        )?;
        resolve_schema_secrets(&mut self.schemas)?;
        secrets::resolve_kafka(&mut self.kafka.properties, &mut self.kafka.properties_file)
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
        self.schemas.validate()?;
        self.limits.validate()?;
        self.replay.validate()?;
        self.presence.validate()?;
        self.guard.validate()?;
        self.drain.validate()?;
        crate::access::Policy::new(&self.permissions)?;
        anyhow::ensure!(
            self.listen.port() == 0 || self.listen != self.internal_listen,
            "listen and internal_listen must differ: the internal port is not for clients"
        );
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
    use std::path::PathBuf;

    use crate::secret::Secret;

    #[test]
    fn the_dev_secret_needs_dev_mode() {
        let mut config = Config::default();
        config.auth.jwt.hs_secret = Some(Secret::new(DEV_JWT_SECRET));
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
        config.auth.jwt.hs_secret = Some(Secret::new("a-real-secret-0123456789abcdef0123"));
        assert!(!config.dev_sign_in(), "dev mode with a real secret");
        config.auth.jwt.hs_secret = Some(Secret::new(DEV_JWT_SECRET));
        assert!(config.dev_sign_in());
        config.dev_mode = false;
        assert!(!config.dev_sign_in());
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crm-bridge-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn secrets_given_as_files_fill_their_settings_and_never_print() {
        let dir = temp_dir();
        let write = |name: &str, content: &str| {
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            path.display().to_string()
        };
        let hs = write("hs", "an-hs-secret-of-at-least-32-bytes-long\n");
        let password = write("registry-password", "registry-hunter2\n");
        let sasl = write("sasl", "sasl-hunter2\n");
        let properties = write(
            "client.properties",
            &format!(
                "security.protocol=SASL_SSL\nsasl.password.file={sasl}\nsasl.username=from-file\n"
            ),
        );
        let config = write(
            "bridge.toml",
            &format!(
                "[auth.jwt]\nhs_secret_file = \"{hs}\"\n\
                 [schemas]\nregistry_url = \"https://registry.example\"\n\
                 registry_username = \"bridge\"\nregistry_password_file = \"{password}\"\n\
                 [kafka]\nproperties_file = \"{properties}\"\n\
                 [kafka.properties]\n\"sasl.username\" = \"from-config\"\n"
            ),
        );
        let config = Config::load(Some(Path::new(&config))).unwrap();
        let hs = config.auth.jwt.hs_secret.as_ref().unwrap();
        assert_eq!(hs.expose(), "an-hs-secret-of-at-least-32-bytes-long");
        let registry = config.schemas.registry_password.as_ref().unwrap();
        assert_eq!(registry.expose(), "registry-hunter2");
        let kafka = &config.kafka.properties;
        assert_eq!(kafka["sasl.password"], "sasl-hunter2");
        assert_eq!(
            kafka["sasl.username"], "from-config",
            "the config over its file"
        );
        assert_eq!(kafka["security.protocol"], "SASL_SSL");
        assert!(config.schemas.http_registry().unwrap().is_some());
        let printed = format!("{config:?}");
        for secret in ["hunter2", "an-hs-secret"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }

    #[test]
    fn registry_settings_are_checked() {
        let with = |change: fn(&mut SchemaConfig)| {
            let mut schemas = SchemaConfig {
                registry_url: Some("https://registry.example/apis/ccompat/v7".into()),
                ..SchemaConfig::default()
            };
            change(&mut schemas);
            schemas.validate()
        };
        with(|_| {}).unwrap();
        let in_url = with(|s| s.registry_url = Some("https://u:p@registry.example".into()));
        assert!(in_url.unwrap_err().to_string().contains("credentials"));
        assert!(with(|s| s.registry_url = Some("ftp://registry.example".into())).is_err());
        assert!(with(|s| s.registry_username = Some("u".into())).is_err());
        assert!(
            with(|s| {
                s.registry_username = Some("u".into());
                s.registry_password = Some(Secret::new("p"));
                s.registry_token = Some(Secret::new("t"));
            })
            .is_err()
        );
        assert!(with(|s| s.registry_client_key = Some(Secret::new("k"))).is_err());
    }

    #[test]
    fn the_shipped_dev_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/dev/bridge.toml");
        let config = Config::load(Some(&path)).unwrap();
        assert!(config.dev_mode);
    }
}
