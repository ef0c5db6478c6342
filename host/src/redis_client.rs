//! Redis clients for every connection the host makes — the triggers' and the guests' outbound
//! ones: plain for `redis://`, TLS for `rediss://`. A `rediss://` server's certificate is
//! checked against the public web roots, or, when the host is given `--tls-ca-file`, against
//! that CA alone (a private CA, as Redis deployments often use).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

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
