//! The live pipeline dashboard (`web/`): `GET /` is its page, `GET /web/…`
//! its modules and styles, and `/web/vendor/socket.io.esm.min.js` the
//! browser build of socket.io-client it runs on.
//!
//! Every file is built into the binary (`include_str!`), so the bridge
//! serving a page always serves the page made for it, from any working
//! directory. socket.io-client comes from npm (`web/package.json`, installed
//! by `make deps`) and is copied in by `build.rs`.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The page's own files under `/web/`: name, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("../../web/app.js")),
    ("board.js", JS, include_str!("../../web/board.js")),
    ("charts.js", JS, include_str!("../../web/charts.js")),
    ("deal.js", JS, include_str!("../../web/deal.js")),
    ("dom.js", JS, include_str!("../../web/dom.js")),
    ("errors.js", JS, include_str!("../../web/errors.js")),
    ("inbox.js", JS, include_str!("../../web/inbox.js")),
    ("live.js", JS, include_str!("../../web/live.js")),
    ("ops.js", JS, include_str!("../../web/ops.js")),
    ("presence.js", JS, include_str!("../../web/presence.js")),
    ("session.js", JS, include_str!("../../web/session.js")),
    ("style.css", CSS, include_str!("../../web/style.css")),
    (
        "vendor/socket.io.esm.min.js",
        JS,
        include_str!(concat!(env!("OUT_DIR"), "/socket.io.esm.min.js")),
    ),
];

const INDEX: &str = include_str!("../../web/index.html");

/// Everything from this origin, nothing inline: the page needs no more,
/// and injected markup could run nothing.
const PAGE_POLICY: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
                           base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/web/{*file}", get(file))
}

async fn index() -> Response {
    let mut response = serve(HTML, INDEX);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    response
}

async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, content)) => serve(content_type, content),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// `no-cache`: the browser revalidates, so a rebuilt bridge is seen at once.
fn serve(content_type: &'static str, content: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        content,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to `web/` but not to [`FILES`] would be a 404 in the page.
    #[test]
    fn every_file_of_web_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let page_file = name.ends_with(".js") || name.ends_with(".css");
            if page_file {
                assert!(
                    FILES.iter().any(|(file, _, _)| *file == name),
                    "web/{name} is not in FILES"
                );
            }
        }
    }
}
