//! A connection lives no longer than its credential: when its token expires
//! (past the JWT leeway), or its API key is revoked (checked every
//! `auth.reload_seconds`), the client is told `UNAUTHORIZED` and
//! disconnected. With a valid credential it reconnects and resumes from its
//! cursors, losing nothing Kafka still holds.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::overflow::{self, Disconnect};
use super::{Client, Gateway};
use crate::auth::AuthMethod;
use crate::protocol::{ClientError, ErrorCode};

/// Watches `client`'s credential until the connection closes.
pub(super) async fn watch(gateway: Arc<Gateway>, client: Client) {
    let principal = &client.session.principal;
    let deadline = principal
        .expires_at
        .and_then(|exp| expiry_deadline(exp, gateway.token_grace));
    let expired = async {
        match deadline {
            Some(deadline) => {
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

/// When a token with `exp` stops being valid: validation accepts it through
/// the whole second `exp + leeway` (whole seconds), and the connection lives
/// exactly as long. `None` for an `exp` beyond what the clock can represent
/// (a signed token may say 2^63): such a token never expires here either.
fn expiry_deadline(exp: u64, grace: Duration) -> Option<SystemTime> {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(exp.checked_add(1)?))?
        .checked_add(grace)
}

fn cut_off(gateway: &Arc<Gateway>, client: &Client, why: &str, reason: &'static str) {
    let error =
        ClientError::new(ErrorCode::Unauthorized, why).with_details(json!({ "reason": reason }));
    overflow::cut_off(gateway, client, error, reason, Disconnect::AtOnce);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_the_end_of_the_second_after_exp_plus_the_grace() {
        let grace = Duration::from_secs(30);
        assert_eq!(
            expiry_deadline(1_000, grace),
            Some(UNIX_EPOCH + Duration::from_secs(1_031))
        );
    }

    #[test]
    fn an_exp_beyond_the_clock_never_expires_instead_of_panicking() {
        let grace = Duration::from_secs(30);
        for exp in [u64::MAX, u64::MAX - 1, 1 << 63, i64::MAX as u64] {
            assert_eq!(expiry_deadline(exp, grace), None, "{exp}");
        }
    }
}
