//! `[soar]` in `sentra.toml`: where high-risk signals go and how hard to try.
//!
//! ```toml
//! [soar]
//! webhook = "https://tines.example/webhook/abc"   # or SENTRA_SOAR_WEBHOOK: the default destination
//! # api key: SENTRA_SOAR_API_KEY (sent as X-API-Key); signing secret: SENTRA_SOAR_SIGNING_SECRET
//! min_risk = 0.5
//! [[soar.destinations]]                            # more destinations, routed per tenant
//! name = "shuffle-acme"
//! url = "https://shuffle.example/api/v1/hooks/xyz"
//! tenants = ["acme"]
//! api_key_env = "SHUFFLE_ACME_KEY"                 # secrets come from the environment, never the file
//! signing_secret_env = "SHUFFLE_ACME_SECRET"
//! # allow_http = true                             # only for a plain http:// URL beyond loopback
//! [[soar.destinations]]
//! name = "slack-oncall"
//! kind = "slack"
//! url_env = "SLACK_ONCALL_WEBHOOK"                 # Slack webhook URLs are secrets too
//! min_risk = 0.8
//! ```

use serde::Deserialize;

/// What kind of receiver a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationKind {
    /// A SOAR webhook receiving the signed envelope.
    Webhook,
    /// A Slack incoming webhook receiving a calm text.
    Slack,
    /// E-mail through an SMTP server (`url` like `smtps://user:pass@mail.example:465` or
    /// `smtp://mail.example:587?tls=required`; keep it in `url_env`).
    Email,
}

/// One configured destination, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Unique name (also its consumer group suffix and its name in the dead-letter queue).
    pub name: String,
    /// `webhook` (default) or `slack`.
    #[serde(default = "webhook")]
    pub kind: DestinationKind,
    /// Endpoint URL (or `url_env`).
    #[serde(default)]
    pub url: String,
    /// Environment variable holding the URL (for URLs that embed a secret, like Slack's).
    #[serde(default)]
    pub url_env: Option<String>,
    /// Environment variable holding the API key sent as `X-API-Key`.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Environment variable holding the HMAC signing secret.
    #[serde(default)]
    pub signing_secret_env: Option<String>,
    /// Tenants routed here; empty means every tenant.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Lowest risk sent here (default: `soar.min_risk`).
    #[serde(default)]
    pub min_risk: Option<f64>,
    /// Most requests per second to this destination (default: `soar.rate_per_second`).
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// E-mail only: the sender address.
    #[serde(default)]
    pub from: Option<String>,
    /// E-mail only: the recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// Allows a plain `http://` URL to a host other than loopback (off: such URLs must be `https://`).
    #[serde(default)]
    pub allow_http: bool,
}

fn webhook() -> DestinationKind {
    DestinationKind::Webhook
}

/// `[soar]`: destinations, queue topics and the retry budget.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SoarConfig {
    /// The default destination's URL (`SENTRA_SOAR_WEBHOOK`); empty for none.
    pub webhook: String,
    /// The default destination's API key (`SENTRA_SOAR_API_KEY`), sent as `X-API-Key`.
    pub api_key: String,
    /// The default destination's HMAC signing secret (`SENTRA_SOAR_SIGNING_SECRET`).
    pub signing_secret: String,
    /// Signals with at least this risk are delivered (unless a destination says otherwise).
    pub min_risk: f64,
    /// Kafka topic holding signals waiting for delivery.
    pub topic: String,
    /// Kafka topic holding signals that could not be delivered within the budget.
    pub dlq_topic: String,
    /// Attempts per signal and destination before it goes to the dead-letter queue (the default, 12, spans
    /// about 2.5 to 5 minutes of a receiver being down).
    pub max_attempts: u32,
    /// First retry delay, milliseconds (doubles per attempt, with jitter).
    pub initial_backoff_ms: u64,
    /// Longest retry delay, milliseconds (also caps a receiver's `Retry-After`).
    pub max_backoff_ms: u64,
    /// Request timeout, seconds.
    pub timeout_secs: u64,
    /// Default requests per second per destination.
    pub rate_per_second: u32,
    /// More destinations.
    pub destinations: Vec<DestinationConfig>,
    /// Kafka topic recording playbook runs (their state survives restarts there).
    pub runs_topic: String,
    /// Folder of playbook files (`*.yaml`) for `sentra playbooks run`.
    pub playbooks_dir: Option<std::path::PathBuf>,
    /// The script repository: the only place script steps may run from.
    pub scripts_dir: Option<std::path::PathBuf>,
    /// Allows the default destination a plain `http://` URL to a host other than loopback.
    pub allow_http: bool,
}

impl Default for SoarConfig {
    fn default() -> Self {
        Self {
            webhook: String::new(),
            api_key: String::new(),
            signing_secret: String::new(),
            min_risk: 0.5,
            topic: "sentra.signals".into(),
            dlq_topic: "sentra.soar.dlq".into(),
            max_attempts: 12,
            initial_backoff_ms: 500,
            max_backoff_ms: 60_000,
            timeout_secs: 10,
            rate_per_second: 10,
            destinations: Vec::new(),
            runs_topic: "sentra.playbook.runs".into(),
            playbooks_dir: None,
            scripts_dir: None,
            allow_http: false,
        }
    }
}

impl std::fmt::Debug for SoarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &str| if s.is_empty() { "" } else { "***" };
        f.debug_struct("SoarConfig")
            .field("webhook", &hidden(&self.webhook))
            .field("api_key", &hidden(&self.api_key))
            .field("signing_secret", &hidden(&self.signing_secret))
            .field("min_risk", &self.min_risk)
            .field("topic", &self.topic)
            .field("dlq_topic", &self.dlq_topic)
            .field("max_attempts", &self.max_attempts)
            .field(
                "destinations",
                &self
                    .destinations
                    .iter()
                    .map(|d| &d.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A destination ready to use: secrets resolved from the environment.
#[derive(Clone)]
pub struct Destination {
    /// Unique name.
    pub name: String,
    /// Receiver kind.
    pub kind: DestinationKind,
    /// Endpoint (may embed a secret: never logged).
    pub url: String,
    /// `X-API-Key` value, if any.
    pub api_key: String,
    /// HMAC secret, if any.
    pub signing_secret: String,
    /// Tenants routed here (empty: all).
    pub tenants: Vec<String>,
    /// Lowest risk sent here.
    pub min_risk: f64,
    /// Requests per second.
    pub rate_per_second: u32,
    /// E-mail sender (e-mail destinations).
    pub from: String,
    /// E-mail recipients (e-mail destinations).
    pub to: Vec<String>,
    /// Whether a plain `http://` URL may point beyond loopback.
    pub allow_http: bool,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("tenants", &self.tenants)
            .field("min_risk", &self.min_risk)
            .finish_non_exhaustive()
    }
}

impl Destination {
    /// Whether `signal` should go here: not suppressed, risky enough, and of a routed tenant.
    pub fn wants(&self, signal: &sentra_schemas::Signal) -> bool {
        !signal.suppressed
            && signal.risk_score >= self.min_risk
            && (self.tenants.is_empty() || self.tenants.iter().any(|t| t == signal.tenant.as_str()))
    }
}

/// Whether requests may go to `url`: `https://` anywhere, `http://` only to a loopback host (`localhost`,
/// `127.0.0.0/8`, `::1`) unless `allow_http`. The error never contains the URL (it may embed a token).
pub fn check_url(url: &str, allow_http: bool) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|_| "the URL does not parse".to_owned())?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("the URL has no host".into()),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback || allow_http => Ok(()),
        "http" => Err(
            "the URL must be https:// (plain http:// is accepted only to loopback, or with allow_http = true)"
                .into(),
        ),
        _ => Err("the URL must start with https://".into()),
    }
}

impl SoarConfig {
    /// Whether any destination is configured.
    pub fn enabled(&self) -> bool {
        !self.webhook.is_empty() || !self.destinations.is_empty()
    }

    /// The destinations with their secrets read from `env` (normally `std::env::var`), or every problem.
    pub fn resolve(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<Destination>, Vec<String>> {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        if !self.webhook.is_empty() {
            out.push(Destination {
                name: "default".into(),
                kind: DestinationKind::Webhook,
                url: self.webhook.clone(),
                api_key: self.api_key.clone(),
                signing_secret: self.signing_secret.clone(),
                tenants: Vec::new(),
                min_risk: self.min_risk,
                rate_per_second: self.rate_per_second,
                from: String::new(),
                to: Vec::new(),
                allow_http: self.allow_http,
            });
        }
        let mut secret = |name: &str, var: &Option<String>, what: &str| -> String {
            match var {
                None => String::new(),
                Some(v) => env(v).unwrap_or_else(|| {
                    problems.push(format!(
                        "soar destination {name:?}: environment variable {v} ({what}) is not set"
                    ));
                    String::new()
                }),
            }
        };
        for d in &self.destinations {
            let url = match &d.url_env {
                Some(_) => secret(&d.name, &d.url_env, "its URL"),
                None => d.url.clone(),
            };
            let api_key = secret(&d.name, &d.api_key_env, "its API key");
            let signing_secret = secret(&d.name, &d.signing_secret_env, "its signing secret");
            out.push(Destination {
                name: d.name.clone(),
                kind: d.kind,
                url,
                api_key,
                signing_secret,
                tenants: d.tenants.clone(),
                min_risk: d.min_risk.unwrap_or(self.min_risk),
                rate_per_second: d.rate_per_second.unwrap_or(self.rate_per_second),
                from: d.from.clone().unwrap_or_default(),
                to: d.to.clone(),
                allow_http: d.allow_http,
            });
        }
        for d in &out {
            if d.kind == DestinationKind::Email {
                if !(d.url.starts_with("smtp://")
                    || d.url.starts_with("smtps://")
                    || d.url.is_empty())
                {
                    problems.push(format!(
                        "soar destination {:?}: an e-mail URL must start with smtp:// or smtps://",
                        d.name
                    ));
                }
                if d.from.parse::<lettre::message::Mailbox>().is_err()
                    || d.to.is_empty()
                    || d.to
                        .iter()
                        .any(|t| t.parse::<lettre::message::Mailbox>().is_err())
                {
                    problems.push(format!("soar destination {:?}: e-mail needs a valid `from` and at least one valid `to`", d.name));
                }
            } else if !d.url.is_empty() {
                if let Err(e) = check_url(&d.url, d.allow_http) {
                    problems.push(format!("soar destination {:?}: {e}", d.name));
                }
            }
            if d.url.is_empty() {
                problems.push(format!(
                    "soar destination {:?} has no url (or url_env)",
                    d.name
                ));
            }
            if !(0.0..=1.0).contains(&d.min_risk) {
                problems.push(format!(
                    "soar destination {:?}: min_risk must be within 0..1",
                    d.name
                ));
            }
            if d.rate_per_second == 0 {
                problems.push(format!(
                    "soar destination {:?}: rate_per_second must be at least 1",
                    d.name
                ));
            }
            if out.iter().filter(|o| o.name == d.name).count() > 1 {
                problems.push(format!("soar destination name {:?} is used twice", d.name));
            }
            if d.name.is_empty()
                || !d
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                problems.push(format!(
                    "soar destination name {:?} may only contain letters, digits, '-' and '_'",
                    d.name
                ));
            }
        }
        if self.max_attempts == 0 || self.timeout_secs == 0 || self.initial_backoff_ms == 0 {
            problems.push(
                "soar.max_attempts, timeout_secs and initial_backoff_ms must be at least 1".into(),
            );
        }
        if self.topic.is_empty() || self.dlq_topic.is_empty() || self.topic == self.dlq_topic {
            problems.push("soar.topic and soar.dlq_topic must be set and differ".into());
        }
        problems.sort();
        problems.dedup();
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    /// Every problem with the values (empty when valid), reading secrets from the process environment.
    pub fn problems(&self) -> Vec<String> {
        if !self.enabled() {
            return Vec::new();
        }
        self.resolve(|k| std::env::var(k).ok())
            .err()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(kind: DestinationKind, url: &str) -> DestinationConfig {
        DestinationConfig {
            name: "d".into(),
            kind,
            url: url.into(),
            url_env: None,
            api_key_env: Some("D_KEY".into()),
            signing_secret_env: None,
            tenants: vec![],
            min_risk: None,
            rate_per_second: None,
            from: None,
            to: vec![],
            allow_http: false,
        }
    }

    #[test]
    fn destinations_resolve_secrets_from_the_environment_and_explain_problems() {
        let mut c = SoarConfig {
            destinations: vec![dest(DestinationKind::Webhook, "https://soar.example/hook")],
            ..Default::default()
        };
        let ok = c
            .resolve(|k| (k == "D_KEY").then(|| "k".to_owned()))
            .unwrap();
        assert_eq!((ok[0].api_key.as_str(), ok[0].min_risk), ("k", 0.5));
        let missing = c.resolve(|_| None).unwrap_err();
        assert_eq!(
            missing,
            ["soar destination \"d\": environment variable D_KEY (its API key) is not set"]
        );

        c.destinations = vec![dest(DestinationKind::Email, "https://not-smtp")];
        let p = c.resolve(|_| Some("k".into())).unwrap_err();
        assert!(p.iter().any(|x| x.contains("smtp://")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("valid `from`")), "{p:?}");
        let mut mail = dest(DestinationKind::Email, "smtps://mail.example:465");
        mail.from = Some("Sentra <sentra@example.org>".into());
        mail.to = vec!["soc@example.org".into()];
        c.destinations = vec![mail];
        assert!(c.resolve(|_| Some("k".into())).is_ok());
    }

    #[test]
    fn urls_must_be_https_except_to_loopback_or_when_http_is_allowed() {
        for ok in [
            "https://soar.example/hook",
            "http://127.0.0.1:8080/hook",
            "http://127.9.0.1/hook",
            "http://[::1]:80/hook",
            "http://LOCALHOST/hook",
        ] {
            assert_eq!(check_url(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "http://soar.example/hook",
            "http://10.0.0.5/hook",
            "http://127.0.0.1.evil.example/",
            "ftp://soar.example/",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert_eq!(check_url("http://soar.example/hook", true), Ok(()));
        assert!(check_url("ftp://soar.example/", true).is_err());

        let mut c = SoarConfig {
            destinations: vec![dest(DestinationKind::Webhook, "http://soar.example/T0KEN")],
            ..Default::default()
        };
        let p = c.resolve(|_| Some("k".into())).unwrap_err();
        assert!(p[0].contains("must be https://"), "{p:?}");
        assert!(!p[0].contains("T0KEN"), "{p:?}");
        c.destinations[0].allow_http = true;
        assert!(c.resolve(|_| Some("k".into())).is_ok());
        let c = SoarConfig {
            webhook: "http://soar.example/hook".into(),
            ..Default::default()
        };
        assert!(c.resolve(|_| None).is_err());
    }

    #[test]
    fn debug_hides_urls_and_secrets() {
        let c = SoarConfig {
            webhook: "https://hooks.example/T0KEN".into(),
            api_key: "k3y".into(),
            signing_secret: "s3cret".into(),
            ..Default::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("T0KEN") && !shown.contains("k3y") && !shown.contains("s3cret"));
    }
}
