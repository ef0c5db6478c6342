//! `allowed_outbound_hosts`: which addresses a component may connect to, in Spin's syntax.
//!
//! An entry is `scheme://host:port`. Each part may be `*`; a host may be `*.example.com`; a port
//! may be a range `6379..6390`. Without a port, the scheme's default applies (6379 for `redis`
//! and `rediss`). `{{ var }}` expressions are rendered at start-up, before parsing.

use std::fmt;

/// The parsed entries of one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<AllowedHost>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain, stored as `.example.com`.
    Suffix(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

/// A parsed address a guest asks to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "redis" | "rediss" => Some(6379),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Splits `scheme://[user[:password]@]host[:port][/path]` into its parts; the credentials and
/// path are dropped.
fn split(text: &str) -> Result<(&str, &str, Option<&str>), String> {
    let (scheme, rest) = text.split_once("://").ok_or_else(|| {
        let shown = redact(text);
        format!("\"{shown}\" has no scheme: write e.g. \"redis://{shown}\"")
    })?;
    let (_, after_userinfo) = split_userinfo(rest);
    let host_port = after_userinfo
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("\"{}\": unclosed `[` in the host", redact(text)))?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(format!("\"{}\" has no host", redact(text)));
    }
    Ok((scheme, host, port))
}

/// What follows a URL's `scheme://`, split into its user information (`user:password`, before
/// the last `@`) and the rest (host, port, path). The last `@` and not the first `/`: a
/// password may hold `/`, `?` or `#` (base64 keys often do), and `@` cannot be in a host.
pub fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    match rest.rsplit_once('@') {
        Some((userinfo, after)) => (Some(userinfo), after),
        None => (None, rest),
    }
}

impl AllowedHosts {
    /// Parses rendered entries; an error names the entry and says what is wrong.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| AllowedHost::parse(entry.as_ref()))
            .collect::<Result<_, _>>()
            .map(AllowedHosts)
    }

    /// One entry of Spin's older `allowed_http_hosts` as the `allowed_outbound_hosts` entries
    /// Spin converts it to: `example.com:8080` (or `https://example.com:8080`) allows
    /// `http://` and `https://` to that host and port; `insecure:allow-all` allows any HTTP
    /// host; `self` (an HTTP app calling itself) has no meaning here and converts to nothing.
    pub fn from_allowed_http_host(entry: &str) -> Result<Vec<String>, String> {
        match entry {
            "insecure:allow-all" => return Ok(vec!["http://*:*".into(), "https://*:*".into()]),
            "self" => return Ok(Vec::new()),
            _ => {}
        }
        let url = if entry.contains("//") {
            url::Url::parse(entry)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https"))
        } else {
            url::Url::parse(&format!("http://{entry}")).ok()
        }
        .ok_or_else(|| {
            format!("\"{entry}\" is not a host or host:port (e.g. \"api.example.com\")")
        })?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("\"{entry}\" has no host name"))?;
        if url.path().len() > 1 {
            return Err(format!(
                "\"{entry}\" has a path: give a host and optional port only"
            ));
        }
        let port = url
            .port()
            .map(|port| format!(":{port}"))
            .unwrap_or_default();
        Ok(vec![
            format!("http://{host}{port}"),
            format!("https://{host}{port}"),
        ])
    }

    /// Whether `address` is allowed.
    pub fn allows(&self, address: &Address) -> bool {
        self.0.iter().any(|allowed| allowed.allows(address))
    }
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<Self, String> {
        let (scheme, host, port) = split(entry)?;
        let scheme_pattern = (scheme != "*").then(|| scheme.to_ascii_lowercase());
        let host = match host {
            "*" => HostPattern::Any,
            _ => match host.strip_prefix("*.") {
                Some(domain) => HostPattern::Suffix(format!(".{}", domain.to_ascii_lowercase())),
                None => HostPattern::Exact(host.to_ascii_lowercase()),
            },
        };
        let port = match port {
            Some("*") => PortPattern::Any,
            Some(range) if range.contains("..") => {
                let (low, high) = range.split_once("..").unwrap_or_default();
                let parse = |text: &str| {
                    text.parse::<u16>().map_err(|_| {
                        format!("\"{entry}\": `{range}` is not a port range like 6379..6390")
                    })
                };
                PortPattern::Range(parse(low)?, parse(high)?)
            }
            Some(port) => {
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("\"{entry}\": `{port}` is not a port number or `*`"))?;
                PortPattern::Range(port, port)
            }
            None => match default_port(scheme) {
                Some(port) => PortPattern::Range(port, port),
                None => {
                    return Err(format!(
                        "\"{entry}\" has no port and `{scheme}` has no default one: add `:<port>` or `:*`"
                    ));
                }
            },
        };
        Ok(AllowedHost {
            scheme: scheme_pattern,
            host,
            port,
        })
    }

    fn allows(&self, address: &Address) -> bool {
        let scheme = self
            .scheme
            .as_ref()
            .is_none_or(|scheme| *scheme == address.scheme);
        let host = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(host) => *host == address.host,
            HostPattern::Suffix(suffix) => address.host.ends_with(suffix.as_str()),
        };
        let port = match self.port {
            PortPattern::Any => true,
            PortPattern::Range(low, high) => (low..=high).contains(&address.port),
        };
        scheme && host && port
    }
}

impl Address {
    /// Parses an address a guest asks for, such as `redis://user:secret@host:6380/0`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, host, port) = split(text)?;
        let scheme = scheme.to_ascii_lowercase();
        let port = match port {
            Some(port) => port
                .parse()
                .map_err(|_| format!("`{port}` is not a port number"))?,
            None => default_port(&scheme)
                .ok_or_else(|| format!("`{scheme}` has no default port; add one"))?,
        };
        Ok(Address {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// `address` with any password replaced by `***`, for logs.
pub fn redact(address: &str) -> String {
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        // Written without a scheme by mistake, it may still hold a password.
        None => (String::new(), address),
    };
    match split_userinfo(rest) {
        (Some(userinfo), after) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_owned()
            };
            format!("{scheme}{masked}@{after}")
        }
        (None, _) => address.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allowed_http_host_allows_http_and_https_to_it() {
        assert_eq!(
            AllowedHosts::from_allowed_http_host("api.example.com:8080").unwrap(),
            [
                "http://api.example.com:8080",
                "https://api.example.com:8080"
            ]
        );
    }

    fn allows(entries: &[&str], address: &str) -> bool {
        AllowedHosts::parse(entries)
            .unwrap()
            .allows(&Address::parse(address).unwrap())
    }

    #[test]
    fn exact_entries_match_scheme_host_and_port() {
        assert!(allows(
            &["redis://127.0.0.1:6379"],
            "redis://127.0.0.1:6379"
        ));
        assert!(allows(&["redis://127.0.0.1:6379"], "redis://127.0.0.1"));
        assert!(allows(
            &["redis://127.0.0.1"],
            "redis://user:pw@127.0.0.1:6379/2"
        ));
        assert!(!allows(
            &["redis://127.0.0.1:6379"],
            "redis://127.0.0.1:6380"
        ));
        assert!(!allows(
            &["redis://127.0.0.1:6379"],
            "rediss://127.0.0.1:6379"
        ));
        assert!(!allows(
            &["redis://127.0.0.1:6379"],
            "redis://10.0.0.1:6379"
        ));
        assert!(!allows(&[], "redis://127.0.0.1:6379"));
    }

    #[test]
    fn wildcards_subdomains_and_ranges() {
        assert!(allows(&["*://*:*"], "rediss://anything.example:1"));
        assert!(allows(&["redis://*:6379"], "redis://cache.internal:6379"));
        assert!(allows(&["redis://localhost:*"], "redis://localhost:7000"));
        assert!(allows(
            &["redis://*.example.com"],
            "redis://cache.example.com"
        ));
        assert!(!allows(&["redis://*.example.com"], "redis://example.com"));
        assert!(allows(
            &["redis://localhost:7000..7010"],
            "redis://localhost:7005"
        ));
        assert!(!allows(
            &["redis://localhost:7000..7010"],
            "redis://localhost:7011"
        ));
        assert!(allows(&["redis://[::1]:6379"], "redis://[::1]:6379"));
    }

    #[test]
    fn malformed_entries_say_what_is_wrong() {
        assert_eq!(
            AllowedHosts::parse(&["localhost:6379"]).unwrap_err(),
            "\"localhost:6379\" has no scheme: write e.g. \"redis://localhost:6379\""
        );
        assert_eq!(
            AllowedHosts::parse(&["redis://localhost:port"]).unwrap_err(),
            "\"redis://localhost:port\": `port` is not a port number or `*`"
        );
        assert_eq!(
            AllowedHosts::parse(&["mqtt://broker"]).unwrap_err(),
            "\"mqtt://broker\" has no port and `mqtt` has no default one: add `:<port>` or `:*`"
        );
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("rediss://:secret@host"), "rediss://:***@host");
        assert_eq!(redact("redis://token@host"), "redis://***@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn a_password_holding_slash_question_mark_or_hash_is_redacted_and_the_host_found() {
        let address = "redis://app:ab/c?d#e+f=@cache.internal:6380/2";
        assert_eq!(redact(address), "redis://app:***@cache.internal:6380/2");
        assert_eq!(
            split(address).unwrap(),
            ("redis", "cache.internal", Some("6380"))
        );
        assert!(allows(&["redis://cache.internal:6380"], address));
        let error = split("cache:pa/ss@").unwrap_err();
        assert!(!error.contains("pa/ss"), "{error}");
    }
}
