//! Rate limiting with Synapse's semantics (`synapse/api/ratelimiting.py`): one leaky
//! bucket per key (a user ID, a client IP, a room ID) that drains at `per_second` actions
//! a second and holds at most `burst_count` actions. An action is allowed while the bucket
//! holds fewer than `burst_count - 1` actions' worth; a refused one gets `retry_after_ms`,
//! the time until the bucket has drained enough for one more.
//!
//! The logic is pure: every call takes the time (seconds on a monotonic clock), so the
//! unit tests drive it with an invented clock. Buckets that have drained completely carry
//! no information and are dropped, so the map only holds keys active in the last
//! `burst_count / per_second` seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::{Error, Result};

/// A rate: `per_second` actions a second on average, bursts of `burst_count`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_second: f64,
    pub burst_count: f64,
}

impl Limit {
    pub const fn new(per_second: f64, burst_count: f64) -> Limit {
        Limit { per_second, burst_count }
    }
}

/// The `rc_*` settings, with Synapse's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitConfig {
    pub message: Limit,
    pub registration: Limit,
    pub login_address: Limit,
    pub login_account: Limit,
    pub login_failed_attempts: Limit,
    pub joins_local: Limit,
    pub joins_remote: Limit,
    pub invites_per_room: Limit,
    pub invites_per_user: Limit,
    pub invites_per_issuer: Limit,
    pub room_creation: Limit,
    pub media_create: Limit,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            message: Limit::new(0.2, 10.0),
            registration: Limit::new(0.17, 3.0),
            login_address: Limit::new(0.17, 3.0),
            login_account: Limit::new(0.17, 3.0),
            login_failed_attempts: Limit::new(0.17, 3.0),
            joins_local: Limit::new(0.1, 10.0),
            joins_remote: Limit::new(0.01, 10.0),
            invites_per_room: Limit::new(0.3, 10.0),
            invites_per_user: Limit::new(0.003, 5.0),
            invites_per_issuer: Limit::new(0.5, 5.0),
            room_creation: Limit::new(0.05, 10.0),
            media_create: Limit::new(10.0, 50.0),
        }
    }
}

/// One key's bucket: `count` actions counted since `start` (seconds).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    count: f64,
    start: f64,
    per_second: f64,
}

impl Bucket {
    /// When every counted action has drained away.
    fn empty_at(&self) -> f64 {
        if self.per_second > 0.0 {
            self.start + self.count / self.per_second
        } else {
            f64::INFINITY
        }
    }
}

/// How often (seconds) the map is swept for drained buckets, and the size that forces a
/// sweep sooner.
const PRUNE_EVERY_S: f64 = 60.0;
const PRUNE_ABOVE: usize = 10_000;

/// The `retry_after_ms` of a limit that never drains (`per_second: 0`).
const NEVER_MS: u64 = 24 * 3600 * 1000;

/// The buckets of one kind of action (`rc_message`, `rc_login.address`, ...).
#[derive(Debug)]
pub struct Limiter {
    inner: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    map: HashMap<String, Bucket>,
    last_prune: f64,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new()
    }
}

impl Limiter {
    pub fn new() -> Limiter {
        Limiter { inner: Mutex::new(Buckets::default()) }
    }

    /// May `key` act now? `Ok` or `Err(retry_after_ms)`. With `update` an allowed action
    /// is counted; without, this only looks (Synapse's `update=False`).
    pub fn check_at(&self, key: &str, limit: Limit, update: bool, now: f64) -> Result<(), u64> {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if now - b.last_prune >= PRUNE_EVERY_S || b.map.len() > PRUNE_ABOVE {
            b.map.retain(|_, bucket| bucket.empty_at() > now);
            b.last_prune = now;
        }
        let (mut count, mut start) = match b.map.get(key) {
            Some(k) => (k.count, k.start),
            None => (0.0, now),
        };
        let mut performed = count - (now - start) * limit.per_second;
        if performed < 0.0 {
            // Everything has drained: forgive it all and start afresh.
            performed = 0.0;
            count = 0.0;
            start = now;
        }
        let allowed = performed <= limit.burst_count - 1.0;
        if allowed {
            count += 1.0;
        }
        if update {
            b.map.insert(key.to_string(), Bucket { count, start, per_second: limit.per_second });
        }
        if allowed {
            return Ok(());
        }
        if limit.per_second <= 0.0 {
            // Never drains, so there is no true retry time (Synapse has none either); a day
            // keeps clients from hammering without overflowing JavaScript's integers.
            return Err(NEVER_MS);
        }
        let allowed_at = (start + (count - limit.burst_count + 1.0) / limit.per_second).max(now);
        Err(((allowed_at - now) * 1000.0).ceil() as u64)
    }

    /// Count an action without asking whether it is allowed (Synapse's `record_action`).
    pub fn record_at(&self, key: &str, limit: Limit, now: f64) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (mut count, mut start) = match b.map.get(key) {
            Some(k) => (k.count, k.start),
            None => (0.0, now),
        };
        if count - (now - start) * limit.per_second < 0.0 {
            count = 0.0;
            start = now;
        }
        b.map.insert(
            key.to_string(),
            Bucket { count: count + 1.0, start, per_second: limit.per_second },
        );
    }

    /// How many buckets are held (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every limiter the server applies, built from the config.
#[derive(Debug)]
pub struct RateLimits {
    pub config: RateLimitConfig,
    /// `rc_disabled`: nothing is limited.
    pub disabled: bool,
    base: Instant,
    pub message: Limiter,
    pub registration: Limiter,
    pub login_address: Limiter,
    pub login_account: Limiter,
    pub login_failed_attempts: Limiter,
    pub joins_local: Limiter,
    pub joins_remote: Limiter,
    pub invites_per_room: Limiter,
    pub invites_per_user: Limiter,
    pub invites_per_issuer: Limiter,
    pub room_creation: Limiter,
    pub media_create: Limiter,
}

impl RateLimits {
    pub fn new(config: RateLimitConfig, disabled: bool) -> RateLimits {
        RateLimits {
            config,
            disabled,
            base: Instant::now(),
            message: Limiter::new(),
            registration: Limiter::new(),
            login_address: Limiter::new(),
            login_account: Limiter::new(),
            login_failed_attempts: Limiter::new(),
            joins_local: Limiter::new(),
            joins_remote: Limiter::new(),
            invites_per_room: Limiter::new(),
            invites_per_user: Limiter::new(),
            invites_per_issuer: Limiter::new(),
            room_creation: Limiter::new(),
            media_create: Limiter::new(),
        }
    }

    fn now(&self) -> f64 {
        self.base.elapsed().as_secs_f64()
    }

    /// 429 `M_LIMIT_EXCEEDED` when `key` may not act now; counts the action when `update`.
    pub fn check(&self, limiter: &Limiter, key: &str, limit: Limit, update: bool) -> Result<()> {
        if self.disabled {
            return Ok(());
        }
        limiter
            .check_at(key, limit, update, self.now())
            .map_err(|ms| Error::LimitExceeded("Too Many Requests".into(), ms))
    }

    /// Count an action that has happened (a failed login, a registration).
    pub fn record(&self, limiter: &Limiter, key: &str, limit: Limit) {
        if !self.disabled {
            limiter.record_at(key, limit, self.now());
        }
    }
}

impl crate::app::App {
    /// Limits an action by an authenticated user, as Synapse does: server admins are not
    /// limited, nor is a user whose admin-set override is 0 messages a second; otherwise
    /// every `(limiter, limit, key)` must allow the action before any is counted. With
    /// `is_message` (`rc_message`) the override's own rate and burst replace the config's.
    pub async fn ratelimit_user(
        &self,
        user: &crate::http::auth::User,
        checks: &[(&Limiter, Limit, &str)],
        is_message: bool,
    ) -> Result<()> {
        let rl = &self.ratelimits;
        if rl.disabled || user.is_admin {
            return Ok(());
        }
        // An appservice registered with `rate_limited: false` is not limited (as Synapse).
        if let Some(id) = &user.appservice
            && self.appservices.by_id(id).is_some_and(|a| !a.reg.rate_limited)
        {
            return Ok(());
        }
        let uid = user.user_id.clone();
        let o = self.db.read(move |c| crate::store::ratelimit_overrides::for_user(c, &uid)).await?;
        let over = match o {
            Some(o) if o.is_unlimited() => return Ok(()),
            Some(o) if is_message => {
                Some(Limit::new(o.messages_per_second as f64, o.burst_count as f64))
            }
            _ => None,
        };
        for (limiter, limit, key) in checks {
            rl.check(limiter, key, over.unwrap_or(*limit), false)?;
        }
        for (limiter, limit, key) in checks {
            rl.check(limiter, key, over.unwrap_or(*limit), true)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limit = Limit::new(0.1, 3.0);

    #[test]
    fn burst_then_refused_with_retry_time() {
        let l = Limiter::new();
        for _ in 0..3 {
            assert_eq!(l.check_at("a", L, true, 0.0), Ok(()));
        }
        // Three actions held, one drains every 10 s: the next is allowed at t=10.
        assert_eq!(l.check_at("a", L, true, 0.0), Err(10_000));
        assert_eq!(l.check_at("a", L, true, 4.0), Err(6_000));
        // Other keys have their own bucket.
        assert_eq!(l.check_at("b", L, true, 4.0), Ok(()));
        assert_eq!(l.check_at("a", L, true, 10.0), Ok(()));
        assert_eq!(l.check_at("a", L, true, 10.0), Err(10_000));
        // Long idle: everything forgiven, a full burst again.
        for _ in 0..3 {
            assert_eq!(l.check_at("a", L, true, 100.0), Ok(()));
        }
        assert!(l.check_at("a", L, true, 100.0).is_err());
    }

    #[test]
    fn refusals_are_not_counted() {
        let l = Limiter::new();
        let fast = Limit::new(10.0, 1.0);
        assert_eq!(l.check_at("a", fast, true, 0.0), Ok(()));
        for _ in 0..100 {
            assert_eq!(l.check_at("a", fast, true, 0.05), Err(50));
        }
        assert_eq!(l.check_at("a", fast, true, 0.1), Ok(()));
    }

    #[test]
    fn look_without_update_counts_nothing() {
        let l = Limiter::new();
        for _ in 0..10 {
            assert_eq!(l.check_at("a", L, false, 0.0), Ok(()));
        }
        assert!(l.is_empty());
        for _ in 0..3 {
            l.record_at("a", L, 0.0);
        }
        assert_eq!(l.check_at("a", L, false, 0.0), Err(10_000));
        assert_eq!(l.check_at("a", L, false, 10.0), Ok(()));
    }

    #[test]
    fn zero_rate_never_drains() {
        let l = Limiter::new();
        let z = Limit::new(0.0, 1.0);
        assert_eq!(l.check_at("a", z, true, 0.0), Ok(()));
        assert_eq!(l.check_at("a", z, true, 1e6), Err(NEVER_MS));
    }

    #[test]
    fn drained_buckets_are_dropped() {
        let l = Limiter::new();
        for i in 0..500 {
            l.check_at(&format!("k{i}"), L, true, 0.0).expect("first action");
        }
        assert_eq!(l.len(), 500);
        // One action drains in 10 s; at t=61 the sweep keeps only the fresh key.
        l.check_at("fresh", L, true, 61.0).expect("allowed");
        assert_eq!(l.len(), 1);
        // A bucket still holding actions survives a sweep.
        for _ in 0..3 {
            l.check_at("busy", Limit::new(0.01, 3.0), true, 62.0).expect("burst");
        }
        l.check_at("x", L, true, 125.0).expect("allowed");
        assert_eq!(l.len(), 2, "busy (drains at t=362) and x");
    }

    #[test]
    fn too_many_keys_force_a_sweep() {
        let l = Limiter::new();
        for i in 0..=PRUNE_ABOVE {
            l.check_at(&format!("k{i}"), L, true, 1.0).expect("allowed");
        }
        assert_eq!(l.len(), PRUNE_ABOVE + 1);
        l.check_at("late", L, true, 20.0).expect("allowed");
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn disabled_limits_nothing() {
        let r = RateLimits::new(RateLimitConfig::default(), true);
        for _ in 0..100 {
            r.check(&r.message, "a", Limit::new(0.0, 0.0), true).expect("disabled");
        }
        let r = RateLimits::new(RateLimitConfig::default(), false);
        let e = r.check(&r.message, "a", Limit::new(0.001, 0.0), true).expect_err("limited");
        assert_eq!(e.errcode(), "M_LIMIT_EXCEEDED");
    }
}
