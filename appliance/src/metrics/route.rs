//! `GET /metrics`: one scrape, gathered on a blocking thread (it reads the
//! state file, the disk and `/proc`). With `metrics.require_token` a read
//! API token must come as a bearer (as for the REST API's reads).

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::exposition::CONTENT_TYPE;
use super::scrape::MetricsSources;
use crate::http::access::identity::authenticate;
use crate::http::api::ApiState;
use crate::http::problem::{ApiError, ProblemKind};

/// What the route needs.
#[derive(Debug, Clone)]
struct Scraper {
    sources: MetricsSources,
    /// Set when a read token is required: the API's state checks it.
    token_check: Option<ApiState>,
}

/// The `/metrics` route; `token_check` is the API's state when a read token is required.
pub fn router(sources: MetricsSources, token_check: Option<ApiState>) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(Scraper { sources, token_check })
}

async fn metrics(State(scraper): State<Scraper>, request: Request) -> Response {
    if let Some(api) = &scraper.token_check {
        let (parts, _) = request.into_parts();
        // Any valid identity (a viewer or more) may scrape.
        if let Err(refused) = authenticate(&parts, &api.store, &api.console).await {
            return refused.into_response();
        }
    }
    let runtime = tokio::runtime::Handle::current();
    let sources = scraper.sources.clone();
    let scraped = tokio::task::spawn_blocking(move || {
        let gathered = sources.gather(Some(runtime));
        gathered.render(std::time::Instant::now())
    })
    .await;
    match scraped {
        Ok(text) => {
            let mut response = text.into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(_) => ApiError::new(ProblemKind::Internal, "the scrape failed").into_response(),
    }
}
