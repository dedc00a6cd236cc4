//! The one table of who may call each API route: its minimum role, and how
//! a caller restricted to some channels reaches it. The API's authorization
//! layer (`http::api::auth`) looks every request up here; a route missing
//! from the table cannot run (its handlers need the `Caller` only that layer
//! gives), and a test checks the table lists exactly the OpenAPI document's
//! operations.
//!
//! A channel-restricted caller gets 404 for another channel's routes, the
//! same answer as for a channel that does not exist, so nothing tells it
//! which other channels there are; lists (channels, events) show only its
//! channels; routes about the whole appliance (encoders, system, alerts,
//! disk usage, tokens, users, webhooks, playback keys) answer it 403.

use crate::state::Role;

/// How a channel-restricted caller reaches a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The path names a channel (`{name}`): only the caller's channels (404 for others).
    Channel,
    /// A list the handler filters to the caller's channels (or nothing about channels).
    Filtered,
    /// The whole appliance: refused (403) to restricted callers.
    Appliance,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No credential needed.
    Public,
    /// An identity of at least this role.
    Role(Role, Reach),
}

use Reach::{Appliance, Channel, Filtered};
use Role::{Admin, Operator, Viewer};

/// (method as in the OpenAPI document, path under `/api/v1`, rule).
pub const ROUTE_ROLES: &[(&str, &str, Rule)] = &[
    ("get", "/health", Rule::Public),
    ("get", "/openapi.json", Rule::Role(Viewer, Filtered)),
    ("get", "/channels", Rule::Role(Viewer, Filtered)),
    // The new channel's name is in the body: the handler checks it against the restriction.
    ("post", "/channels", Rule::Role(Operator, Filtered)),
    ("get", "/channels/{name}", Rule::Role(Viewer, Channel)),
    ("patch", "/channels/{name}", Rule::Role(Operator, Channel)),
    ("delete", "/channels/{name}", Rule::Role(Operator, Channel)),
    ("post", "/channels/{name}/start", Rule::Role(Operator, Channel)),
    ("post", "/channels/{name}/stop", Rule::Role(Operator, Channel)),
    ("post", "/channels/{name}/rotate-key", Rule::Role(Operator, Channel)),
    // A restricted caller signs playback tokens for its own channels only.
    ("post", "/channels/{name}/playback-tokens", Rule::Role(Operator, Channel)),
    ("get", "/playback-keys", Rule::Role(Admin, Appliance)),
    ("post", "/playback-keys/rotate", Rule::Role(Admin, Appliance)),
    ("get", "/channels/{name}/sessions", Rule::Role(Viewer, Channel)),
    ("get", "/channels/{name}/sessions/{id}", Rule::Role(Viewer, Channel)),
    ("get", "/channels/{name}/restreams", Rule::Role(Viewer, Channel)),
    ("post", "/channels/{name}/restreams", Rule::Role(Operator, Channel)),
    ("patch", "/channels/{name}/restreams/{id}", Rule::Role(Operator, Channel)),
    ("delete", "/channels/{name}/restreams/{id}", Rule::Role(Operator, Channel)),
    ("get", "/channels/{name}/recordings", Rule::Role(Viewer, Channel)),
    ("get", "/channels/{name}/recordings/{session}", Rule::Role(Viewer, Channel)),
    ("delete", "/channels/{name}/recordings/{session}", Rule::Role(Operator, Channel)),
    ("put", "/channels/{name}/recordings/{session}/lock", Rule::Role(Operator, Channel)),
    ("delete", "/channels/{name}/recordings/{session}/lock", Rule::Role(Operator, Channel)),
    ("get", "/recordings/usage", Rule::Role(Viewer, Appliance)),
    ("get", "/encoders", Rule::Role(Viewer, Appliance)),
    ("get", "/system", Rule::Role(Viewer, Appliance)),
    ("get", "/alerts", Rule::Role(Viewer, Appliance)),
    ("get", "/events", Rule::Role(Viewer, Filtered)),
    ("get", "/events/stream", Rule::Role(Viewer, Filtered)),
    ("get", "/tokens", Rule::Role(Admin, Appliance)),
    ("post", "/tokens", Rule::Role(Admin, Appliance)),
    ("delete", "/tokens/{id}", Rule::Role(Admin, Appliance)),
    ("get", "/webhooks", Rule::Role(Viewer, Appliance)),
    ("post", "/webhooks", Rule::Role(Admin, Appliance)),
    ("get", "/webhooks/{id}", Rule::Role(Viewer, Appliance)),
    ("delete", "/webhooks/{id}", Rule::Role(Admin, Appliance)),
    ("get", "/webhooks/{id}/deliveries", Rule::Role(Viewer, Appliance)),
    ("put", "/console/password", Rule::Role(Admin, Appliance)),
    ("get", "/users", Rule::Role(Admin, Appliance)),
    ("post", "/users", Rule::Role(Admin, Appliance)),
    ("patch", "/users/{name}", Rule::Role(Admin, Appliance)),
    ("put", "/users/{name}/password", Rule::Role(Admin, Appliance)),
    ("get", "/audit", Rule::Role(Admin, Appliance)),
];

/// The rule of `method` (HEAD is GET's) on the route `path` (under `/api/v1`, as declared).
pub fn rule(method: &str, path: &str) -> Option<Rule> {
    let method = if method.eq_ignore_ascii_case("head") { "get" } else { method };
    ROUTE_ROLES.iter().find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == path).map(|(_, _, r)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_documented_operation_once() {
        let document = crate::http::api::document();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in &document.paths.paths {
            let path = path.strip_prefix(crate::http::api::PREFIX).expect("under the API prefix");
            let ops = serde_json::to_value(item).unwrap();
            for method in ["get", "put", "post", "delete", "patch"] {
                if ops.get(method).is_some() {
                    documented.push((method.to_string(), path.to_string()));
                }
            }
        }
        documented.sort();
        let mut table: Vec<(String, String)> =
            ROUTE_ROLES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
        table.sort();
        let before = table.len();
        table.dedup();
        assert_eq!(before, table.len(), "no route twice");
        assert_eq!(documented, table);
    }

    #[test]
    fn the_issues_rules_hold() {
        assert_eq!(rule("post", "/tokens"), Some(Rule::Role(Admin, Appliance)));
        assert_eq!(rule("HEAD", "/channels"), Some(Rule::Role(Viewer, Filtered)));
        assert_eq!(rule("post", "/channels/{name}/stop"), Some(Rule::Role(Operator, Channel)));
        assert_eq!(rule("get", "/nothing"), None);
        assert_eq!(rule("post", "/channels/{name}/playback-tokens"), Some(Rule::Role(Operator, Channel)));
        assert_eq!(rule("post", "/playback-keys/rotate"), Some(Rule::Role(Admin, Appliance)));
        // Every route naming a channel is reached by channel.
        for (_, path, rule) in ROUTE_ROLES {
            if path.starts_with("/channels/{name}") {
                assert!(matches!(rule, Rule::Role(_, Channel)), "{path}");
            }
        }
    }
}
