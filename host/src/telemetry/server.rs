//! The operations endpoint on `--metrics-addr`: `/metrics` (Prometheus), `/healthz` (the
//! process serves) and `/readyz` (every trigger's Redis connection is up), over plain HTTP/1.1.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::{Request, StatusCode};
use tokio_util::sync::CancellationToken;

use super::Telemetry;
use crate::http_endpoint::{self, Reply, reply};

/// Binds `address` now (so a taken port stops the host at start, naming it), then serves on
/// the current runtime until `shutdown`.
pub async fn serve(
    telemetry: Arc<Telemetry>,
    address: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let bound = http_endpoint::serve(address, "--metrics-addr", shutdown, move |request| {
        let response = respond(&telemetry, &request);
        async move { response }
    })
    .await?;
    tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
    Ok(())
}

fn respond<B>(telemetry: &Telemetry, request: &Request<B>) -> Reply {
    match request.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            telemetry.metrics.encode(),
        ),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => match telemetry.health.ready() {
            Ok(()) => reply(StatusCode::OK, "text/plain", "ready\n"),
            Err(down) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: not connected: {}\n", down.join("; ")),
            ),
        },
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: this endpoint serves /metrics, /healthz and /readyz\n",
        ),
    }
}
