//! The listeners' connection counts for `/metrics`: what the HTTP(S)
//! servers' caps and the RTMP(S) admission have admitted, shed and refused,
//! so an operator sees a flood (and what the caps did about it) before
//! clients do.

use std::sync::Arc;

use crate::http::server::registry::Registry;

/// A listener whose connections are counted.
#[derive(Debug, Clone)]
pub enum ListenerMeter {
    Http(Arc<Registry>),
    Rtmp(ingest::ConnectionMeter),
}

/// Every listener by the name its samples carry (`http`, `https`, `rtmp`, `rtmps`).
#[derive(Debug, Clone, Default)]
pub struct Listeners(Vec<(&'static str, ListenerMeter)>);

impl Listeners {
    pub fn add(&mut self, name: &'static str, meter: ListenerMeter) {
        self.0.push((name, meter));
    }

    /// Every listener's figures now.
    pub fn read(&self) -> Vec<ListenerFigures> {
        self.0
            .iter()
            .map(|(name, meter)| match meter {
                ListenerMeter::Http(registry) => ListenerFigures {
                    listener: name,
                    open: registry.open() as u64,
                    shed: registry.shed_count(),
                    refused: registry.refused_count(),
                    accept_failures: Some(registry.accept_failure_count()),
                    unauthenticated: None,
                    unauthenticated_buffered_bytes: None,
                },
                ListenerMeter::Rtmp(meter) => {
                    let stats = meter.stats();
                    ListenerFigures {
                        listener: name,
                        open: stats.open as u64,
                        shed: stats.displaced,
                        refused: stats.refused_full + stats.refused_per_address,
                        accept_failures: None,
                        unauthenticated: Some(stats.unauthenticated as u64),
                        unauthenticated_buffered_bytes: Some(stats.unauthenticated_buffered as u64),
                    }
                }
            })
            .collect()
    }
}

/// One listener's counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerFigures {
    pub listener: &'static str,
    pub open: u64,
    /// HTTP: idle connections closed to make room; RTMP: unauthenticated ones displaced.
    pub shed: u64,
    /// Newcomers turned away because nothing in their way could be shed.
    pub refused: u64,
    /// HTTP only: failures of `accept` itself (out of file descriptors).
    pub accept_failures: Option<u64>,
    /// RTMP only: connections that have not published with a valid key.
    pub unauthenticated: Option<u64>,
    /// RTMP only: bytes of unfinished messages those connections hold.
    pub unauthenticated_buffered_bytes: Option<u64>,
}
