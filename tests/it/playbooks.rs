//! Playbooks with approval gates and the audit trail, against the real broker, chDB and a local receiver:
//! a gated run waits, runs only after approval and never after rejection or expiry; a script step gets the
//! signal's values as plain arguments (a hostile user name cannot inject a command); the audit chain
//! verifies and is anchored, editing one stored record makes `audit verify` fail at that record, and
//! deleting a chain's newest records makes it report the truncation.

use std::io::Read as _;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use sentra_service::respond;
use sentra_sinks::clickhouse::ClickHouseSink;
use sentra_soar::playbooks::run::{Run, RunState};
use tokio::sync::watch;

use crate::kafka_clickhouse::{create_topic, Env};
use crate::soar::{delivered, receiver, signal};
use crate::support::{get_json, unique};

/// The anchor signing key of this test.
const ANCHOR_KEY: &str = "it-anchor-k3y";

async fn states(config: &sentra_service::config::Config) -> Vec<(String, RunState)> {
    respond::runs(config)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.state))
        .collect()
}

async fn wait_states(
    config: &sentra_service::config::Config,
    want: &[(&str, RunState)],
) -> Vec<Run> {
    let started = Instant::now();
    loop {
        let now = states(config).await;
        if want
            .iter()
            .all(|(id, st)| now.iter().any(|(i, s)| i == id && s == st))
        {
            return respond::runs(config).await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "runs never reached {want:?}; now {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_gated_playbooks_and_a_tamper_evident_audit_trail() {
    let (url, rx) = receiver(200).await;
    let dir = tempfile::tempdir().unwrap();
    let (playbooks, scripts) = (dir.path().join("playbooks"), dir.path().join("scripts"));
    std::fs::create_dir_all(&playbooks).unwrap();
    std::fs::create_dir_all(&scripts).unwrap();
    let script = scripts.join("record.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf '%s|%s\\n' \"$1\" \"$2\" >> ran.log\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        playbooks.join("contain.yaml"),
        "id: contain\nname: Contain a brute force\nmatch:\n  signals: [ssh_brute_force]\n  tenants: [acme]\n\
         requires_approval_if:\n  severity_at_least: HIGH\napproval_timeout_secs: 600\nsteps:\n\
         \x20 - name: block the source\n    script: { path: record.sh, args: [\"{ip}\", \"{user}\"] }\n    destructive: true\n\
         \x20 - name: open a case\n    webhook: { destination: default }\n",
    )
    .unwrap();
    std::fs::write(
        playbooks.join("globex.yaml"),
        "id: globex-notify\nname: Tell globex\nmatch:\n  tenants: [globex]\nrequires_approval_if:\n  always: true\n\
         approval_timeout_secs: 1\nsteps:\n  - name: notify\n    webhook: { destination: default }\n",
    )
    .unwrap();

    let mut env = Env::new();
    let id = unique("pb");
    env.extra_toml = format!(
        "[soar]\nwebhook = \"{url}\"\ntopic = \"signals-{id}\"\ndlq_topic = \"dlq-{id}\"\nruns_topic = \"runs-{id}\"\n\
         playbooks_dir = \"{}\"\nscripts_dir = \"{}\"\n",
        playbooks.display(),
        scripts.display()
    );
    let mut config = env.config();
    config.audit.anchor_topic = format!("anchors-{id}");
    config.audit.anchor_interval_secs = 1;
    config.audit.anchor_key = ANCHOR_KEY.into();
    let store = ClickHouseSink::new(config.clickhouse.clone());
    store.migrate().await.unwrap();
    for topic in [
        &config.soar.topic,
        &config.soar.runs_topic,
        &config.audit.topic,
        &config.audit.anchor_topic,
    ] {
        create_topic(&env.brokers, topic).await;
    }

    let (stop, shutdown) = watch::channel(false);
    let engine_config = config.clone();
    let engine_shutdown = shutdown.clone();
    let engine =
        tokio::spawn(async move { respond::run_playbooks(&engine_config, engine_shutdown).await });
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &env.brokers);
    let audit_client = client.clone();
    let audit_topic = config.audit.topic.clone();
    let audit_store = store.clone();
    let anchoring = config.audit.anchoring();
    let chainer = tokio::spawn(async move {
        sentra_soar::audit::chain(
            &audit_client,
            &unique("chainer"),
            &audit_topic,
            &audit_store,
            anchoring,
            shutdown,
        )
        .await
    });

    // A: approved; B: rejected; C (globex): nobody decides, it expires.
    let hostile = "x\"; touch /tmp/sentra-pwned-$$; echo \"";
    let mut a = signal(31, "acme", 0.7);
    a.user = Some(hostile.into());
    let b = signal(32, "acme", 0.75);
    let c = signal(33, "globex", 0.9);
    let producer = sentra_kafka::Producer::new(&client).unwrap();
    let destinations = config.soar.resolve(|_| None).unwrap();
    sentra_soar::queue::enqueue(
        &producer,
        &config.soar.topic,
        &[a.clone(), b.clone(), c.clone()],
        &destinations,
    )
    .await
    .unwrap();
    let (ra, rb, rc) = (
        format!("contain-{}", a.id),
        format!("contain-{}", b.id),
        format!("globex-notify-{}", c.id),
    );
    let runs = wait_states(
        &config,
        &[
            (&ra, RunState::AwaitingApproval),
            (&rb, RunState::AwaitingApproval),
            (&rc, RunState::Expired),
        ],
    )
    .await;
    let run_a = runs.iter().find(|r| r.id == ra).unwrap();
    assert_eq!(run_a.approval_reasons, ["severity HIGH is at least HIGH"]);
    assert!(run_a.steps.is_empty());
    assert!(
        !scripts.join("ran.log").exists(),
        "nothing runs before approval"
    );
    assert!(delivered(&rx).is_empty());
    let err = respond::decide(&config, &rc, true, "carol", "too late")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Expired"), "{err}");

    respond::decide(&config, &ra, true, "alice", "confirmed with the host owner")
        .await
        .unwrap();
    // B is rejected over the HTTP API, by a key of its own tenant; another tenant's key cannot see it.
    let api_config =
        crate::support::api_config(&[("acme", "acme-key"), ("globex", "globex-key")], 100);
    let api = sentra_service::api::Api::new(
        &api_config,
        sentra_queries::Store::ClickHouse(Box::new(env.clickhouse())),
        Some(config.clone()),
    );
    let (_api_stop, api_shutdown) = watch::channel(false);
    let addr = sentra_service::api::serve(&api_config.listen, api, api_shutdown)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let waiting = get_json(&http, &format!("http://{addr}/v1/approvals"), "acme-key").await;
    let ids: Vec<&str> = waiting
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&rb.as_str()) && !ids.contains(&rc.as_str()),
        "{ids:?}"
    );
    let reject = |key: &'static str| {
        http.post(format!("http://{addr}/v1/approvals/{rb}/reject"))
            .header("X-API-Key", key)
            .json(&serde_json::json!({"by": "bob", "reason": "a scheduled scan"}))
            .send()
    };
    assert_eq!(reject("globex-key").await.unwrap().status().as_u16(), 404);
    let r = reject("acme-key").await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    let runs = wait_states(
        &config,
        &[(&ra, RunState::Succeeded), (&rb, RunState::Rejected)],
    )
    .await;
    let log = std::fs::read_to_string(scripts.join("ran.log")).unwrap();
    assert_eq!(
        log,
        format!("203.0.113.7|{hostile}\n"),
        "the script ran once, for A only, with literal arguments"
    );
    assert!(delivered(&rx).contains(&a.id) && delivered(&rx).len() == 1);
    let run_a = runs.iter().find(|r| r.id == ra).unwrap();
    let steps: Vec<(&str, &str)> = run_a
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("block the source", "started"),
            ("block the source", "succeeded"),
            ("open a case", "started"),
            ("open a case", "succeeded")
        ]
    );
    assert_eq!(run_a.decision.as_ref().unwrap().by, "alice");
    for (id, approve) in [(&rb, true), (&ra, false)] {
        let err = respond::decide(&config, id, approve, "mallory", "again")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not awaiting approval"), "{err}");
    }
    let err = respond::decide(&config, &rb, true, "", "no name")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--by"), "{err}");

    // The audit trail: every request, decision, step and state change, chained per tenant.
    let started = Instant::now();
    loop {
        let actions: Vec<String> = store
            .audit_records("acme")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect();
        let n = |a: &str| actions.iter().filter(|x| *x == a).count();
        if n("approval.requested") == 2
            && n("approval.decided") == 2
            && n("step.run") == 2
            && n("run.state") == 5
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "audit records missing: {actions:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Within a second or so, each chain's head is anchored.
    let started = Instant::now();
    let lines = loop {
        let lines = respond::audit_verify(&config, &["acme".into(), "globex".into()])
            .await
            .unwrap();
        let mut anchored = true;
        for (tenant, line) in ["acme", "globex"].iter().zip(&lines) {
            let n = store.audit_records(tenant).await.unwrap().len();
            anchored &= line.contains(&format!("{n} records, anchored up to seq {n}"));
        }
        if anchored {
            break lines;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never anchored: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        lines.iter().all(|l| l.ends_with("chain intact")),
        "{lines:?}"
    );

    let bundle = respond::audit_bundle(&config, "acme", 0, i64::MAX / 2, dir.path())
        .await
        .unwrap();
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&bundle).unwrap()).unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "README.txt",
            "audit.jsonl",
            "decisions.jsonl",
            "playbook_runs.jsonl",
            "signals.jsonl",
            "verification.txt"
        ]
    );
    let mut verification = String::new();
    zip.by_name("verification.txt")
        .unwrap()
        .read_to_string(&mut verification)
        .unwrap();
    assert!(verification.starts_with("INTACT"), "{verification}");
    let mut decisions = String::new();
    zip.by_name("decisions.jsonl")
        .unwrap()
        .read_to_string(&mut decisions)
        .unwrap();
    assert!(decisions.contains("alice") && decisions.contains("bob"));

    // Someone edits one record in the store: verification fails at exactly that record.
    env.clickhouse()
        .query("ALTER TABLE audit UPDATE actor = 'mallory' WHERE tenant = 'acme' AND seq = 3 SETTINGS mutations_sync = 2")
        .execute()
        .await
        .unwrap();
    let err = respond::audit_verify(&config, &["acme".into()])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tenant acme") && err.contains("seq 3") && err.contains("edited"),
        "{err}"
    );

    // Someone deletes globex's newest records: the chain still links, but ends before its anchor.
    let globex = store.audit_records("globex").await.unwrap().len();
    assert!(globex >= 3, "{globex}");
    env.clickhouse()
        .query("ALTER TABLE audit DELETE WHERE tenant = 'globex' AND seq > ? SETTINGS mutations_sync = 2")
        .bind(globex as u64 - 2)
        .execute()
        .await
        .unwrap();
    let err = respond::audit_verify(&config, &["globex".into()])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tenant globex is truncated")
            && err.contains(&format!("ends at seq {}", globex - 2))
            && err.contains(&format!("anchored at seq {globex}"))
            && err.contains("Restore"),
        "{err}"
    );
    assert!(!err.contains(ANCHOR_KEY), "{err}");
    // The command exits non-zero with the same message; the key comes from SENTRA_AUDIT_ANCHOR_KEY.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentra"))
        .args(["audit", "verify", "--tenant", "globex"])
        .env("SENTRA_LOG", "warn")
        .env("SENTRA_KAFKA_BROKERS", &env.brokers)
        .env("SENTRA_CLICKHOUSE_URL", &config.clickhouse.url)
        .env("SENTRA_CLICKHOUSE_DATABASE", &config.clickhouse.database)
        .env("SENTRA_AUDIT_TOPIC", &config.audit.topic)
        .env("SENTRA_AUDIT_ANCHOR_TOPIC", &config.audit.anchor_topic)
        .env("SENTRA_AUDIT_ANCHOR_KEY", ANCHOR_KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("tenant globex is truncated"), "{stderr}");
    assert!(!stderr.contains(ANCHOR_KEY), "{stderr}");
    // Without the key, the anchors cannot be checked: that is a failure too, and says what to set.
    let mut keyless = config.clone();
    keyless.audit.anchor_key.clear();
    let err = respond::audit_verify(&keyless, &["globex".into()])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("SENTRA_AUDIT_ANCHOR_KEY is not set"), "{err}");

    stop.send(true).unwrap();
    let stats = engine.await.unwrap().unwrap();
    assert_eq!(
        (
            stats.created,
            stats.succeeded,
            stats.rejected,
            stats.expired
        ),
        (3, 1, 1, 1),
        "{stats:?}"
    );
    chainer.await.unwrap().unwrap();
}
