//! `redis-server`s the tests start on free loopback ports and stop by PID, and the tests' own
//! clients of them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `redis-server` this test started on a free loopback port, stopped by its PID.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// Extra `redis-server` arguments, kept for [`RedisServer::restart`].
    extra_args: Vec<String>,
    /// The default user's password, when the server requires one; the test's own clients
    /// use it.
    password: Option<String>,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("finding a free port")
            .port();
        Self::start_on(port)
    }

    /// Starts a server on `port`, waiting until it accepts connections.
    pub fn start_on(port: u16) -> Self {
        Self::start_with(port, &["--save", "", "--appendonly", "no"])
    }

    /// Starts a server that writes every change to an append-only file in `dir` before it
    /// replies, so a restart (even after SIGKILL) loses nothing.
    pub fn start_persistent(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("finding a free port")
            .port();
        let dir = dir.display().to_string();
        Self::start_with(
            port,
            &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                &dir,
            ],
        )
    }

    /// Starts a server on a free port with `extra_args` besides the defaults (no persistence).
    pub fn start_with_args(extra_args: &[&str]) -> Self {
        let mut args = vec!["--save", "", "--appendonly", "no"];
        args.extend_from_slice(extra_args);
        Self::start_with(free_port(), &args)
    }

    /// Starts a server that requires `password` of the default user and also has the ACL user
    /// `alice` with password `alice_password`.
    pub fn start_with_auth(password: &str, alice_password: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("finding a free port")
            .port();
        let alice = format!(">{alice_password}");
        Self::start_with_password(
            port,
            &[
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                password,
                "--user",
                "alice",
                "on",
                &alice,
                "~*",
                "&*",
                "+@all",
            ],
            Some(password.to_owned()),
        )
    }

    /// Kills the server (SIGKILL) and starts it again on the same port with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        let args: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        *self = Self::start_with_password(self.port, &args, self.password.clone());
    }

    fn start_with(port: u16, extra_args: &[&str]) -> Self {
        Self::start_with_password(port, extra_args, None)
    }

    fn start_with_password(port: u16, extra_args: &[&str], password: Option<String>) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server (scripts/test.sh installs it)");
        let server = RedisServer {
            child: Some(child),
            port,
            extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
            password,
        };
        for _ in 0..200 {
            if let Ok(mut connection) = server.client().get_connection()
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server on port {port} did not start");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A client for the test itself, with the server's password when it has one.
    pub fn client(&self) -> redis::Client {
        let url = match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => self.url(),
        };
        redis::Client::open(url).expect("a valid URL")
    }

    /// Kills the server (SIGKILL, by PID), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Publishes `payload` on `channel`.
    pub fn publish(&self, channel: &str, payload: impl redis::ToRedisArgs) {
        let mut connection = self
            .client()
            .get_connection()
            .expect("connecting to redis-server");
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query::<i64>(&mut connection)
            .expect("PUBLISH");
    }

    /// Waits until `count` clients subscribe to `channel` (or, for a pattern, until `count`
    /// pattern subscriptions exist).
    pub fn wait_for_subscribers(&self, channel: &str, count: i64) {
        let mut connection = self
            .client()
            .get_connection()
            .expect("connecting to redis-server");
        for _ in 0..400 {
            let subscribed: i64 = if channel.contains('*') {
                redis::cmd("PUBSUB")
                    .arg("NUMPAT")
                    .query(&mut connection)
                    .expect("PUBSUB NUMPAT")
            } else {
                let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(channel)
                    .query(&mut connection)
                    .expect("PUBSUB NUMSUB");
                counts.first().map_or(0, |(_, count)| *count)
            };
            if subscribed >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nobody subscribed to {channel}");
    }

    /// Subscribes to `channel`; read with [`Subscriber::next`].
    pub fn subscribe(&self, channel: &str) -> Subscriber {
        let mut connection = self
            .client()
            .get_connection()
            .expect("connecting to redis-server");
        connection
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("setting a read timeout");
        connection
            .send_packed_command(&redis::cmd("SUBSCRIBE").arg(channel).get_packed_command())
            .expect("SUBSCRIBE");
        let _confirmation: redis::Value =
            connection.recv_response().expect("subscription confirmed");
        Subscriber(connection)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("finding a free port")
        .port()
}

/// A test's own subscription, to receive what guests publish.
pub struct Subscriber(redis::Connection);

impl Subscriber {
    /// The next message's payload, as text; panics after 10 s without one.
    pub fn next(&mut self) -> String {
        self.try_next().expect("a message within 10 s")
    }

    /// The next message's payload, as text; `None` after 10 s without one.
    pub fn try_next(&mut self) -> Option<String> {
        let value: redis::Value = self.0.recv_response().ok()?;
        Some(match value {
            redis::Value::Array(parts) | redis::Value::Push { data: parts, .. } => {
                match parts.last() {
                    Some(redis::Value::BulkString(bytes)) => {
                        String::from_utf8_lossy(bytes).into_owned()
                    }
                    other => panic!("unexpected message part {other:?}"),
                }
            }
            other => panic!("unexpected message {other:?}"),
        })
    }

    /// Whether a message arrives within `wait`.
    pub fn nothing_within(&mut self, wait: Duration) -> bool {
        self.0
            .set_read_timeout(Some(wait))
            .expect("setting a read timeout");
        let received = self.0.recv_response();
        self.0
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("setting a read timeout");
        received.is_err()
    }
}
