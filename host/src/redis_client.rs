//! Redis clients for every connection the host makes — the triggers' and the guests' outbound
//! ones: plain for `redis://`, TLS for `rediss://`. A `rediss://` server's certificate is
//! checked against the public web roots, or, when the host is given `--tls-ca-file`, against
//! that CA alone (a private CA, as Redis deployments often use).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

/// How a guest's Redis connection (outbound Redis, a key-value store on Redis) waits: with no
/// timeout of its own, as in Spin. redis-rs would otherwise fail any command not answered
/// within 500 ms (a server busy for a moment, a slow script); the call is bounded by its
/// handler's `handler_timeout` instead, which ends it.
pub fn guest_call_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(None)
}

/// [`guest_call_config`] for a connection shared by every instance (a key-value store on
/// Redis).
pub fn guest_call_manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(None)
}

/// How `rediss://` servers are trusted.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// A CA certificate (PEM) to trust instead of the public roots.
    ca: Option<Arc<Vec<u8>>>,
}

impl RedisTls {
    /// Trusts the CA certificate(s) in the PEM file at `path`.
    pub fn with_ca_file(path: &Path) -> anyhow::Result<Self> {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading the TLS CA file {}", path.display()))?;
        anyhow::ensure!(
            String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----"),
            "the TLS CA file {} holds no PEM certificate",
            path.display()
        );
        Ok(RedisTls {
            ca: Some(Arc::new(pem)),
        })
    }

    /// The CA certificate(s) given, as PEM; outbound HTTPS trusts them too.
    pub fn ca_pem(&self) -> Option<Arc<Vec<u8>>> {
        self.ca.clone()
    }

    /// A client for `address`; with a CA file, a `rediss://` one trusts that CA.
    pub fn client(&self, address: &str) -> redis::RedisResult<redis::Client> {
        let encoded = encode_userinfo(address);
        let address: &str = &encoded;
        match &self.ca {
            Some(ca) if address.starts_with("rediss://") => redis::Client::build_with_tls(
                address,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.to_vec()),
                },
            ),
            _ => redis::Client::open(address),
        }
    }
}

/// `address` with the characters of its user information that a URL parser would take for the
/// end of it (`/`, `?`, `#`, `@`, ...) percent-encoded, so that a password holding them (as
/// base64 keys often do) reaches the server as written. `%` is kept: an address whose password
/// is already encoded is unchanged.
fn encode_userinfo(address: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = address.split_once("://") else {
        return address.into();
    };
    let (Some(userinfo), after) = crate::allowed_hosts::split_userinfo(rest) else {
        return address.into();
    };
    let safe = |byte: u8| byte.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:".contains(&byte);
    if userinfo.bytes().all(safe) {
        return address.into();
    }
    let mut encoded = String::with_capacity(userinfo.len() * 3);
    for byte in userinfo.bytes() {
        if safe(byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{scheme}://{encoded}@{after}").into()
}

#[cfg(test)]
mod userinfo_tests {
    use super::*;

    #[test]
    fn a_password_holding_url_delimiters_is_encoded_for_the_client() {
        assert_eq!(
            encode_userinfo("redis://app:ab/c?d#e@cache:6380/2"),
            "redis://app:ab%2Fc%3Fd%23e@cache:6380/2"
        );
        assert_eq!(
            encode_userinfo("redis://:p%2Fw@cache:6380"),
            "redis://:p%2Fw@cache:6380"
        );
        assert_eq!(
            encode_userinfo("redis://cache:6379/0"),
            "redis://cache:6379/0"
        );
        let client = RedisTls::default()
            .client("redis://app:ab/c?d#e@cache:6380/2")
            .unwrap();
        let info = client.get_connection_info();
        assert_eq!(info.redis_settings().password(), Some("ab/c?d#e"));
    }
}
