//! Cursor pagination of list routes: `?limit=N&cursor=C`. A page holds at most
//! `limit` items (1 to 500, default 50) and `next_cursor`, which is opaque and
//! present only when more items follow; pass it back as `cursor` for the next
//! page. Unknown query parameters are refused (400), so typos do not pass
//! silently.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::http::problem::ApiError;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// The pagination query parameters of lists ordered by a name or id.
#[derive(Debug, Clone, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{1,128}$")]
    pub cursor: Option<String>,
}

/// The pagination query parameters of lists ordered by sequence number.
#[derive(Debug, Clone, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SequencePageQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,19}$")]
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> usize {
        self.limit.map_or(DEFAULT_LIMIT, |l| l as usize)
    }
}

impl SequencePageQuery {
    pub fn limit(&self) -> usize {
        self.limit.map_or(DEFAULT_LIMIT, |l| l as usize)
    }

    pub fn after(&self) -> Option<u64> {
        self.cursor.as_deref().and_then(|c| c.parse().ok())
    }
}

/// Parses `limit` and `cursor` from a query string; a cursor must satisfy `cursor_ok`.
fn parse(query: &str, cursor_ok: impl Fn(&str) -> bool) -> Result<(Option<u32>, Option<String>), ApiError> {
    let (mut limit, mut cursor) = (None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "limit" => {
                let parsed = value
                    .parse::<u32>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT as u32).contains(l))
                    .ok_or_else(|| ApiError::field("limit", format!("use a whole number from 1 to {MAX_LIMIT}")))?;
                limit = Some(parsed);
            }
            "cursor" => {
                if !cursor_ok(&value) {
                    return Err(ApiError::field("cursor", "not a cursor this list returned"));
                }
                cursor = Some(value.into_owned());
            }
            other => {
                let name: String = other.chars().take(64).collect();
                return Err(ApiError::field(name, "unknown query parameter (use limit and cursor)"));
            }
        }
    }
    Ok((limit, cursor))
}

fn key_cursor(c: &str) -> bool {
    (1..=128).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn sequence_cursor(c: &str) -> bool {
    (1..=19).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit())
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let (limit, cursor) = parse(parts.uri.query().unwrap_or(""), key_cursor)?;
        Ok(PageQuery { limit, cursor })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SequencePageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let (limit, cursor) = parse(parts.uri.query().unwrap_or(""), sequence_cursor)?;
        Ok(SequencePageQuery { limit, cursor })
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    pub fn from_state<U>(page: crate::state::Page<U>, f: impl FnMut(U) -> T) -> Page<T> {
        let page = page.map(f);
        Page { items: page.items, next_cursor: page.next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(parse("", key_cursor).unwrap(), (None, None));
        assert_eq!(parse("limit=5&cursor=abc", key_cursor).unwrap(), (Some(5), Some("abc".into())));
        assert_eq!(parse("cursor=123", sequence_cursor).unwrap(), (None, Some("123".into())));
        let refused = [
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("limit=x", "limit"),
            ("offset=3", "offset"),
            ("cursor=", "cursor"),
            ("cursor=%C3%A9", "cursor"),
        ];
        for (query, field) in refused {
            assert_eq!(parse(query, key_cursor).unwrap_err().field.as_deref(), Some(field), "{query}");
        }
        assert_eq!(
            parse(&format!("cursor={}", "a".repeat(129)), key_cursor).unwrap_err().field.as_deref(),
            Some("cursor")
        );
        assert!(parse("cursor=abc", sequence_cursor).is_err());
        assert!(parse("cursor=99999999999999999999", sequence_cursor).is_err());
    }
}
