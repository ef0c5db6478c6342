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
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(address = %bound, "accepting a metrics connection: {error}");
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
                // A scraper that hangs up mid-response is nothing to report.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
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
