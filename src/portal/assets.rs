//! The portal's static files, embedded in the binary: one style sheet and one small script
//! (live MAC validation as you type), both served from this origin so the strict
//! Content-Security-Policy holds. No build step, no CDN. Must not know pages or sessions.

use axum::http::header;
use axum::response::IntoResponse;

/// The style sheet.
pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("assets/portal.css"),
    )
}

/// The script.
pub async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("assets/portal.js"),
    )
}
