//! The trading dashboard (`dashboard/`, a Next.js static export), embedded at build time by
//! `build.rs` and served at `/`: each file with its content type, hashed assets cached for a
//! year, pages revalidated by ETag, and any other page address answered with the screen (its
//! routes live in the browser). The API's routes come first: this is the router's fallback.
//!
//! Also the demo account's key for the screen's "try the demo account" button, which exists
//! only while `exchange --demo` runs.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exchange_core::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

mod built {
    include!(concat!(env!("OUT_DIR"), "/dashboard.rs"));
}

/// The page `/` serves when the exchange was built without the dashboard.
const NOT_BUILT: &str = "<!doctype html><html lang=en><meta charset=utf-8><title>exchange</title>\
<body style=\"font:15px system-ui;background:#0d1016;color:#d7dce5;max-width:40em;margin:4em auto\">\
<h1>The exchange is running; its dashboard was not built.</h1>\
<p>The trading screen is built from <code>dashboard/</code> with Node.js (20.9 or newer). \
Install Node.js and build the exchange again (<code>cargo run --release</code> runs \
<code>npm ci</code> and <code>npm run build</code> in <code>dashboard/</code> when it finds npm), \
or build it by hand there and rebuild.</p>\
<p>The API works without it: <a style=color:#8ab4f8 href=/openapi.json>/openapi.json</a>, \
<a style=color:#8ab4f8 href=/market-data>/market-data</a>.</p></body></html>";

/// Whether the dashboard was built into this binary.
pub fn built() -> bool {
    !built::ASSETS.is_empty()
}

fn find(path: &str) -> Option<&'static (&'static str, &'static str, &'static [u8])> {
    built::ASSETS
        .binary_search_by(|(p, _, _)| (*p).cmp(path))
        .ok()
        .map(|i| &built::ASSETS[i])
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") | Some("map") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    }
}

/// Whether a request is a browser asking for a page (not an API client that mistyped a path).
fn wants_page(method: &Method, headers: &HeaderMap, path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    (method == Method::GET || method == Method::HEAD)
        && !last.contains('.')
        && headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

fn asset(
    (path, etag, bytes): &'static (&'static str, &'static str, &'static [u8]),
    headers: &HeaderMap,
    method: &Method,
) -> Response {
    let cache = if path.starts_with("/_next/static/") {
        // Named by their content's hash: a new build gives new names.
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        StatusCode::OK.into_response()
    } else {
        (StatusCode::OK, *bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_static(etag));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    response
}

/// The router's fallback: a dashboard file, the screen for a page address, or the JSON 404.
pub async fn serve(req: Request) -> Response {
    let (method, headers, path) = (req.method(), req.headers(), req.uri().path());
    if method == Method::GET || method == Method::HEAD {
        let file = match path {
            "/" => Some("/index.html".to_owned()),
            p if p.ends_with('/') => None,
            p if find(p).is_some() => Some(p.to_owned()),
            p => Some(format!("{p}.html")),
        };
        if let Some(hit) = file.as_deref().and_then(find) {
            return asset(hit, headers, method);
        }
        if wants_page(method, headers, path) || path == "/" {
            return match find("/index.html") {
                Some(index) => asset(index, headers, method),
                None if path == "/" => (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    NOT_BUILT,
                )
                    .into_response(),
                None => not_found(),
            };
        }
    }
    not_found()
}

fn not_found() -> Response {
    ApiError::new(ErrorCode::NotFound, "no such route (see GET /openapi.json)").into_response()
}

/// The demo account's key and secret (`GET /demo/credentials`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DemoCredentials {
    pub key: String,
    pub secret: String,
}

/// The demo account's key, for the dashboard's "try the demo account" button. Only while
/// `exchange --demo` runs; otherwise 404.
#[utoipa::path(get, path = "/demo/credentials", tag = "exchange",
    responses((status = 200, body = DemoCredentials), (status = 404, description = "not in demo mode")))]
pub async fn demo_credentials(
    State(app): State<AppState>,
) -> Result<axum::Json<DemoCredentials>, ApiError> {
    app.demo.get().cloned().map(axum::Json).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "the exchange is not running in demo mode (start it with --demo)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_sorted_for_lookup_and_typed_by_extension() {
        assert!(built::ASSETS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            content_type("/_next/static/chunks/a.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("/x.unknown"), "application/octet-stream");
    }

    #[test]
    fn only_a_browser_asking_for_a_page_gets_the_screen() {
        let mut html = HeaderMap::new();
        html.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml"),
        );
        assert!(wants_page(&Method::GET, &html, "/trade/BTC-USD"));
        assert!(!wants_page(&Method::POST, &html, "/trade"));
        assert!(!wants_page(&Method::GET, &html, "/missing.js"));
        assert!(!wants_page(&Method::GET, &HeaderMap::new(), "/trade"));
    }
}
