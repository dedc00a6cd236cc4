//! Console users over real HTTP: an admin makes an operator and a viewer
//! through the API; each signs in by name and password and acts with its
//! role (an operator's console session gets 403 on the users routes);
//! disabling a user or resetting its password ends its session at once
//! (its cookie's next request gets 401) and spares everyone else's; each
//! user has its own sign-in failure budget, beside the per-address one.

use serde_json::json;

use support::TestAppliance;

const ADMIN_PASSWORD: &str = "the admin's password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_sign_in_with_their_role_and_disabling_or_a_new_password_ends_their_sessions_at_once() {
    let app = TestAppliance::start_with_admin_password(ADMIN_PASSWORD).await;
    let admin = app.console_sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(admin.body["role"], "admin");
    for (name, role) in [("olga", "operator"), ("vera", "viewer")] {
        let body = json!({"name": name, "role": role, "password": format!("{name}-password")});
        let made = app.console_call(&admin, "POST", "/api/v1/users", Some(body)).await;
        assert_eq!(made.status, 201, "{:?}", made.body);
        assert_eq!((made.body["role"].as_str(), made.body["disabled"].as_bool()), (Some(role), Some(false)));
        assert!(made.body.get("password").is_none() && made.body.get("password_hash").is_none());
    }
    let listed = app.write("GET", "/api/v1/users", None).await.body;
    let names: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "olga", "vera"]);
    assert_eq!(listed["items"][0]["builtin"], true);
    let duplicate = json!({"name": "olga", "role": "viewer", "password": "whatever-1"});
    assert_eq!(app.write("POST", "/api/v1/users", Some(duplicate)).await.status, 409);
    assert_eq!(app.write("PATCH", "/api/v1/users/admin", Some(json!({"disabled": true}))).await.status, 409);

    // The operator works channels and nothing of users or tokens.
    let olga = app.console_sign_in("olga", "olga-password").await;
    assert_eq!((olga.body["user"].as_str(), olga.body["role"].as_str()), (Some("olga"), Some("operator")));
    let created =
        app.console_call(&olga, "POST", "/api/v1/channels", Some(json!({"name": "olgas", "start": true}))).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    for (method, path, body) in [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", Some(json!({"name": "eve", "role": "admin", "password": "eve-password"}))),
        ("PUT", "/api/v1/users/vera/password", Some(json!({"password": "taken-over"}))),
        ("POST", "/api/v1/tokens", Some(json!({"name": "mine", "role": "admin"}))),
    ] {
        let reply = app.console_call(&olga, method, path, body).await;
        assert_eq!(reply.status, 403, "operator on {method} {path}: {:?}", reply.body);
    }
    // The viewer cannot stop the channel.
    let vera = app
        .console_call(&app.console_sign_in("vera", "vera-password").await, "POST", "/api/v1/channels/olgas/stop", None)
        .await;
    assert_eq!(vera.status, 403);

    // A wrong password, an unknown user: the same answer.
    let wrong = app.console_sign_in_reply("olga", "not-olgas", None).await;
    let unknown = app.console_sign_in_reply("nobody", "not-olgas", None).await;
    assert_eq!(
        (wrong.status(), unknown.status()),
        (reqwest::StatusCode::BAD_REQUEST, reqwest::StatusCode::BAD_REQUEST)
    );
    let (wrong, unknown): (serde_json::Value, serde_json::Value) =
        (wrong.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(wrong, unknown);

    // Disabled: the very next request with olga's cookie is refused; the admin's goes on.
    let disabled = app.console_call(&admin, "PATCH", "/api/v1/users/olga", Some(json!({"disabled": true}))).await;
    assert_eq!((disabled.status, disabled.body["disabled"].as_bool()), (200, Some(true)));
    assert_eq!(app.console_call(&olga, "GET", "/api/v1/channels", None).await.status, 401);
    assert_eq!(app.console_call(&admin, "GET", "/api/v1/channels", None).await.status, 200);
    assert_eq!(
        app.console_sign_in_reply("olga", "olga-password", None).await.status(),
        400,
        "a disabled user cannot sign in"
    );

    // Enabled again, then a new password: the session ends, the old password stops working.
    app.write("PATCH", "/api/v1/users/olga", Some(json!({"disabled": false}))).await;
    let olga = app.console_sign_in("olga", "olga-password").await;
    let reset = app
        .console_call(&admin, "PUT", "/api/v1/users/olga/password", Some(json!({"password": "olga-new-password"})))
        .await;
    assert_eq!(reset.status, 204, "{:?}", reset.body);
    assert_eq!(app.console_call(&olga, "GET", "/api/v1/channels", None).await.status, 401);
    assert_eq!(app.console_sign_in_reply("olga", "olga-password", None).await.status(), 400);
    app.console_sign_in("olga", "olga-new-password").await;
    // A new role applies from the next sign-in: the change ends the session too.
    let olga = app.console_sign_in("olga", "olga-new-password").await;
    app.write("PATCH", "/api/v1/users/olga", Some(json!({"role": "viewer"}))).await;
    assert_eq!(app.console_call(&olga, "GET", "/api/v1/channels", None).await.status, 401);
    let olga = app.console_sign_in("olga", "olga-new-password").await;
    assert_eq!(olga.body["role"], "viewer");
    assert_eq!(
        app.console_call(&admin, "GET", "/api/v1/users", None).await.status,
        200,
        "the admin was never signed out"
    );
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_has_its_own_sign_in_failure_budget() {
    let app = TestAppliance::start_with(|c| {
        c.api.auth_failure_burst = 3;
        c.api.auth_failures_per_minute = 1;
        c.http.trusted_proxies = vec!["127.0.0.0/8".into()];
        appliance::http::console::password::set(&c.data_dir, ADMIN_PASSWORD).expect("admin password set");
    })
    .await;
    let body = json!({"name": "olga", "role": "operator", "password": "olga-password"});
    assert_eq!(app.write("POST", "/api/v1/users", Some(body)).await.status, 201);
    // Three guesses at olga from three addresses: each address has budget left, olga has none.
    for i in 1..=3 {
        let reply = app.console_sign_in_reply("olga", "a guess", Some(&format!("192.0.2.{i}"))).await;
        assert_eq!(reply.status(), 400, "guess {i}");
    }
    let refused = app.console_sign_in_reply("olga", "olga-password", Some("192.0.2.4")).await;
    assert_eq!(refused.status(), 429, "olga's own budget is spent, whatever the address");
    assert!(refused.headers().get("retry-after").is_some());
    // Another user from a fresh address is not held back.
    let admin = app.console_sign_in_reply("admin", ADMIN_PASSWORD, Some("192.0.2.5")).await;
    assert_eq!(admin.status(), 200);
    app.appliance.shutdown().await;
}
