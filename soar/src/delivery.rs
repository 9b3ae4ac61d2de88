//! Delivering one signal to one destination, as many times as it takes within the budget.
//!
//! Each attempt waits for the destination's rate limiter, then POSTs. 2xx is delivered. 429 waits for the
//! receiver's `Retry-After` (capped by `max_backoff_ms`); 408, 5xx and transport errors back off
//! exponentially with jitter. Any other 4xx means the receiver will never accept this request, so it stops
//! at once. Giving up is an [`Outcome`], not an error: the caller moves the signal to the dead-letter queue.
//! URLs and keys never appear in errors (webhook URLs often embed a token).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sentra_schemas::Signal;
use tokio::sync::watch;

use crate::config::{Destination, DestinationKind, SoarConfig};
use crate::envelope::{envelope, slack_body};
use crate::signing::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered {
        /// Attempts it took.
        attempts: u32,
        /// The final HTTP status.
        status: u16,
    },
    /// The budget ran out, or the receiver refused the request for good.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// What the last attempt got (status and a short excerpt, or the transport error).
        reason: String,
    },
}

/// Shutdown was requested while waiting to retry; the signal is still pending.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("stopped while a delivery was pending; it will be retried on restart")]
pub struct Interrupted;

/// One attempt's result, for the audit trail and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1-based attempt number.
    pub number: u32,
    /// HTTP status, if the receiver answered.
    pub status: Option<u16>,
    /// A short description of the result.
    pub detail: String,
    /// When it was made, epoch microseconds.
    pub at_us: i64,
}

type Mailer = lettre::AsyncSmtpTransport<lettre::Tokio1Executor>;

/// Delivers signals to one destination: its HTTP client (or SMTP transport), rate limiter and retry budget.
pub struct Deliverer {
    destination: Destination,
    client: reqwest::Client,
    mailer: Result<Option<Mailer>, String>,
    limiter: Arc<DefaultDirectRateLimiter>,
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

enum Verdict {
    Done(u16),
    Retry(Option<Duration>, String, Option<u16>),
    Refused(String, u16),
}

impl Deliverer {
    /// A deliverer for `destination` with the budget from `config`.
    pub fn new(destination: Destination, config: &SoarConfig) -> Self {
        let per_second = NonZeroU32::new(destination.rate_per_second.max(1)).expect("at least 1");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .user_agent(crate::envelope::source())
            .build()
            .expect("HTTP client builds");
        let mailer = match destination.kind {
            DestinationKind::Email => Mailer::from_url(&destination.url)
                .map(|b| {
                    Some(
                        b.timeout(Some(Duration::from_secs(config.timeout_secs)))
                            .build(),
                    )
                })
                .map_err(|e| format!("the SMTP URL is not usable: {e}")),
            _ => Ok(None),
        };
        Self {
            destination,
            client,
            mailer,
            limiter: Arc::new(RateLimiter::direct(Quota::per_second(per_second))),
            max_attempts: config.max_attempts.max(1),
            initial_backoff: Duration::from_millis(config.initial_backoff_ms),
            max_backoff: Duration::from_millis(
                config.max_backoff_ms.max(config.initial_backoff_ms),
            ),
        }
    }

    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The request body for `signal` at this destination.
    pub fn body(&self, signal: &Signal) -> Vec<u8> {
        let value = match self.destination.kind {
            DestinationKind::Webhook => envelope(signal),
            DestinationKind::Slack => slack_body(signal),
            DestinationKind::Email => return crate::envelope::chat_text(signal).into_bytes(),
        };
        serde_json::to_vec(&value).expect("JSON serializes")
    }

    /// Delivers `signal`, retrying within the budget; `on_attempt` sees every attempt (for the audit trail).
    pub async fn deliver(
        &self,
        signal: &Signal,
        shutdown: &mut watch::Receiver<bool>,
        mut on_attempt: impl FnMut(&Attempt),
    ) -> Result<Outcome, Interrupted> {
        let body = self.body(signal);
        let mut last = String::new();
        for number in 1..=self.max_attempts {
            tokio::select! {
                _ = self.limiter.until_ready() => {}
                _ = shutdown.changed() => return Err(Interrupted),
            }
            let verdict = self.attempt(signal, &body).await;
            let (status, detail, wait) = match &verdict {
                Verdict::Done(s) => (Some(*s), format!("delivered (HTTP {s})"), None),
                Verdict::Refused(d, s) => (Some(*s), d.clone(), None),
                Verdict::Retry(after, d, s) => (*s, d.clone(), Some(*after)),
            };
            on_attempt(&Attempt {
                number,
                status,
                detail: detail.clone(),
                at_us: sentra_schemas::time::now_us(),
            });
            match verdict {
                Verdict::Done(status) => {
                    return Ok(Outcome::Delivered {
                        attempts: number,
                        status,
                    })
                }
                Verdict::Refused(reason, _) => {
                    return Ok(Outcome::GaveUp {
                        attempts: number,
                        reason,
                    })
                }
                Verdict::Retry(..) => last = detail,
            }
            if number == self.max_attempts {
                break;
            }
            let delay = wait
                .flatten()
                .map(|d| d.min(self.max_backoff))
                .unwrap_or_else(|| self.backoff(number));
            tracing::warn!(
                destination = %self.destination.name,
                signal = %signal.id,
                attempt = number,
                retry_in_ms = delay.as_millis() as u64,
                error = %last,
                "delivery failed; retrying"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return Err(Interrupted),
            }
        }
        Ok(Outcome::GaveUp {
            attempts: self.max_attempts,
            reason: format!(
                "no success after {} attempts; last: {last}",
                self.max_attempts
            ),
        })
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so retries of many signals spread.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(20))
            .min(self.max_backoff);
        exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
    }

    async fn attempt(&self, signal: &Signal, body: &[u8]) -> Verdict {
        if self.destination.kind == DestinationKind::Email {
            return self.mail(signal, body).await;
        }
        let d = &self.destination;
        let mut request = self
            .client
            .post(&d.url)
            .header("Content-Type", "application/json")
            .header("X-Sentra-Signal-Id", &signal.id)
            .body(body.to_vec());
        if !d.api_key.is_empty() {
            request = request.header("X-API-Key", &d.api_key);
        }
        if !d.signing_secret.is_empty() {
            let now = sentra_schemas::time::now_us().div_euclid(1_000_000);
            request = request.header(TIMESTAMP_HEADER, now.to_string()).header(
                SIGNATURE_HEADER,
                sign(d.signing_secret.as_bytes(), now, body),
            );
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Verdict::Retry(None, format!("request failed: {}", e.without_url()), None)
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = response.text().await.unwrap_or_default();
        let excerpt: String = text.chars().take(200).collect();
        let code = status.as_u16();
        if status.is_success() {
            Verdict::Done(code)
        } else if code == 429 {
            Verdict::Retry(
                retry_after,
                format!("HTTP 429 (rate limited): {excerpt}"),
                Some(code),
            )
        } else if code == 408 || status.is_server_error() {
            Verdict::Retry(None, format!("HTTP {code}: {excerpt}"), Some(code))
        } else {
            Verdict::Refused(
                format!("HTTP {code} (refused; retrying cannot help): {excerpt}"),
                code,
            )
        }
    }
}

impl Deliverer {
    async fn mail(&self, signal: &Signal, body: &[u8]) -> Verdict {
        use lettre::AsyncTransport as _;
        let mailer = match &self.mailer {
            Ok(Some(m)) => m,
            Ok(None) => return Verdict::Refused("not an e-mail destination".into(), 0),
            Err(e) => return Verdict::Refused(e.clone(), 0),
        };
        let d = &self.destination;
        let mut message = lettre::Message::builder()
            .subject(format!(
                "Sentra: {} for {} ({}, risk {:.2})",
                sentra_schemas::text::printable(&signal.signal),
                signal.tenant.as_str(),
                signal.severity.as_str(),
                signal.risk_score
            ))
            .header(lettre::message::header::ContentType::TEXT_PLAIN);
        match d.from.parse() {
            Ok(from) => message = message.from(from),
            Err(e) => return Verdict::Refused(format!("bad sender address: {e}"), 0),
        }
        for to in &d.to {
            match to.parse() {
                Ok(to) => message = message.to(to),
                Err(e) => return Verdict::Refused(format!("bad recipient address: {e}"), 0),
            }
        }
        let message = match message.body(String::from_utf8_lossy(body).into_owned()) {
            Ok(m) => m,
            Err(e) => return Verdict::Refused(format!("cannot build the message: {e}"), 0),
        };
        match mailer.send(message).await {
            Ok(r) => Verdict::Done(r.code().to_string().parse().unwrap_or(250)),
            Err(e) if e.is_permanent() => {
                Verdict::Refused(format!("the SMTP server refused it: {e}"), 550)
            }
            Err(e) => Verdict::Retry(None, format!("SMTP: {e}"), None),
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v.trim()).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let config = SoarConfig {
            initial_backoff_ms: 100,
            max_backoff_ms: 1000,
            ..Default::default()
        };
        let d = Deliverer::new(
            Destination {
                name: "t".into(),
                kind: DestinationKind::Webhook,
                url: "http://127.0.0.1:9".into(),
                api_key: String::new(),
                signing_secret: String::new(),
                tenants: vec![],
                min_risk: 0.5,
                rate_per_second: 1,
                from: String::new(),
                to: vec![],
            },
            &config,
        );
        for attempt in 1..10 {
            let want = (100u64 << (attempt - 1)).min(1000);
            let got = d.backoff(attempt).as_millis() as u64;
            assert!(
                got >= want / 2 && got <= want,
                "attempt {attempt}: {got} vs {want}"
            );
        }
    }
}
