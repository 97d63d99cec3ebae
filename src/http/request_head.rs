//! Copies each request's head out of hyper's connection read buffer.
//!
//! hyper parses a request in place: its URI and every header value are
//! `Bytes` slices of the connection's read buffer (16 KB on our listener:
//! hyper-util's HTTP/2 sniff hands hyper the first 24 bytes, and hyper's
//! second `reserve(8192)` doubles the 8 KB buffer). engineioxide keeps the
//! handshake request's `Parts` for the whole life of a Socket.IO session
//! (`socket.req_parts()`), so without this copy one small slice pins the
//! whole buffer under every websocket, long after the HTTP connection that
//! needed it became one. That was more than half the memory of an idle
//! connection (see `bench/ANALYSIS.md`, "Memory per connection").
//!
//! It must wrap the router, not be a layer of it: axum's router stores a
//! clone of the URI (`OriginalUri`) in the extensions before any layer runs.

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Uri};

/// Rebuilds the URI and headers of `req` on one exact-size buffer of their
/// own (one allocation for the lot, not one per value). Header names are
/// already owned (hyper copies non-standard ones); extensions (hyper's
/// upgrade handle, the peer address) are kept as they are.
pub fn own_request_head(req: Request) -> Request {
    let (mut parts, body) = req.into_parts();
    let uri = parts.uri.to_string();
    let values: usize = parts.headers.values().map(|v| v.len()).sum();
    let mut buf = Vec::with_capacity(uri.len() + values);
    buf.extend_from_slice(uri.as_bytes());
    for value in parts.headers.values() {
        buf.extend_from_slice(value.as_bytes());
    }
    let mut buf = Bytes::from(buf);
    // Both re-parses accept what hyper accepted; were one ever to fail, the
    // original stays (correct, only not released).
    if let Ok(owned) = Uri::from_maybe_shared(buf.split_to(uri.len())) {
        parts.uri = owned;
    }
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        headers.append(name.clone(), own_value(value, buf.split_to(value.len())));
    }
    parts.headers = headers;
    Request::from_parts(parts, body)
}

fn own_value(value: &HeaderValue, copy: Bytes) -> HeaderValue {
    match HeaderValue::from_maybe_shared(copy) {
        Ok(mut owned) => {
            owned.set_sensitive(value.is_sensitive());
            owned
        }
        Err(_) => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::header;

    /// A request laid out as hyper lays it out: the URI and the values
    /// are slices of one buffer, returned beside it.
    fn hyper_like(uri: &str, headers: &[(&'static str, &str)]) -> (Request, Bytes) {
        let mut text = uri.to_owned();
        headers.iter().for_each(|(_, v)| text.push_str(v));
        let buffer = Bytes::from(text);
        let mut rest = buffer.clone();
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = Uri::from_maybe_shared(rest.split_to(uri.len())).unwrap();
        for (name, value) in headers {
            let value = HeaderValue::from_maybe_shared(rest.split_to(value.len())).unwrap();
            req.headers_mut().append(*name, value);
        }
        (req, buffer)
    }

    #[test]
    fn keeps_the_head_and_points_into_a_buffer_of_its_own() {
        let (req, buffer) = hyper_like(
            "/socket.io/?EIO=4&transport=websocket",
            &[
                ("origin", "https://a.example"),
                ("x-forwarded-for", "10.0.0.1"),
                ("x-forwarded-for", "10.0.0.2"),
            ],
        );
        let range = buffer.as_ptr_range();
        let req = own_request_head(req);
        assert_eq!(req.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(req.headers()[header::ORIGIN], "https://a.example");
        let forwarded: Vec<_> = req.headers().get_all("x-forwarded-for").iter().collect();
        assert_eq!(forwarded, ["10.0.0.1", "10.0.0.2"]);
        let inside = |p: *const u8| range.contains(&p);
        assert!(!inside(req.uri().path().as_ptr()));
        assert!(!inside(req.uri().query().unwrap().as_ptr()));
        assert!(
            req.headers()
                .values()
                .all(|v| !inside(v.as_bytes().as_ptr()))
        );
    }

    #[test]
    fn keeps_sensitive_values_sensitive() {
        let mut token = HeaderValue::from_static("Bearer abc");
        token.set_sensitive(true);
        let req = Request::builder()
            .uri("/socket.io/")
            .header(header::AUTHORIZATION, token)
            .body(Body::empty())
            .unwrap();
        let req = own_request_head(req);
        assert!(req.headers()[header::AUTHORIZATION].is_sensitive());
        assert_eq!(req.headers()[header::AUTHORIZATION], "Bearer abc");
    }
}
