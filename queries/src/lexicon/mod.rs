//! The planner's vocabulary, kept as data in `lexicon.toml`: which words mean which answers, detections,
//! event kinds, groupings, names and times, and which words carry no meaning of their own. The file is
//! read once into typed tables; adding a phrasing is adding a row.

use std::sync::LazyLock;

use sentra_schemas::Severity;
use serde::Deserialize;

use crate::intent::Dim;
use time::TimeWords;

pub(crate) mod time;

/// The vocabulary, read from `lexicon.toml` on first use.
pub(crate) static LEXICON: LazyLock<Lexicon> = LazyLock::new(|| {
    toml::from_str(include_str!("lexicon.toml")).unwrap_or_else(|e| panic!("lexicon.toml: {e}"))
});

/// Every table of `lexicon.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Lexicon {
    /// Words that carry no meaning of their own in a question.
    pub filler: Vec<String>,
    /// Words that shape the answer.
    pub answer: AnswerWords,
    /// Words about signals.
    pub signals: SignalWords,
    /// Words about events.
    pub events: EventWords,
    /// Groupings and the phrases that ask for them, most specific first.
    pub group: Vec<Meaning<Dim>>,
    /// Words around names.
    pub names: NameWords,
    /// Words of time phrases.
    pub time: TimeWords,
}

/// Phrases and what they mean.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Meaning<T> {
    /// What the phrases mean.
    pub means: T,
    /// The phrases.
    pub phrases: Vec<String>,
}

/// Words that shape the answer: count, top-N, trend, list, explain or summarize, and how many rows.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnswerWords {
    /// Phrases asking for a count.
    pub count: Vec<String>,
    /// Phrases asking for a trend.
    pub trend: Vec<String>,
    /// Phrases asking for an overview.
    pub summarize: Vec<String>,
    /// Phrases that rank by how often.
    pub by_frequency: Vec<String>,
    /// Phrases asking for the newest records.
    pub newest: Vec<String>,
    /// Phrases asking for the most frequent values.
    pub top: Vec<String>,
    /// Phrases asking for records.
    pub list: Vec<String>,
    /// Phrases asking to explain one signal.
    pub explain: Vec<String>,
    /// Words that name the records themselves.
    pub records: Vec<String>,
    /// Words asking who.
    pub who: Vec<String>,
    /// Words that name someone or something attacking.
    pub attack: Vec<String>,
    /// Words before a number of rows.
    pub limit_before: Vec<String>,
    /// Words after a number of rows.
    pub limit_after: Vec<String>,
    /// Trend buckets and the phrases that ask for them.
    pub bucket: Vec<Meaning<Dim>>,
}

/// Words about signals.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignalWords {
    /// Words that make the question about signals.
    pub subject: Vec<String>,
    /// Detections and the phrases that name them.
    pub detection: Vec<Detection>,
    /// Severities and their words.
    pub severity: Vec<Meaning<Severity>>,
    /// Signal intent classes and their phrases.
    pub intent: Vec<Meaning<String>>,
}

/// A detection, the phrases that name it, and whether those phrases name it even without a word like
/// "signal" or "alert".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Detection {
    /// The detection's name, itself a phrase that names it.
    pub name: String,
    /// Whether the phrases mean the detection on their own.
    pub on_their_own: bool,
    /// Phrases that mean it.
    pub phrases: Vec<String>,
}

/// Words about events: outcomes, logins, actions and processes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventWords {
    /// Words for a failed outcome.
    pub failure: Vec<String>,
    /// Words for a successful outcome.
    pub success: Vec<String>,
    /// Words for interactive authentication.
    pub login: Vec<String>,
    /// Login verbs in the past tense: a login that worked, unless a failure word says otherwise.
    pub logged_in: Vec<String>,
    /// A password change said in words apart ("change the root password").
    pub password_change: PasswordChange,
    /// Event actions and the phrases that mean them.
    pub action: Vec<Meaning<String>>,
    /// Processes asked about by name.
    pub process: Vec<Meaning<String>>,
}

/// An action said as a noun and a verb anywhere in the question.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChange {
    /// The action they mean.
    pub action: String,
    /// The nouns.
    pub nouns: Vec<String>,
    /// The verbs.
    pub verbs: Vec<String>,
}

/// Words around names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NameWords {
    /// Words that ask to leave a name out.
    pub exclude: Vec<String>,
    /// Words before a name and which kind of name they announce, in the order they are looked up.
    pub cue: Vec<Meaning<Cue>>,
}

/// Which kind of name a word before it announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Cue {
    /// "user alice": certainly a user.
    User,
    /// "host web-1": certainly a host.
    Host,
    /// "src 203.0.113.7": certainly an address.
    Ip,
    /// "for alice", "did ci", "as root": a user if the data knows one.
    MaybeUser,
    /// "on web-1": a host if the data knows one, or if it looks like one.
    MaybeHost,
    /// "from jumpbox": a host or a user if the data knows one.
    MaybeSource,
    /// "tenant globex": never honoured.
    Tenant,
}

/// The kind of name `word` announces, if it is a word before names.
pub(crate) fn cue(word: &str) -> Option<Cue> {
    LEXICON
        .names
        .cue
        .iter()
        .find(|c| c.phrases.iter().any(|p| p == word))
        .map(|c| c.means)
}

/// Whether `word` is filler or a word that certainly announces a user, host or address: nothing that
/// needs reading on its own.
pub(crate) fn is_filler_or_cue(word: &str) -> bool {
    LEXICON.filler.iter().any(|x| x == word)
        || matches!(cue(word), Some(Cue::User | Cue::Host | Cue::Ip))
}

/// Every phrase of `rows`.
fn phrases_of<T>(rows: &[Meaning<T>]) -> impl Iterator<Item = &String> {
    rows.iter().flat_map(|m| &m.phrases)
}

/// Whether `word` is one of [`known_words`], so a word the planner knows rather than a name.
pub(crate) fn is_known_word(word: &str) -> bool {
    known_words()
        .binary_search_by(|w| w.as_str().cmp(word))
        .is_ok()
}

/// Every single word of the phrases that mean an answer, a detection, an event kind, a grouping or a cue,
/// of the filler and of the time words, sorted: the words typos are corrected to and that are never
/// names. Words that only qualify others (row limits, exclusions, date connectives) are not among them.
pub(crate) fn known_words() -> &'static [String] {
    &KNOWN_WORDS
}

static KNOWN_WORDS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let l = &*LEXICON;
    let (a, s, e) = (&l.answer, &l.signals, &l.events);
    let lists = [
        &s.subject,
        &e.failure,
        &e.success,
        &e.login,
        &e.logged_in,
        &a.count,
        &a.trend,
        &a.summarize,
        &a.top,
        &a.list,
        &a.explain,
        &a.attack,
        &l.filler,
        &l.time.words,
    ];
    let mut words: Vec<String> = lists
        .into_iter()
        .flatten()
        .chain(
            s.detection
                .iter()
                .flat_map(|d| d.phrases.iter().chain([&d.name])),
        )
        .chain(phrases_of(&s.severity))
        .chain(phrases_of(&s.intent))
        .chain(phrases_of(&e.action))
        .chain(phrases_of(&e.process))
        .chain(phrases_of(&a.bucket))
        .chain(phrases_of(&l.group))
        .chain(phrases_of(&l.names.cue))
        .flat_map(|p| p.split(' '))
        .map(str::to_owned)
        .collect();
    words.sort();
    words.dedup();
    words
});

#[cfg(test)]
mod tests;
