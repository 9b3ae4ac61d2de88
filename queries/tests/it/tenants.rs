//! Names come from the asking tenant's own data, through the embedded store: "did ci have" counts ci's
//! logins, "logged in as root" means interactive logins rather than cron sessions, and one tenant's users,
//! hosts and addresses never shape or show up in another tenant's answers.

use sentra_queries::{ask, ask_cached, load_vocabulary, Store, Vocabularies};
use sentra_schemas::{Category, Event, EventColumns, Outcome, TenantId};
use sentra_sinks::embedded::EmbeddedStore;

/// Wednesday 2026-03-18 10:30 UTC.
const NOW: i64 = 1_773_829_800_000_000;
const MINUTE: i64 = 60_000_000;

/// What an auth.log line says, as the normalizer records it.
struct Line {
    tenant: &'static str,
    minutes_ago: i64,
    host: &'static str,
    program: &'static str,
    category: Category,
    action: &'static str,
    outcome: Outcome,
    user: &'static str,
    ip: Option<&'static str>,
    message: &'static str,
}

fn event(n: usize, l: &Line) -> Event {
    Event {
        id: format!("{n:016x}"),
        tenant: TenantId::new(l.tenant).unwrap(),
        timestamp_us: NOW - l.minutes_ago * MINUTE,
        host: l.host.into(),
        process_name: l.program.into(),
        process_pid: Some(1000 + n as u32),
        dataset: "system.auth".into(),
        category: l.category,
        event_type: "info".into(),
        action: l.action.into(),
        outcome: l.outcome,
        user: Some(l.user.into()),
        target_user: None,
        group: None,
        source_ip: l.ip.map(str::to_owned),
        source_port: l.ip.map(|_| 50_000 + n as u16),
        auth_method: None,
        command: None,
        message: l.message.into(),
        original: l.message.into(),
        source: format!("auth.log:{n}"),
    }
}

fn store() -> (tempfile::TempDir, Store) {
    use Category::*;
    use Outcome::*;
    let lines = [
        Line {
            tenant: "acme",
            minutes_ago: 300,
            host: "web-1",
            program: "sshd",
            category: Authentication,
            action: "ssh_login",
            outcome: Success,
            user: "ci",
            ip: Some("10.0.0.5"),
            message: "Accepted publickey for ci from 10.0.0.5 port 50022 ssh2: ED25519 SHA256:4f0c",
        },
        Line {
            tenant: "acme",
            minutes_ago: 240,
            host: "bastion-1",
            program: "sshd",
            category: Authentication,
            action: "ssh_login",
            outcome: Success,
            user: "root",
            ip: Some("203.0.113.7"),
            message: "Accepted password for root from 203.0.113.7 port 41022 ssh2",
        },
        Line {
            tenant: "acme",
            minutes_ago: 200,
            host: "web-1",
            program: "CRON",
            category: Session,
            action: "session_opened",
            outcome: Success,
            user: "root",
            ip: None,
            message: "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
        },
        Line {
            tenant: "acme",
            minutes_ago: 140,
            host: "web-1",
            program: "CRON",
            category: Session,
            action: "session_opened",
            outcome: Success,
            user: "root",
            ip: None,
            message: "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
        },
        Line {
            tenant: "acme",
            minutes_ago: 120,
            host: "bastion-1",
            program: "sshd",
            category: Authentication,
            action: "ssh_login",
            outcome: Failure,
            user: "alice",
            ip: Some("203.0.113.7"),
            message: "Failed password for alice from 203.0.113.7 port 41100 ssh2",
        },
        Line {
            tenant: "globex",
            minutes_ago: 100,
            host: "gx-db-1",
            program: "sshd",
            category: Authentication,
            action: "ssh_login",
            outcome: Failure,
            user: "gadmin",
            ip: Some("198.18.0.1"),
            message: "Failed password for gadmin from 198.18.0.1 port 40001 ssh2",
        },
        Line {
            tenant: "globex",
            minutes_ago: 90,
            host: "gx-db-1",
            program: "sshd",
            category: Authentication,
            action: "ssh_login",
            outcome: Success,
            user: "gadmin",
            ip: Some("198.18.0.1"),
            message: "Accepted password for gadmin from 198.18.0.1 port 40002 ssh2",
        },
    ];
    let mut columns = EventColumns::with_capacity(lines.len());
    for (n, l) in lines.iter().enumerate() {
        columns.append(&event(n, l).as_ref());
    }
    let dir = tempfile::tempdir().unwrap();
    EmbeddedStore::new(dir.path())
        .write_events(&columns.finish())
        .unwrap();
    let store = Store::Embedded(dir.path().to_path_buf());
    (dir, store)
}

fn count(a: &sentra_queries::Answer) -> u64 {
    a.rows[0]["events"].as_u64().unwrap()
}

#[tokio::test]
async fn names_are_recognised_from_the_asking_tenants_own_data() {
    let (_dir, store) = store();
    let acme = TenantId::new("acme").unwrap();
    let a = ask(
        &store,
        &acme,
        "How many successful logins did ci have?",
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(a.intent.filters.users, ["ci"]);
    assert_eq!(count(&a), 1, "ci's logins, not everyone's");
    assert!(a.intent.unclear.is_empty(), "{:?}", a.intent.unclear);

    let a = ask(&store, &acme, "Who logged in as root?", NOW)
        .await
        .unwrap();
    let actions: Vec<&str> = a
        .rows
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["ssh_login"],
        "interactive logins only, no cron sessions"
    );

    let a = ask(
        &store,
        &acme,
        "failed logins on bastion-1 last 24 hours",
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(a.intent.filters.hosts, ["bastion-1"]);
    assert_eq!(a.rows.len(), 1);
}

#[tokio::test]
async fn one_tenants_names_never_shape_or_reach_anothers_answers() {
    let (_dir, store) = store();
    let (acme, globex) = (
        TenantId::new("acme").unwrap(),
        TenantId::new("globex").unwrap(),
    );
    let known = load_vocabulary(&store, &acme).await;
    assert_eq!(known.user("ci"), Some("ci"));
    assert!(known.host("web-1").is_some() && known.has_ip("203.0.113.7"));
    assert!(known.user("gadmin").is_none() && known.host("gx-db-1").is_none());
    assert!(!known.has_ip("198.18.0.1"));
    let theirs = load_vocabulary(&store, &globex).await;
    assert!(theirs.user("gadmin").is_some() && theirs.user("ci").is_none());

    // One cache for both tenants, as the API keeps it: each question sees only its own tenant's names.
    let cache = Vocabularies::new();
    let a = ask_cached(
        &store,
        &cache,
        &globex,
        "how many successful logins did gadmin have",
        NOW,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (a.intent.filters.users.as_slice(), count(&a)),
        (&["gadmin".to_owned()][..], 1)
    );
    let a = ask_cached(
        &store,
        &cache,
        &acme,
        "how many successful logins did gadmin have",
        NOW,
        None,
    )
    .await
    .unwrap();
    assert!(a.intent.filters.users.is_empty());
    assert_eq!(count(&a), 2, "acme's own successful logins");
    assert!(
        a.intent.unclear.iter().any(|u| u.contains("gadmin")),
        "{:?}",
        a.intent.unclear
    );
    assert!(
        a.summary.contains("I have not seen a user \"gadmin\""),
        "{}",
        a.summary
    );
    let a = ask_cached(
        &store,
        &cache,
        &globex,
        "successful logins did ci have",
        NOW,
        None,
    )
    .await
    .unwrap();
    assert!(
        a.intent.filters.users.is_empty(),
        "acme's ci is not globex's"
    );
    for r in &a.rows {
        assert_eq!(r["host"], "gx-db-1");
    }
}
