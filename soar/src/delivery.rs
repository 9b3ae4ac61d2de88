//! Delivering one signal to one destination, as many times as it takes within the budget.
//!
//! Each attempt waits for the destination's rate limiter, then POSTs. 2xx is delivered. 429 waits for the
//! receiver's `Retry-After` (capped by `max_backoff_ms`); 408, 5xx and transport errors back off
//! exponentially with jitter. Any other 4xx means the receiver will never accept this request, so it stops
//! at once. Giving up is an [`Outcome`], not an error: the caller moves the signal to the dead-letter queue.
//! URLs and keys never appear in errors (webhook URLs often embed a token).
//!
//! Redirects are never followed: a 3xx is a refusal, so the API key and the signature only ever go to the
//! configured URL. That URL must be `https://`, or `http://` to loopback, unless the destination sets
//! `allow_http` ([`crate::config::check_url`]).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sentra_retry::{retry, Backoff, Failure, Policy, Verdict};
use sentra_schemas::Signal;
use tokio::sync::watch;

use crate::config::{check_url, Destination, DestinationKind, SoarConfig};
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
    policy: Policy,
}

/// What one attempt got: delivered, worth retrying (after the receiver's `Retry-After`, if it sent one), or
/// refused for good.
enum Answer {
    Done(u16),
    Retry(Option<Duration>, String, Option<u16>),
    Refused(String, u16),
}

/// Why an attempt did not deliver.
#[derive(Debug, thiserror::Error)]
enum Failed {
    /// Worth another attempt, after this wait if the receiver asked for one.
    #[error("{1}")]
    Transient(Option<Duration>, String),
    /// The receiver will never accept this request (at this attempt).
    #[error("{1}")]
    Refused(u32, String),
    /// Shutdown was requested while waiting for the rate limiter.
    #[error("interrupted")]
    Interrupted,
}

impl Deliverer {
    /// A deliverer for `destination` with the budget from `config`.
    pub fn new(destination: Destination, config: &SoarConfig) -> Self {
        let per_second = NonZeroU32::new(destination.rate_per_second.max(1)).expect("at least 1");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .user_agent(crate::envelope::source())
            .redirect(reqwest::redirect::Policy::none())
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
            policy: Policy {
                backoff: Backoff {
                    initial: Duration::from_millis(config.initial_backoff_ms),
                    max: Duration::from_millis(
                        config.max_backoff_ms.max(config.initial_backoff_ms),
                    ),
                },
                max_attempts: Some(config.max_attempts.max(1)),
            },
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
        let stop = shutdown.clone();
        // Attempts are reported once the delivery ends (each attempt's future cannot borrow the callback).
        let attempts = std::sync::Mutex::new(Vec::new());
        let attempt = |number: u32| {
            let (mut stop, body, attempts) = (stop.clone(), &body, &attempts);
            async move {
                tokio::select! {
                    _ = self.limiter.until_ready() => {}
                    _ = stop.changed() => return Err(Failed::Interrupted),
                }
                let answer = self.attempt(signal, body).await;
                let (status, detail) = match &answer {
                    Answer::Done(s) => (Some(*s), format!("delivered (HTTP {s})")),
                    Answer::Refused(d, s) => (Some(*s), d.clone()),
                    Answer::Retry(_, d, s) => (*s, d.clone()),
                };
                attempts.lock().expect("not poisoned").push(Attempt {
                    number,
                    status,
                    detail,
                    at_us: sentra_schemas::time::now_us(),
                });
                match answer {
                    Answer::Done(status) => Ok((number, status)),
                    Answer::Refused(reason, _) => Err(Failed::Refused(number, reason)),
                    Answer::Retry(after, detail, _) => Err(Failed::Transient(after, detail)),
                }
            }
        };
        let classify = |f: &Failed| match f {
            Failed::Transient(Some(after), _) => Verdict::RetryAfter(*after),
            Failed::Transient(None, _) => Verdict::Retry,
            Failed::Refused(..) | Failed::Interrupted => Verdict::Stop,
        };
        let log = |number: u32, f: &Failed, wait: Duration| {
            tracing::warn!(
                destination = %self.destination.name,
                signal = %signal.id,
                attempt = number,
                retry_in_ms = wait.as_millis() as u64,
                error = %f,
                "delivery failed; retrying"
            )
        };
        let result = retry(&self.policy, shutdown, attempt, classify, log).await;
        for a in attempts.into_inner().expect("not poisoned") {
            on_attempt(&a);
        }
        match result {
            Ok((attempts, status)) => Ok(Outcome::Delivered { attempts, status }),
            Err(Failure::Permanent(Failed::Refused(attempts, reason))) => {
                Ok(Outcome::GaveUp { attempts, reason })
            }
            Err(Failure::Exhausted(last)) => Ok(Outcome::GaveUp {
                attempts: self.max_attempts(),
                reason: format!(
                    "no success after {} attempts; last: {last}",
                    self.max_attempts()
                ),
            }),
            Err(Failure::Interrupted | Failure::Permanent(_)) => Err(Interrupted),
        }
    }

    /// The attempts one delivery may make.
    fn max_attempts(&self) -> u32 {
        self.policy.max_attempts.unwrap_or(1)
    }

    async fn attempt(&self, signal: &Signal, body: &[u8]) -> Answer {
        if self.destination.kind == DestinationKind::Email {
            return self.mail(signal, body).await;
        }
        let d = &self.destination;
        if let Err(e) = check_url(&d.url, d.allow_http) {
            return Answer::Refused(format!("not sent: {e}"), 0);
        }
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
                return Answer::Retry(None, format!("request failed: {}", e.without_url()), None)
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
            Answer::Done(code)
        } else if code == 429 {
            Answer::Retry(
                retry_after,
                format!("HTTP 429 (rate limited): {excerpt}"),
                Some(code),
            )
        } else if code == 408 || status.is_server_error() {
            Answer::Retry(None, format!("HTTP {code}: {excerpt}"), Some(code))
        } else if status.is_redirection() {
            Answer::Refused(
                format!(
                    "HTTP {code}: redirects are not followed; configure the final https:// URL"
                ),
                code,
            )
        } else {
            Answer::Refused(
                format!("HTTP {code} (refused; retrying cannot help): {excerpt}"),
                code,
            )
        }
    }
}

impl Deliverer {
    async fn mail(&self, signal: &Signal, body: &[u8]) -> Answer {
        use lettre::AsyncTransport as _;
        let mailer = match &self.mailer {
            Ok(Some(m)) => m,
            Ok(None) => return Answer::Refused("not an e-mail destination".into(), 0),
            Err(e) => return Answer::Refused(e.clone(), 0),
        };
        let d = &self.destination;
        let mut message = lettre::Message::builder()
            .subject(crate::envelope::mail_subject(signal))
            .header(lettre::message::header::ContentType::TEXT_PLAIN);
        match d.from.parse() {
            Ok(from) => message = message.from(from),
            Err(e) => return Answer::Refused(format!("bad sender address: {e}"), 0),
        }
        for to in &d.to {
            match to.parse() {
                Ok(to) => message = message.to(to),
                Err(e) => return Answer::Refused(format!("bad recipient address: {e}"), 0),
            }
        }
        let message = match message.body(String::from_utf8_lossy(body).into_owned()) {
            Ok(m) => m,
            Err(e) => return Answer::Refused(format!("cannot build the message: {e}"), 0),
        };
        match mailer.send(message).await {
            Ok(r) => Answer::Done(r.code().to_string().parse().unwrap_or(250)),
            Err(e) if e.is_permanent() => {
                Answer::Refused(format!("the SMTP server refused it: {e}"), 550)
            }
            Err(e) => Answer::Retry(None, format!("SMTP: {e}"), None),
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
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::net::TcpListener;

    use crate::testing::signal;

    fn destination(url: &str) -> Destination {
        Destination {
            name: "t".into(),
            kind: DestinationKind::Webhook,
            url: url.into(),
            api_key: "k3y".into(),
            signing_secret: "s3cret".into(),
            tenants: vec![],
            min_risk: 0.5,
            rate_per_second: 100,
            from: String::new(),
            to: vec![],
            allow_http: false,
        }
    }

    /// Serves one HTTP request on `listener` with `response`; the thread returns the request's head.
    fn serve_once(listener: TcpListener, response: String) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let (mut head, mut length) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            reader.read_exact(&mut vec![0; length]).unwrap();
            reader.get_mut().write_all(response.as_bytes()).unwrap();
            head
        })
    }

    #[tokio::test]
    async fn a_redirect_is_refused_and_never_followed_with_the_key_and_signature() {
        let (first, elsewhere) = (
            TcpListener::bind("127.0.0.1:0").unwrap(),
            TcpListener::bind("127.0.0.1:0").unwrap(),
        );
        let target = format!("http://{}/collect", elsewhere.local_addr().unwrap());
        let url = format!("http://{}/hook", first.local_addr().unwrap());
        let redirect = serve_once(
            first,
            format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        );
        let (tx, followed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            let _ = tx.send(serve_once(elsewhere, ok.into()).join().unwrap());
        });
        let (_stop, mut shutdown) = watch::channel(false);
        let outcome = Deliverer::new(destination(&url), &SoarConfig::default())
            .deliver(&signal(), &mut shutdown, |_| {})
            .await
            .unwrap();
        assert!(redirect.join().unwrap().contains("x-api-key: k3y"));
        let Outcome::GaveUp { attempts, reason } = outcome else {
            panic!("a redirect was followed: {outcome:?}")
        };
        assert_eq!(attempts, 1);
        assert!(reason.contains("redirects are not followed"), "{reason}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            followed.try_recv().is_err(),
            "the redirect target got a request"
        );
    }

    #[tokio::test]
    async fn plain_http_beyond_loopback_is_never_sent() {
        let config = SoarConfig {
            max_attempts: 1,
            timeout_secs: 1,
            ..Default::default()
        };
        let (_stop, mut shutdown) = watch::channel(false);
        let outcome = Deliverer::new(destination("http://203.0.113.9/hook"), &config)
            .deliver(&signal(), &mut shutdown, |_| {})
            .await
            .unwrap();
        let Outcome::GaveUp { reason, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            reason.starts_with("not sent: the URL must be https://"),
            "{reason}"
        );
        assert!(!reason.contains("203.0.113.9"), "{reason}");
    }

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
                allow_http: false,
            },
            &config,
        );
        for attempt in 1..10 {
            let want = (100u64 << (attempt - 1)).min(1000);
            let got = d.policy.backoff.delay(attempt).as_millis() as u64;
            assert!(
                got >= want / 2 && got <= want,
                "attempt {attempt}: {got} vs {want}"
            );
        }
    }
}
