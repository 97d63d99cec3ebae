//! The HTTP/1.1 accept loop. `axum::serve` would do, but it installs no timer
//! in hyper (so hyper's header-read timeout is off: a client that never
//! finishes its request head holds a connection for ever, the slowloris
//! attack) and exposes no limit on the request head. This loop serves each
//! connection with hyper's own builder instead, with both bounds set.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::{Service, ServiceExt};

use crate::drain::OpenConnections;

/// The bounds every HTTP connection is served with.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// A request head (and the wait for the next one on an idle keep-alive
    /// connection) must arrive within this; the connection is closed after.
    pub header_read_timeout: Duration,
    /// The largest request head (request line and headers) read; a larger
    /// one is answered `431` and the connection closed.
    pub max_head_bytes: usize,
}

/// Accepts until `stop`, serving each connection as a task of `tasks` and
/// tracking it in `open`, whose drain may end it; so may whoever handles one
/// of its requests, through the [`ConnectionEnd`](crate::drain::ConnectionEnd)
/// in the request's extensions. On `stop`, idle and keep-alive connections
/// close after their current request; upgraded ones (websockets) belong to
/// Socket.IO by then, and close when drained or by Socket.IO's own shutdown.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: ServeLimits,
    open: Arc<OpenConnections>,
    tasks: TaskTracker,
    stop: CancellationToken,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper needs room for at least 8 KB.
        .max_buf_size(limits.max_head_bytes.max(8192));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, or a connection reset before it
                // was accepted: the listener itself is fine; wait briefly
                // so a full process does not spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Without TCP_NODELAY small events wait on Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let (tcp, end) = open.track(tcp);
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(end.clone());
            app.clone().oneshot(req)
        });
        let connection = builder
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let stop = stop.clone();
        tasks.spawn(async move {
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                _ = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // Timeouts, resets and oversized heads end up here: the
            // client's doing, so not worth more than a debug line.
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "http connection ended");
            }
        });
    }
}
