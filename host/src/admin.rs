//! The admin endpoint on `--admin-addr` (off unless given): every controllable trigger's state,
//! and pause, resume and run-now, for a bearer token. `spin-trigger-host ctl` is its client.
//!
//! | Request | Answer |
//! | --- | --- |
//! | `GET /triggers` | `200`, a JSON list of [`TriggerStatus`] |
//! | `POST /triggers/<id>/pause`, `/resume` | `200` `{"trigger", "paused"}` |
//! | `POST /triggers/<id>/run` | `202` `{"trigger", "running": true}`; `409` when the trigger's overlap policy would skip the run |
//!
//! Every request carries `Authorization: Bearer <token>`; without it, or with another token,
//! the answer is `401`. Errors are `{"error": "..."}`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use crate::control::{RunNowRefused, TriggerControl, TriggerStatus};
use crate::http_endpoint::{self, Reply, reply};

/// The shortest token the endpoint takes: a guessable one would let anyone who reaches the
/// address pause the app's jobs.
pub const MIN_TOKEN_LENGTH: usize = 16;

/// Where the admin endpoint listens, and the token it asks for.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct AdminOptions {
    /// `--admin-addr`: off when `None`.
    pub address: Option<SocketAddr>,
    /// The bearer token every request must carry; required with an address.
    pub token: Option<AdminToken>,
}

impl std::fmt::Debug for AdminOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminOptions")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// A bearer token, at least [`MIN_TOKEN_LENGTH`] characters, never shown.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// The token, trimmed of surrounding whitespace (a file's final newline); refused when
    /// shorter than [`MIN_TOKEN_LENGTH`].
    ///
    /// ```
    /// use spin_trigger_host::AdminToken;
    /// assert!(AdminToken::new("0123456789abcdef\n").is_ok());
    /// assert!(AdminToken::new("secret").is_err());
    /// ```
    pub fn new(token: &str) -> anyhow::Result<Self> {
        let token = token.trim();
        if token.chars().count() < MIN_TOKEN_LENGTH {
            bail!(
                "the admin token is {} characters; use at least {MIN_TOKEN_LENGTH} (e.g. `openssl rand -hex 32`)",
                token.chars().count()
            );
        }
        Ok(AdminToken(token.to_owned()))
    }

    /// The token as a request sends it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `header` (an `Authorization` value) is `Bearer <this token>` (the scheme in any
    /// case), compared as digests in constant time.
    fn admits(&self, header: Option<&hyper::header::HeaderValue>) -> bool {
        use sha2::Digest;
        let Some(value) = header.map(|value| value.as_bytes()) else {
            return false;
        };
        let Some((scheme, given)) = value.split_first_chunk::<7>() else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return false;
        }
        let (given, expected) = (sha2::Sha256::digest(given), sha2::Sha256::digest(&self.0));
        bool::from(given.as_slice().ct_eq(expected.as_slice()))
    }
}

/// Serves `controls` on `options.address` until `shutdown`; nothing without an address. Fails
/// at once when the address is taken or no token is set.
pub async fn serve(
    options: &AdminOptions,
    controls: Vec<Arc<dyn TriggerControl>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(address) = options.address else {
        return Ok(());
    };
    let token = options.token.clone().context(
        "--admin-addr needs a token: set SPIN_TRIGGER_ADMIN_TOKEN or --admin-token-file",
    )?;
    if controls.is_empty() {
        tracing::info!(
            %address,
            "no trigger of this app takes pause, resume or run-now (timers do); not serving --admin-addr"
        );
        return Ok(());
    }
    let controls: Arc<BTreeMap<String, Arc<dyn TriggerControl>>> = Arc::new(
        controls
            .into_iter()
            .map(|control| (control.id().to_owned(), control))
            .collect(),
    );
    let bound = http_endpoint::serve(address, "--admin-addr", shutdown, move |request| {
        let (controls, token) = (controls.clone(), token.clone());
        async move {
            if !token.admits(request.headers().get(hyper::header::AUTHORIZATION)) {
                let mut response = error(StatusCode::UNAUTHORIZED, "a bearer token is required");
                response.headers_mut().insert(
                    hyper::header::WWW_AUTHENTICATE,
                    hyper::header::HeaderValue::from_static("Bearer"),
                );
                return response;
            }
            respond(&controls, &request).await
        }
    })
    .await?;
    tracing::info!(address = %bound, "serving the admin endpoint (/triggers)");
    Ok(())
}

async fn respond(
    controls: &BTreeMap<String, Arc<dyn TriggerControl>>,
    request: &Request<Incoming>,
) -> Reply {
    // Each segment percent-decoded: a trigger's id may hold a space or a slash.
    let segments: Vec<String> = request
        .uri()
        .path()
        .trim_matches('/')
        .split('/')
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (request.method(), segments.as_slice()) {
        (&Method::GET, ["triggers"]) => {
            let mut statuses: Vec<TriggerStatus> = Vec::new();
            for control in controls.values() {
                match control.status().await {
                    Ok(status) => statuses.push(status),
                    Err(failure) => return unavailable(control.id(), &failure),
                }
            }
            json_reply(StatusCode::OK, &json!(statuses))
        }
        (&Method::POST, ["triggers", id, action @ ("pause" | "resume" | "run")]) => {
            let Some(control) = controls.get(*id) else {
                let known: Vec<&str> = controls.keys().map(String::as_str).collect();
                return error(
                    StatusCode::NOT_FOUND,
                    &format!(
                        "no trigger `{id}`; these take control: {}",
                        known.join(", ")
                    ),
                );
            };
            act(control.as_ref(), action).await
        }
        (_, ["triggers", ..]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET /triggers, or POST /triggers/<id>/pause, /resume or /run",
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "not found: this endpoint serves GET /triggers and POST /triggers/<id>/pause, /resume and /run",
        ),
    }
}

/// Pauses, resumes or runs `control` now.
async fn act(control: &dyn TriggerControl, action: &str) -> Reply {
    let id = control.id();
    if action == "run" {
        return match control.run_now() {
            Ok(()) => json_reply(
                StatusCode::ACCEPTED,
                &json!({ "trigger": id, "running": true }),
            ),
            Err(refused @ RunNowRefused::Busy) => error(StatusCode::CONFLICT, &refused.to_string()),
            Err(refused @ (RunNowRefused::NotStarted | RunNowRefused::Stopping)) => {
                error(StatusCode::SERVICE_UNAVAILABLE, &refused.to_string())
            }
        };
    }
    let paused = action == "pause";
    match control.set_paused(paused).await {
        Ok(()) => json_reply(StatusCode::OK, &json!({ "trigger": id, "paused": paused })),
        Err(failure) => unavailable(id, &failure),
    }
}

fn unavailable(id: &str, failure: &anyhow::Error) -> Reply {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("trigger `{id}`: {}", crate::error_text::one_line(failure)),
    )
}

fn error(status: StatusCode, message: &str) -> Reply {
    json_reply(status, &json!({ "error": message }))
}

fn json_reply(status: StatusCode, body: &serde_json::Value) -> Reply {
    reply(status, "application/json", format!("{body}\n"))
}
