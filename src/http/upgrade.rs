//! WebSocket upgrades speak version 13 (RFC 6455) or are refused before
//! Socket.IO sees them. engineioxide upgrades whatever asks, whatever
//! `Sec-WebSocket-Version` says or whether it says one at all.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The only version RFC 6455 defines.
const VERSION: &str = "13";

/// Refuses an upgrade to `websocket` without `Sec-WebSocket-Version: 13`:
/// 400 when the header is missing, 426 naming the version spoken when it
/// names another (RFC 6455 §4.2.2, §4.4). Other requests pass untouched.
pub async fn check_websocket_version(req: Request, next: Next) -> Response {
    match refusal(req.headers()) {
        Some(refused) => refused,
        None => next.run(req).await,
    }
}

fn refusal(headers: &HeaderMap) -> Option<Response> {
    let upgrade = headers.get(header::UPGRADE)?.to_str().ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return None;
    }
    match headers.get(header::SEC_WEBSOCKET_VERSION) {
        Some(version) if version == VERSION => None,
        Some(_) => Some(
            (
                StatusCode::UPGRADE_REQUIRED,
                [(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static(VERSION),
                )],
                "unsupported WebSocket version; this server speaks 13",
            )
                .into_response(),
        ),
        None => Some((StatusCode::BAD_REQUEST, "Sec-WebSocket-Version missing").into_response()),
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn status_of(headers: &[(&str, &str)]) -> (StatusCode, Option<HeaderValue>) {
        let app = Router::new()
            .route("/socket.io/", get(|| async { "through" }))
            .layer(axum::middleware::from_fn(check_websocket_version));
        let mut request = Request::get("/socket.io/?EIO=4&transport=websocket");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = app
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let version = response
            .headers()
            .get(header::SEC_WEBSOCKET_VERSION)
            .cloned();
        (response.status(), version)
    }

    #[tokio::test]
    async fn version_13_and_plain_requests_pass() {
        let upgrade = [("upgrade", "websocket"), ("sec-websocket-version", "13")];
        assert_eq!(status_of(&upgrade).await.0, StatusCode::OK);
        assert_eq!(status_of(&[]).await.0, StatusCode::OK);
        assert_eq!(status_of(&[("upgrade", "h2c")]).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn other_versions_are_told_which_one_is_spoken() {
        let upgrade = [("upgrade", "WebSocket"), ("sec-websocket-version", "8")];
        assert_eq!(
            status_of(&upgrade).await,
            (
                StatusCode::UPGRADE_REQUIRED,
                Some(HeaderValue::from_static("13"))
            )
        );
    }

    #[tokio::test]
    async fn an_upgrade_without_a_version_is_a_bad_request() {
        let upgrade = [("upgrade", "websocket")];
        assert_eq!(status_of(&upgrade).await.0, StatusCode::BAD_REQUEST);
    }
}
