//! Serves the single-page web app from assets embedded at build time (`web/dist`). Unknown
//! paths get `index.html` so client-side routes survive a reload.

use poem::http::{header, StatusCode};
use poem::{handler, Request, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../web/dist"]
#[allow_missing = true]
struct Assets;

const NOT_BUILT: &str = "<!doctype html><html><head><title>Spot Optimizer</title></head><body style=\"font-family:sans-serif;max-width:40rem;margin:4rem auto\"><h1>Spot Optimizer</h1><p>The API is running, but the web app was not built into this binary.</p><p>Build it with <code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code> and rebuild the server, or use the API at <a href=\"/api/docs\">/api/docs</a>.</p></body></html>";

fn asset(path: &str) -> Option<Response> {
    let file = Assets::get(path)?;
    let mime = mime_for(path);
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Some(
        Response::builder()
            .header(header::CONTENT_TYPE, mime)
            .header(header::CACHE_CONTROL, cache)
            .body(file.data.into_owned()),
    )
}

fn mime_for(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[handler]
pub fn spa(req: &Request) -> Response {
    let path = req.uri().path().trim_start_matches('/');
    if path.starts_with("api/") || path == "api" {
        return crate::error::json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such API route".into(),
            None,
        );
    }
    if !path.is_empty() {
        if let Some(r) = asset(path) {
            return r;
        }
    }
    asset("index.html").unwrap_or_else(|| {
        Response::builder()
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(NOT_BUILT)
    })
}
