//! API keys from `auth.api_keys_file`, revocable without a restart.
//!
//! The file holds `[[api_keys]]` entries in the shape of `auth.api_keys`. It
//! must load at start-up (a typo stops the deploy rather than refusing every
//! key). Afterwards it is polled every `auth.reload_seconds`: when its
//! modification time or size changes it is read again and the whole key set
//! is swapped at once. A file that cannot be read or parsed keeps the
//! previous keys and logs an error; to revoke every key, leave it empty.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ApiKeyConfig, ApiKeys};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Contents {
    #[serde(default)]
    api_keys: Vec<ApiKeyConfig>,
}

/// What tells one version of the file from the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileVersion {
    modified: SystemTime,
    len: u64,
}

pub(super) struct ApiKeysFile {
    path: PathBuf,
    reload_every: Duration,
    current: RwLock<Arc<ApiKeys>>,
    /// The version last looked at (`None`: the file could not be stat'ed).
    seen: Mutex<Option<FileVersion>>,
}

impl ApiKeysFile {
    /// Reads the file now; any error is a configuration error.
    pub fn load(path: &Path, reload_every: Duration) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !reload_every.is_zero(),
            "auth.reload_seconds must be at least 1"
        );
        let version = version_of(path);
        let keys = read(path)
            .map_err(|e| anyhow::anyhow!("auth.api_keys_file {}: {e:#}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            reload_every,
            current: RwLock::new(Arc::new(keys)),
            seen: Mutex::new(version),
        })
    }

    /// The keys as of now; cheap (one `Arc` clone under a read lock).
    pub fn current(&self) -> Arc<ApiKeys> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the file again if its version changed since last looked at,
    /// and remembers the version (so a broken file is reported once).
    pub fn reload_if_changed(&self) {
        let version = version_of(&self.path);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if version == *seen {
            return;
        }
        *seen = version;
        let path = self.path.display();
        if version.is_none() {
            tracing::error!(%path, "api keys file unreadable; keeping the previous keys");
            return;
        }
        match read(&self.path) {
            Ok(keys) => {
                tracing::info!(%path, keys = keys.count(), "api keys reloaded");
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keys);
            }
            Err(e) => {
                tracing::error!(%path, error = format!("{e:#}"), "api keys file invalid; keeping the previous keys");
            }
        }
    }

    /// Polls the file every `reload_every` until `shutdown`.
    pub fn spawn_reload(self: Arc<Self>, tasks: &TaskTracker, shutdown: CancellationToken) {
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(self.reload_every) => {}
                }
                // A stat and, rarely, a read of a small local file: quick
                // enough to do on the runtime.
                self.reload_if_changed();
            }
        });
    }
}

fn version_of(path: &Path) -> Option<FileVersion> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(FileVersion {
        modified: metadata.modified().ok()?,
        len: metadata.len(),
    })
}

fn read(path: &Path) -> anyhow::Result<ApiKeys> {
    let text = std::fs::read_to_string(path)?;
    let contents: Contents = toml::from_str(&text)?;
    ApiKeys::new(&contents.api_keys)
}
