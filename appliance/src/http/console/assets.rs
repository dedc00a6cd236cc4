//! The console's files, embedded in the binary and looked up by exact name:
//! nothing is read from the file system at run time.

use axum::http::{HeaderValue, header};

pub struct Asset {
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

impl Asset {
    pub fn content_type_header(&self) -> [(header::HeaderName, HeaderValue); 1] {
        [(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type))]
    }
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[(&str, Asset)] = &[
    (
        "index.html",
        Asset {
            content_type: "text/html; charset=utf-8",
            bytes: include_bytes!("../../../../webui/console/index.html"),
        },
    ),
    (
        "console.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            bytes: include_bytes!("../../../../webui/console/console.css"),
        },
    ),
    ("app.js", Asset { content_type: JS, bytes: include_bytes!("../../../../webui/console/app.js") }),
    ("api.js", Asset { content_type: JS, bytes: include_bytes!("../../../../webui/console/api.js") }),
    ("dom.js", Asset { content_type: JS, bytes: include_bytes!("../../../../webui/console/dom.js") }),
    ("pages.js", Asset { content_type: JS, bytes: include_bytes!("../../../../webui/console/pages.js") }),
    ("live.js", Asset { content_type: JS, bytes: include_bytes!("../../../../webui/console/live.js") }),
    ("users.js", Asset { content_type: JS, bytes: include_bytes!("../../../../webui/console/users.js") }),
    ("audit.js", Asset { content_type: JS, bytes: include_bytes!("../../../../webui/console/audit.js") }),
    ("processing.js", Asset { content_type: JS, bytes: include_bytes!("../../../../webui/console/processing.js") }),
    ("recordings.js", Asset { content_type: JS, bytes: include_bytes!("../../../../webui/console/recordings.js") }),
    ("hls.min.js", Asset { content_type: JS, bytes: include_bytes!("../../../../webui/vendor/hls.min.js") }),
    ("hls-part-guard.js", Asset { content_type: JS, bytes: include_bytes!("../../../../webui/hls-part-guard.js") }),
];

pub fn get(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the page loads is embedded, and nothing is fetched from outside.
    #[test]
    fn the_page_loads_only_embedded_assets() {
        let page = std::str::from_utf8(get("index.html").unwrap().bytes).unwrap();
        for name in ["console.css", "hls.min.js", "hls-part-guard.js", "app.js"] {
            assert!(page.contains(&format!("/console/assets/{name}")), "index.html loads {name}");
        }
        for (name, asset) in ASSETS.iter().filter(|(n, _)| *n != "hls.min.js") {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            let outside = text.matches("://").count() - text.matches("https://example.net/hook").count();
            assert_eq!(outside, 0, "{name} refers to nothing outside the appliance");
        }
        assert!(get("../Cargo.toml").is_none());
        assert!(get("").is_none());
    }

    /// The console never parses data as HTML: no innerHTML and friends.
    #[test]
    fn the_console_scripts_build_the_dom_from_text_only() {
        for (name, asset) in ASSETS.iter().filter(|(n, _)| n.ends_with(".js") && *n != "hls.min.js") {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
                assert!(!text.contains(sink), "{name} uses {sink}");
            }
        }
    }
}
