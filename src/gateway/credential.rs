//! A connection lives no longer than its credential: when its token expires
//! (past the JWT leeway), or its API key is revoked (checked every
//! `auth.reload_seconds`), the client is told `UNAUTHORIZED` and
//! disconnected. With a valid credential it reconnects and resumes from its
//! cursors, losing nothing Kafka still holds.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::{Client, Gateway, overflow};
use crate::auth::AuthMethod;
use crate::protocol::{ClientError, ErrorCode};

/// Watches `client`'s credential until the connection closes.
pub(super) async fn watch(gateway: Arc<Gateway>, client: Client) {
    let principal = &client.session.principal;
    // Validation accepts a token through the whole second `exp + leeway`
    // (whole seconds); the connection lives exactly as long.
    let expires_at = principal.expires_at;
    let expired = async {
        match expires_at {
            Some(exp) => {
                let deadline = UNIX_EPOCH + Duration::from_secs(exp + 1) + gateway.token_grace;
                let left = deadline
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                tokio::time::sleep(left).await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    let revocable = matches!(principal.method, AuthMethod::ApiKey(_));
    let mut recheck = tokio::time::interval(gateway.revocation_check);
    loop {
        tokio::select! {
            _ = client.session.closing.cancelled() => return,
            _ = &mut expired => {
                let why = "your token expired; reconnect with a fresh one to resume";
                return cut_off(&gateway, &client, why, "token_expired");
            }
            _ = recheck.tick(), if revocable => {
                if gateway.auth.is_revoked(principal) {
                    let why = "your API key was revoked";
                    return cut_off(&gateway, &client, why, "revoked");
                }
            }
        }
    }
}

fn cut_off(gateway: &Arc<Gateway>, client: &Client, why: &str, reason: &'static str) {
    let error =
        ClientError::new(ErrorCode::Unauthorized, why).with_details(json!({ "reason": reason }));
    overflow::cut_off(gateway, client, error, reason);
}
