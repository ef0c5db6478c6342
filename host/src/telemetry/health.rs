//! Whether the host is ready: every Redis connection its triggers hold is up. Each connection is
//! registered when its trigger is built, down until it first connects, so `/readyz` says "not
//! ready" from the start until every one of them has connected.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// Every connection the triggers hold.
#[derive(Default)]
pub struct Health {
    connections: Mutex<Vec<Arc<ConnectionHealth>>>,
}

impl Health {
    pub fn register(&self, connection: Arc<ConnectionHealth>) {
        self.lock().push(connection);
    }

    /// `Ok` when every connection is up; else the ones that are not.
    pub fn ready(&self) -> Result<(), Vec<String>> {
        let down: Vec<String> = self
            .lock()
            .iter()
            .filter(|connection| !connection.is_up())
            .map(|connection| connection.name.clone())
            .collect();
        if down.is_empty() { Ok(()) } else { Err(down) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ConnectionHealth>>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One Redis connection: its trigger reports when it connects and when it is lost.
pub struct ConnectionHealth {
    /// What `/readyz` names while it is down: the trigger type, triggers and address.
    name: String,
    up: AtomicBool,
    ever_up: AtomicBool,
    connected: Gauge,
    reconnects: Counter,
}

impl ConnectionHealth {
    pub fn new(name: String, connected: Gauge, reconnects: Counter) -> Self {
        ConnectionHealth {
            name,
            up: AtomicBool::new(false),
            ever_up: AtomicBool::new(false),
            connected,
            reconnects,
        }
    }

    /// The connection is up (subscribed, or joined to its group).
    pub fn connected(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            self.connected.set(1);
            if self.ever_up.swap(true, Ordering::AcqRel) {
                self.reconnects.inc();
            }
        }
    }

    /// The connection was lost, or could not be made.
    pub fn lost(&self) {
        self.up.store(false, Ordering::Release);
        self.connected.set(0);
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}
