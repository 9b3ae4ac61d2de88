//! The deterministic planner: the tables of [`crate::lexicon`] and [`crate::when`] and the tenant's own
//! [`Vocabulary`] turn a question into an [`Intent`].
//!
//! Each reader takes the words it understands: typos are corrected against the known words, then come the
//! signal id, addresses, the time phrase, the answer's shape (count, top-N, trend, list, explain,
//! summarize), detections, severities, event kinds, groupings and finally names. A name is recognised by
//! being a user or host the tenant's data has seen, or by a keyword before it ("user", "host", "from").
//! Nothing is guessed silently: a name the data has not seen, a tenant named in the question and any word
//! left unread each get a line in [`Intent::unclear`] saying what was not understood and what the answer
//! does instead. A question with nothing recognisable gets [`PlanError::Unanswerable`] with examples.

use crate::intent::{Dim, Filters, Intent, Subject, What, MAX_RANGE_US, MAX_ROWS};
use crate::lexicon::{self, cue, is_filler_or_cue, is_known_word, Cue, LEXICON};
use crate::vocabulary::Vocabulary;
use crate::when;
use crate::words::{Words, POSSESSIVE};

/// Questions the planner can answer, shown when it cannot.
pub const EXAMPLES: [&str; 6] = [
    "how many failed logins in the last 24 hours?",
    "top 10 source IPs with failed logins yesterday",
    "show sudo failures for user alice since Monday",
    "which signals were high or critical this week?",
    "explain signal 3f2a9c1b0d4e",
    "trend of failed logins per hour on 2026-03-14",
];

/// Longest question, in characters.
pub const MAX_QUESTION_CHARS: usize = 500;

/// Why a question has no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Nothing in it says what to look for.
    #[error("I could not tell what to look for. I can answer questions like: {}", EXAMPLES.join(" · "))]
    Unanswerable,
    /// Nothing in it says what to look for, and these parts were not understood.
    #[error("I could not tell what to look for ({}). I can answer questions like: {}", .0.join("; "), EXAMPLES.join(" · "))]
    NotUnderstood(Vec<String>),
    /// Too long to be a question.
    #[error("that question is too long (at most 500 characters)")]
    TooLong,
}

/// An IPv4/IPv6 address or a CIDR range.
pub(crate) fn is_ip_or_cidr(s: &str) -> bool {
    match s.split_once('/') {
        Some((ip, bits)) => {
            let max = if ip.parse::<std::net::Ipv4Addr>().is_ok() {
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

/// A plausible user or host name: letters, digits and `._-@$`, at most 64 bytes.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '$'))
}

/// A name-like word that is no word of the planner's own: something the analyst means as a name.
fn looks_like_name(word: &str) -> bool {
    is_name(word)
        && word.bytes().any(|b| b.is_ascii_alphabetic())
        && !is_known_word(word)
        && word != POSSESSIVE
}

/// A host-shaped name: letters with digits, a dash or a dot (`web-1`, `db01`, `host.example.com`).
fn host_shaped(word: &str) -> bool {
    looks_like_name(word)
        && (word.contains('-') || word.contains('.') || word.bytes().any(|b| b.is_ascii_digit()))
}

/// A MITRE ATT&CK technique id: `T1110` or `T1110.001`, upper-cased.
fn mitre_id(word: &str) -> Option<String> {
    let up = word.to_ascii_uppercase();
    let b = up.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.first() == Some(&b'T')
        && match b.len() {
            5 => digits(1..5),
            9 => digits(1..5) && b[5] == b'.' && digits(6..9),
            _ => false,
        };
    ok.then_some(up)
}

/// A signal id: 12 hex characters with at least one digit.
fn signal_id(word: &str) -> bool {
    word.len() == 12
        && word.bytes().all(|b| b.is_ascii_hexdigit())
        && word.bytes().any(|b| b.is_ascii_digit())
}

/// Damerau–Levenshtein distance of at most one: one letter added, dropped, changed or two swapped.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    match (ra.len(), rb.len()) {
        (0, 0) => false,
        (x, y) if x == y => {
            ra[1..] == rb[1..] || (x >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && ra[2..] == rb[2..])
        }
        (x, y) if x + 1 == y => ra == &rb[1..],
        (x, y) if x == y + 1 => &ra[1..] == rb,
        _ => false,
    }
}

/// Corrects words one typo away from a word the planner knows ("faild" → "failed", "froce" → "force"),
/// leaving alone anything the tenant's data knows as a name.
fn correct_typos(w: &mut Words, known: &Vocabulary, notes: &mut Vec<String>) {
    for i in 0..w.len() {
        let word = w.get(i).to_owned();
        if word.chars().count() < 4
            || !word.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')
            || is_known_word(&word)
            || known.user(&word).is_some()
            || known.host(&word).is_some()
        {
            continue;
        }
        let fix = lexicon::known_words()
            .iter()
            .filter(|k| {
                k.chars().count() >= 4
                    && !k.contains('\'')
                    && k.chars().next() == word.chars().next()
            })
            .find(|k| one_edit_apart(&word, k));
        if let Some(fix) = fix {
            notes.push(format!("read \"{word}\" as \"{fix}\""));
            w.set(i, fix);
        }
    }
}

/// What the question's words say, before the answer's shape is chosen.
struct Reading {
    filters: Filters,
    subject: Subject,
    notes: Vec<String>,
    unclear: Vec<String>,
}

/// Plans `question` for a caller at time `now_us` (epoch microseconds), recognising names by what the
/// caller's own tenant has seen (`known`).
pub fn plan(question: &str, now_us: i64, known: &Vocabulary) -> Result<Intent, PlanError> {
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Err(PlanError::TooLong);
    }
    let mut w = Words::new(question);
    let mut r = Reading {
        filters: Filters::default(),
        subject: Subject::Events,
        notes: Vec::new(),
        unclear: Vec::new(),
    };
    correct_typos(&mut w, known, &mut r.notes);

    let signal_id = (0..w.len()).find(|&i| signal_id(w.get(i))).map(|i| {
        w.take(i);
        w.get(i).to_owned()
    });
    read_exclusions(&mut w, &mut r);
    read_addresses(&mut w, &mut r);
    read_time(&mut w, now_us, &mut r);
    let limit = read_limit(&mut w);
    let shape = read_shape(&mut w);
    read_signals(&mut w, &mut r);
    read_event_kind(&mut w, &mut r);
    let group_by = read_group(&mut w);
    w.take_any(&LEXICON.signals.subject);
    read_names(&mut w, known, &mut r);
    read_leftovers(&w, &mut r);

    let f = &r.filters;
    let recognized = signal_id.is_some()
        || r.subject == Subject::Signals
        || matches!(shape.what, Some(What::Summarize | What::Trend))
        || f.outcome.is_some()
        || f.category.is_some()
        || !f.processes.is_empty()
        || !f.actions.is_empty()
        || !f.ips.is_empty()
        || !f.users.is_empty()
        || !f.hosts.is_empty()
        || group_by.is_some()
        || (shape.records && f.time.is_some());
    if !recognized {
        return Err(if r.unclear.is_empty() {
            PlanError::Unanswerable
        } else {
            PlanError::NotUnderstood(r.unclear)
        });
    }
    let what = choose_what(&shape, signal_id.is_some(), group_by, &r);
    if what == What::ExplainSignal {
        r.subject = Subject::Signals;
    }
    let group_by = match what {
        What::Trend => Some(shape.bucket.unwrap_or(
            if r.filters.time.is_some_and(|(a, b)| b - a <= 2 * when::DAY) {
                Dim::Hour
            } else {
                Dim::Day
            },
        )),
        What::TopN => group_by.or(shape.who_dim).or(match r.subject {
            Subject::Signals => Some(Dim::Signal),
            Subject::Events => None,
        }),
        _ => None,
    };
    // Event-only filters make no sense on signals; keep what applies.
    if r.subject == Subject::Signals {
        let f = &mut r.filters;
        f.category = None;
        f.outcome = None;
        f.processes.clear();
        f.actions.clear();
    }
    Ok(Intent {
        what,
        subject: r.subject,
        filters: r.filters,
        group_by,
        limit: limit.unwrap_or(10).clamp(1, MAX_ROWS),
        signal_id,
        notes: r.notes,
        unclear: r.unclear,
    })
}

/// "excluding root", "except 10.0.0.5", "without web-1": leaving things out is not something an answer
/// can do yet, so the excluded names are read off (never turned into filters) and reported.
fn read_exclusions(w: &mut Words, r: &mut Reading) {
    for i in 0..w.len() {
        if w.is_used(i) || !LEXICON.names.exclude.iter().any(|x| x == w.get(i)) {
            continue;
        }
        w.take(i);
        let mut at = i + 1;
        while at < w.len() && is_filler_or_cue(w.get(at)) {
            w.take(at);
            at += 1;
        }
        let mut left_out = Vec::new();
        while !w.is_used(at)
            && (is_ip_or_cidr(w.get(at)) || looks_like_name(w.get(at)) || w.get(at) == "root")
        {
            left_out.push(w.get(at).to_owned());
            w.take(at);
            if ["and", "or"].contains(&w.get(at + 1)) {
                w.take(at + 1);
                at += 2;
            } else {
                break;
            }
        }
        if !left_out.is_empty() {
            r.unclear.push(format!(
                "I cannot leave out {}; the answer includes it",
                left_out
                    .iter()
                    .map(|x| format!("\"{x}\""))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
    }
}

/// IPs and CIDR ranges, wherever they are.
fn read_addresses(w: &mut Words, r: &mut Reading) {
    for i in 0..w.len() {
        if !w.is_used(i) && is_ip_or_cidr(w.get(i)) {
            w.take(i);
            let ip = w.get(i).to_owned();
            if !r.filters.ips.contains(&ip) {
                r.filters.ips.push(ip);
            }
        }
    }
}

fn read_time(w: &mut Words, now_us: i64, r: &mut Reading) {
    if let Some((from, to)) = when::read(w, now_us) {
        let from = from.max(to - MAX_RANGE_US);
        r.filters.time = Some((from, to));
        r.notes.push(format!(
            "from {} to {} UTC",
            when::describe(from),
            when::describe(to)
        ));
    }
}

/// "top 5", "first 50", "last 3", "limit 20", "10 most recent".
fn read_limit(w: &mut Words) -> Option<usize> {
    let (before, after) = (&LEXICON.answer.limit_before, &LEXICON.answer.limit_after);
    for i in 0..w.len() {
        if !w.is_used(i + 1) && before.iter().any(|x| x == w.get(i)) {
            if let Ok(n) = w.get(i + 1).parse::<usize>() {
                w.take(i);
                w.take(i + 1);
                return Some(n);
            }
        }
        if !w.is_used(i) && after.iter().any(|x| x == w.get(i + 1)) {
            if let Ok(n) = w.get(i).parse::<usize>() {
                w.take(i);
                return Some(n);
            }
        }
    }
    None
}

/// The words that shape the answer.
#[derive(Default)]
struct Shape {
    what: Option<What>,
    bucket: Option<Dim>,
    top: bool,
    list: bool,
    records: bool,
    who: bool,
    who_dim: Option<Dim>,
}

fn read_shape(w: &mut Words) -> Shape {
    let a = &LEXICON.answer;
    let mut s = Shape::default();
    for bucket in &a.bucket {
        if w.take_any(&bucket.phrases) {
            s.bucket = Some(bucket.means);
        }
    }
    s.top = w.take_any(&a.by_frequency);
    let trend = w.take_any(&a.trend);
    let summarize = w.take_any(&a.summarize);
    let count = w.take_any(&a.count);
    s.what = if trend || s.bucket.is_some() {
        Some(What::Trend)
    } else if summarize {
        Some(What::Summarize)
    } else if count {
        Some(What::Count)
    } else {
        None
    };
    // "the 5 most recent alerts" is a listing, newest first, not a ranking.
    w.take_any(&a.newest);
    s.top |= w.take_any(&a.top);
    s.list = w.take_any(&a.list);
    w.take_any(&a.explain);
    s.records = a.records.iter().any(|x| w.has(x));
    s.who = a.who.iter().any(|x| w.has(x));
    if s.who {
        let attack = a.attack.iter().any(|p| w.has(p));
        s.who_dim = Some(if attack { Dim::Ip } else { Dim::User });
    }
    s
}

fn read_signals(w: &mut Words, r: &mut Reading) {
    let words = &LEXICON.signals;
    let about_signals = words.subject.iter().any(|x| w.has(x));
    if about_signals {
        r.subject = Subject::Signals;
    }
    for d in &words.detection {
        if !(d.on_their_own || about_signals) {
            continue;
        }
        let named = w.take_phrase(&d.name);
        let phrased = d.phrases.iter().any(|p| w.take_phrase(p));
        if named || phrased {
            if !r.filters.signals.contains(&d.name) {
                r.filters.signals.push(d.name.clone());
                r.notes.push(format!("detection {}", d.name));
            }
            r.subject = Subject::Signals;
        }
    }
    for i in 0..w.len() {
        if let Some(id) = mitre_id(w.get(i)).filter(|_| !w.is_used(i)) {
            w.take(i);
            r.filters.mitre.push(id);
            r.subject = Subject::Signals;
        }
    }
    for severity in &words.severity {
        if w.take_any(&severity.phrases) {
            r.filters
                .severities
                .push(severity.means.as_str().to_owned());
            r.subject = Subject::Signals;
        }
    }
    for intent in &words.intent {
        if r.filters.intent.is_none() && w.take_any(&intent.phrases) {
            r.filters.intent = Some(intent.means.clone());
            r.subject = Subject::Signals;
        }
    }
}

fn read_event_kind(w: &mut Words, r: &mut Reading) {
    let (words, f) = (&LEXICON.events, &mut r.filters);
    for action in &words.action {
        if w.take_any(&action.phrases) {
            f.actions.push(action.means.clone());
        }
    }
    // "did anyone change the root password", "reset bob's password".
    let change = &words.password_change;
    let noun = change.nouns.iter().find_map(|x| w.find(x));
    let verb = change.verbs.iter().find_map(|x| w.find(x));
    if let (Some(n), Some(v), true) = (noun, verb, f.actions.is_empty()) {
        w.take(n);
        w.take(v);
        f.actions.push(change.action.clone());
    }
    for process in &words.process {
        if w.take_any(&process.phrases) {
            f.processes.push(process.means.clone());
            r.notes.push(process.means.clone());
        }
    }
    let failed = w.take_any(&words.failure);
    let logged_in = w.take_any(&words.logged_in);
    let succeeded = w.take_any(&words.success) || (logged_in && !failed);
    let login = w.take_any(&words.login) || logged_in;
    if failed {
        f.outcome = Some("failure".into());
    } else if succeeded {
        f.outcome = Some("success".into());
    }
    // Logins are interactive authentication (sshd, su, sudo's password prompt); cron and systemd session
    // bookkeeping is category `session` and stays out.
    if (failed || succeeded || login) && f.processes.is_empty() && f.actions.is_empty() {
        f.category = Some("authentication".into());
    }
    if let Some(o) = &f.outcome {
        r.notes.push(format!("outcome {o}"));
    }
    if login && f.category.is_some() {
        r.notes.push(
            "logins: interactive authentication only (sshd, su, sudo), not cron or session records"
                .into(),
        );
    }
}

fn read_group(w: &mut Words) -> Option<Dim> {
    let mut group = None;
    for g in &LEXICON.group {
        if w.take_any(&g.phrases) && group.is_none() {
            group = Some(g.means);
        }
    }
    group
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|x| x == value) {
        list.push(value.to_owned());
    }
}

/// Users, hosts and tenants: after keywords first, then any word the tenant's data knows as a name.
fn read_names(w: &mut Words, known: &Vocabulary, r: &mut Reading) {
    for i in 0..w.len() {
        let mut cue_at = i;
        let Some(kind) = cue(w.get(i)).filter(|_| !w.is_used(i)) else {
            continue;
        };
        // The cue names every name after it: "for alice and bob", "users alice, bob".
        let mut at = i + 1;
        loop {
            if w.is_used(at) {
                break;
            }
            if !name_after_cue(w, at, kind, known, r) {
                break;
            }
            w.take(cue_at);
            w.take(at);
            if ["and", "or", "&"].contains(&w.get(at + 1)) && !w.is_used(at + 2) {
                cue_at = at + 1;
                at += 2;
            } else {
                break;
            }
        }
    }
    // "alice's logins": the word before a possessive.
    for i in 1..w.len() {
        if w.get(i) == POSSESSIVE && !w.is_used(i - 1) {
            w.take(i);
            if !name_after_cue(w, i - 1, Cue::MaybeUser, known, r) {
                w.take(i - 1);
            }
            w.take(i - 1);
        }
    }
    // Bare names the data knows: "failed logins root yesterday", "ci logins".
    for (i, word) in w.unread() {
        if is_known_word(&word) && word != "root" {
            continue;
        }
        if let Some(user) = known.user(&word).or((word == "root").then_some("root")) {
            push_unique(&mut r.filters.users, user);
            w.take(i);
        } else if let Some(host) = known.host(&word) {
            push_unique(&mut r.filters.hosts, host);
            w.take(i);
        }
    }
}

/// Reads the word at `at` as the name `kind` announces; false if it is not one.
fn name_after_cue(w: &Words, at: usize, kind: Cue, known: &Vocabulary, r: &mut Reading) -> bool {
    let word = w.get(at);
    let f = &mut r.filters;
    if kind == Cue::Tenant {
        if word.is_empty() {
            return false;
        }
        r.unclear.push(format!(
            "answers are always about your own tenant; I ignored \"{word}\""
        ));
        return true;
    }
    if word.is_empty() || (is_known_word(word) && word != "root") {
        return false;
    }
    let user = known.user(word).or((word == "root").then_some("root"));
    let host = known.host(word);
    match kind {
        Cue::User | Cue::MaybeUser | Cue::MaybeSource if user.is_some() => {
            push_unique(&mut f.users, user.unwrap_or(word));
        }
        Cue::Host | Cue::MaybeHost | Cue::MaybeSource if host.is_some() => {
            push_unique(&mut f.hosts, host.unwrap_or(word));
        }
        // "for web-1", "on alice", "host alice": the data knows better than the keyword.
        Cue::MaybeUser | Cue::User if host.is_some() => {
            push_unique(&mut f.hosts, host.unwrap_or(word))
        }
        Cue::MaybeHost | Cue::Host if user.is_some() => {
            push_unique(&mut f.users, user.unwrap_or(word))
        }
        Cue::User | Cue::Host if !is_name(word) => {
            r.unclear.push(format!(
                "\"{word}\" is not a {} name I can look for; I left it out",
                if kind == Cue::User { "user" } else { "host" }
            ));
        }
        Cue::User if looks_like_name(word) => {
            push_unique(&mut f.users, word);
            r.unclear.push(format!(
                "I have not seen a user \"{word}\" in this tenant's data; the answer is for that name as written"
            ));
        }
        Cue::Host | Cue::MaybeHost if host_shaped(word) || (kind == Cue::Host && looks_like_name(word)) => {
            push_unique(&mut f.hosts, word);
            r.unclear.push(format!(
                "I have not seen a host \"{word}\" in this tenant's data; the answer is for that name as written"
            ));
        }
        Cue::Ip => {
            if !looks_like_name(word) {
                return false;
            }
            r.unclear.push(format!(
                "\"{word}\" is not an IP address or range; I answered for all source addresses"
            ));
        }
        Cue::MaybeUser if looks_like_name(word) => r.unclear.push(format!(
            "I answered for all users: I have not seen a user \"{word}\" in this tenant's data"
        )),
        Cue::MaybeSource if looks_like_name(word) => r.unclear.push(format!(
            "I answered for all sources: I have not seen a host, user or address \"{word}\" in this tenant's data"
        )),
        _ => return false,
    }
    true
}

/// Words nobody read, grouped into phrases: each gets a line saying it was left out.
fn read_leftovers(w: &Words, r: &mut Reading) {
    let mut phrase: Vec<String> = Vec::new();
    let flush = |phrase: &mut Vec<String>, r: &mut Reading| {
        if !phrase.is_empty() {
            r.unclear.push(format!(
                "I did not understand \"{}\" and left it out",
                phrase.join(" ")
            ));
            phrase.clear();
        }
    };
    for i in 0..w.len() {
        let word = w.get(i);
        let meaningless = is_filler_or_cue(word) || word.bytes().all(|b| b.is_ascii_punctuation());
        if w.is_used(i) || meaningless {
            flush(&mut phrase, r);
        } else {
            phrase.push(word.to_owned());
        }
    }
    flush(&mut phrase, r);
}

fn choose_what(shape: &Shape, has_signal_id: bool, group_by: Option<Dim>, r: &Reading) -> What {
    if has_signal_id {
        return What::ExplainSignal;
    }
    match shape.what {
        // "number of alerts per severity", "how many users failed": a count for each.
        Some(What::Count) if group_by.is_some() => return What::TopN,
        Some(what) => return what,
        None => {}
    }
    let f = &r.filters;
    // "users alice and bob" names whom to filter on, not what to group by.
    let names_the_group = match group_by {
        Some(Dim::User) => !f.users.is_empty(),
        Some(Dim::Host) => !f.hosts.is_empty(),
        Some(Dim::Ip) => !f.ips.is_empty(),
        _ => false,
    };
    let grouped = group_by.is_some() && (shape.top || !names_the_group);
    // "top 3 detections", "noisiest rules": signals ranked by detection.
    let top_signals = shape.top && group_by.is_none() && r.subject == Subject::Signals;
    // "who ran sudo on db-01": the users, ranked.
    let who = shape.who && f.users.is_empty() && f.actions.is_empty() && !shape.list;
    if grouped || top_signals || who {
        What::TopN
    } else {
        What::List
    }
}
