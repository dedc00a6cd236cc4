//! The live event feed: `GET /events/stream`, server-sent events of what
//! happens on the box as it happens (session state changes, input
//! switches, encoder moves, alerts, channel changes: every event of the
//! outbox, as webhooks receive it), for the console and integrators' pages.
//!
//! Each client reads the outbox from its own position (`Last-Event-ID`
//! resumes after a reconnect; otherwise it starts with the next event) a
//! page at a time, woken by the state file's writes: what it holds is one
//! page, whatever the rate. A client that falls more than `MAX_BEHIND`
//! events behind the newest is sent `event: dropped` and closed; it can
//! reconnect, or read the log (`GET /events`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::watch;

use super::api_state::ApiState;
use super::errors::ReadErrors;
use super::resources::{EventResource, PublicUrls};
use crate::http::access::caller::Caller;
use crate::http::problem::{ApiError, blocking};
use crate::state::{Event, Store};

/// Events read from the outbox at once per client.
pub const PAGE: usize = 64;
/// How far behind the newest event a client may fall before it is dropped.
pub const MAX_BEHIND: u64 = 1024;

/// Follow the events as they happen (server-sent events; `id` is the event's sequence).
#[utoipa::path(get, path = "/events/stream", tag = "webhooks",
    params(("Last-Event-ID" = Option<u64>, Header, description = "Resume after this sequence")),
    responses((status = 200, description = "A stream of `text/event-stream` events: `event` is the type, `data` the event as webhooks get it", content_type = "text/event-stream", body = String), ReadErrors),
    security(("bearer" = [])))]
pub async fn stream_events(
    State(api): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let store = api.store.clone();
    let newest = blocking(move || store.newest_event_sequence()).await?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    let feed = Feed {
        writes: api.store.watch_writes(),
        store: api.store.clone(),
        urls: api.urls.clone(),
        after: resume.unwrap_or(newest).min(newest),
        pending: VecDeque::new(),
        done: false,
        caller,
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One client's position in the outbox.
struct Feed {
    store: Store,
    urls: Arc<PublicUrls>,
    writes: watch::Receiver<u64>,
    /// The last sequence sent.
    after: u64,
    pending: VecDeque<Event>,
    done: bool,
    /// Whose feed it is: a token restricted to channels gets only their events.
    caller: Caller,
}

impl Feed {
    async fn next(&mut self) -> Option<SseEvent> {
        if self.done {
            return None;
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.after = event.sequence;
                return Some(to_sse(event, &self.urls));
            }
            // Marked before reading, so a write in between wakes the wait below.
            self.writes.borrow_and_update();
            let (store, after) = (self.store.clone(), self.after);
            let read = blocking(move || Ok((store.newest_event_sequence()?, store.list_events(Some(after), PAGE)?)));
            let Ok((newest, page)) = read.await else {
                self.done = true;
                return None;
            };
            if newest.saturating_sub(self.after) > MAX_BEHIND {
                self.done = true;
                let why = format!("more than {MAX_BEHIND} events behind; reconnect or read GET /api/v1/events");
                return Some(SseEvent::default().event("dropped").data(why));
            }
            if page.items.is_empty() {
                if self.writes.changed().await.is_err() {
                    return None;
                }
                continue;
            }
            // Past the whole page, even events this caller does not get.
            self.after = page.items.last().map_or(self.after, |e| e.sequence);
            let caller = &self.caller;
            self.pending.extend(page.items.into_iter().filter(|e| caller.may_see(&e.channel)));
        }
    }
}

fn to_sse(event: Event, urls: &PublicUrls) -> SseEvent {
    let sequence = event.sequence;
    let resource = EventResource::new(event, urls);
    let kind = resource.kind.as_str();
    let data = serde_json::to_string(&resource).unwrap_or_default();
    SseEvent::default().id(sequence.to_string()).event(kind).data(data)
}
