//! The HTTP API over the embedded store: keys decide the tenant, answers match the router's, another
//! tenant's data and signals stay out of reach, rate limits answer 429, and errors say what to do.

use sentra_service::api::Api;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::query::setup;
use crate::support::get_json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_each_tenant_from_its_own_data_only() {
    let d = setup();
    let config = crate::support::api_config(&[("acme", "acme-key"), ("globex", "globex-key")], 30);
    let (_stop, shutdown) = watch::channel(false);
    let addr = sentra_service::api::serve(
        &config.listen,
        Api::new(&config, d.store.clone(), None),
        shutdown,
    )
    .await
    .unwrap();
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let ask = |key: &'static str, question: &'static str| {
        let (http, url) = (http.clone(), format!("{base}/v1/query"));
        async move {
            let r = http
                .post(url)
                .header("Authorization", format!("Bearer {key}"))
                .json(&json!({"question": question, "now": "2026-03-15T00:00:00Z"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    let (status, body) = ask("acme-key", "how many failed logins?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["engine"].as_str(), body["rows"][0]["events"].as_u64()),
        (Some("embedded"), Some(31))
    );
    assert!(body["summary"]
        .as_str()
        .unwrap()
        .starts_with("Tenant acme has 31"));
    assert!(body["query"][0].as_str().unwrap().contains("count(*)"));
    let (_, body) = ask("globex-key", "how many failed logins?").await;
    assert_eq!(body["rows"][0]["events"], 5);
    let (_, body) = ask(
        "acme-key",
        "how many failed logins for tenant globex from 198.18.0.1?",
    )
    .await;
    assert_eq!(
        body["rows"][0]["events"], 0,
        "acme's key never reads globex"
    );

    let (status, body) = ask("acme-key", "what is the weather?").await;
    assert_eq!(status, 422);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("I can answer questions like"));
    for (header, value) in [("Authorization", "Bearer wrong"), ("X-API-Key", "")] {
        let r = http
            .post(format!("{base}/v1/query"))
            .header(header, value)
            .json(&json!({"question": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert!(r.text().await.unwrap().contains("API key"));
    }
    let r = http
        .post(format!("{base}/v1/query"))
        .header("X-API-Key", "acme-key")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());

    // Signals: a list, one explained; another tenant's signal does not exist for globex.
    let r = get_json(
        &http,
        &format!("{base}/v1/signals?severity=high"),
        "acme-key",
    )
    .await;
    let rows = r["rows"].as_array().unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|s| s["severity"] == "HIGH"),
        "{r}"
    );
    let id = d.signals[0]["id"].as_str().unwrap();
    let r = http
        .get(format!("{base}/v1/signals/{id}"))
        .header("X-API-Key", "acme-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["signal"]["signal_id"], id);
    let r = http
        .get(format!("{base}/v1/signals/{id}"))
        .header("X-API-Key", "globex-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = http
        .get(format!("{base}/v1/signals/..%2Fetc"))
        .header("X-API-Key", "acme-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Health, metrics, the OpenAPI document; approvals belong to `sentra run`.
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sentra_queries_total{result=\"ok\"}")
            && metrics.contains("sentra_api_unauthorized_total 2"),
        "{metrics}"
    );
    let doc: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/v1/query"]["post"].is_object());
    let r = http
        .get(format!("{base}/v1/approvals"))
        .header("X-API-Key", "acme-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // The rate limit is per tenant: acme runs out, globex does not.
    let mut limited = None;
    for _ in 0..40 {
        let r = http
            .post(format!("{base}/v1/query"))
            .header("X-API-Key", "acme-key")
            .json(&json!({"question": "how many sudo events?"}))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            limited = Some(
                r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            );
            break;
        }
    }
    assert!(limited.is_some_and(|s| s >= 1), "acme was never limited");
    let (status, _) = ask("globex-key", "how many sudo events?").await;
    assert_eq!(status, 200);
}
