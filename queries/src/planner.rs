//! The deterministic planner: patterns and a security lexicon turn a question into an [`Intent`].
//!
//! It reads the question word by word (lower-cased, punctuation split off), picks what is asked (count,
//! top-N, trend, list, explain, summarize), the subject (events or signals), and the filters: time ranges
//! ("last 24 hours", "yesterday", "since Monday", "on 2026-03-14", "between … and …"), IPs and CIDRs, users,
//! hosts, detection names, severities, MITRE ids and event kinds ("failed logins", "sudo", "new accounts").
//! Anything it cannot place is ignored, never guessed into a filter; a question with nothing it
//! recognizes gets [`PlanError::Unanswerable`] with examples.

use sentra_schemas::time::{civil_from_days, days_from_civil};

use crate::intent::{Dim, Filters, Intent, Subject, What, MAX_RANGE_US, MAX_ROWS};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// Questions the planner can answer, shown when it cannot.
pub const EXAMPLES: [&str; 6] = [
    "how many failed logins in the last 24 hours?",
    "top 10 source IPs with failed logins yesterday",
    "show sudo failures for user alice since Monday",
    "which signals were high or critical this week?",
    "explain signal 3f2a9c1b0d4e",
    "trend of failed logins per hour on 2026-03-14",
];

/// Why a question has no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Nothing in it says what to look for.
    #[error("I could not tell what to look for. I can answer questions like: {}", EXAMPLES.join(" · "))]
    Unanswerable,
    /// Too long to be a question.
    #[error("that question is too long (at most 500 characters)")]
    TooLong,
}

/// Detection names and the words that mean them.
const SIGNAL_WORDS: [(&str, &[&str]); 12] = [
    (
        "ssh_password_spray",
        &["password spray", "password spraying", "spraying", "spray"],
    ),
    (
        "ssh_distributed_brute_force",
        &["distributed brute force", "credential stuffing"],
    ),
    (
        "ssh_brute_force",
        &["brute force", "brute-force", "bruteforce"],
    ),
    (
        "ssh_account_login_after_failures",
        &["account login after failures"],
    ),
    (
        "ssh_login_after_failures",
        &[
            "login after failures",
            "success after failures",
            "successful login after",
        ],
    ),
    (
        "ssh_invalid_user_enumeration",
        &[
            "user enumeration",
            "invalid user enumeration",
            "enumeration",
        ],
    ),
    ("ssh_root_login", &["root login", "direct root"]),
    ("sudo_abuse", &["sudo abuse"]),
    (
        "su_root_failures",
        &["su to root", "su failures", "su root"],
    ),
    (
        "new_local_account",
        &[
            "new local account",
            "new account",
            "account creation",
            "accounts created",
        ],
    ),
    (
        "privileged_group_add",
        &[
            "privileged group",
            "added to sudo",
            "added to wheel",
            "group membership",
        ],
    ),
    (
        "privileged_password_change",
        &["privileged password", "root password change"],
    ),
];

/// Event actions and the words that mean them.
const ACTION_WORDS: [(&str, &[&str]); 4] = [
    (
        "user_created",
        &[
            "new user",
            "new account",
            "accounts created",
            "user created",
            "account creation",
        ],
    ),
    (
        "password_changed",
        &["password change", "passwords changed", "password changed"],
    ),
    (
        "user_added_to_group",
        &[
            "group add",
            "added to group",
            "group membership",
            "added to the",
        ],
    ),
    (
        "ssh_invalid_user",
        &["invalid user", "unknown user", "non-existent user"],
    ),
];

fn words(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in q.split_whitespace() {
        let w = raw.trim_matches(|c: char| {
            matches!(c, ',' | '?' | '!' | ';' | ':' | '"' | '\'' | '(' | ')')
        });
        let w = w.strip_suffix('.').unwrap_or(w);
        if !w.is_empty() {
            out.push(w.to_lowercase());
        }
    }
    out
}

fn is_ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

/// An IPv4/IPv6 address or a CIDR range.
pub(crate) fn is_ip_or_cidr(s: &str) -> bool {
    match s.split_once('/') {
        Some((ip, bits)) => {
            let max = if is_ipv4(ip) {
                32
            } else if ip.parse::<std::net::Ipv6Addr>().is_ok() {
                128
            } else {
                return false;
            };
            bits.parse::<u8>().is_ok_and(|b| b <= max)
        }
        None => s.parse::<std::net::IpAddr>().is_ok(),
    }
}

/// A plausible user or host name: letters, digits and `._-@`, at most 64 bytes.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '$'))
}

const STOP: [&str; 24] = [
    "the",
    "a",
    "an",
    "in",
    "on",
    "of",
    "for",
    "from",
    "to",
    "with",
    "and",
    "or",
    "by",
    "per",
    "at",
    "since",
    "last",
    "past",
    "this",
    "today",
    "yesterday",
    "between",
    "during",
    "were",
];

/// `YYYY-MM-DD` as epoch microseconds of its midnight UTC.
fn date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = s[0..4].parse().ok()?;
    let m: u32 = s[5..7].parse().ok()?;
    let d: u32 = s[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * DAY)
}

fn midnight(us: i64) -> i64 {
    us.div_euclid(DAY) * DAY
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Plans `question` for a caller at time `now_us` (epoch microseconds).
pub fn plan(question: &str, now_us: i64) -> Result<Intent, PlanError> {
    if question.chars().count() > 500 {
        return Err(PlanError::TooLong);
    }
    // Fold look-alike Unicode (full-width letters, non-breaking spaces) to plain text before reading.
    let folded: String = question
        .chars()
        .map(|c| match c {
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            c if c.is_whitespace() => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let lower = folded.to_lowercase();
    let w = words(&folded);
    let has = |s: &str| lower.contains(s);
    let word = |s: &str| w.iter().any(|x| x == s);
    let mut f = Filters::default();
    let mut notes = Vec::new();
    let mut recognized = false;

    // Subject and explicit signal lookups.
    let signal_id = w
        .iter()
        .find(|x| {
            x.len() == 12
                && x.bytes().all(|b| b.is_ascii_hexdigit())
                && x.bytes().any(|b| b.is_ascii_digit())
        })
        .cloned();
    let mut subject = if [
        "signal",
        "signals",
        "alert",
        "alerts",
        "detection",
        "detections",
        "incident",
        "incidents",
    ]
    .iter()
    .any(|s| word(s))
    {
        Subject::Signals
    } else {
        Subject::Events
    };

    for (name, phrases) in SIGNAL_WORDS {
        if phrases.iter().any(|p| has(p)) || word(name) {
            f.signals.push(name.to_owned());
            subject = Subject::Signals;
            notes.push(format!("detection {name}"));
            break;
        }
    }
    for t in &w {
        let up = t.to_uppercase();
        if up.len() >= 5
            && up.starts_with('T')
            && up[1..5].bytes().all(|b| b.is_ascii_digit())
            && (up.len() == 5
                || (up.len() == 9
                    && &up[5..6] == "."
                    && up[6..].bytes().all(|b| b.is_ascii_digit())))
        {
            f.mitre.push(up);
            subject = Subject::Signals;
        }
    }
    for (sev, words_) in [
        ("CRITICAL", &["critical"][..]),
        ("HIGH", &["high", "high-severity", "high-risk"][..]),
        ("MEDIUM", &["medium", "moderate"][..]),
        ("LOW", &["low", "low-severity"][..]),
    ] {
        if words_.iter().any(|x| word(x)) {
            f.severities.push(sev.to_owned());
            subject = Subject::Signals;
        }
    }
    if has("privilege escalation") {
        f.intent = Some("Privilege Escalation".into());
        subject = Subject::Signals;
    } else if has("credential access") {
        f.intent = Some("Credential Access".into());
        subject = Subject::Signals;
    }

    // Event kinds.
    let failed = [
        "failed",
        "failure",
        "failures",
        "failing",
        "unsuccessful",
        "bad",
        "denied",
        "wrong",
        "incorrect",
    ]
    .iter()
    .any(|x| word(x));
    let succeeded = [
        "successful",
        "succeeded",
        "success",
        "accepted",
        "successes",
    ]
    .iter()
    .any(|x| word(x));
    let login = [
        "login",
        "logins",
        "log-in",
        "logon",
        "logons",
        "authentication",
        "authentications",
        "auth",
        "ssh",
        "password",
        "passwords",
        "attempts",
    ]
    .iter()
    .any(|x| word(x));
    if word("sudo") {
        f.processes.push("sudo".into());
        notes.push("sudo".into());
    }
    if word("su") {
        f.processes.push("su".into());
        notes.push("su".into());
    }
    if subject == Subject::Events {
        for (action, phrases) in ACTION_WORDS {
            if phrases.iter().any(|p| has(p)) {
                f.actions.push(action.to_owned());
            }
        }
    }
    if failed {
        f.outcome = Some("failure".into());
    } else if succeeded {
        f.outcome = Some("success".into());
    }
    if (failed || succeeded || login) && f.processes.is_empty() && f.actions.is_empty() {
        f.category = Some("authentication".into());
    }
    if let Some(o) = &f.outcome {
        notes.push(format!("outcome {o}"));
    }
    if word("root") && !has("root login") && !has("su to root") {
        f.users.push("root".into());
    }

    // Names after cue words; IPs anywhere.
    for (i, t) in w.iter().enumerate() {
        if is_ip_or_cidr(t) {
            f.ips.push(t.clone());
            continue;
        }
        let next = w.get(i + 1).map(String::as_str).unwrap_or("");
        let next_is_name = is_name(next) && !STOP.contains(&next) && !is_ip_or_cidr(next);
        match t.as_str() {
            "user" | "account" | "username"
                if next_is_name && !["enumeration", "created", "creation"].contains(&next) =>
            {
                f.users.push(next.to_owned())
            }
            "host" | "server" | "machine" | "hostname" if next_is_name => {
                f.hosts.push(next.to_owned())
            }
            _ => {}
        }
    }
    // "on web-1" / "on host web-1": a host looks like name-with-digits or has a dash/dot.
    for win in w.windows(2) {
        if win[0] == "on"
            && is_name(&win[1])
            && !STOP.contains(&win[1].as_str())
            && date(&win[1]).is_none()
            && !WEEKDAYS.contains(&win[1].as_str())
            && (win[1].contains('-') || win[1].contains('.'))
            && !f.hosts.contains(&win[1])
        {
            f.hosts.push(win[1].clone());
        }
    }
    f.users.dedup();

    // Time.
    let mut time: Option<(i64, i64)> = None;
    let n_before = |unit: &str| -> Option<i64> {
        w.windows(3).find_map(|x| {
            (["last", "past"].contains(&x[0].as_str()) && x[2].starts_with(unit))
                .then(|| x[1].parse::<i64>().ok())
                .flatten()
        })
    };
    for (unit, us) in [
        ("minute", 60_000_000),
        ("hour", HOUR),
        ("day", DAY),
        ("week", 7 * DAY),
    ] {
        if let Some(n) = n_before(unit) {
            time = Some((now_us - n.clamp(1, 10_000) * us, now_us));
        }
    }
    if time.is_none() {
        if has("last hour") || has("past hour") {
            time = Some((now_us - HOUR, now_us));
        } else if has("last day") || has("past day") {
            time = Some((now_us - DAY, now_us));
        } else if has("last week") || has("past week") {
            time = Some((now_us - 7 * DAY, now_us));
        } else if has("last month") || has("past month") {
            time = Some((now_us - 30 * DAY, now_us));
        } else if word("yesterday") {
            time = Some((midnight(now_us) - DAY, midnight(now_us)));
        } else if word("today") {
            time = Some((midnight(now_us), now_us));
        } else if has("this week") {
            let days = midnight(now_us) / DAY;
            let weekday = (days + 3).rem_euclid(7); // 1970-01-01 was a Thursday; Monday = 0
            time = Some(((days - weekday) * DAY, now_us));
        }
    }
    let dates: Vec<i64> = w.iter().filter_map(|x| date(x)).collect();
    if time.is_none() {
        if let Some(i) = w.iter().position(|x| x == "since") {
            let next = w.get(i + 1).map(String::as_str).unwrap_or("");
            if let Some(d) = date(next) {
                time = Some((d, now_us));
            } else if let Some(wd) = WEEKDAYS.iter().position(|d| *d == next) {
                let days = midnight(now_us) / DAY;
                let today = (days + 3).rem_euclid(7);
                let back = (today - wd as i64).rem_euclid(7);
                time = Some(((days - back) * DAY, now_us));
            }
        }
    }
    if time.is_none() {
        match dates.as_slice() {
            [a, b, ..] => time = Some(((*a).min(*b), (*a).max(*b) + DAY)),
            [a] => time = Some((*a, *a + DAY)),
            [] => {}
        }
    }
    if let Some((from, to)) = time {
        let from = from.max(to - MAX_RANGE_US);
        f.time = Some((from, to));
        let (y, m, d) = civil_from_days(from.div_euclid(DAY));
        notes.push(format!("from {y:04}-{m:02}-{d:02}"));
    }

    // What.
    let limit = w
        .windows(2)
        .find_map(|x| {
            (["top", "first", "limit", "latest", "last"].contains(&x[0].as_str()))
                .then(|| x[1].parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(10)
        .clamp(1, MAX_ROWS);
    let group_by = if has("by ip")
        || has("by source")
        || has("per ip")
        || has("per source")
        || has("source ips")
        || has("source ip")
        || word("ips")
        || has("attackers")
        || has("addresses")
    {
        Some(Dim::Ip)
    } else if has("by user")
        || has("per user")
        || word("users")
        || has("usernames")
        || has("accounts")
        || has("targeted users")
    {
        Some(Dim::User)
    } else if has("by host")
        || has("per host")
        || word("hosts")
        || has("servers")
        || has("machines")
    {
        Some(Dim::Host)
    } else if has("by severity") || has("per severity") {
        Some(Dim::Severity)
    } else if has("by detection")
        || has("by signal")
        || has("per detection")
        || has("per signal")
        || has("signal types")
        || has("kinds of signal")
    {
        Some(Dim::Signal)
    } else if has("by outcome") {
        Some(Dim::Outcome)
    } else if has("by action") || has("per action") || has("event types") {
        Some(Dim::Action)
    } else {
        None
    };
    let trend_dim = if has("per hour") || has("by hour") || has("hourly") || has("each hour") {
        Some(Dim::Hour)
    } else if has("per day") || has("by day") || has("daily") || has("each day") {
        Some(Dim::Day)
    } else {
        None
    };
    let what = if signal_id.is_some()
        && (has("explain") || has("why") || has("what is") || has("details") || word("signal"))
    {
        subject = Subject::Signals;
        What::ExplainSignal
    } else if trend_dim.is_some()
        || has("trend")
        || has("over time")
        || has("timeline")
        || has("histogram")
    {
        What::Trend
    } else if has("summarize")
        || has("summary")
        || has("what happened")
        || has("overview")
        || has("recap")
    {
        What::Summarize
    } else if has("how many") || word("count") || has("number of") || has("total") {
        What::Count
    } else if group_by.is_some()
        && (has("top")
            || word("most")
            || has("which")
            || has("who")
            || !(has("show") || has("list")))
    {
        What::TopN
    } else if has("show")
        || has("list")
        || has("which")
        || has("what")
        || has("display")
        || has("find")
        || has("give me")
        || has("raw")
        || has("logs")
        || has("events")
        || subject == Subject::Signals
    {
        What::List
    } else if group_by.is_some() {
        What::TopN
    } else {
        What::List
    };
    recognized |= !f.signals.is_empty()
        || !f.mitre.is_empty()
        || !f.severities.is_empty()
        || f.intent.is_some()
        || f.outcome.is_some()
        || f.category.is_some()
        || !f.processes.is_empty()
        || !f.actions.is_empty()
        || !f.ips.is_empty()
        || !f.users.is_empty()
        || !f.hosts.is_empty()
        || signal_id.is_some()
        || subject == Subject::Signals
        || matches!(what, What::Summarize | What::Trend)
        || ((word("events") || word("logs")) && time.is_some());
    if !recognized {
        return Err(PlanError::Unanswerable);
    }
    let group_by = match what {
        What::Trend => Some(trend_dim.unwrap_or(
            if f.time.is_some_and(|(a, b)| b - a <= 2 * DAY) {
                Dim::Hour
            } else {
                Dim::Day
            },
        )),
        What::TopN => group_by,
        _ => None,
    };
    // Event-only filters make no sense on signals and vice versa; keep what applies.
    if subject == Subject::Signals {
        f.category = None;
        f.outcome = None;
        f.processes.clear();
        f.actions.clear();
    }
    Ok(Intent {
        what,
        subject,
        filters: f,
        group_by,
        limit,
        signal_id,
        notes,
    })
}
