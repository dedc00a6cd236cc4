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
        Asset { content_type: "text/html; charset=utf-8", bytes: include_bytes!("../../../webui/console/index.html") },
    ),
    (
        "console.css",
        Asset { content_type: "text/css; charset=utf-8", bytes: include_bytes!("../../../webui/console/console.css") },
    ),
    ("app.js", Asset { content_type: JS, bytes: include_bytes!("../../../webui/console/app.js") }),
    ("api.js", Asset { content_type: JS, bytes: include_bytes!("../../../webui/console/api.js") }),
    ("dom.js", Asset { content_type: JS, bytes: include_bytes!("../../../webui/console/dom.js") }),
    ("pages.js", Asset { content_type: JS, bytes: include_bytes!("../../../webui/console/pages.js") }),
    ("hls.min.js", Asset { content_type: JS, bytes: include_bytes!("../../../webui/vendor/hls.min.js") }),
];

pub fn get(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
}
