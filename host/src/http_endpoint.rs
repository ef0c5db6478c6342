//! A small HTTP/1.1 server for the host's own endpoints (`--metrics-addr`, `--admin-addr`): bound
//! at start, so a taken port stops the host naming its flag; a cap on connections, a deadline for
//! a request's headers and a lifetime per connection, so no client can hold it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio_util::sync::CancellationToken;

/// A response: the endpoints answer with small bodies, made whole.
pub type Reply = Response<Full<Bytes>>;

/// Connections served at once; more wait in the listen backlog. A scraper, a probe or an
/// operator need a handful; the cap keeps a flood from using the file descriptors Redis
/// connections and SQLite files need.
const MAX_CONNECTIONS: usize = 32;
/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long one connection may stay open, whatever it does.
const CONNECTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);
/// The pause after a failed accept (out of file descriptors): the loop must not spin.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Binds `address` now (an error names `flag`), then answers each request with `handle` on the
/// current runtime until `shutdown`. Returns the address bound (a port 0 made real).
pub async fn serve<H, F>(
    address: SocketAddr,
    flag: &'static str,
    shutdown: CancellationToken,
    handle: H,
) -> anyhow::Result<SocketAddr>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {flag} {address}"))?;
    let bound = listener.local_addr().unwrap_or(address);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let handle = Arc::new(handle);
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
                        tracing::warn!(address = %bound, "accepting a connection on {flag}: {error}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let response = handle(request);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                // A client that hangs up mid-response, or is cut off, is nothing to report.
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
                drop(slot);
            });
        }
    });
    Ok(bound)
}

/// A reply with `status`, `content_type` and `body`.
pub fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
