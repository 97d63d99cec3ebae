//! The bridge, started in-process the way `main` starts it.

use crm_bridge::app::{self, RunningApp};
use crm_bridge::auth::{ApiKeyConfig, Secret, hash_api_key, sign_dev_token};
use crm_bridge::config::Config;

use super::{Broker, eventually, repo_path};

pub const TEST_SECRET: &str = "integration-test-secret-0123456789abcdef";
pub const TEST_API_KEY: &str = "test-api-key-for-org-1-0123456789";

/// A token for `user` in `org`, valid for an hour.
pub fn token(user: &str, org: &str) -> String {
    sign_dev_token(TEST_SECRET, user, &format!("{user} name"), org, 3600)
}

/// A correctly signed token that expired two minutes ago (beyond the leeway).
pub fn expired_token(user: &str, org: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 120;
    let claims = serde_json::json!({"sub": user, "organizationId": org, "exp": exp});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap()
}

pub struct TestBridge {
    app: Option<RunningApp>,
    /// The public port: Socket.IO, the dashboard.
    pub url: String,
    /// The internal port: `/readyz`, `/stats`, `/metrics`.
    pub internal_url: String,
}

impl TestBridge {
    pub async fn start(broker: &Broker) -> Self {
        Self::start_with(broker, |_| {}).await
    }

    pub async fn start_with(broker: &Broker, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            internal_listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        // Nothing balances over test nodes: leave at once (tests of the
        // drain set their own).
        config.drain.delay_seconds = 0;
        config.kafka.brokers = broker.addr.clone();
        broker.name_topics(&mut config);
        config.kafka.node_id = Some(format!("test-{}", uuid::Uuid::new_v4()));
        config.kafka.create_topics = Some(2);
        config.schemas.local_dir = repo_path("schemas");
        config.auth.jwt.hs_secret = Some(Secret::new(TEST_SECRET));
        // Fast presence, so readiness and node timeouts take little test time.
        config.presence.heartbeat_ms = 250;
        config.presence.node_timeout_ms = 2000;
        // Every test client connects from 127.0.0.1, many at once.
        config.guard.handshakes_per_second_per_address = 1000;
        config.guard.handshake_burst = 1000;
        config.guard.engine_opens_per_second_per_address = 1000;
        config.guard.engine_open_burst = 1000;
        config.auth.api_keys = vec![ApiKeyConfig {
            sha256: hash_api_key(TEST_API_KEY),
            organization_id: "org-1".into(),
            user_id: "svc_reporting".into(),
            name: "Reporting".into(),
            roles: vec![],
            teams: vec![],
        }];
        tweak(&mut config);
        // Warnings and errors show in a failing test's output (`RUST_LOG` for more).
        config.log.filter = "warn".into();
        // Logs only, unless the test binary installed a trace export first.
        crm_bridge::telemetry::init(&config.log, None).expect("logging starts");
        let app = app::start(config).await.expect("bridge starts");
        let url = format!("http://{}", app.addr);
        let internal_url = format!("http://{}", app.internal_addr);
        wait_ready(&internal_url).await;
        Self {
            app: Some(app),
            url,
            internal_url,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.app.as_ref().expect("running").addr
    }

    /// Waits until live delivery has handled at least `records`.
    pub async fn wait_consumed(&self, records: u64) {
        let what = format!("the bridge to consume {records} records");
        let consumed = async || self.stats().await["recordsConsumed"].as_u64();
        eventually(&what, consumed, |n| *n >= Some(records)).await;
    }

    /// Waits until `done` holds of `/stats`, and returns them.
    pub async fn stats_until(
        &self,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        eventually(what, async || self.stats().await, done).await
    }

    pub async fn stats(&self) -> serde_json::Value {
        stats(&self.internal_url).await
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }
}

/// `/stats` of the bridge whose internal port is at `url`.
pub async fn stats(url: &str) -> serde_json::Value {
    reqwest::get(format!("{url}/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits for `/readyz` at the internal `url`: partitions assigned and
/// presence in sync.
pub async fn wait_ready(url: &str) {
    let what = format!("the bridge at {url} to be ready");
    eventually(&what, async || not_ready(url).await, Option::is_none).await;
}

/// Why the bridge with its internal port at `url` is not ready, as `/readyz` says (partitions,
/// lag, presence) or as its request failed; `None` once it is.
pub async fn not_ready(url: &str) -> Option<String> {
    match reqwest::get(format!("{url}/readyz")).await {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!(
            "{}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        )),
        Err(e) => Some(e.to_string()),
    }
}

/// A failed test still shuts the bridge down while its broker is alive, so
/// the consumer's final commit does not wait on a dead broker.
impl Drop for TestBridge {
    fn drop(&mut self) {
        if let Some(app) = self.app.take() {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(app.shutdown())
            });
        }
    }
}
