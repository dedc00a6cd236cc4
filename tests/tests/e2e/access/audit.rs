//! The audit log over real HTTP: changes by an admin token and by an
//! operator signed in to the console show up attributed to each, in order;
//! refused and failed requests leave no entry; the log pages like the event
//! log, is the admin's only, and keeps at most `audit.max_entries`.

use serde_json::{Value, json};

use support::TestAppliance;

const ADMIN_PASSWORD: &str = "the admin's password";

fn entries(page: &Value) -> Vec<(String, String, String)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (text("actor"), text("action"), text("target"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_by_two_identities_are_attributed_in_order_and_refusals_leave_nothing() {
    let app = TestAppliance::start_with_admin_password(ADMIN_PASSWORD).await;
    let admin_token = app.appliance.store.authenticate(&app.write_token).unwrap().unwrap().id;
    let viewer = app.token_with_role("viewer", &[]).await; // token.created by the admin token

    app.create_channel(json!({"name": "studio"})).await;
    let olga = json!({"name": "olga", "role": "operator", "password": "olga-password"});
    assert_eq!(app.write("POST", "/api/v1/users", Some(olga)).await.status, 201);
    let console = app.console_sign_in("olga", "olga-password").await;
    for (method, path) in [("POST", "/api/v1/channels/studio/start"), ("POST", "/api/v1/channels/studio/rotate-key")] {
        assert_eq!(app.console_call(&console, method, path, None).await.status, 200, "{method} {path}");
    }
    // Refused (role) and failed (conflict) requests change nothing and leave no entry.
    assert_eq!(app.call("POST", "/api/v1/channels/studio/stop", Some(&viewer), None).await.status, 403);
    assert_eq!(app.console_call(&console, "POST", "/api/v1/channels/studio/start", None).await.status, 409);
    assert_eq!(app.console_call(&console, "POST", "/api/v1/channels/studio/stop", None).await.status, 200);
    let password = json!({"password": "a new admin password"});
    assert_eq!(app.write("PUT", "/api/v1/console/password", Some(password)).await.status, 204);
    assert_eq!(app.write("DELETE", "/api/v1/channels/studio", None).await.status, 204);

    let page = app.write("GET", "/api/v1/audit?limit=100", None).await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let by = |actor: &str, action: &str, target: &str| (actor.to_string(), action.to_string(), target.to_string());
    let olga = "user:olga";
    assert_eq!(
        entries(&page.body),
        [
            by(&admin_token, "token.created", "viewer token"),
            by(&admin_token, "channel.created", "studio"),
            by(&admin_token, "user.created", "olga"),
            by(olga, "channel.started", "studio"),
            by(olga, "channel.key_rotated", "studio"),
            by(olga, "channel.stopped", "studio"),
            by(&admin_token, "user.password_reset", "admin"),
            by(&admin_token, "channel.deleted", "studio"),
        ]
    );
    let items = page.body["items"].as_array().unwrap();
    assert_eq!(items[0]["detail"], "role viewer");
    let times: Vec<&str> = items.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in order: {times:?}");

    // Pages like the event log; the admin's only.
    let first = app.write("GET", "/api/v1/audit?limit=3", None).await.body;
    let cursor = first["next_cursor"].as_str().expect("more pages");
    let rest = app.write("GET", &format!("/api/v1/audit?limit=100&cursor={cursor}"), None).await.body;
    assert_eq!(entries(&first).len() + entries(&rest).len(), 8);
    assert_eq!(rest["items"][0]["sequence"], first["items"][2]["sequence"].as_u64().unwrap() + 1);
    assert_eq!(app.console_call(&console, "GET", "/api/v1/audit", None).await.status, 403, "not for an operator");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_keeps_at_most_its_configured_entries() {
    let app = TestAppliance::start_with(|c| c.audit.max_entries = 3).await;
    for i in 0..6 {
        app.create_channel(json!({"name": format!("ch-{i}")})).await;
    }
    let page = app.write("GET", "/api/v1/audit", None).await.body;
    let targets: Vec<String> = entries(&page).into_iter().map(|(_, _, target)| target).collect();
    assert_eq!(targets, ["ch-3", "ch-4", "ch-5"], "the oldest went first");
    app.appliance.shutdown().await;
}
