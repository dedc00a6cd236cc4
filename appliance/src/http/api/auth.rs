//! Authorization of API routes: one layer over every route looks the
//! matched route up in `access::route_roles`, authenticates the caller
//! (`access::identity`), checks its role and, for a caller restricted to
//! some channels, the channel the path names, and hands the handler the
//! `Caller`. Handlers take `Caller` as an extractor, which only this layer
//! provides: a route the table misses cannot run.

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api_state::{ApiState, PREFIX};
use crate::http::access::caller::Caller;
use crate::http::access::identity::authenticate;
use crate::http::access::route_roles::{self, Reach, Rule};
use crate::http::problem::{ApiError, ProblemKind};

/// The layer: see the module's note.
pub async fn authorize(State(api): State<ApiState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some(rule) = rule_of(&parts) else {
        // An unknown path or method: the router answers 404 or 405, and
        // nothing else can run without a `Caller`.
        return next.run(Request::from_parts(parts, body)).await;
    };
    match admit(rule, &mut parts, &api).await {
        Ok(Some(caller)) => {
            parts.extensions.insert(caller);
        }
        Ok(None) => {}
        Err(refused) => return refused.into_response(),
    }
    next.run(Request::from_parts(parts, body)).await
}

fn rule_of(parts: &Parts) -> Option<Rule> {
    let matched = parts.extensions.get::<MatchedPath>()?.as_str();
    let path = matched.strip_prefix(PREFIX)?;
    route_roles::rule(parts.method.as_str(), path)
}

/// The caller, when the rule admits it (`None` for a public route).
async fn admit(rule: Rule, parts: &mut Parts, api: &ApiState) -> Result<Option<Caller>, ApiError> {
    let Rule::Role(minimum, reach) = rule else { return Ok(None) };
    let caller = authenticate(parts, &api.store, &api.console).await?;
    if caller.role < minimum {
        let detail =
            format!("this operation needs the {} role (the caller has {})", minimum.as_str(), caller.role.as_str());
        return Err(ApiError::new(ProblemKind::Forbidden, detail));
    }
    if caller.is_restricted() {
        match reach {
            Reach::Filtered => {}
            Reach::Appliance => {
                let detail = "a token restricted to channels may use only its channels' routes";
                return Err(ApiError::new(ProblemKind::Forbidden, detail));
            }
            Reach::Channel => {
                let params = RawPathParams::from_request_parts(parts, &()).await.map_err(|_| missing_name())?;
                let name =
                    params.iter().find(|(k, _)| *k == "name").map(|(_, v)| v.to_string()).ok_or_else(missing_name)?;
                if !caller.may_see(&name) {
                    // The answer for a channel that does not exist: nothing tells the caller it does.
                    return Err(ApiError::not_found(format!("channel {name:?} does not exist")));
                }
            }
        }
    }
    Ok(Some(caller))
}

fn missing_name() -> ApiError {
    ApiError::new(ProblemKind::Internal, "the route names no channel")
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "api: a route without an entry in the role table was called");
            ApiError::new(ProblemKind::Forbidden, "this route has no access rule")
        })
    }
}
