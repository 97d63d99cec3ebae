//! Writer schemas by id: from `schemas/registry.toml` (the default), or from a
//! Confluent-compatible Schema Registry over HTTP, cached for the process's
//! life (a schema id's content never changes). The HTTP side speaks only the
//! Confluent API, so it works with Confluent's registry and with others that
//! serve it (Apicurio Registry, which `make run` starts, under
//! `/apis/ccompat/v7`; Redpanda; Karapace); it also registers schemas, as a
//! producer does, for the demo producer.
//!
//! A registry in production is reached with basic authentication or a bearer
//! token, over TLS with a private CA and a client certificate
//! ([`RegistryAccess`]). It may also hold Protobuf and JSON Schema schemas
//! (the Confluent API's `schemaType`): those are refused, never parsed as
//! Avro.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::Schema;
use serde::Deserialize;

use crate::domain::TopicKind;

#[derive(Clone, Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema id {0} is not registered")]
    UnknownId(u32),
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
    #[error("registered schema is not valid Avro: {0}")]
    InvalidSchema(String),
    #[error("schema id {id} is a {schema_type} schema; the bridge decodes Avro only")]
    NotAvro { id: u32, schema_type: String },
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

    /// The latest id and schema of `kind`'s subject under its usual topic
    /// name (`crm.deals-value`), as the manifest names them.
    pub fn latest_of(&self, kind: TopicKind) -> Option<(u32, Arc<Schema>)> {
        self.latest(&format!("crm.{}-value", kind.label()))
    }
}

/// The Avro schema a registry answered for `id`; refused when it is of
/// another type, whatever its text would parse as.
fn parse_writer_schema(id: u32, body: SchemaById) -> Result<Arc<Schema>, RegistryError> {
    if let Some(schema_type) = body.schema_type
        && !schema_type.eq_ignore_ascii_case("AVRO")
    {
        // The registry's word, bounded: it ends up in logs and dead-letter headers.
        let schema_type = schema_type.chars().take(32).collect();
        return Err(RegistryError::NotAvro { id, schema_type });
    }
    Schema::parse_str(&body.schema)
        .map(Arc::new)
        .map_err(|e| RegistryError::InvalidSchema(e.to_string()))
}

/// A Confluent-compatible registry (`GET /schemas/ids/{id}`), cached. Its
/// base URL is the Confluent API's root (`http://host:8081` for Confluent's,
/// `http://host:port/apis/ccompat/v7` for Apicurio's).
pub struct HttpRegistry {
    base_url: String,
    /// Carries the credentials (a default `Authorization` header, marked
    /// sensitive so that it never prints) and the TLS settings.
    client: reqwest::Client,
    /// Schemas, and the refusals that are properties of a schema (not valid
    /// Avro, not Avro at all): an id's content never changes, so neither
    /// is asked for twice. std lock: held only to read or insert, never
    /// across the HTTP request.
    cache: RwLock<HashMap<u32, Result<Arc<Schema>, RegistryError>>>,
}

/// How to reach an HTTP registry beyond its URL. Borrowed: the secrets stay
/// in the configuration's redacting types until the client is built.
#[derive(Default)]
pub struct RegistryAccess<'a> {
    /// HTTP basic authentication: user name and password.
    pub basic: Option<(&'a str, &'a str)>,
    /// A bearer token (exclusive with `basic`).
    pub bearer: Option<&'a str>,
    /// PEM certificates trusted besides the system's roots.
    pub ca_pem: Option<&'a str>,
    /// A PEM certificate (chain) and its PEM private key, for mutual TLS.
    pub identity_pem: Option<(&'a str, &'a str)>,
}

impl std::fmt::Debug for RegistryAccess<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAccess")
            .field("basic_user", &self.basic.map(|(user, _)| user))
            .field("bearer", &self.bearer.is_some())
            .field("ca_pem", &self.ca_pem.is_some())
            .field("identity_pem", &self.identity_pem.is_some())
            .finish()
    }
}

#[derive(Deserialize)]
struct SchemaById {
    schema: String,
    /// `AVRO`, `PROTOBUF` or `JSON`; absent means Avro (the Confluent API
    /// leaves it out for Avro, the first and default type).
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
}

#[derive(Deserialize)]
struct Registered {
    id: u32,
}

/// The media type of the Confluent API's requests.
const CONFLUENT_JSON: &str = "application/vnd.schemaregistry.v1+json";

impl HttpRegistry {
    /// A client of the registry at `base_url`. Fails on PEM that does not
    /// parse or credentials that cannot be a header, naming neither's content.
    pub fn new(base_url: &str, access: &RegistryAccess<'_>) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        use base64::Engine as _;
        use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
        let authorization = match (access.basic, access.bearer) {
            (Some(_), Some(_)) => {
                anyhow::bail!("schema registry: basic authentication or a bearer token, not both")
            }
            (Some((user, password)), None) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            (None, Some(token)) => Some(format!("Bearer {token}")),
            (None, None) => None,
        };
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            let mut value = HeaderValue::from_str(&value)
                .context("schema registry: the token holds characters a header cannot")?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
            let plain = reqwest::Url::parse(base_url)
                .is_ok_and(|url| url.scheme() == "http" && !crate::net::is_loopback(&url));
            if plain {
                tracing::warn!(
                    "schema registry credentials go over plain http:// (use https:// beyond the host)"
                );
            }
        }
        let mut client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .default_headers(headers);
        if let Some(pem) = access.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .context("schemas.registry_ca: not PEM certificates")?;
            anyhow::ensure!(
                !certificates.is_empty(),
                "schemas.registry_ca: no certificate in it"
            );
            for certificate in certificates {
                client = client.add_root_certificate(certificate);
            }
        }
        if let Some((cert, key)) = access.identity_pem {
            let identity = reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes())
                .context("schemas.registry_client_cert/_key: not a PEM certificate and key")?;
            client = client.identity(identity);
        }
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client: client.build().context("schema registry client")?,
            cache: RwLock::default(),
        })
    }

    async fn get(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(known) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return known.clone();
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
        let schema = parse_writer_schema(id, body);
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, schema.clone());
        schema
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

#[cfg(test)]
mod tests;
