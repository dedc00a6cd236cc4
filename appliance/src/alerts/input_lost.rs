//! Input lost: a live session whose publisher delivers no media unit (the
//! input meter's unit count does not move) for `raise_after` is alerted;
//! the alert clears once media has flowed again for `clear_after`, or when
//! the session ends. Evaluated every `TICK` from the registry's meters (a
//! few atomic loads per session): nothing is added to the live path.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Alerts;
use super::active::ActiveAlert;
use super::hysteresis::{Change, Hysteresis};
use crate::live::registry::Registry;
use crate::state::blocking::blocking;
use crate::state::{AlertNotice, AlertRule, Store};

/// How often the rule is evaluated.
pub const TICK: Duration = Duration::from_millis(250);

/// One session being watched.
struct Watched {
    channel: String,
    units: u64,
    alert: Hysteresis,
}

/// Watches every session in `registry` until `shutdown`.
pub fn spawn(
    registry: Arc<Registry>,
    store: Store,
    alerts: Alerts,
    raise_after: Duration,
    clear_after: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut watched: HashMap<String, Watched> = HashMap::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            let now = Instant::now();
            let live = registry.all();
            for entry in &live {
                let units = entry.figures.stats(Vec::new()).units_in;
                let w = watched.entry(entry.session.clone()).or_insert_with(|| Watched {
                    channel: entry.channel.clone(),
                    units,
                    alert: Hysteresis::new(raise_after, clear_after),
                });
                // No unit since the previous tick (and none at all yet counts too: a publish that never sends).
                let lost = units == w.units;
                w.units = units;
                if let Some(change) = w.alert.observe(lost, now) {
                    report(&store, &alerts, &w.channel, &entry.session, change).await;
                }
            }
            // Sessions that ended: a raised alert clears with them.
            let ended: Vec<String> =
                watched.keys().filter(|s| !live.iter().any(|e| &e.session == *s)).cloned().collect();
            for session in ended {
                let Some(w) = watched.remove(&session) else { continue };
                if w.alert.is_raised() {
                    report(&store, &alerts, &w.channel, &session, Change::Cleared(Duration::ZERO)).await;
                }
            }
        }
    })
}

/// Logs, counts and records one change.
async fn report(store: &Store, alerts: &Alerts, channel: &str, session: &str, change: Change) {
    let counters = &alerts.counters;
    let rule = AlertRule::InputLost;
    let (raised, for_ms, detail) = match change {
        Change::Raised(held) => {
            let ms = held.as_millis() as u64;
            tracing::warn!(
                alert = rule.as_str(),
                channel,
                session,
                held_ms = ms,
                "alert raised: the input delivers no media"
            );
            counters.of(rule).raised.fetch_add(1, Ordering::Relaxed);
            (true, ms, format!("no media from the input for {ms} ms"))
        }
        Change::Cleared(gone) => {
            let ms = gone.as_millis() as u64;
            let detail = if gone.is_zero() {
                "the session ended".to_string()
            } else {
                format!("media has flowed again for {ms} ms")
            };
            tracing::info!(alert = rule.as_str(), channel, session, "alert cleared: {detail}");
            counters.of(rule).cleared.fetch_add(1, Ordering::Relaxed);
            (false, ms, detail)
        }
    };
    if raised {
        alerts.active.raise(ActiveAlert {
            rule,
            channel: channel.to_string(),
            session: session.to_string(),
            raised_at: crate::state::clock::rfc3339(crate::state::clock::now_ms()),
            detail: detail.clone(),
        });
    } else {
        alerts.active.clear(rule, session);
    }
    let notice = AlertNotice { rule, session: session.to_string(), for_ms, detail };
    let (store, channel_name) = (store.clone(), channel.to_string());
    if let Err(e) = blocking(move || store.record_alert(&channel_name, raised, notice)).await {
        tracing::error!(alert = rule.as_str(), channel, session, error = %e, "cannot record the alert in the state file");
    }
}
