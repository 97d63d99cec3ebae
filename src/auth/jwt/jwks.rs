//! Keys fetched from the identity provider's JWKS URL: the current key set,
//! swapped whole on each successful fetch while verifications read it, the
//! background refresh, and the early refresh an unknown `kid` asks for.
//!
//! Failures never lose keys: a fetch that fails (unreachable, not 200, too
//! large, not a JWKS, no usable key) keeps the last good set. Until the first
//! fetch succeeds the set is empty, so tokens that need a fetched key are
//! refused (`UnknownKey`) while everything else (HS tokens, configured keys,
//! API keys) works; readiness does not wait for it.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::keys::KeySet;

/// One fetch, connection included, gives up after this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS is a few keys; anything larger is refused unread.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// At most one early refresh per this interval, however many unknown kids
/// arrive: forged kids cannot make the bridge hammer the identity provider.
const EARLY_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// After a failed fetch the next try waits this long, doubling up to the
/// refresh interval (and never more than [`MAX_RETRY`]).
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

pub(super) struct Jwks {
    url: String,
    client: reqwest::Client,
    refresh_every: Duration,
    current: RwLock<Arc<KeySet>>,
    /// Held during an early refresh; concurrent callers queue behind it and
    /// then see its result instead of fetching again.
    early: tokio::sync::Mutex<EarlyRefreshGate>,
}

impl Jwks {
    pub fn new(url: &str, refresh_every: Duration) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| anyhow::anyhow!("auth.jwt.jwks_url is not a URL: {e}"))?;
        // Keys decide who is authenticated: fetch them over HTTPS (system
        // roots), or plain HTTP only from this machine (a sidecar, tests).
        let loopback = crate::net::is_loopback(&parsed);
        anyhow::ensure!(
            parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback),
            "auth.jwt.jwks_url must be https:// (plain http:// only to a loopback address)"
        );
        anyhow::ensure!(
            !refresh_every.is_zero(),
            "auth.jwt.jwks_refresh_seconds must be at least 1"
        );
        Ok(Self {
            url: url.to_owned(),
            // No redirects: one could lead from https to plain http elsewhere.
            client: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            refresh_every,
            current: RwLock::new(Arc::new(KeySet::default())),
            early: tokio::sync::Mutex::new(EarlyRefreshGate::new(EARLY_REFRESH_INTERVAL)),
        })
    }

    /// The key set as of now; cheap (one `Arc` clone under a read lock).
    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Fetches now and, on success, swaps the key set in.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let keys = self.fetch().await?;
        tracing::debug!(keys = keys.count(), "JWKS refreshed");
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keys);
        Ok(())
    }

    /// A token named a `kid` that `seen` does not hold. Returns whether the
    /// key set changed since `seen` (by this call or a concurrent one), i.e.
    /// whether verifying again can help. Rate-limited by the gate.
    pub async fn refresh_for_unknown_kid(&self, seen: &Arc<KeySet>) -> bool {
        let mut gate = self.early.lock().await;
        if !Arc::ptr_eq(&self.current(), seen) {
            return true;
        }
        if !gate.try_pass(Instant::now()) {
            return false;
        }
        match self.refresh().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, url = %self.url, "JWKS early refresh failed; keeping the last good keys");
                false
            }
        }
    }

    /// Fetches at once (start-up), then every `refresh_every`; after a
    /// failure retries sooner, with backoff. Stops with `shutdown`.
    pub fn spawn_refresh(self: Arc<Self>, tasks: &TaskTracker, shutdown: CancellationToken) {
        tasks.spawn(async move {
            let mut retry = FIRST_RETRY;
            loop {
                let wait = match self.refresh().await {
                    Ok(()) => {
                        retry = FIRST_RETRY;
                        self.refresh_every
                    }
                    Err(e) => {
                        tracing::error!(error = %e, url = %self.url, retry_in = ?retry, "JWKS fetch failed; keeping the last good keys");
                        let wait = retry;
                        retry = (retry * 2).min(self.refresh_every).min(MAX_RETRY);
                        wait
                    }
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        });
    }

    async fn fetch(&self) -> anyhow::Result<KeySet> {
        let mut response = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?;
        anyhow::ensure!(
            response
                .content_length()
                .is_none_or(|length| length <= MAX_JWKS_BYTES as u64),
            "JWKS response larger than {MAX_JWKS_BYTES} bytes"
        );
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            anyhow::ensure!(
                body.len() + chunk.len() <= MAX_JWKS_BYTES,
                "JWKS response larger than {MAX_JWKS_BYTES} bytes"
            );
            body.extend_from_slice(&chunk);
        }
        KeySet::from_jwks(&body)
    }
}

/// Lets one early refresh through per interval.
struct EarlyRefreshGate {
    interval: Duration,
    last: Option<Instant>,
}

impl EarlyRefreshGate {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
        }
    }

    /// Whether a refresh may start at `now`; if so, it counts from `now`.
    fn try_pass(&mut self, now: Instant) -> bool {
        let open = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if open {
            self.last = Some(now);
        }
        open
    }
}

#[cfg(test)]
mod tests;
