//! One way to retry: exponential backoff with jitter, an optional budget of attempts, and a classifier that
//! tells, for each error, whether another attempt can help.
//!
//! Every retry in Sentra goes through [`retry`]: store writes in `sentra run` (retried until shutdown while the
//! store is unavailable), the audit chainer's writes, and SOAR deliveries (a budget of attempts, honouring a
//! receiver's `Retry-After`). Each caller brings its own classifier; the waiting, the jitter and the reaction
//! to shutdown are the same everywhere.

#![warn(missing_docs)]

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Exponential backoff with "equal jitter": the wait doubles from `initial` up to `max`, and half of each wait
/// is random, so many callers failing at once spread their retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait (before jitter).
    pub initial: Duration,
    /// The longest wait (before jitter).
    pub max: Duration,
}

impl Backoff {
    /// Store writes: 200 ms doubling to 30 s.
    pub const STORES: Backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(30),
    };

    /// The wait after `failed` failed attempts (1 for the first failure): between half and all of
    /// `initial · 2^(failed-1)`, capped at `max`.
    pub fn delay(&self, failed: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1 << failed.saturating_sub(1).min(20))
            .min(self.max);
        exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
    }
}

/// What a classifier says of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Another attempt may succeed; wait the backoff.
    Retry,
    /// Another attempt may succeed after this wait (a receiver's `Retry-After`), capped by the backoff's `max`.
    RetryAfter(Duration),
    /// Retrying cannot help.
    Stop,
}

impl Verdict {
    /// [`Verdict::Retry`] when `transient`, else [`Verdict::Stop`]: for errors that only know whether they
    /// are transient.
    pub fn retry_if(transient: bool) -> Self {
        if transient {
            Verdict::Retry
        } else {
            Verdict::Stop
        }
    }
}

/// How long to keep trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The waits between attempts.
    pub backoff: Backoff,
    /// At most this many attempts; `None` retries until shutdown.
    pub max_attempts: Option<u32>,
}

impl Policy {
    /// Retry with `backoff` until the operation succeeds, fails for good, or shutdown is requested.
    pub const fn until_shutdown(backoff: Backoff) -> Self {
        Self {
            backoff,
            max_attempts: None,
        }
    }
}

/// Why [`retry`] gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure<E> {
    /// The classifier said retrying cannot help.
    Permanent(E),
    /// The budget of attempts ran out; the last error.
    Exhausted(E),
    /// Shutdown was requested while waiting to retry.
    Interrupted,
}

/// Runs `attempt` (given the 1-based attempt number) until it succeeds, `classify` says an error is
/// permanent, the policy's budget runs out, or `shutdown` turns true while waiting. `on_retry` sees every
/// error that will be retried with the attempt number and the wait, for logs.
pub async fn retry<T, E, F: Future<Output = Result<T, E>>>(
    policy: &Policy,
    shutdown: &mut watch::Receiver<bool>,
    mut attempt: impl FnMut(u32) -> F,
    classify: impl Fn(&E) -> Verdict,
    mut on_retry: impl FnMut(u32, &E, Duration),
) -> Result<T, Failure<E>> {
    let mut number = 1;
    loop {
        let e = match attempt(number).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let wait = match classify(&e) {
            Verdict::Stop => return Err(Failure::Permanent(e)),
            _ if policy.max_attempts.is_some_and(|max| number >= max) => {
                return Err(Failure::Exhausted(e))
            }
            Verdict::Retry => policy.backoff.delay(number),
            Verdict::RetryAfter(after) => after.min(policy.backoff.max),
        };
        on_retry(number, &e, wait);
        if interrupted(tokio::time::sleep(wait), shutdown).await {
            return Err(Failure::Interrupted);
        }
        number += 1;
    }
}

/// Waits for `sleep`; true when shutdown was requested first (or the sender is gone).
async fn interrupted(
    sleep: impl Future<Output = ()>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = sleep => false,
        _ = shutdown.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Backoff = Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(4),
    };

    #[test]
    fn delay_doubles_within_jitter_and_stops_at_max() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        for _ in 0..100 {
            let first = b.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = b.delay(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(b.delay(40) <= Duration::from_millis(1000));
            assert!(b.delay(40) >= Duration::from_millis(500));
        }
    }

    #[tokio::test]
    async fn retries_transient_errors_until_success() {
        let (_tx, mut rx) = watch::channel(false);
        let mut retried = Vec::new();
        let r: Result<u32, Failure<&str>> = retry(
            &Policy::until_shutdown(FAST),
            &mut rx,
            |n| async move {
                if n < 4 {
                    Err("down")
                } else {
                    Ok(n)
                }
            },
            |_| Verdict::Retry,
            |n, _, _| retried.push(n),
        )
        .await;
        assert_eq!(r, Ok(4));
        assert_eq!(retried, [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_permanent_error_is_not_retried() {
        let (_tx, mut rx) = watch::channel(false);
        let calls = std::cell::Cell::new(0);
        let r: Result<(), _> = retry(
            &Policy::until_shutdown(FAST),
            &mut rx,
            |_| {
                calls.set(calls.get() + 1);
                async { Err("refused") }
            },
            |_| Verdict::Stop,
            |_, _, _| {},
        )
        .await;
        assert_eq!(r, Err(Failure::Permanent("refused")));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn the_budget_bounds_the_attempts() {
        let (_tx, mut rx) = watch::channel(false);
        let policy = Policy {
            backoff: FAST,
            max_attempts: Some(3),
        };
        let calls = std::cell::Cell::new(0);
        let r: Result<(), _> = retry(
            &policy,
            &mut rx,
            |n| {
                calls.set(calls.get() + 1);
                async move { Err(n) }
            },
            |_| Verdict::Retry,
            |_, _, _| {},
        )
        .await;
        assert_eq!(r, Err(Failure::Exhausted(3)));
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test]
    async fn retry_after_is_honoured_up_to_the_cap() {
        let (_tx, mut rx) = watch::channel(false);
        let mut waits = Vec::new();
        let policy = Policy::until_shutdown(Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        });
        let _: Result<(), _> = retry(
            &policy,
            &mut rx,
            |n| async move {
                if n < 3 {
                    Err(n)
                } else {
                    Ok(())
                }
            },
            |n| Verdict::RetryAfter(Duration::from_millis(if *n == 1 { 2 } else { 60 })),
            |_, _, wait| waits.push(wait),
        )
        .await;
        assert_eq!(waits, [Duration::from_millis(2), Duration::from_millis(5)]);
    }

    #[tokio::test]
    async fn shutdown_interrupts_the_wait() {
        let (tx, mut rx) = watch::channel(false);
        let policy = Policy::until_shutdown(Backoff {
            initial: Duration::from_secs(3600),
            max: Duration::from_secs(3600),
        });
        let r: Result<(), _> = retry(
            &policy,
            &mut rx,
            |_| async { Err("down") },
            |_| Verdict::Retry,
            |_, _, _| {
                let _ = tx.send(true);
            },
        )
        .await;
        assert_eq!(r, Err(Failure::Interrupted));
    }
}
