//! Wires the control plane into a running appliance: recovers sessions the
//! last process left in progress, builds the REST API router (with its rate
//! limits), and starts the webhook delivery worker, the session reconciler
//! and the session checkpointer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::ApiState;
use crate::api::resources::PublicUrls;
use crate::config::Config;
use crate::publish_routing::PublishRouting;
use crate::state::{EndReason, Store, StoreError};
use crate::viewers::Viewers;

/// At start-up, before any publish is accepted: sessions that were in
/// progress when the last process stopped are ended with `appliance-restart`.
pub fn recover(store: &Store) -> Result<(), StoreError> {
    for session in store.recover_sessions()? {
        tracing::warn!(channel = %session.channel, session = %session.id, "session was in progress when the appliance stopped; recorded as ended (appliance-restart)");
    }
    Ok(())
}

/// The API router and the control plane's background tasks.
pub fn start(
    store: &Store,
    routing: &PublishRouting,
    viewers: &Arc<Viewers>,
    config: &Config,
    rtmp_addr: SocketAddr,
    http_addr: SocketAddr,
    shutdown: &watch::Receiver<bool>,
) -> (Router, Vec<JoinHandle<()>>) {
    let urls =
        PublicUrls { host: config.public_host.clone(), rtmp_port: rtmp_addr.port(), http_port: http_addr.port() };
    let mut state =
        ApiState::new(store.clone(), routing.supervisor().clone(), routing.transcoder().clone(), urls.clone());
    state.data_dir = Arc::new(config.data_dir.clone());
    state.viewers = viewers.clone();
    state.limit_rates(&config.api);
    let tasks = vec![
        crate::webhooks::spawn(store.clone(), Arc::new(urls), (&config.webhooks).into(), shutdown.clone()),
        routing.supervisor().spawn_reconciler(shutdown.clone()),
        routing.supervisor().spawn_checkpointer(config.checkpoint_interval(), shutdown.clone()),
    ];
    let console = crate::console::Console::open(config.data_dir.clone(), state.console.clone());
    (crate::api::router(state).merge(crate::console::router(console)), tasks)
}

/// At shutdown: ends every session in progress (`appliance-shutdown`), so the
/// publishers are disconnected, playlists get ENDLIST, and the records say why.
pub async fn end_sessions(routing: &PublishRouting, deadline: Duration) {
    routing.supervisor().end_all(EndReason::ApplianceShutdown, deadline).await;
}
