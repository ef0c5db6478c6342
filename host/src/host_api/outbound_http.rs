//! `wasi:http/outgoing-handler` 0.2: outbound HTTP for guests, by Spin's rules.
//!
//! A request goes out only to a scheme, host and port the component's `allowed_outbound_hosts`
//! allows; anything else fails in the guest with `HTTP-request-denied`, and the host logs the
//! component and the refused URL. Requests share one pooled client per process, so a timer
//! calling one API every second keeps one connection open rather than opening one per tick.
//! `https` servers are checked against the public web roots plus `--tls-ca-file`. The host
//! follows no redirects (the guest sees the 3xx, as in Spin). Timeouts are Spin's: 600 s to
//! connect, to the response's first byte and between body chunks, unless the guest's request
//! options set shorter ones; every call also ends with its handler's `handler_timeout`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::KeyValue;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::allowed_hosts::{Address, AllowedHosts};
use crate::call_trace::{OutboundSpan, server_attributes};

/// Spin's default for each of the three timeouts.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// How long an idle pooled connection is kept for the next request to the same origin.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type PooledClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, WasiBody>;

/// The process's outbound HTTP client, shared by every instance; built on the first request, so
/// an app that makes none pays nothing for it.
pub struct OutboundHttp {
    /// A CA certificate (PEM) trusted besides the public roots (`--tls-ca-file`).
    extra_ca: Option<Arc<Vec<u8>>>,
    client: OnceLock<Result<PooledClient, String>>,
}

impl OutboundHttp {
    /// A client trusting the public roots and, when given, the CA certificates in `extra_ca`.
    pub fn new(extra_ca: Option<Arc<Vec<u8>>>) -> Self {
        OutboundHttp {
            extra_ca,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&PooledClient, Error> {
        self.client
            .get_or_init(|| build_client(self.extra_ca.as_deref().map(Vec::as_slice)))
            .as_ref()
            .map_err(|message| Error::InternalError(Some(message.clone())))
    }

    /// Sends `request`, waiting for the response head up to the guest's connect and
    /// first-byte timeouts; the body then fails if it stalls past the between-bytes timeout.
    async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, Error> {
        let timeout = |pick: fn(&RequestOptions) -> Option<Duration>| {
            options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
        };
        let head_deadline = timeout(|options| options.connect_timeout)
            .saturating_add(timeout(|options| options.first_byte_timeout));
        let between_bytes = timeout(|options| options.between_bytes_timeout);
        let request = request.map(|body| DrainedOnDrop(Some(body)).boxed_unsync());
        let response = tokio::time::timeout(head_deadline, self.client()?.request(request))
            .await
            .map_err(|_| Error::HttpResponseTimeout)?
            .map_err(client_error)?;
        Ok(response
            .map(|body| BetweenBytes::new(body.map_err(Error::from), between_bytes).boxed_unsync()))
    }
}

/// The pooled client: HTTP/1.1, `http` and `https`, rustls with the public roots plus
/// `extra_ca`. Guests' requests use it, and so does the OTLP exporter.
pub(crate) fn build_client<B>(
    extra_ca: Option<&[u8]>,
) -> Result<Client<hyper_rustls::HttpsConnector<HttpConnector>, B>, String>
where
    B: Body + Send + 'static,
    B::Data: Send,
{
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    if let Some(pem) = extra_ca {
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate =
                certificate.map_err(|error| format!("reading the TLS CA file: {error}"))?;
            roots
                .add(certificate)
                .map_err(|error| format!("trusting the TLS CA file: {error}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("configuring TLS: {error}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector))
}

/// The `wasi:http` error a client failure is, for the guest.
fn client_error(error: hyper_util::client::legacy::Error) -> Error {
    use std::error::Error as _;
    let mut refused = false;
    let mut cause = error.source();
    while let Some(current) = cause.filter(|_| error.is_connect()) {
        refused |= current
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        cause = current.source();
    }
    if refused {
        Error::ConnectionRefused
    } else {
        Error::InternalError(Some(crate::error_text::one_line(&anyhow::Error::new(
            error,
        ))))
    }
}

/// What one instance's outbound requests are held to: its component's allowed hosts, through
/// the process's shared client.
pub struct OutboundHttpHooks {
    component_id: Arc<str>,
    allowed_hosts: Arc<AllowedHosts>,
    http: Arc<OutboundHttp>,
}

impl OutboundHttpHooks {
    /// The hooks for one instance of `component_id`.
    pub fn new(
        component_id: Arc<str>,
        allowed_hosts: Arc<AllowedHosts>,
        http: Arc<OutboundHttp>,
    ) -> Self {
        OutboundHttpHooks {
            component_id,
            allowed_hosts,
            http,
        }
    }

    /// Whether the request's scheme, host and port are allowed; a refusal is logged.
    fn allows(&self, uri: &http::Uri) -> bool {
        let address = uri.scheme_str().zip(uri.host()).and_then(|(scheme, host)| {
            let port = uri.port_u16();
            let text = match port {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            };
            Address::parse(&text).ok()
        });
        let allowed = address
            .as_ref()
            .is_some_and(|address| self.allowed_hosts.allows(address));
        if !allowed {
            tracing::warn!(
                component = %self.component_id,
                url = %without_query(uri),
                "outbound HTTP request refused: not in the component's allowed_outbound_hosts"
            );
        }
        allowed
    }
}

/// A URL for logs: scheme, authority and path, without the query (which may carry secrets).
fn without_query(uri: &http::Uri) -> String {
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("?"),
        uri.authority().map_or("", |authority| authority.as_str()),
        uri.path()
    )
}

/// The span attributes of an outbound request: its method and its origin (scheme, host, port).
/// Never its credentials, path or query: webhook URLs carry their secret in the path.
fn span_attributes(method: &http::Method, uri: &http::Uri) -> Vec<KeyValue> {
    let mut attributes = server_attributes(uri.host().unwrap_or("?"), uri.port_u16());
    attributes.push(KeyValue::new(
        "http.request.method",
        method.as_str().to_owned(),
    ));
    attributes.push(KeyValue::new(
        "url.scheme",
        uri.scheme_str().unwrap_or("?").to_owned(),
    ));
    attributes
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = Result<(), Error>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutboundHttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let mut span = OutboundSpan::start(|| {
            (
                request.method().as_str().to_owned(),
                span_attributes(request.method(), request.uri()),
            )
        });
        if !self.allows(request.uri()) {
            // Answered at once: a guest may keep its body open until the answer comes. What
            // it still writes is read to nowhere on a task of its own (ending with the body
            // or the instance), so it sees the denial rather than a stream closed under it.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(drain(request.into_body()));
            }
            span.end(Some(&Error::HttpRequestDenied));
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let http = self.http.clone();
        Box::new(async move {
            let result = http.send(request, options).await;
            if let Ok(response) = &result {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(response.status().as_u16()),
                ));
            }
            let response = span.finish(result)?;
            // The pooled client drives the connection itself; nothing more to wait for.
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// A request body that, dropped before its end (hyper stops reading a body the server did not
/// wait for, or a connection fails), still reads the guest's writes to their end on a task of
/// its own: otherwise the guest's `finish` would fail, and the guest would see a closed stream
/// instead of the response or the real error.
struct DrainedOnDrop(Option<WasiBody>);

impl Body for DrainedOnDrop {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match self.0.as_mut() {
            Some(body) => Pin::new(body).poll_frame(context),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0
            .as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for DrainedOnDrop {
    fn drop(&mut self) {
        if let Some(body) = self.0.take().filter(|body| !body.is_end_stream())
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(drain(body));
        }
    }
}

/// Reads a guest's request body to its end, discarding it.
async fn drain(mut body: WasiBody) {
    while let Some(Ok(_)) = body.frame().await {}
}

/// A response body that fails with `connection-read-timeout` when no chunk arrives within
/// `timeout` of the last.
struct BetweenBytes<B> {
    body: B,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<B> BetweenBytes<B> {
    fn new(body: B, timeout: Duration) -> Self {
        BetweenBytes {
            body,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<B> Body for BetweenBytes<B>
where
    B: Body<Data = Bytes, Error = Error> + Unpin,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(context) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(frame)
            }
            Poll::Pending => match this.sleep.as_mut().poll(context) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
