//! The pages `serve` answers for people rather than programs: the demo page at `/` (pick a model,
//! drop an image, see the result drawn over it) and the API page at `/docs` (rendered from
//! `/openapi.json`).
//!
//! Everything they load is compiled into the binary from `serve/assets/` and served from here,
//! so they work on a machine with no internet; their Content-Security-Policy forbids anything
//! from elsewhere.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json";
const PNG: &str = "image/png";
const SVG: &str = "image/svg+xml";

/// Route, content type and body of every page and asset.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("/", HTML, include_bytes!("../assets/demo.html")),
    ("/docs", HTML, include_bytes!("../assets/docs.html")),
    ("/ui/page.css", CSS, include_bytes!("../assets/page.css")),
    ("/ui/demo.js", JS, include_bytes!("../assets/demo.js")),
    ("/ui/draw.js", JS, include_bytes!("../assets/draw.js")),
    ("/ui/docs.js", JS, include_bytes!("../assets/docs.js")),
    ("/ui/dom.js", JS, include_bytes!("../assets/dom.js")),
    ("/ui/icon.svg", SVG, include_bytes!("../assets/icon.svg")),
    (
        "/ui/drawing.json",
        JSON,
        include_bytes!("../assets/drawing.json"),
    ),
    (
        "/ui/samples/scene.png",
        PNG,
        include_bytes!("../assets/samples/scene.png"),
    ),
    (
        "/ui/samples/face.png",
        PNG,
        include_bytes!("../assets/samples/face.png"),
    ),
];

/// Scripts, styles, images and API calls from this server only; inline code and other origins
/// are refused by the browser.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The pages and their assets, as routes to merge into the service's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, &(path, content_type, body)| {
            router.route(path, get(move || async move { asset(content_type, body) }))
        })
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Small, and replaced with the binary: revalidate rather than cache stale copies.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
