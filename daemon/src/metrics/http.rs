//! The metrics and health listener: `GET /metrics` (OpenMetrics text), `GET /healthz` (200
//! while the process serves) and `GET /readyz` (200, or 503 with a JSON body naming what is
//! not ready). HTTP/1.1 by hyper on the daemon's runtime; off unless `[metrics] listen` is
//! set.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::families::Metrics;
use super::ready::{Readiness, StateSource};

/// How long a scrape or readiness check waits for the engine's answer.
const ENGINE_WAIT: Duration = Duration::from_secs(2);
/// How long a connection may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
#[error("metrics listener {addr}: {source}")]
pub struct ListenError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Binds the listener (before the engine starts, so a taken port stops the daemon at once).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| ListenError { addr, source })?;
    info!(listen = %listener.local_addr().unwrap_or(addr), "metrics listening: /metrics /healthz /readyz");
    Ok(listener)
}

/// What every request shares.
struct Shared<S> {
    metrics: Arc<Metrics>,
    ready: Arc<Readiness>,
    state: S,
}

/// Serves until `stop` completes; connections still open then are dropped.
pub async fn serve<S: StateSource>(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: Arc<Readiness>,
    state: S,
    stop: impl Future<Output = ()>,
) {
    let shared = Arc::new(Shared { metrics, ready, state });
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| answer(shared.clone(), req));
                        let conn = http1::Builder::new()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(HEADER_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(e) = conn.await {
                            debug!(error = %e, "metrics connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    warn!(error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    connections.abort_all();
}

async fn answer<S: StateSource>(
    shared: Arc<Shared<S>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "only GET\n".into()));
    }
    Ok(match req.uri().path() {
        "/metrics" => {
            if let Ok(Some(snapshot)) = tokio::time::timeout(ENGINE_WAIT, shared.state.snapshot()).await {
                shared.metrics.apply(&snapshot);
            }
            text(StatusCode::OK, OPENMETRICS, shared.metrics.encode())
        }
        "/healthz" => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
        "/readyz" => {
            let snapshot = tokio::time::timeout(ENGINE_WAIT, shared.state.snapshot()).await.ok().flatten();
            if let Some(s) = &snapshot {
                shared.metrics.apply(s);
            }
            let (ready, body) = shared.ready.evaluate(snapshot.as_ref());
            let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            text(status, "application/json", format!("{body}\n"))
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics, /healthz, /readyz\n".into(),
        ),
    })
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
