//! A connection lives no longer than its credential: when its token expires
//! (past the JWT leeway), the client is told `UNAUTHORIZED` and disconnected.
//! It reconnects with a fresh token and resumes from its cursors, losing
//! nothing Kafka still holds.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::{Client, Gateway, overflow};
use crate::protocol::{ClientError, ErrorCode};

/// Watches `client`'s credential until the connection closes.
pub(super) async fn watch(gateway: Arc<Gateway>, client: Client) {
    let Some(expires_at) = client.session.principal.expires_at else {
        return;
    };
    // Validation accepts a token through the whole second `exp + leeway`
    // (whole seconds); the connection lives exactly as long.
    let last_second = Duration::from_secs(expires_at + 1);
    let deadline = UNIX_EPOCH + last_second + gateway.token_grace;
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::select! {
        _ = client.session.closing.cancelled() => {}
        _ = tokio::time::sleep(left) => {
            let error = ClientError::new(
                ErrorCode::Unauthorized,
                "your token expired; reconnect with a fresh one to resume",
            )
            .with_details(json!({ "reason": "token_expired" }));
            overflow::cut_off(&gateway, &client, error, "token_expired");
        }
    }
}
