//! The planner's vocabulary as data: which words mean which detections, event kinds, outcomes, answers
//! and groupings, and which words carry no meaning of their own. The planner reads these tables in
//! order; adding a phrasing is adding a row.

use crate::intent::Dim;

/// A detection, the phrases that name it, and whether those phrases name it even without a word like
/// "signal" or "alert" (attack patterns do; "root login" alone is a question about events).
pub(crate) struct SignalWords {
    /// The detection's name.
    pub name: &'static str,
    /// Phrases that mean it.
    pub phrases: &'static [&'static str],
    /// Whether the phrases mean the detection on their own.
    pub on_their_own: bool,
}

/// Detections and the words that mean them.
pub(crate) const SIGNALS: &[SignalWords] = &[
    SignalWords {
        name: "ssh_password_spray",
        phrases: &[
            "password spray",
            "password spraying",
            "password sprays",
            "spraying",
            "spray",
            "sprayed",
        ],
        on_their_own: true,
    },
    SignalWords {
        name: "ssh_distributed_brute_force",
        phrases: &[
            "distributed brute force",
            "distributed brute-force",
            "credential stuffing",
        ],
        on_their_own: true,
    },
    SignalWords {
        name: "ssh_brute_force",
        phrases: &[
            "brute force",
            "brute-force",
            "bruteforce",
            "brute forcing",
            "brute-forcing",
            "bruteforcing",
            "brute forced",
            "brute-forced",
            "brute",
        ],
        on_their_own: true,
    },
    SignalWords {
        name: "ssh_account_login_after_failures",
        phrases: &["account login after failures"],
        on_their_own: true,
    },
    SignalWords {
        name: "ssh_login_after_failures",
        phrases: &[
            "login after failures",
            "success after failures",
            "successful login after failures",
            "login after failed attempts",
            "logged in after failures",
        ],
        on_their_own: true,
    },
    SignalWords {
        name: "ssh_invalid_user_enumeration",
        phrases: &[
            "invalid user enumeration",
            "enumerating usernames",
            "enumerating users",
            "enumerating accounts",
            "user enumeration",
            "username enumeration",
            "account enumeration",
            "enumeration",
            "enumerating",
        ],
        on_their_own: true,
    },
    SignalWords {
        name: "sudo_abuse",
        phrases: &["sudo abuse"],
        on_their_own: true,
    },
    SignalWords {
        name: "ssh_root_login",
        phrases: &["root login", "root logins", "direct root"],
        on_their_own: false,
    },
    SignalWords {
        name: "su_root_failures",
        phrases: &["su to root", "su failures", "su root"],
        on_their_own: false,
    },
    SignalWords {
        name: "new_local_account",
        phrases: &[
            "new local account",
            "new account",
            "new accounts",
            "account creation",
        ],
        on_their_own: false,
    },
    SignalWords {
        name: "privileged_group_add",
        phrases: &["privileged group", "added to sudo", "added to wheel"],
        on_their_own: false,
    },
    SignalWords {
        name: "privileged_password_change",
        phrases: &["privileged password", "root password change"],
        on_their_own: false,
    },
];

/// Words that make the question about signals.
pub(crate) const SIGNAL_SUBJECT: &[&str] = &[
    "signal",
    "signals",
    "alert",
    "alerts",
    "alerting",
    "detection",
    "detections",
    "incident",
    "incidents",
    "finding",
    "findings",
    "notable",
    "notables",
    "alarm",
    "alarms",
    "offense",
    "offenses",
    "rule",
    "rules",
];

/// Severities and their words.
pub(crate) const SEVERITIES: &[(&str, &[&str])] = &[
    ("CRITICAL", &["critical", "crit", "sev1", "p1"]),
    (
        "HIGH",
        &["high", "high-severity", "high-risk", "sev2", "p2"],
    ),
    ("MEDIUM", &["medium", "moderate", "med", "sev3", "p3"]),
    ("LOW", &["low", "low-severity", "sev4", "p4"]),
];

/// Signal intent classes and their phrases.
pub(crate) const INTENTS: &[(&str, &[&str])] = &[
    (
        "Privilege Escalation",
        &[
            "privilege escalation",
            "privesc",
            "priv esc",
            "privilege-escalation",
        ],
    ),
    (
        "Credential Access",
        &["credential access", "credential-access"],
    ),
];

/// Event actions and the phrases that mean them.
pub(crate) const ACTIONS: &[(&str, &[&str])] = &[
    (
        "user_created",
        &[
            "new local account",
            "new local accounts",
            "new user",
            "new users",
            "new account",
            "new accounts",
            "accounts created",
            "account created",
            "users created",
            "user created",
            "created users",
            "created accounts",
            "account creation",
            "account creations",
            "user creation",
            "useradd",
        ],
    ),
    (
        "user_deleted",
        &[
            "deleted users",
            "deleted accounts",
            "users deleted",
            "user deleted",
            "accounts deleted",
            "account deleted",
            "accounts removed",
            "users removed",
            "account deletion",
            "userdel",
        ],
    ),
    (
        "password_changed",
        &[
            "password change",
            "password changes",
            "passwords changed",
            "password changed",
            "changed password",
            "changed passwords",
            "changed their password",
            "changed his password",
            "changed her password",
            "password reset",
            "password resets",
            "root password change",
            "privileged password",
            "passwd",
            "chpasswd",
        ],
    ),
    (
        "user_added_to_group",
        &[
            "group add",
            "group adds",
            "added to group",
            "added to a group",
            "added to groups",
            "added to sudo",
            "added to wheel",
            "added to the sudo group",
            "added to the wheel group",
            "added to the",
            "group membership",
            "group memberships",
            "group changes",
            "privileged group",
            "gpasswd",
            "usermod",
        ],
    ),
    (
        "ssh_invalid_user",
        &[
            "invalid user",
            "invalid users",
            "unknown user",
            "unknown users",
            "non-existent user",
            "non-existent users",
            "nonexistent user",
            "nonexistent users",
            "invalid usernames",
            "invalid username",
        ],
    ),
];

/// Words for a failed outcome.
pub(crate) const FAILURE: &[&str] = &[
    "failed",
    "fail",
    "fails",
    "failing",
    "failure",
    "failures",
    "unsuccessful",
    "bad",
    "denied",
    "wrong",
    "incorrect",
    "rejected",
    "refused",
    "blocked",
    "couldn't",
    "could not",
    "can't",
    "cannot",
    "unable",
];

/// Words for a successful outcome.
pub(crate) const SUCCESS: &[&str] = &[
    "successful",
    "successfully",
    "succeeded",
    "success",
    "successes",
    "accepted",
    "allowed",
    "granted",
];

/// Words for interactive authentication (ECS category `authentication`: sshd logins, su, sudo
/// authentication; never cron or systemd session bookkeeping).
pub(crate) const LOGIN: &[&str] = &[
    "login",
    "logins",
    "log-in",
    "log-ins",
    "log in",
    "logon",
    "logons",
    "log on",
    "sign-in",
    "sign-ins",
    "signin",
    "signins",
    "sign in",
    "authentication",
    "authentications",
    "auth",
    "auths",
    "authenticate",
    "ssh",
    "sshd",
    "password",
    "passwords",
    "credentials",
    "attempt",
    "attempts",
    "connection",
    "connections",
];

/// Login verbs in the past tense: they mean a login that worked ("who logged in"), unless a failure word
/// says otherwise ("failed to log in").
pub(crate) const LOGGED_IN: &[&str] = &[
    "logged in",
    "logged into",
    "logged on",
    "logged-in",
    "signed in",
    "signed on",
    "authenticated",
    "got in",
    "ssh'd",
    "sshed",
    "logged",
];

/// Processes asked about by name.
pub(crate) const PROCESSES: &[(&str, &[&str])] =
    &[("sudo", &["sudo", "sudoers", "sudo'd"]), ("su", &["su"])];

/// Phrases asking for a count.
pub(crate) const COUNT: &[&str] = &[
    "how many",
    "how often",
    "count",
    "counts",
    "number of",
    "total",
    "tally",
];

/// Phrases asking for a trend.
pub(crate) const TREND: &[&str] = &[
    "trend",
    "trends",
    "trending",
    "over time",
    "timeline",
    "histogram",
    "spike",
    "spikes",
    "graph",
    "chart",
    "breakdown over time",
];

/// Trend buckets and their phrases.
pub(crate) const BUCKETS: &[(Dim, &[&str])] = &[
    (
        Dim::Hour,
        &[
            "per hour",
            "by hour",
            "hourly",
            "each hour",
            "every hour",
            "an hour",
        ],
    ),
    (
        Dim::Day,
        &[
            "per day",
            "by day",
            "daily",
            "each day",
            "every day",
            "a day",
            "day by day",
        ],
    ),
];

/// Phrases asking for an overview.
pub(crate) const SUMMARIZE: &[&str] = &[
    "summarize",
    "summarise",
    "summary",
    "what happened",
    "what's happening",
    "what is happening",
    "what's going on",
    "what is going on",
    "overview",
    "recap",
    "brief me",
    "briefing",
    "sitrep",
    "anything unusual",
    "anything suspicious",
    "anything interesting",
];

/// Phrases asking for the most frequent values.
pub(crate) const TOP: &[&str] = &[
    "top", "most", "biggest", "noisiest", "worst", "busiest", "heaviest", "frequent", "leading",
    "rank", "ranked",
];

/// Phrases asking for records.
pub(crate) const LIST: &[&str] = &[
    "show", "list", "display", "find", "give me", "get", "pull", "fetch", "raw", "dump", "print",
];

/// Phrases asking to explain one signal.
pub(crate) const EXPLAIN: &[&str] = &["explain", "why", "details", "describe", "tell me about"];

/// Groupings and the phrases that ask for them, most specific first.
pub(crate) const GROUPS: &[(Dim, &[&str])] = &[
    (
        Dim::Ip,
        &[
            "by source ip",
            "per source ip",
            "which ip",
            "what ip",
            "which ips",
            "what ips",
            "by ip",
            "per ip",
            "by source",
            "per source",
            "by address",
            "source ips",
            "source addresses",
            "src ips",
            "source ip",
            "ips",
            "ip addresses",
            "addresses",
            "attackers",
            "offenders",
            "top offenders",
            "bad actors",
            "attacking ips",
            "offending ips",
            "sources",
            "remote hosts",
            "clients",
        ],
    ),
    (
        Dim::User,
        &[
            "by user",
            "per user",
            "every user",
            "each user",
            "which user",
            "which account",
            "by account",
            "per account",
            "by username",
            "users",
            "usernames",
            "accounts",
            "targeted users",
            "targeted accounts",
        ],
    ),
    (
        Dim::Host,
        &[
            "by host",
            "per host",
            "every host",
            "each host",
            "which host",
            "what host",
            "which server",
            "every server",
            "by server",
            "per server",
            "by machine",
            "hosts",
            "servers",
            "machines",
            "boxes",
            "systems",
            "nodes",
        ],
    ),
    (
        Dim::Severity,
        &[
            "by severity",
            "per severity",
            "severity breakdown",
            "by sev",
        ],
    ),
    (
        Dim::Signal,
        &[
            "by detection",
            "by signal",
            "per detection",
            "per signal",
            "by rule",
            "per rule",
            "by type",
            "signal types",
            "kinds of signal",
            "kinds of signals",
            "types of alerts",
            "types of signals",
        ],
    ),
    (Dim::Outcome, &["by outcome", "per outcome", "by result"]),
    (
        Dim::Action,
        &[
            "by action",
            "per action",
            "event types",
            "by event type",
            "kinds of events",
        ],
    ),
];

/// Words that name someone or something attacking: "who is brute forcing us" asks for addresses.
pub(crate) const ATTACK: &[&str] = &[
    "attacking",
    "attack",
    "attacks",
    "attacker",
    "hitting",
    "hammering",
    "scanning",
    "targeting us",
    "brute",
];

/// Words before a user name.
pub(crate) const USER_CUES: &[&str] = &["user", "username", "account", "uid", "login name"];
/// Words before a host name.
pub(crate) const HOST_CUES: &[&str] = &[
    "host",
    "hostname",
    "server",
    "machine",
    "box",
    "node",
    "vm",
    "instance",
    "dest",
    "dst",
    "dest_host",
];
/// Words before a source address.
pub(crate) const IP_CUES: &[&str] = &[
    "ip",
    "address",
    "src",
    "src_ip",
    "source_ip",
    "source",
    "client",
    "rhost",
];
/// Words that may come before a user name ("did ci have", "logged in as root", "for alice").
pub(crate) const MAYBE_USER_CUES: &[&str] = &[
    "as",
    "for",
    "by",
    "did",
    "does",
    "targeting",
    "against",
    "to",
    "about",
    "has",
    "had",
];
/// Words that may come before a host name ("on web-1", "into db-01").
pub(crate) const MAYBE_HOST_CUES: &[&str] = &["on", "into", "onto", "at"];
/// Words that may come before a host, a user or an address ("from jumpbox").
pub(crate) const MAYBE_SOURCE_CUES: &[&str] = &["from", "via"];
/// Words that name a tenant, which a question can never choose.
pub(crate) const TENANT_CUES: &[&str] =
    &["tenant", "org", "organization", "organisation", "customer"];

/// Words that carry no meaning of their own in a question.
pub(crate) const FILLER: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "in",
    "on",
    "for",
    "from",
    "to",
    "with",
    "and",
    "or",
    "by",
    "per",
    "at",
    "as",
    "into",
    "onto",
    "via",
    "about",
    "against",
    "targeting",
    "since",
    "last",
    "past",
    "this",
    "between",
    "during",
    "within",
    "over",
    "under",
    "were",
    "was",
    "is",
    "are",
    "be",
    "been",
    "being",
    "there",
    "any",
    "anything",
    "all",
    "every",
    "each",
    "me",
    "my",
    "us",
    "our",
    "we",
    "i",
    "you",
    "your",
    "it",
    "its",
    "they",
    "them",
    "their",
    "he",
    "she",
    "his",
    "her",
    "what",
    "which",
    "who",
    "whom",
    "whose",
    "how",
    "when",
    "where",
    "did",
    "do",
    "does",
    "done",
    "have",
    "has",
    "had",
    "that",
    "those",
    "these",
    "can",
    "could",
    "would",
    "should",
    "will",
    "please",
    "pls",
    "plz",
    "let",
    "know",
    "see",
    "seen",
    "saw",
    "want",
    "need",
    "some",
    "just",
    "only",
    "so",
    "far",
    "up",
    "out",
    "happen",
    "happened",
    "happening",
    "occur",
    "occurred",
    "occurring",
    "activity",
    "activities",
    "events",
    "event",
    "logs",
    "log",
    "entries",
    "entry",
    "records",
    "record",
    "lines",
    "line",
    "messages",
    "stuff",
    "things",
    "look",
    "looking",
    "check",
    "tell",
    "give",
    "shown",
    "listed",
    "tagged",
    "with",
    "severity",
    "severities",
    "level",
    "raised",
    "fired",
    "triggered",
    "generated",
    "created",
    "there's",
    "there're",
    "what's",
    "who's",
    "whats",
    "whos",
    "we've",
    "i'd",
    "i'm",
    "today's",
    "yesterday's",
    "been",
    "not",
    "no",
    "yes",
    "also",
    "still",
    "too",
    "than",
    "then",
    "now",
    "currently",
    "ever",
    "again",
    "more",
    "many",
    "much",
    "did",
    "doing",
    "do",
    "try",
    "tried",
    "trying",
    "get",
    "got",
    "getting",
    "via",
    "using",
    "use",
    "used",
    "against",
    "here",
    "other",
    "else",
    "else's",
    "same",
    "one",
    "ones",
    "per",
    "vs",
    "versus",
    "like",
    "kind",
    "kinds",
    "type",
    "types",
    "sort",
    "ordered",
    "order",
    "sorted",
    "descending",
    "ascending",
    "time",
    "times",
    "'s",
    "some",
    "those",
    "hey",
    "hi",
    "quick",
    "quickly",
    "exactly",
    "approximately",
    "roughly",
    "around",
    "about",
    "ok",
    "okay",
    "thanks",
    "thank",
    "according",
    "data",
    "environment",
    "env",
    "network",
    "infra",
    "infrastructure",
    "fleet",
    "estate",
    "our",
    "ours",
    "everything",
    "something",
    "suspicious",
    "unusual",
    "interesting",
    "recent",
    "across",
    "went",
    "go",
    "going",
    "happen",
    "made",
    "make",
    "making",
    "hit",
    "hits",
    "affected",
    "involved",
    "involving",
    "related",
    "regarding",
    "concerning",
    "re",
    "wrt",
    "info",
    "information",
    "detail",
    "report",
    "counted",
    "attempted",
    "user's",
    "access",
    "accessed",
    "accessing",
    "into",
    "try",
    "ran",
    "run",
    "running",
    "executed",
    "commands",
    "command",
    "in?",
    "whole",
    "entire",
    "total",
    "overall",
    "unique",
    "distinct",
    "different",
    "separate",
    "individual",
    "it's",
    "there",
    "if",
    "whether",
    "and/or",
    "etc",
    "e.g",
    "i.e",
    "by",
    "severity",
    "priority",
    "prio",
    "risk",
    "risky",
    "level",
    "targeted",
    "hitting",
    "hammering",
    "attacking",
    "scanning",
    "fire",
    "fires",
    "trigger",
    "change",
    "changes",
    "changed",
    "publickey",
    "pubkey",
    "key",
    "keys",
    "common",
    "anyone",
    "anybody",
    "someone",
    "somebody",
    "everyone",
    "attacker",
    "attack",
    "attacks",
    "grouped",
    "breakdown",
    "but",
    "need",
    "rate",
    "volume",
    "inbound",
    "outbound",
    "show",
    "us?",
];

/// Words that ask to leave something out.
pub(crate) const EXCLUDE: &[&str] = &[
    "excluding",
    "exclude",
    "except",
    "without",
    "besides",
    "ignoring",
    "ignore",
    "minus",
];

/// Whether `word` appears in any table, so it is a word the planner knows rather than a name.
pub(crate) fn is_known_word(word: &str) -> bool {
    known_words()
        .binary_search_by(|w| w.as_str().cmp(word))
        .is_ok()
}

/// Every single word of every table, for typo correction and for telling words from names.
pub(crate) fn known_words() -> &'static [String] {
    static WORDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    WORDS.get_or_init(|| {
        let mut all: Vec<&str> = Vec::new();
        for s in SIGNALS {
            all.extend(s.phrases);
            all.push(s.name);
        }
        for (_, p) in SEVERITIES
            .iter()
            .chain(INTENTS)
            .chain(ACTIONS)
            .chain(PROCESSES)
        {
            all.extend(*p);
        }
        for (_, p) in BUCKETS.iter().chain(GROUPS) {
            all.extend(*p);
        }
        for list in [
            SIGNAL_SUBJECT,
            FAILURE,
            SUCCESS,
            LOGIN,
            LOGGED_IN,
            COUNT,
            TREND,
            SUMMARIZE,
            TOP,
            LIST,
            EXPLAIN,
            ATTACK,
            USER_CUES,
            HOST_CUES,
            IP_CUES,
            TENANT_CUES,
            FILLER,
            crate::when::TIME_WORDS,
        ] {
            all.extend(list);
        }
        let mut words: Vec<String> = all
            .iter()
            .flat_map(|p| p.split(' '))
            .map(str::to_owned)
            .collect();
        words.sort();
        words.dedup();
        words
    })
}
