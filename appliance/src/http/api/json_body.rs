//! The JSON body extractor of the API: `application/json` only (415), at most
//! `MAX_BODY_BYTES` (413), parsed strictly (unknown fields refused) with the
//! path of the offending field in the 400. It never panics and, running before
//! the handler, a refused body never reaches the state.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::http::problem::{ApiError, ProblemKind};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest body read (and dropped) to answer 413 cleanly; beyond it the connection is closed.
const DRAIN_BYTES: usize = 1024 * 1024;

/// A JSON request body of type `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(
                ProblemKind::UnsupportedMediaType,
                format!("send the body as application/json (got {:?})", truncate(content_type, 64)),
            ));
        }
        // A body somewhat over the limit is read to its end before the 413, so
        // the client gets the answer instead of a reset connection.
        let declared =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > DRAIN_BYTES as u64) {
            return Err(too_large());
        }
        let bytes = axum::body::to_bytes(req.into_body(), DRAIN_BYTES).await.map_err(|e| {
            if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
                too_large()
            } else {
                ApiError::new(ProblemKind::InvalidBody, "the request body could not be read")
            }
        })?;
        if bytes.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        parse(&bytes).map(ApiJson)
    }
}

fn too_large() -> ApiError {
    ApiError::new(ProblemKind::PayloadTooLarge, format!("the body is larger than {MAX_BODY_BYTES} bytes"))
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Parses `bytes` (a JSON object) as `T`, naming the field at fault.
/// Numbers with a zero fraction (`720.0`) count as integers, as in JSON Schema.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(ProblemKind::InvalidBody, format!("malformed JSON: {}", truncate(&e.to_string(), 300)))
    })?;
    if !value.is_object() {
        return Err(ApiError::new(ProblemKind::InvalidBody, "the body must be a JSON object"));
    }
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let detail = truncate(&inner.to_string(), 300).to_string();
        let detail = detail.split(" at line ").next().unwrap_or(&detail).to_string();
        match inner.classify() {
            serde_json::error::Category::Data => {
                // Unknown fields are reported at their parent: name the field itself.
                let unknown = detail.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next());
                let field = match (unknown, path.as_str()) {
                    (Some(name), "." | "") => name.to_string(),
                    (Some(name), path) if path == name || path.ends_with(&format!(".{name}")) => path.to_string(),
                    (Some(name), parent) => format!("{parent}.{name}"),
                    (None, "." | "") => String::new(),
                    (None, path) => path.to_string(),
                };
                if field.is_empty() {
                    ApiError::new(ProblemKind::InvalidBody, detail)
                } else {
                    ApiError::field(field, detail)
                }
            }
            _ => ApiError::new(ProblemKind::InvalidBody, format!("malformed JSON: {detail}")),
        }
    })
}

/// Rewrites `2.0` as `2` (and `-3.0` as `-3`) wherever it fits a 64-bit integer.
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                *n = if f >= 0.0 { (f as u64).into() } else { (f as i64).into() };
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        height: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        rungs: Option<Vec<Inner>>,
    }

    #[test]
    fn errors_name_the_field() {
        let cases: [(&str, ProblemKind, Option<&str>); 10] = [
            (r#"{"name": 1}"#, ProblemKind::InvalidField, Some("name")),
            (r#"{"name": "a", "bogus": 1}"#, ProblemKind::InvalidField, Some("bogus")),
            (r#"{"name": "a", "rungs": [{"height": "x"}]}"#, ProblemKind::InvalidField, Some("rungs[0].height")),
            (r#"{"name": "a", "rungs": [{"height": 1, "x": 2}]}"#, ProblemKind::InvalidField, Some("rungs[0].x")),
            (r#"{"rungs": null}"#, ProblemKind::InvalidBody, None),
            (r#"{"name": "a""#, ProblemKind::InvalidBody, None),
            (r#"{"name": "a"} trailing"#, ProblemKind::InvalidBody, None),
            ("[]", ProblemKind::InvalidBody, None),
            (r#"["a", null]"#, ProblemKind::InvalidBody, None),
            (r#"{"name": "a", "rungs": [{"height": 1.5}]}"#, ProblemKind::InvalidField, Some("rungs[0].height")),
        ];
        for (body, kind, field) in cases {
            let err = parse::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!((err.kind, err.field.as_deref()), (kind, field), "{body}: {}", err.detail);
        }
        assert_eq!(parse::<Body>(br#"{"name":"ok"}"#).unwrap().name, "ok");
        let integral = parse::<Body>(br#"{"name":"ok","rungs":[{"height":720.0}]}"#).unwrap();
        assert_eq!(integral.rungs.unwrap()[0].height, 720);
    }
}
