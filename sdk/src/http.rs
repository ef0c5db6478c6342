//! Outbound HTTP from a handler: `get`, `post`, JSON bodies, headers, and the response's status,
//! headers and body.
//!
//! ```no_run
//! use spin_trigger_sdk::{http, timer_component};
//!
//! #[derive(serde::Deserialize)]
//! struct Rate {
//!     eur: f64,
//! }
//!
//! #[timer_component]
//! fn tick() -> anyhow::Result<()> {
//!     let rate: Rate = http::get("https://api.example.com/rate")?.json()?;
//!     http::post_json("https://hooks.example.com/rates", &serde_json::json!({ "eur": rate.eur }))?;
//!     Ok(())
//! }
//! ```
//!
//! A request may go only where the component's `allowed_outbound_hosts` allows (for example
//! `"https://api.example.com"`); anything else fails with an error naming the URL. Calls block
//! until the whole response body has arrived, so they work alike in `fn` and `async fn`
//! handlers. Underneath is [`wstd`]'s client on WASI 0.2's `wasi:http/outgoing-handler`.

use std::fmt;

/// One request, built up and then [sent](Request::send).
#[derive(Debug, Clone)]
pub struct Request {
    method: wstd::http::Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request of `method` (`"GET"`, `"PUT"`, ...) to `url`.
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Request {
            method: wstd::http::Method::from_bytes(method.as_bytes())
                .unwrap_or(wstd::http::Method::GET),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET` to `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Request::new("GET", url)
    }

    /// A `POST` of `body` to `url`.
    pub fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Request::new("POST", url).body(body)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON, with `content-type: application/json`.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<Self, Error> {
        let body = serde_json::to_vec(value).map_err(|error| self.error(error))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Sends the request and reads the whole response. A status such as 404 or 500 is a
    /// [`Response`], not an error; an error is a request that got no response (refused by
    /// `allowed_outbound_hosts`, a connection that failed, a timeout).
    pub fn send(self) -> Result<Response, Error> {
        let mut request = wstd::http::Request::builder()
            .method(self.method.clone())
            .uri(self.url.as_str());
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(wstd::http::Body::from(self.body.clone()))
            .map_err(|error| self.error(error))?;
        wstd::runtime::block_on(async {
            let response = wstd::http::Client::new()
                .send(request)
                .await
                .map_err(|error| self.error(describe(&error)))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect();
            let mut body = response.into_body();
            let body = body
                .contents()
                .await
                .map_err(|error| self.error(describe(&error)))?
                .to_vec();
            Ok(Response {
                status,
                headers,
                body,
            })
        })
    }

    fn error(&self, cause: impl fmt::Display) -> Error {
        Error {
            request: format!("{} {}", self.method, self.url),
            message: cause.to_string(),
        }
    }
}

/// A client error in words: what `wasi:http` reported, and for a refusal, what to do.
fn describe(error: &wstd::http::Error) -> String {
    use wstd::http::error::ErrorCode;
    match error.downcast_ref::<ErrorCode>() {
        Some(ErrorCode::HttpRequestDenied) => {
            "the host refused it: add its origin (scheme, host and port) to the component's \
             `allowed_outbound_hosts`"
                .to_owned()
        }
        Some(ErrorCode::ConnectionRefused) => "connection refused".to_owned(),
        Some(ErrorCode::ConnectionReadTimeout) => "the response body stalled (timeout)".to_owned(),
        Some(ErrorCode::HttpResponseTimeout) => "no response in time (timeout)".to_owned(),
        Some(ErrorCode::InternalError(Some(message))) => message.clone(),
        Some(code) => format!("{code:?}"),
        None => format!("{error:#}"),
    }
}

/// `GET url`.
pub fn get(url: impl Into<String>) -> Result<Response, Error> {
    Request::get(url).send()
}

/// `POST url` with `body`.
pub fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Result<Response, Error> {
    Request::post(url, body).send()
}

/// `POST url` with `value` as a JSON body.
pub fn post_json<T: serde::Serialize + ?Sized>(
    url: impl Into<String>,
    value: &T,
) -> Result<Response, Error> {
    Request::new("POST", url).json(value)?.send()
}

/// A response, its body read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// The status code (`200`, `404`, ...).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every header, in the order received.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, taken.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body).map_err(|error| Error {
            request: format!("the response ({})", self.status),
            message: format!("the body is not UTF-8: {error}"),
        })
    }

    /// The body decoded from JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|error| Error {
            request: format!("the response ({})", self.status),
            message: format!(
                "the body does not decode as {}: {error}",
                std::any::type_name::<T>()
            ),
        })
    }
}

/// Why a request got no response, naming the request: `GET https://api.example.com/x: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    request: String,
    message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.request, self.message)
    }
}

impl std::error::Error for Error {}
