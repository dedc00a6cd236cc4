//! The Prometheus text exposition format (version 0.0.4, the classic one
//! `promtool check metrics` reads): metric families with their `# HELP` and
//! `# TYPE` lines, samples with escaped label values. Written by hand: the
//! format is a few lines of rules, and the official `prometheus-client`
//! crate writes OpenMetrics instead (`_total` added to counter samples under
//! a `# TYPE` without it, `# EOF`), which the classic parser reads differently.

use std::fmt::Write;

/// The `Content-Type` of the classic text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a metric family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A histogram's cumulative buckets: (upper bound, observations at or below it).
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    pub cumulative: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
}

/// A scrape's text, family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts a family: its help and type lines. Its samples follow.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Self {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {}", kind.as_str());
        self
    }

    /// One sample of the family just started (`name` is the family's; a
    /// counter's name ends in `_total`).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(name);
        write_labels(&mut self.text, labels, None);
        let _ = writeln!(self.text, " {}", number(value));
        self
    }

    /// The samples of a histogram family: its buckets (with `+Inf`), `_sum` and `_count`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], buckets: &Buckets) -> &mut Self {
        let mut le = String::new();
        for (bound, count) in
            buckets.cumulative.iter().map(|(b, c)| (number(*b), *c)).chain([("+Inf".into(), buckets.count)])
        {
            le.clear();
            le.push_str(&bound);
            let _ = write!(self.text, "{name}_bucket");
            write_labels(&mut self.text, labels, Some(&le));
            let _ = writeln!(self.text, " {count}");
        }
        self.sample(&format!("{name}_sum"), labels, buckets.sum);
        self.sample(&format!("{name}_count"), labels, buckets.count as f64)
    }

    pub fn finish(self) -> String {
        self.text
    }
}

fn write_labels(text: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    text.push('{');
    let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
    for (i, (key, value)) in all.enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(key);
        text.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => text.push_str("\\\\"),
                '"' => text.push_str("\\\""),
                '\n' => text.push_str("\\n"),
                c => text.push(c),
            }
        }
        text.push('"');
    }
    text.push('}');
}

/// A sample value as Prometheus writes it: integers without a fraction.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_samples_and_histograms_in_the_classic_format() {
        let mut out = Exposition::default();
        out.family("appliance_input_media_bytes_per_second", "Input bitrate.\nMeasured.", Kind::Gauge).sample(
            "appliance_input_media_bytes_per_second",
            &[("channel", "a\"b\\c\nd")],
            1500.0,
        );
        out.family("appliance_requests_total", "Requests.", Kind::Counter).sample("appliance_requests_total", &[], 3.0);
        out.family("appliance_latency_seconds", "Latency.", Kind::Histogram).histogram(
            "appliance_latency_seconds",
            &[("channel", "c")],
            &Buckets { cumulative: vec![(0.1, 2), (0.25, 5)], count: 6, sum: 1.25 },
        );
        out.family("appliance_fps", "FPS.", Kind::Gauge).sample("appliance_fps", &[], 29.97);
        let want = "\
# HELP appliance_input_media_bytes_per_second Input bitrate.\\nMeasured.
# TYPE appliance_input_media_bytes_per_second gauge
appliance_input_media_bytes_per_second{channel=\"a\\\"b\\\\c\\nd\"} 1500
# HELP appliance_requests_total Requests.
# TYPE appliance_requests_total counter
appliance_requests_total 3
# HELP appliance_latency_seconds Latency.
# TYPE appliance_latency_seconds histogram
appliance_latency_seconds_bucket{channel=\"c\",le=\"0.1\"} 2
appliance_latency_seconds_bucket{channel=\"c\",le=\"0.25\"} 5
appliance_latency_seconds_bucket{channel=\"c\",le=\"+Inf\"} 6
appliance_latency_seconds_sum{channel=\"c\"} 1.25
appliance_latency_seconds_count{channel=\"c\"} 6
# HELP appliance_fps FPS.
# TYPE appliance_fps gauge
appliance_fps 29.97
";
        assert_eq!(out.finish(), want);
    }
}
