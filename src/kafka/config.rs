//! Kafka client configuration.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;

use rdkafka::ClientConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

use crate::domain::TopicKind;
use crate::secret::REDACTED;

/// The Kafka cluster, the CRM topics, and how the bridge reads them.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// The brokers to bootstrap from, `host:port` comma-separated
    /// (librdkafka's `bootstrap.servers`).
    pub brokers: String,
    /// This node's identity; unique per node. Defaults to `$HOSTNAME`, else a
    /// random id (then the node starts at the head of the log on every start).
    #[schemars(example = &"crm-bridge-0")]
    pub node_id: Option<String>,
    /// The consumer group is `<group_prefix>-<node_id>`.
    pub group_prefix: String,
    pub topics: TopicNames,
    /// Create missing topics at start-up (dev and tests), with this many partitions.
    #[schemars(example = 3)]
    pub create_topics: Option<i32>,
    /// Where undecodable records go, unchanged, with headers saying where
    /// they came from and why (unset: they are only counted and logged).
    #[schemars(example = &"crm.dead-letter")]
    pub dead_letter_topic: Option<String>,
    /// How often to look for topics and partitions created since start-up,
    /// in seconds.
    pub partition_refresh_seconds: u64,
    /// How often the high watermarks of the assigned partitions are looked
    /// up (consumer lag, and whether the broker answers), in seconds.
    pub lag_refresh_seconds: u64,
    /// `/readyz` fails while any one partition's lag exceeds this many records.
    pub ready_max_lag: u64,
    /// `/readyz` fails when Kafka has not answered for this long, in
    /// seconds: neither a watermark look-up nor, while a partition has no
    /// leader (a leader change), a metadata request. Must exceed
    /// `lag_refresh_seconds`. A replay whose look-ups fail this long is
    /// given up (`replay_unavailable`).
    pub ready_broker_silence_seconds: u64,
    /// Extra librdkafka properties (`security.protocol`, `sasl.*`, `ssl.*`,
    /// `compression.*`, …), applied last to every client. A property `x.y`
    /// may be given as `x.y.file`: a file holding its value, read at
    /// start-up (`config/secrets.rs`).
    #[schemars(example = serde_json::json!({
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "crm-bridge",
        "sasl.password.file": "/run/secrets/kafka-password",
    }))]
    pub properties: KafkaProperties,
    /// A Java-properties file of more librdkafka properties (`key=value`
    /// lines, `#` comments, a final `\` continues a line; e.g. a Kubernetes
    /// Secret mounted as a file), under `properties`. Read at start-up.
    #[schemars(example = &"/run/secrets/kafka/client.properties")]
    pub properties_file: Option<PathBuf>,
}

/// librdkafka properties by name. Values may be secrets (`sasl.password`,
/// `ssl.key.pem`, `sasl.oauthbearer.client.secret`) and librdkafka keeps
/// adding properties, so no list of secret names can be trusted to be
/// complete: `Debug` (logs) shows names only, never a value. Serialising
/// (`crm-bridge check-config`, read by the operator who wrote them) shows
/// the values of properties that are not secret by [`is_secret_property`].
#[derive(Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct KafkaProperties(BTreeMap<String, String>);

/// The properties librdkafka 2.12.1 itself redacts (`_RK_SENSITIVE` in its
/// `rdkafka_conf.c`): keys, passwords, OAuth secrets, and also the SASL
/// user name (a Confluent Cloud API key) and the CA certificate.
const SENSITIVE_PROPERTIES: [&str; 13] = [
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.config",
    "sasl.password",
    "sasl.username",
    "ssl.ca.pem",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.password",
    "ssl_key",
];

/// Parts of a name that make it a secret whatever librdkafka's list says:
/// a property of a later librdkafka, or of a plugin.
const SECRET_WORDS: [&str; 7] = [
    "password",
    "passphrase",
    "secret",
    "key",
    "token",
    "credential",
    "jaas",
];

/// Whether the value of the property `name` is shown as [`REDACTED`]
/// when the configuration is.
pub fn is_secret_property(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE_PROPERTIES.contains(&name.as_str()) || SECRET_WORDS.iter().any(|w| name.contains(w))
}

impl Serialize for KafkaProperties {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| {
            let shown = if is_secret_property(name) {
                REDACTED
            } else {
                value.as_str()
            };
            (name, shown)
        }))
    }
}

impl Deref for KafkaProperties {
    type Target = BTreeMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for KafkaProperties {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl FromIterator<(String, String)> for KafkaProperties {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl IntoIterator for KafkaProperties {
    type Item = (String, String);
    type IntoIter = std::collections::btree_map::IntoIter<String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl std::fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for key in self.0.keys() {
            map.key(key).value(&format_args!("{REDACTED}"));
        }
        map.finish()
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            node_id: None,
            group_prefix: "crm-bridge".into(),
            topics: TopicNames::default(),
            create_topics: None,
            dead_letter_topic: None,
            // Partitions are added rarely; a 30 s delay costs nothing, as their
            // records are read from the beginning once found.
            partition_refresh_seconds: 30,
            lag_refresh_seconds: 5,
            ready_max_lag: 1000,
            // Three look-ups missed: a broker that is merely slow keeps the node.
            ready_broker_silence_seconds: 15,
            properties: KafkaProperties::default(),
            properties_file: None,
        }
    }
}

/// The names of the CRM topics.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TopicNames {
    /// Contact events.
    pub contacts: String,
    /// Deal events.
    pub deals: String,
    /// Email events.
    pub email: String,
    /// Notifications, each for exactly one user.
    pub notifications: String,
}

impl Default for TopicNames {
    fn default() -> Self {
        Self {
            contacts: "crm.contacts".into(),
            deals: "crm.deals".into(),
            email: "crm.email".into(),
            notifications: "crm.notifications".into(),
        }
    }
}

impl TopicNames {
    pub fn name(&self, kind: TopicKind) -> &str {
        match kind {
            TopicKind::Contacts => &self.contacts,
            TopicKind::Deals => &self.deals,
            TopicKind::Email => &self.email,
            TopicKind::Notifications => &self.notifications,
        }
    }

    pub fn all(&self) -> impl Iterator<Item = (TopicKind, &str)> {
        TopicKind::ALL
            .into_iter()
            .map(|kind| (kind, self.name(kind)))
    }
}

impl KafkaConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut names: Vec<&str> = self.topics.all().map(|(_, n)| n).collect();
        names.sort_unstable();
        names.dedup();
        anyhow::ensure!(
            names.len() == TopicKind::ALL.len(),
            "kafka.topics must name four distinct topics"
        );
        anyhow::ensure!(!self.brokers.is_empty(), "kafka.brokers is empty");
        anyhow::ensure!(
            self.lag_refresh_seconds >= 1,
            "kafka.lag_refresh_seconds must be at least 1"
        );
        anyhow::ensure!(
            self.ready_broker_silence_seconds > self.lag_refresh_seconds,
            "kafka.ready_broker_silence_seconds must exceed kafka.lag_refresh_seconds"
        );
        if let Some(topic) = &self.dead_letter_topic {
            anyhow::ensure!(
                !topic.is_empty() && !names.contains(&topic.as_str()),
                "kafka.dead_letter_topic must be a topic of its own"
            );
        }
        Ok(())
    }

    pub fn node_id(&self) -> String {
        self.node_id
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }

    /// The brokers clients contact: `brokers`, unless a property overrides it.
    pub fn bootstrap_servers(&self) -> &str {
        self.properties
            .get("bootstrap.servers")
            .map_or(&self.brokers, String::as_str)
    }

    /// A plain client (admin, producer). `properties` go last, so operators
    /// can override anything.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "crm-bridge");
        self.with_properties(config)
    }

    /// A consumer: fetch tuning every consumer of the bridge shares, then the
    /// caller's `settings` (group, offsets), then `properties`.
    pub fn consumer_config(
        &self,
        client_id: &str,
        group_id: &str,
        settings: &[(&str, &str)],
    ) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", client_id)
            .set("group.id", group_id);
        // Fetch sizes and waits are librdkafka 2.12.1's defaults, each
        // measured on Apache Kafka (1-min load average 2.4-4.3 on the shared
        // 2-core machine):
        // - `max.partition.fetch.bytes` 1 MB: `BENCH_ONLY=ingest cargo bench
        //   --bench suite` read 1,000,000 records at 1.75-1.77 µs of CPU each
        //   in 6.0 s (two runs) against 1.98-2.17 µs in 7.1-7.6 s (four runs)
        //   with the 10 MB chosen on tansu; `fetch.max.bytes` (50 MB) and
        //   `queued.max.messages.kbytes` (64 MB) were never changed.
        // - `fetch.wait.max.ms` 500: Apache Kafka answers a held fetch as
        //   soon as a record arrives, so the wait costs idle requests, not
        //   latency. `make bench-latency` with
        //   `BENCH_KAFKA_PROPERTIES=fetch.wait.max.ms=W` (every consumer),
        //   two runs each: quiet produce → receive p50/p99 1.26/4.39 and
        //   2.24/9.79 ms at 5, 1.57/7.68 and 1.99/12.23 at 100, 2.06/8.15
        //   and 2.11/7.16 at 500 (flat within the runs' noise), while at rest
        //   the bridge sent 355/330 requests/s at 5, 30 at 100, 12-13 at 500
        //   (~27x fewer), and the broker spent 22-25%, 11%, 7% of a core on
        //   them.
        for (key, value) in settings {
            config.set(*key, *value);
        }
        self.with_properties(config)
    }

    fn with_properties(&self, mut config: ClientConfig) -> ClientConfig {
        for (key, value) in self.properties.iter() {
            config.set(key, value);
        }
        config
    }
}

/// The librdkafka this binary links, as `/stats` and the start-up log
/// report it: its `builtin.features` say which security protocols, SASL
/// mechanisms and codecs this build can use.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LibrdkafkaBuild {
    pub version: String,
    pub builtin_features: Vec<String>,
}

/// Read once per process from a fresh client configuration's defaults
/// (`builtin.features` is read-only, fixed when librdkafka was built).
pub fn librdkafka_build() -> &'static LibrdkafkaBuild {
    static BUILD: std::sync::OnceLock<LibrdkafkaBuild> = std::sync::OnceLock::new();
    BUILD.get_or_init(|| {
        let (_, version) = rdkafka::util::get_rdkafka_version();
        // Neither step can fail on a librdkafka that exists (an empty
        // configuration always builds, and every version since 0.9 has the
        // property); an empty list would show on `/stats` rather than panic.
        let features = ClientConfig::new()
            .create_native_config()
            .and_then(|native| native.get("builtin.features"))
            .unwrap_or_default();
        LibrdkafkaBuild {
            version,
            builtin_features: features
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the build: TLS, every SASL mechanism a managed Kafka asks
    /// for (SCRAM needs OpenSSL, OIDC libcurl, GSSAPI Cyrus SASL) and every codec a
    /// producer may compress with (zstd and zlib are external libraries).
    #[test]
    fn librdkafka_is_built_with_tls_sasl_oidc_and_every_codec() {
        let build = librdkafka_build();
        assert!(build.version.starts_with("2."), "{}", build.version);
        for feature in [
            "ssl",
            "sasl_plain",
            "sasl_scram",
            "sasl_gssapi",
            "sasl_oauthbearer",
            "oidc",
            "gzip",
            "snappy",
            "lz4",
            "zstd",
        ] {
            assert!(
                build.builtin_features.iter().any(|f| f == feature),
                "librdkafka {} lacks {feature}: {:?}",
                build.version,
                build.builtin_features
            );
        }
    }

    #[test]
    fn properties_debug_shows_names_not_values() {
        let properties: KafkaProperties = [
            ("sasl.password".to_owned(), "hunter2".to_owned()),
            ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
        ]
        .into_iter()
        .collect();
        let config = KafkaConfig {
            properties,
            ..KafkaConfig::default()
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("sasl.password"), "{printed}");
        let client = format!("{:?}", config.client_config());
        assert!(!client.contains("hunter2"), "{client}");
    }

    #[test]
    fn serialised_properties_show_values_except_secret_ones() {
        let properties: KafkaProperties = [
            ("sasl.password", "hunter2"),
            ("sasl.username", "api-key-1"),
            ("sasl.oauthbearer.client.secret", "oauth-secret"),
            ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----"),
            ("some.future.Token", "token-1"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let shown: BTreeMap<String, String> =
            serde_json::from_value(serde_json::to_value(&properties).unwrap()).unwrap();
        assert_eq!(shown["security.protocol"], "SASL_SSL");
        assert_eq!(shown["sasl.mechanism"], "SCRAM-SHA-512");
        for secret in [
            "sasl.password",
            "sasl.username",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
            "some.future.Token",
        ] {
            assert_eq!(shown[secret], REDACTED, "{secret}");
        }
    }
}
