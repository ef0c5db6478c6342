//! `max_per_second`: how many events a trigger starts per second, on this host (a token bucket
//! here) or, with `max_per_second_shared`, across every host running the app (the same bucket,
//! kept in the trigger's Redis server and taken from by one script).
//!
//! A bucket holds at most a tenth of a second's events (at least one), so a trigger that was idle
//! starts no more than that at once, and the rate over any second stays within about 10 % of
//! the limit. Written here rather than taken from `governor`: a stream consumer asks for "up to
//! n" (what one `XREADGROUP` may read) and gives back what it did not read, which an
//! all-or-nothing `check_n` does not answer.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::allowed_hosts::redact;
use crate::limits::MAX_PER_SECOND_RANGE;
use crate::redis_client::RedisTls;
use crate::validation::{ManifestError, Validation};

/// `max_per_second` (with `max_per_second_shared`), validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxPerSecond {
    /// Events started per second, at most.
    pub per_second: f64,
    /// Whether every host running the app shares it (through the trigger's Redis server);
    /// `false`: each host has its own.
    pub shared: bool,
}

/// `max_per_second` (in [`MAX_PER_SECOND_RANGE`]) and `max_per_second_shared`, which needs it.
pub(crate) fn validate_max_per_second(
    per_second: Option<f64>,
    shared: Option<bool>,
    location: &str,
    validation: &Validation,
) -> Result<Option<MaxPerSecond>, ManifestError> {
    let Some(per_second) = per_second else {
        if shared.is_some() {
            return Err(validation.error(
                &format!("{location}.max_per_second_shared"),
                "applies to a `max_per_second`: add `max_per_second = 50` or remove it".into(),
            ));
        }
        return Ok(None);
    };
    let at = format!("{location}.max_per_second");
    if !(per_second.is_finite() && per_second > 0.0) {
        return Err(validation.error(
            &at,
            format!("{per_second} is not a positive number: `max_per_second = 50` starts at most 50 events a second"),
        ));
    }
    Ok(Some(MaxPerSecond {
        per_second: validation.in_range(per_second, &MAX_PER_SECOND_RANGE, &at)?,
        shared: shared.unwrap_or(false),
    }))
}

/// How long a host waits before asking again when the shared bucket cannot be reached.
const UNREACHABLE_RETRY: Duration = Duration::from_millis(250);

/// Takes up to `ARGV[3]` tokens (or, negative, gives them back) from the bucket `KEYS[1]`, which
/// refills at `ARGV[1]` per second up to `ARGV[2]`; the server's clock times it, so hosts whose
/// clocks differ share it fairly. Returns `{granted, ms to wait for one}`.
const TAKE: &str = r"
local rate, capacity, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or capacity
local at = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate / 1000)
local granted = 0
if wanted < 0 then
  tokens = math.min(capacity, tokens - wanted)
else
  granted = math.min(wanted, math.floor(tokens))
  tokens = tokens - granted
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
if granted > 0 or wanted <= 0 then return {granted, 0} end
return {0, math.ceil((1 - tokens) * 1000 / rate)}
";

/// What a take answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// This many events may start now (at least one).
    Granted(usize),
    /// None may start before this long.
    Wait(Duration),
}

/// A trigger's `max_per_second`.
pub struct RateLimit {
    per_second: f64,
    capacity: f64,
    local: Mutex<Bucket>,
    shared: Option<SharedBucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The bucket every host takes from, in Redis.
struct SharedBucket {
    client: redis::Client,
    connection: OnceCell<redis::aio::ConnectionManager>,
    key: String,
    /// The server's address with any password hidden, for logs.
    shown: String,
}

impl RateLimit {
    /// `per_second` on this host.
    pub fn per_host(per_second: f64) -> Self {
        let capacity = (per_second / 10.0).max(1.0);
        RateLimit {
            per_second,
            capacity,
            local: Mutex::new(Bucket {
                tokens: capacity,
                at: Instant::now(),
            }),
            shared: None,
        }
    }

    /// `per_second` across every host, through the bucket at `key` on `client`'s server.
    pub fn shared(per_second: f64, client: redis::Client, key: String, shown: String) -> Self {
        RateLimit {
            shared: Some(SharedBucket {
                client,
                connection: OnceCell::new(),
                key,
                shown,
            }),
            ..RateLimit::per_host(per_second)
        }
    }

    /// A trigger's limit, if it sets one: shared through `address` (the trigger's server) under
    /// `spin-trigger:rate:<deployment>:<trigger>`, or this host's own.
    pub(crate) fn for_trigger(
        config: Option<MaxPerSecond>,
        address: &str,
        tls: &RedisTls,
        deployment: &str,
        trigger_id: &str,
    ) -> anyhow::Result<Option<std::sync::Arc<Self>>> {
        let Some(config) = config else {
            return Ok(None);
        };
        let limit = if config.shared {
            let client = tls.client(address).with_context(|| {
                format!(
                    "trigger `{trigger_id}`: max_per_second_shared: invalid address {}",
                    redact(address)
                )
            })?;
            RateLimit::shared(
                config.per_second,
                client,
                format!("spin-trigger:rate:{deployment}:{trigger_id}"),
                redact(address),
            )
        } else {
            RateLimit::per_host(config.per_second)
        };
        Ok(Some(std::sync::Arc::new(limit)))
    }

    /// Takes up to `wanted` (at least 1) events' worth.
    pub async fn take_up_to(&self, wanted: usize) -> Take {
        let wanted = wanted.max(1);
        match &self.shared {
            None => self.take_here(wanted),
            Some(shared) => match self.take_shared(shared, wanted as i64).await {
                Ok(take) => take,
                Err(error) => {
                    tracing::warn!(
                        server = %shared.shown,
                        "the shared rate limit cannot be read, so nothing starts until it can: {}",
                        crate::error_text::one_line(&error)
                    );
                    Take::Wait(UNREACHABLE_RETRY)
                }
            },
        }
    }

    /// Gives back what was taken and not used (a read that found fewer entries).
    pub async fn give_back(&self, unused: usize) {
        if unused == 0 {
            return;
        }
        match &self.shared {
            None => {
                let mut bucket = self.bucket();
                bucket.tokens = (bucket.tokens + unused as f64).min(self.capacity);
            }
            Some(shared) => {
                // Lost, the tokens only come back as the bucket refills.
                let _ = self.take_shared(shared, -(unused as i64)).await;
            }
        }
    }

    /// Waits until one event may start; `false` at shutdown.
    pub async fn wait_for_one(&self, shutdown: &CancellationToken) -> bool {
        loop {
            match self.take_up_to(1).await {
                Take::Granted(_) => return true,
                Take::Wait(wait) => tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(wait) => {}
                },
            }
        }
    }

    /// How long the shared bucket's key outlives its last use: a minute, or twice the time it
    /// takes to fill, so a slow limit (one event a minute or less) keeps its state between
    /// takes instead of starting full again.
    fn idle_expiry_ms(&self) -> u64 {
        let refill_ms = self.capacity / self.per_second * 1000.0;
        (2.0 * refill_ms).ceil().max(60_000.0) as u64
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take_here(&self, wanted: usize) -> Take {
        let mut bucket = self.bucket();
        let now = Instant::now();
        let refilled = now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(self.capacity);
        bucket.at = now;
        let granted = (bucket.tokens.floor() as usize).min(wanted);
        if granted > 0 {
            bucket.tokens -= granted as f64;
            return Take::Granted(granted);
        }
        Take::Wait(Duration::from_secs_f64(
            ((1.0 - bucket.tokens) / self.per_second).max(0.001),
        ))
    }

    async fn take_shared(&self, shared: &SharedBucket, wanted: i64) -> anyhow::Result<Take> {
        let mut connection = shared
            .connection
            .get_or_try_init(|| async {
                // One quick try: while the server is away the caller waits and asks again
                // (`UNREACHABLE_RETRY`), instead of the manager's own retries holding it for
                // tens of seconds.
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_response_timeout(Some(Duration::from_secs(2)))
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                redis::aio::ConnectionManager::new_with_config(shared.client.clone(), config).await
            })
            .await
            .cloned()
            .with_context(|| format!("connecting to {}", shared.shown))?;
        let (granted, wait_ms): (i64, i64) = redis::Script::new(TAKE)
            .key(&shared.key)
            .arg(self.per_second)
            .arg(self.capacity)
            .arg(wanted)
            .arg(self.idle_expiry_ms())
            .invoke_async(&mut connection)
            .await
            .with_context(|| format!("taking from the shared rate limit on {}", shared.shown))?;
        Ok(if granted > 0 || wanted <= 0 {
            Take::Granted(granted.max(0) as usize)
        } else {
            Take::Wait(Duration::from_millis(wait_ms.max(1) as u64))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bucket_holds_a_tenth_of_a_second_and_refills_at_the_rate() {
        let limit = RateLimit::per_host(100.0);
        assert_eq!(
            limit.take_up_to(50).await,
            Take::Granted(10),
            "a burst of 0.1 s"
        );
        let Take::Wait(wait) = limit.take_up_to(1).await else {
            panic!("empty")
        };
        assert!(wait <= Duration::from_millis(10), "{wait:?}");
        limit.give_back(4).await;
        assert_eq!(limit.take_up_to(50).await, Take::Granted(4));
        tokio::time::sleep(Duration::from_millis(55)).await;
        let Take::Granted(refilled) = limit.take_up_to(50).await else {
            panic!("refilled")
        };
        assert!((5..=10).contains(&refilled), "{refilled}");
        let slow = RateLimit::per_host(0.5);
        assert_eq!(slow.take_up_to(3).await, Take::Granted(1), "at least one");
        let Take::Wait(wait) = slow.take_up_to(1).await else {
            panic!("empty")
        };
        assert!(wait > Duration::from_millis(1900), "{wait:?}");
    }

    #[test]
    fn a_shared_bucket_outlives_the_time_it_takes_to_fill() {
        assert_eq!(RateLimit::per_host(100.0).idle_expiry_ms(), 60_000);
        assert_eq!(
            RateLimit::per_host(0.01).idle_expiry_ms(),
            200_000,
            "one token in 100 s"
        );
    }
}
