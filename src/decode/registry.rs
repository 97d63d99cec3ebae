//! Writer schemas by id: from `schemas/registry.toml` (the default), or from a
//! Confluent-compatible Schema Registry over HTTP, cached for the process's
//! life (a schema id's content never changes). The HTTP side speaks only the
//! Confluent API, so it works with Confluent's registry and with others that
//! serve it (Apicurio Registry, which `make run` starts, under
//! `/apis/ccompat/v7`; Redpanda; Karapace); it also registers schemas, as a
//! producer does, for the demo producer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::Schema;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema id {0} is not registered")]
    UnknownId(u32),
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
    #[error("registered schema is not valid Avro: {0}")]
    InvalidSchema(String),
}

/// Where writer schemas come from.
pub enum SchemaRegistry {
    Local(LocalRegistry),
    Http(HttpRegistry),
}

impl SchemaRegistry {
    pub async fn writer_schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        match self {
            Self::Local(local) => local.get(id).ok_or(RegistryError::UnknownId(id)),
            Self::Http(http) => http.get(id).await,
        }
    }
}

/// Schemas listed in a `registry.toml` manifest beside their `.avsc` files.
pub struct LocalRegistry {
    by_id: HashMap<u32, Arc<Schema>>,
    by_subject: HashMap<String, (u32, Arc<Schema>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    schema: Vec<ManifestEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    id: u32,
    subject: String,
    file: String,
}

impl LocalRegistry {
    /// Loads `dir/registry.toml` and every schema it lists. When a subject has
    /// several ids, the highest is its latest version.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let manifest_path = dir.join("registry.toml");
        let manifest: Manifest = toml::from_str(
            &std::fs::read_to_string(&manifest_path)
                .with_context(|| format!("reading {}", manifest_path.display()))?,
        )
        .with_context(|| format!("parsing {}", manifest_path.display()))?;
        let mut registry = Self {
            by_id: HashMap::new(),
            by_subject: HashMap::new(),
        };
        for entry in manifest.schema {
            let path = dir.join(&entry.file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let schema = Arc::new(
                Schema::parse_str(&text).with_context(|| format!("parsing {}", path.display()))?,
            );
            anyhow::ensure!(
                registry.by_id.insert(entry.id, schema.clone()).is_none(),
                "schema id {} is listed twice in {}",
                entry.id,
                manifest_path.display()
            );
            let latest = registry
                .by_subject
                .entry(entry.subject)
                .or_insert((entry.id, schema.clone()));
            if entry.id > latest.0 {
                *latest = (entry.id, schema);
            }
        }
        Ok(registry)
    }

    pub fn get(&self, id: u32) -> Option<Arc<Schema>> {
        self.by_id.get(&id).cloned()
    }

    /// The latest id and schema of a subject (`<topic>-value`), for producers.
    pub fn latest(&self, subject: &str) -> Option<(u32, Arc<Schema>)> {
        self.by_subject.get(subject).cloned()
    }
}

/// A Confluent-compatible registry (`GET /schemas/ids/{id}`), cached. Its
/// base URL is the Confluent API's root (`http://host:8081` for Confluent's,
/// `http://host:port/apis/ccompat/v7` for Apicurio's).
pub struct HttpRegistry {
    base_url: String,
    client: reqwest::Client,
    // std lock: held only to read or insert, never across the HTTP request.
    cache: RwLock<HashMap<u32, Arc<Schema>>>,
}

#[derive(Deserialize)]
struct SchemaById {
    schema: String,
}

#[derive(Deserialize)]
struct Registered {
    id: u32,
}

/// The media type of the Confluent API's requests.
const CONFLUENT_JSON: &str = "application/vnd.schemaregistry.v1+json";

impl HttpRegistry {
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a client with only a timeout builds"),
            cache: RwLock::default(),
        }
    }

    async fn get(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(schema) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(schema.clone());
        }
        let url = format!("{}/schemas/ids/{id}", self.base_url);
        let unavailable =
            |e: reqwest::Error| RegistryError::Unavailable(e.without_url().to_string());
        let response = self.client.get(&url).send().await.map_err(unavailable)?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(RegistryError::UnknownId(id));
        }
        let body: SchemaById = response
            .error_for_status()
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let schema = Arc::new(
            Schema::parse_str(&body.schema)
                .map_err(|e| RegistryError::InvalidSchema(e.to_string()))?,
        );
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, schema.clone());
        Ok(schema)
    }

    /// Registers `schema` (Avro JSON) under `subject` (`<topic>-value`, the
    /// default naming of Confluent's serializers), as a producer does before
    /// its first record, and returns the id to frame records with. The
    /// registry answers with the id it already has when the subject holds
    /// this schema, so registering at every start is harmless. A refusal
    /// (an incompatible or invalid schema) carries the registry's message.
    pub async fn register(&self, subject: &str, schema: &str) -> anyhow::Result<u32> {
        let url = format!("{}/subjects/{subject}/versions", self.base_url);
        let response = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, CONFLUENT_JSON)
            .body(serde_json::json!({ "schema": schema }).to_string())
            .send()
            .await?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "{url} refused the schema ({status}): {}",
            response.text().await.unwrap_or_default()
        );
        let registered: Registered = response.json().await?;
        Ok(registered.id)
    }
}
