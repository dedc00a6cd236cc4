//! A ladder's renditions by name (`RenditionSpec::name`): the writing ends a
//! pipeline encodes into and hands back after a failure, and the reading
//! ends its consumers take, so no caller depends on the order of the rungs.

use std::collections::{BTreeMap, HashSet};

use media::{RenditionSpec, UnitReceiver, UnitSender, unit_channel};

use crate::error::AccelError;

/// One rendition's stream for its consumer (the packager), named as its rung.
#[derive(Debug)]
pub struct Rendition {
    pub name: String,
    pub stream: UnitReceiver,
}

/// The writing ends of a ladder's renditions, keyed by rendition name: what
/// `Pipeline::start` takes and `Resume::outputs` hands back.
#[derive(Debug, Default)]
pub struct Outputs(BTreeMap<String, UnitSender>);

impl Outputs {
    /// One bounded unit channel of `capacity` units per rung: the outputs
    /// to start the pipeline with, and the renditions (in the rungs' order)
    /// for their consumers. Two rungs with the same name are refused.
    pub fn for_rungs(rungs: &[RenditionSpec], capacity: usize) -> Result<(Outputs, Vec<Rendition>), AccelError> {
        check_names(rungs)?;
        let mut outputs = Outputs::default();
        let mut renditions = Vec::with_capacity(rungs.len());
        for rung in rungs {
            let (tx, rx) = unit_channel(capacity);
            outputs.0.insert(rung.name(), tx);
            renditions.push(Rendition { name: rung.name(), stream: rx });
        }
        Ok((outputs, renditions))
    }

    /// The renditions that have an output, by name (sorted).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes `name`'s output (a rung thread writes it from now on).
    pub(super) fn take(&mut self, name: &str) -> Option<UnitSender> {
        self.0.remove(name)
    }

    /// Gives `name`'s output back (a rung thread ended and its consumer is still there).
    pub(super) fn put(&mut self, name: String, output: UnitSender) {
        self.0.insert(name, output);
    }
}

/// Refuses a ladder in which two rungs share a name: their outputs would be one.
pub(super) fn check_names(rungs: &[RenditionSpec]) -> Result<(), AccelError> {
    let mut seen = HashSet::new();
    match rungs.iter().map(RenditionSpec::name).find(|name| !seen.insert(name.clone())) {
        Some(name) => Err(AccelError::Ladder(format!("two rungs are named {name}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use media::VideoCodec;

    use super::*;

    fn rung(height: u32, codec: VideoCodec, max_fps: Option<u32>) -> RenditionSpec {
        RenditionSpec { height, bitrate_kbps: 500, codec, max_fps, when: Default::default() }
    }

    #[test]
    fn every_rung_gets_a_named_output_and_rendition() {
        let rungs = [
            rung(360, VideoCodec::H264, None),
            rung(240, VideoCodec::Hevc, None),
            rung(144, VideoCodec::H264, Some(15)),
        ];
        let (mut outputs, renditions) = Outputs::for_rungs(&rungs, 4).unwrap();
        let names: Vec<&str> = renditions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["360p", "240p-hevc", "144p15"], "in the rungs' order");
        assert_eq!(outputs.names().collect::<Vec<_>>(), ["144p15", "240p-hevc", "360p"]);
        assert_eq!(outputs.len(), 3);
        // Each output feeds the rendition of the same name.
        let mut tx = outputs.take("240p-hevc").unwrap();
        assert!(!outputs.contains("240p-hevc"));
        tx.blocking_send_tracks(std::sync::Arc::from(Vec::new())).unwrap();
        drop((tx, outputs));
        for Rendition { name, mut stream } in renditions {
            let got = stream.blocking_recv();
            assert_eq!(got.is_some(), name == "240p-hevc", "{name}: {got:?}");
        }
    }

    #[test]
    fn rungs_that_share_a_name_are_refused() {
        let rungs = [rung(360, VideoCodec::H264, None), rung(360, VideoCodec::H264, None)];
        assert_eq!(Outputs::for_rungs(&rungs, 4).unwrap_err(), AccelError::Ladder("two rungs are named 360p".into()));
    }
}
