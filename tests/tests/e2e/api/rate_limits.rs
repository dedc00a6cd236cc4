//! The API's rate limits over real HTTP, with limits set low in the config:
//! a burst over a token's budget gets 429 with `Retry-After` and a problem
//! body, changes nothing, and leaves other tokens alone; the bucket refills;
//! requests without credentials are limited per address (another address is
//! not); failed authentications are limited per address, the console's
//! sign-in drawing on the same budget; behind a trusted reverse proxy each
//! forwarded client has its own budget (and the header is ignored from any
//! other peer); the OpenAPI document declares 429 on every operation; the
//! control socket's local administrator is never limited and needs no token.

use std::net::IpAddr;
use std::time::Duration;

use appliance::state::Scope;
use serde_json::{Value, json};

use support::{STEP_TIMEOUT, TestAppliance};

/// A response's status, problem body and the headers the limits set.
#[derive(Debug)]
struct Limited {
    status: u16,
    body: Value,
    content_type: String,
    retry_after: Option<u64>,
    /// (RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset)
    ratelimit: Option<(u64, u64, u64)>,
}

async fn send(request: reqwest::RequestBuilder) -> Limited {
    let response = request.send().await.expect("the appliance answers");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let ratelimit = match (header("ratelimit-limit"), header("ratelimit-remaining"), header("ratelimit-reset")) {
        (Some(l), Some(r), Some(s)) => Some((l, r, s)),
        _ => None,
    };
    let retry_after = header("retry-after");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").into();
    let body = serde_json::from_slice(&response.bytes().await.unwrap_or_default()).unwrap_or(Value::Null);
    Limited { status, body, content_type, retry_after, ratelimit }
}

fn assert_refused(reply: &Limited, slug: &str) {
    assert_eq!(reply.status, 429, "{reply:?}");
    assert_eq!(reply.content_type, "application/problem+json", "{reply:?}");
    assert_eq!(reply.body["type"], format!("urn:appliance:problem:{slug}"), "{reply:?}");
    assert_eq!(reply.body["status"], 429);
    let retry = reply.retry_after.expect("Retry-After");
    assert!((1..=60).contains(&retry), "{reply:?}");
}

/// Waits as a well-behaved client does: `Retry-After` seconds. A sleep on
/// purpose: that the request goes through after exactly that wait is what
/// the tests check (an honest `Retry-After`), not an ordering of events.
async fn wait_for(reply: &Limited) {
    tokio::time::sleep(Duration::from_secs(reply.retry_after.expect("Retry-After"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_a_tokens_budget_is_refused_changes_nothing_and_spares_other_tokens() {
    let app = TestAppliance::start_with(|c| {
        // One request a second refills: far slower than the requests below take.
        (c.api.read_per_second, c.api.read_burst) = (1, 5);
        (c.api.mutation_per_second, c.api.mutation_burst) = (1, 3);
    })
    .await;
    let (_, other) = app.appliance.store.create_token("other", Scope::Write).expect("token");
    let get = |token: &str| app.http.get(app.url("/api/v1/channels")).bearer_auth(token);
    let post = |name: &str| {
        app.http.post(app.url("/api/v1/channels")).bearer_auth(&app.write_token).json(&json!({"name": name}))
    };

    // Reads: the burst, with the headers counting down, then 429.
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let reply = send(get(&app.write_token)).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let (limit, left, reset) = reply.ratelimit.expect("RateLimit headers on every response");
        assert_eq!(limit, 5);
        assert!(reset >= 1);
        remaining.push(left);
    }
    assert_eq!(remaining, [4, 3, 2, 1, 0]);
    let refused = send(get(&app.write_token)).await;
    assert_refused(&refused, "too-many-requests");
    assert_eq!(refused.ratelimit.map(|(l, r, _)| (l, r)), Some((5, 0)));
    // Another token has a budget of its own; reads and changes have separate ones.
    assert_eq!(send(get(&other)).await.status, 200);
    // The bucket refills: after Retry-After the token reads again.
    wait_for(&refused).await;
    assert_eq!(send(get(&app.write_token)).await.status, 200);

    // Changes: three go through, the rest are refused and change nothing.
    let state = || async {
        let channels = send(get(&other)).await;
        let events = send(app.http.get(app.url("/api/v1/events?limit=500")).bearer_auth(&other)).await;
        assert_eq!((channels.status, events.status), (200, 200));
        (channels.body, events.body)
    };
    for name in ["a", "b", "c"] {
        assert_eq!(send(post(name)).await.status, 201);
    }
    let before = state().await;
    let refused = send(post("d")).await;
    assert_refused(&refused, "too-many-requests");
    let delete = app.http.delete(app.url("/api/v1/channels/a")).bearer_auth(&app.write_token);
    assert_refused(&send(delete).await, "too-many-requests");
    assert_eq!(state().await, before, "refused changes changed nothing and emitted no event");
    // Another token still changes things.
    let by_other = app.http.post(app.url("/api/v1/channels")).bearer_auth(&other).json(&json!({"name": "e"}));
    assert_eq!(send(by_other).await.status, 201);
    // After Retry-After, the first token's change goes through.
    wait_for(&refused).await;
    assert_eq!(send(post("d")).await.status, 201);
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_credentials_are_limited_per_address() {
    let app = TestAppliance::start_with(|c| (c.api.read_per_second, c.api.read_burst) = (1, 10)).await;
    let health = |http: &reqwest::Client| http.get(app.url("/api/v1/health"));
    // A flood from one address: health and 401s draw on the address's budget.
    let mut statuses = Vec::new();
    for i in 0..12 {
        let path = if i % 2 == 0 { "/api/v1/health" } else { "/api/v1/channels" };
        statuses.push(send(app.http.get(app.url(path))).await.status);
    }
    assert_eq!(statuses, [200, 401, 200, 401, 200, 401, 200, 401, 200, 401, 429, 429]);
    assert_refused(&send(health(&app.http)).await, "too-many-requests");
    // A token from the same address has its own budget.
    assert_eq!(send(app.http.get(app.url("/api/v1/channels")).bearer_auth(&app.read_token)).await.status, 200);
    // Another address is not limited (any 127/8 address reaches loopback on Linux).
    let elsewhere: IpAddr = "127.0.0.2".parse().unwrap();
    let other = reqwest::Client::builder().local_address(elsewhere).timeout(STEP_TIMEOUT).build().unwrap();
    match other.get(app.url("/api/v1/health")).send().await {
        Ok(reply) => assert_eq!(reply.status(), 200, "another address has its own budget"),
        Err(e) => support::skip(&format!("the second address: cannot bind {elsewhere}: {e}")),
    }
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_limited_per_address_console_sign_in_included() {
    let app = TestAppliance::start_with(|c| (c.api.auth_failures_per_minute, c.api.auth_failure_burst) = (60, 3)).await;
    let channels = |token: &str| app.http.get(app.url("/api/v1/channels")).bearer_auth(token);
    let guess = "tok_aaaaaaaaaaaa.0123456789012345678901234567890123456789";
    for _ in 0..3 {
        let reply = send(channels(guess)).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        assert_eq!(reply.body["type"], "urn:appliance:problem:unauthorized");
    }
    // The budget is spent: every request with a token from this address waits,
    // the right token too (a guesser must not learn which guess was right).
    let refused = send(channels(guess)).await;
    assert_refused(&refused, "too-many-attempts");
    assert_refused(&send(channels(&app.write_token)).await, "too-many-attempts");
    // The console's sign-in draws on the same budget.
    let sign_in = app.http.post(app.url("/console/api/session")).json(&json!({"password": "a guess"}));
    let console = send(sign_in).await;
    assert_eq!(console.status, 429, "{console:?}");
    assert!(console.retry_after.is_some());
    // Requests without credentials are not failed authentications.
    assert_eq!(send(app.http.get(app.url("/api/v1/channels"))).await.status, 401);
    assert_eq!(send(app.http.get(app.url("/api/v1/health"))).await.status, 200);
    // One failure per second comes back: after Retry-After the right token works.
    wait_for(&refused).await;
    assert_eq!(send(channels(&app.write_token)).await.status, 200);
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    // The test client plays the proxy (127.0.0.1) in front of two clients.
    let app = TestAppliance::start_with(|c| {
        (c.api.auth_failures_per_minute, c.api.auth_failure_burst) = (60, 2);
        c.http.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let guess = "tok_aaaaaaaaaaaa.0123456789012345678901234567890123456789";
    let channels = |token: &str, client: &str| {
        app.http.get(app.url("/api/v1/channels")).bearer_auth(token).header("x-forwarded-for", client)
    };
    for _ in 0..2 {
        assert_eq!(send(channels(guess, "198.51.100.1")).await.status, 401);
    }
    assert_refused(&send(channels(guess, "198.51.100.1")).await, "too-many-attempts");
    // Another client behind the same proxy is not locked out by the guesser ...
    assert_eq!(send(channels(&app.write_token, "198.51.100.2")).await.status, 200);
    // ... and a client cannot escape by forging the header in front of the proxy's entry.
    assert_refused(&send(channels(guess, "203.0.113.7, 198.51.100.1")).await, "too-many-attempts");
    app.appliance.shutdown().await;

    // Without trusted proxies the header is ignored: the peer is the client.
    let app = TestAppliance::start_with(|c| (c.api.auth_failures_per_minute, c.api.auth_failure_burst) = (60, 2)).await;
    let channels = |token: &str, client: &str| {
        app.http.get(app.url("/api/v1/channels")).bearer_auth(token).header("x-forwarded-for", client)
    };
    for client in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(send(channels(guess, client)).await.status, 401);
    }
    assert_refused(&send(channels(guess, "198.51.100.3")).await, "too-many-attempts");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_declares_429_on_every_operation() {
    let app = TestAppliance::start().await;
    let doc = app.get_json("/api/v1/openapi.json").await;
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let limited = &operation["responses"]["429"];
            assert!(limited["content"]["application/problem+json"].is_object(), "{method} {path}: {limited}");
            assert!(limited["headers"]["Retry-After"].is_object(), "{method} {path}: {limited}");
        }
    }
    assert!(operations >= 23, "{operations} operations");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_is_the_local_administrator_never_limited() {
    let app = TestAppliance::start_with(|c| {
        (c.api.read_per_second, c.api.read_burst) = (1, 2);
        (c.api.mutation_per_second, c.api.mutation_burst) = (1, 2);
    })
    .await;
    let socket = app.data.path().join("appliance.sock");
    let local = reqwest::Client::builder().unix_socket(socket.as_path()).timeout(STEP_TIMEOUT).build().unwrap();
    let url = |path: &str| format!("http://appliance{path}");
    // Well over both budgets, with no token: every request is served, write scope included.
    for i in 0..10 {
        let reply = send(local.post(url("/api/v1/channels")).json(&json!({"name": format!("local-{i}")}))).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        assert_eq!(reply.ratelimit, None, "no budget counted: {reply:?}");
        let reply = send(local.get(url("/api/v1/tokens"))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    // Over TCP the same requests without a token are refused, and the budget is counted.
    let reply = send(app.http.get(app.url("/api/v1/channels"))).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(reply.ratelimit.is_some(), "{reply:?}");
    app.appliance.shutdown().await;
    assert!(!socket.exists(), "the socket goes at shutdown");
}
