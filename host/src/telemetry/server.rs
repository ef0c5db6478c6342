//! The operations endpoint on `--metrics-addr`: `/metrics` (Prometheus), `/healthz` (the
//! process serves) and `/readyz` (every trigger's Redis connection is up), over plain HTTP/1.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use tokio_util::sync::CancellationToken;

use super::Telemetry;

/// Connections served at once; more wait in the listen backlog. A scraper and a probe or two
/// need a handful; the cap keeps a flood from using the file descriptors Redis connections and
/// SQLite files need.
const MAX_CONNECTIONS: usize = 32;
/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long one connection may stay open, whatever it does.
const CONNECTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);
/// The pause after a failed accept (out of file descriptors): the loop must not spin.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Binds `address` now (so a taken port stops the host at start, naming it), then serves on
/// the current runtime until `shutdown`.
pub async fn serve(
    telemetry: Arc<Telemetry>,
    address: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on --metrics-addr {address}"))?;
    let bound = listener.local_addr().unwrap_or(address);
    tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(address = %bound, "accepting a metrics connection: {error}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            let telemetry = telemetry.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let response = respond(&telemetry, &request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                // A scraper that hangs up mid-response, or is cut off, is nothing to report.
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
                drop(slot);
            });
        }
    });
    Ok(())
}

fn respond<B>(telemetry: &Telemetry, request: &Request<B>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match request.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            telemetry.metrics.encode(),
        ),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/readyz" => match telemetry.health.ready() {
            Ok(()) => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
            Err(down) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: not connected: {}\n", down.join("; ")),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: this endpoint serves /metrics, /healthz and /readyz\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
