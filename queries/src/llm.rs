//! The optional LLM planner: any OpenAI-compatible endpoint (through async-openai) fills the same
//! [`Intent`] as JSON, never SQL. Its answer is parsed strictly (unknown fields refused) and validated like
//! user input; on any error, refusal or timeout the deterministic planner answers instead. Nothing the model
//! says can name a tenant: the intent has no tenant field.

use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequestArgs,
};
use async_openai::Client;

use crate::intent::{Dim, Intent, Subject, What, MAX_RANGE_US, MAX_ROWS};
use crate::planner::{is_ip_or_cidr, is_name};

/// Longest the model may take before the deterministic planner answers instead.
pub const LLM_TIMEOUT: Duration = Duration::from_secs(8);

/// An OpenAI-compatible chat endpoint used as a planner.
pub struct LlmPlanner {
    client: Client<OpenAIConfig>,
    model: String,
}

const SYSTEM: &str = r#"You turn a security analyst's question about Linux authentication events into JSON, and nothing else.
Reply with one JSON object with exactly these fields:
{"what": "count"|"top_n"|"trend"|"list"|"explain_signal"|"summarize",
 "subject": "events"|"signals",
 "filters": {"time": [from_epoch_microseconds, to_epoch_microseconds] or null, "ips": [ip or cidr], "users": [], "hosts": [],
   "signals": [detection names like "ssh_brute_force"], "severities": ["LOW"|"MEDIUM"|"HIGH"|"CRITICAL"], "mitre": ["T1110"],
   "outcome": "success"|"failure"|null, "category": "authentication"|"iam"|"process"|"session"|null, "actions": [], "processes": ["sudo"|"su"|"sshd"],
   "intent": "Maintenance"|"Identity Management"|"Credential Access"|"Privilege Escalation"|null},
 "group_by": "ip"|"user"|"host"|"signal"|"severity"|"outcome"|"action"|"hour"|"day"|null,
 "limit": 1..1000, "signal_id": 12 hex characters or null, "notes": []}
Never include a tenant: the caller's tenant is applied by the system. The current time is given in the user message."#;

/// A list of values, what it is, and the test each value must pass.
type Check<'a> = (&'a str, &'a Vec<String>, fn(&str) -> bool);

/// Checks an intent from the model as strictly as user input; returns why it is unusable.
pub fn validate(mut i: Intent, now_us: i64) -> Result<Intent, String> {
    let f = &mut i.filters;
    if let Some((from, to)) = f.time {
        if from >= to || to > now_us + 86_400_000_000 {
            return Err("time range is empty or in the future".into());
        }
        f.time = Some((from.max(to - MAX_RANGE_US), to));
    }
    let lists: [Check<'_>; 7] = [
        ("ips", &f.ips, is_ip_or_cidr),
        ("users", &f.users, is_name),
        ("hosts", &f.hosts, is_name),
        ("signals", &f.signals, |s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        }),
        ("severities", &f.severities, |s| {
            ["LOW", "MEDIUM", "HIGH", "CRITICAL"].contains(&s)
        }),
        ("mitre", &f.mitre, |s| {
            s.len() >= 5
                && s.starts_with('T')
                && s[1..].bytes().all(|b| b.is_ascii_digit() || b == b'.')
        }),
        ("actions/processes", &f.actions, |s| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        }),
    ];
    for (name, values, ok) in lists {
        if values.len() > 20 || values.iter().any(|v| !ok(v)) {
            return Err(format!("invalid {name}"));
        }
    }
    if f.processes.iter().any(|p| {
        ![
            "sudo", "su", "sshd", "useradd", "usermod", "passwd", "groupadd",
        ]
        .contains(&p.as_str())
    }) {
        return Err("invalid processes".into());
    }
    if f.outcome
        .as_deref()
        .is_some_and(|o| !["success", "failure"].contains(&o))
        || f.category
            .as_deref()
            .is_some_and(|c| !["authentication", "iam", "process", "session"].contains(&c))
        || f.intent.as_deref().is_some_and(|c| {
            ![
                "Maintenance",
                "Identity Management",
                "Credential Access",
                "Privilege Escalation",
            ]
            .contains(&c)
        })
    {
        return Err("invalid outcome, category or intent".into());
    }
    if i.signal_id
        .as_deref()
        .is_some_and(|s| s.len() != 12 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err("invalid signal id".into());
    }
    if i.what == What::ExplainSignal && (i.signal_id.is_none() || i.subject != Subject::Signals) {
        return Err("explain needs a signal id".into());
    }
    i.group_by = match (i.what, i.group_by) {
        (What::Trend, Some(d @ (Dim::Hour | Dim::Day))) => Some(d),
        (What::Trend, _) => Some(Dim::Day),
        (What::TopN, Some(d)) if !matches!(d, Dim::Hour | Dim::Day) => Some(d),
        (What::TopN, _) => return Err("top-N needs a dimension".into()),
        _ => None,
    };
    i.limit = i.limit.clamp(1, MAX_ROWS);
    i.notes
        .push("planned by the language model, then validated".into());
    Ok(i)
}

impl LlmPlanner {
    /// A planner on `base_url` (e.g. `https://api.openai.com/v1`) with `model`; the key is never logged.
    pub fn new(base_url: &str, api_key: &str, model: &str) -> Self {
        // reqwest's rustls needs a process-wide crypto provider; ring is already part of the build.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = OpenAIConfig::new()
            .with_api_base(base_url)
            .with_api_key(api_key);
        Self {
            client: Client::with_config(config),
            model: model.into(),
        }
    }

    /// Asks the model for an intent; any failure is an `Err` (the caller falls back).
    pub async fn plan(&self, question: &str, now_us: i64) -> Result<Intent, String> {
        let user = format!(
            "Current time: {} ({} epoch microseconds).\nQuestion: {question}",
            sentra_schemas::time::format_rfc3339_us(now_us),
            now_us
        );
        let request = CreateChatCompletionRequestArgs::default()
            .model(&self.model)
            .messages([
                ChatCompletionRequestSystemMessage::from(SYSTEM).into(),
                ChatCompletionRequestUserMessage::from(user.as_str()).into(),
            ])
            .temperature(0.0)
            .build()
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(LLM_TIMEOUT, self.client.chat().create(request))
            .await
            .map_err(|_| "the model did not answer in time".to_owned())?
            .map_err(|e| {
                format!(
                    "the model endpoint failed: {}",
                    e.to_string().chars().take(200).collect::<String>()
                )
            })?;
        let content = response
            .choices
            .first()
            .and_then(|c| c.message.content.clone())
            .ok_or("the model gave no content")?;
        let json = content
            .trim()
            .trim_start_matches("```json")
            .trim_start_matches("```")
            .trim_end_matches("```");
        let intent: Intent =
            serde_json::from_str(json).map_err(|e| format!("not a valid intent: {e}"))?;
        validate(intent, now_us)
    }
}
