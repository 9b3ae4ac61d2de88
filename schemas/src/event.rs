use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::time::format_rfc3339_us;
use crate::Event;

/// ECS `event.category` of a normalized event (one value; ECS allows arrays, Sentra uses the primary one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Logins, credential checks (sshd, sudo, su, pam auth).
    Authentication,
    /// Session open/close, disconnects.
    Session,
    /// Identity and access management: accounts, groups, passwords.
    Iam,
    /// A program was run with privileges (sudo COMMAND).
    Process,
    /// Connections that never reached an account: failed identification or key exchange.
    Network,
    /// A line Sentra kept but does not (yet) understand; the default.
    #[default]
    Unknown,
}

impl Category {
    /// The ECS keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::Session => "session",
            Category::Iam => "iam",
            Category::Process => "process",
            Category::Network => "network",
            Category::Unknown => "unknown",
        }
    }

    /// The category of an ECS keyword; `Unknown` for any other text.
    pub fn from_keyword(keyword: &str) -> Self {
        match keyword {
            "authentication" => Category::Authentication,
            "session" => Category::Session,
            "iam" => Category::Iam,
            "process" => Category::Process,
            "network" => Category::Network,
            _ => Category::Unknown,
        }
    }
}

/// ECS `event.outcome`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The attempt succeeded.
    Success,
    /// The attempt failed (bad password, refused, not allowed).
    Failure,
    /// Not applicable or not known; the default.
    #[default]
    Unknown,
}

impl Outcome {
    /// The ECS keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }

    /// The outcome of an ECS keyword; `Unknown` for any other text.
    pub fn from_keyword(keyword: &str) -> Self {
        match keyword {
            "success" => Outcome::Success,
            "failure" => Outcome::Failure,
            _ => Outcome::Unknown,
        }
    }
}

impl Event {
    /// ECS `related.user`: every user name the event mentions, without duplicates.
    pub fn related_users(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::with_capacity(2);
        for u in [&self.user, &self.target_user].into_iter().flatten() {
            if !out.contains(&u.as_str()) {
                out.push(u);
            }
        }
        out
    }

    /// The source address when it is an IP address (ECS `source.ip`); `None` for a host name.
    pub fn source_ip_address(&self) -> Option<&str> {
        let a = self.source_ip.as_deref()?;
        a.parse::<std::net::IpAddr>().is_ok().then_some(a)
    }

    /// Renders the event as an ECS-shaped JSON document.
    pub fn to_ecs_json(&self) -> Value {
        let mut doc = Map::new();
        doc.insert(
            "@timestamp".into(),
            Value::String(format_rfc3339_us(self.timestamp_us)),
        );
        doc.insert("organization".into(), json!({ "id": self.tenant }));
        doc.insert("host".into(), json!({ "name": self.host }));
        let mut process = Map::new();
        process.insert("name".into(), json!(self.process_name));
        if let Some(pid) = self.process_pid {
            process.insert("pid".into(), json!(pid));
        }
        doc.insert("process".into(), Value::Object(process));
        doc.insert(
            "event".into(),
            json!({
                "id": self.id,
                "kind": "event",
                "category": self.category.as_str(),
                "type": self.event_type,
                "action": self.action,
                "outcome": self.outcome.as_str(),
                "dataset": self.dataset,
                "original": self.original,
            }),
        );
        let mut user = Map::new();
        if let Some(u) = &self.user {
            user.insert("name".into(), json!(u));
        }
        if let Some(t) = &self.target_user {
            let role = if self.category == Category::Iam {
                "target"
            } else {
                "effective"
            };
            user.insert(role.into(), json!({ "name": t }));
        }
        if !user.is_empty() {
            doc.insert("user".into(), Value::Object(user));
        }
        if let Some(g) = &self.group {
            doc.insert("group".into(), json!({ "name": g }));
        }
        let source_ip = self.source_ip_address();
        if let Some(address) = &self.source_ip {
            let mut source = Map::new();
            source.insert("address".into(), json!(address));
            match source_ip {
                Some(ip) => source.insert("ip".into(), json!(ip)),
                None => source.insert("domain".into(), json!(address)),
            };
            if let Some(p) = self.source_port {
                source.insert("port".into(), json!(p));
            }
            doc.insert("source".into(), Value::Object(source));
        }
        let mut related = Map::new();
        if let Some(ip) = source_ip {
            related.insert("ip".into(), json!([ip]));
        }
        let users = self.related_users();
        if !users.is_empty() {
            related.insert("user".into(), json!(users));
        }
        let mut hosts = vec![self.host.as_str()];
        if let (Some(name), None) = (&self.source_ip, source_ip) {
            hosts.push(name);
        }
        related.insert("hosts".into(), json!(hosts));
        doc.insert("related".into(), Value::Object(related));
        doc.insert("message".into(), json!(self.message));
        let mut sentra = Map::new();
        sentra.insert("source".into(), json!(self.source));
        if let Some(m) = &self.auth_method {
            sentra.insert("auth_method".into(), json!(m));
        }
        if let Some(c) = &self.command {
            sentra.insert("command".into(), json!(c));
        }
        doc.insert("sentra".into(), Value::Object(sentra));
        Value::Object(doc)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::TenantId;

    fn event(category: Category, target: Option<&str>, source: Option<&str>) -> Event {
        Event {
            id: "0".repeat(32),
            tenant: TenantId::new("acme").unwrap(),
            timestamp_us: 0,
            host: "web-1".into(),
            process_name: "sshd".into(),
            process_pid: None,
            dataset: "system.auth".into(),
            category,
            event_type: "info".into(),
            action: "a".into(),
            outcome: Outcome::Failure,
            user: Some("alice".into()),
            target_user: target.map(Into::into),
            group: None,
            source_ip: source.map(Into::into),
            source_port: Some(22),
            auth_method: None,
            command: None,
            message: String::new(),
            original: String::new(),
            source: "f:1".into(),
        }
    }

    #[test]
    fn a_source_address_is_an_ip_or_a_domain_never_both() {
        let j = event(Category::Authentication, None, Some("203.0.113.7")).to_ecs_json();
        assert_eq!(j["source"]["address"], "203.0.113.7");
        assert_eq!(j["source"]["ip"], "203.0.113.7");
        assert!(j["source"].get("domain").is_none());
        assert_eq!(j["related"]["ip"][0], "203.0.113.7");
        let j = event(Category::Authentication, None, Some("scanner.example.net")).to_ecs_json();
        assert_eq!(j["source"]["address"], "scanner.example.net");
        assert_eq!(j["source"]["domain"], "scanner.example.net");
        assert_eq!(j["source"]["port"], 22);
        assert!(j["source"].get("ip").is_none());
        assert!(j["related"].get("ip").is_none());
        assert_eq!(
            j["related"]["hosts"],
            json!(["web-1", "scanner.example.net"])
        );
    }

    #[test]
    fn the_other_account_is_the_target_of_iam_events_and_effective_otherwise() {
        let j = event(Category::Iam, Some("bob"), None).to_ecs_json();
        assert_eq!(j["user"]["target"]["name"], "bob");
        assert!(j["user"].get("effective").is_none());
        for category in [
            Category::Authentication,
            Category::Process,
            Category::Session,
        ] {
            let j = event(category, Some("root"), None).to_ecs_json();
            assert_eq!(j["user"]["effective"]["name"], "root");
            assert!(j["user"].get("target").is_none());
            assert_eq!(j["related"]["user"], json!(["alice", "root"]));
        }
    }

    /// The dotted paths of the values in `doc` that are not objects.
    fn paths(doc: &Value) -> BTreeSet<String> {
        let Value::Object(fields) = doc else {
            return BTreeSet::from([String::new()]);
        };
        let mut out = BTreeSet::new();
        for (name, value) in fields {
            out.extend(paths(value).iter().map(|p| match p.as_str() {
                "" => name.clone(),
                p => format!("{name}.{p}"),
            }));
        }
        out
    }

    #[test]
    fn the_document_has_exactly_the_declared_ecs_fields() {
        let full = |category, source| Event {
            process_pid: Some(1),
            group: Some("wheel".into()),
            auth_method: Some("password".into()),
            command: Some("/bin/ls".into()),
            ..event(category, Some("root"), Some(source))
        };
        let iam_from_an_ip = full(Category::Iam, "203.0.113.7").to_ecs_json();
        let process_from_a_name = full(Category::Process, "scanner.example.net").to_ecs_json();
        let rendered: BTreeSet<String> = [iam_from_an_ip, process_from_a_name]
            .iter()
            .flat_map(paths)
            .collect();
        let declared: BTreeSet<String> = crate::ecs_fields().map(|(f, _)| f.to_owned()).collect();
        assert_eq!(rendered, declared);
    }
}
