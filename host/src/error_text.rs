//! Error messages as users read them.

use std::fmt::Write;

/// Renders an error and its causes on one line, `outer: cause: root`, like `{:#}`, but leaves out
/// a cause whose text the line already holds.
///
/// Some errors (the redis crate's I/O errors among them) print their source as part of their own
/// message and report it as `source()` too, which `{:#}` would show twice:
/// `connecting: Connection refused (os error 111): Connection refused (os error 111)`.
///
/// `anyhow::Error::new(io).context("connecting")`, where `io` reads "connection refused", is
/// `connecting: connection refused` (the unit tests below hold it).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        let _ = write!(line, "{text}");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_redis_io_error_names_its_cause_once() {
        // ECONNREFUSED on Linux; the message is the OS's own, as a real refused connection has.
        let refused = || std::io::Error::from_raw_os_error(111);
        let redis_error = redis::RedisError::from(refused());
        let error = anyhow::Error::new(redis_error).context("connecting");
        let line = one_line(&error);
        assert!(line.starts_with("connecting: "), "{line}");
        assert_eq!(line.matches(&refused().to_string()).count(), 1, "{line}");
    }

    #[test]
    fn an_io_error_under_a_context_reads_as_one_line() {
        let io = std::io::Error::other("connection refused");
        let error = anyhow::Error::new(io).context("connecting");
        assert_eq!(one_line(&error), "connecting: connection refused");
    }

    #[test]
    fn distinct_causes_are_all_shown_in_order() {
        let error = anyhow::anyhow!("root").context("middle").context("outer");
        assert_eq!(one_line(&error), "outer: middle: root");
    }
}
