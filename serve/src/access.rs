//! Who may call the server, and how often: an API key (`--api-key`), a CORS allow-list
//! (`--cors-origin`) and a per-client rate limit (`--rate-limit`). The health routes stay open to
//! probes and load balancers under all of them.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use subtle::ConstantTimeEq;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;

/// Routes that answer without a key and without counting against a rate: what liveness and
/// readiness probes call.
const OPEN_ROUTES: &[&str] = &["/v2/health/live", "/v2/health/ready"];

fn is_open(request: &Request) -> bool {
    OPEN_ROUTES.contains(&request.uri().path())
}

/// The key every request but the health checks must present as `Authorization: Bearer KEY`.
#[derive(Clone)]
pub struct ApiKey(Arc<[u8]>);

impl ApiKey {
    pub fn new(key: &str) -> Self {
        Self(key.as_bytes().into())
    }

    /// Whether `header` is `Bearer KEY` with this key, compared in constant time (the
    /// comparison takes as long wherever the first wrong byte is).
    fn admits(&self, header: Option<&HeaderValue>) -> bool {
        self.admits_bytes(header.map(HeaderValue::as_bytes))
    }

    /// [`ApiKey::admits`] on the header's (or gRPC metadata's) bytes.
    pub fn admits_bytes(&self, header: Option<&[u8]>) -> bool {
        header
            .and_then(|value| value.strip_prefix(b"Bearer "))
            .is_some_and(|given| bool::from(given.ct_eq(&self.0)))
    }
}

/// Refuses requests without the key with 401 and a `WWW-Authenticate: Bearer` challenge.
pub async fn require_key(State(key): State<ApiKey>, request: Request, next: Next) -> Response {
    if is_open(&request) || key.admits(request.headers().get(header::AUTHORIZATION)) {
        return next.run(request).await;
    }
    let mut answer = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "this server needs an API key: send Authorization: Bearer <key>",
    )
    .into_response();
    answer
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    answer
}

/// Requests per second each client (by IP address) may make, with a burst allowance.
#[derive(Clone)]
pub struct RateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    per_second: NonZeroU32,
}

impl RateLimit {
    /// `per_second` requests a second, up to `burst` at once.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
            per_second,
        }
    }

    /// Forgets clients that are back to their full allowance, so the table stays as large as
    /// the set of recent clients; run it now and then.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

impl RateLimit {
    /// Counts one request from `client`; over the rate, how many whole seconds it should wait
    /// and what to tell it.
    pub fn check(&self, client: IpAddr) -> Result<(), (u64, String)> {
        self.limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let message = format!(
                "too many requests from {client}: the limit is {} a second (--rate-limit)",
                self.per_second
            );
            (seconds.max(1), message)
        })
    }
}

/// Refuses a client over its rate with 429 and `Retry-After`. Clients are told apart by their
/// connection's address; behind a proxy that is the proxy's, so limit there instead.
pub async fn limit_rate(
    State(limit): State<RateLimit>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if is_open(&request) {
        return next.run(request).await;
    }
    match limit.check(peer.ip()) {
        Ok(()) => next.run(request).await,
        Err((seconds, message)) => {
            let mut answer = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            answer
        }
    }
}

/// Cross-origin calls from the listed origins only (`*` allows any), with the headers the API
/// and the Open Inference Protocol use.
pub fn cors(origins: &[HeaderValue]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().cloned())
    };
    let inference_header = HeaderName::from_static(crate::oip::HEADER_LENGTH);
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-request-id"),
            inference_header.clone(),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), inference_header])
        .max_age(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_key_is_admitted() {
        let key = ApiKey::new("s3cret");
        let admits = |value: &str| key.admits(Some(&HeaderValue::from_str(value).unwrap()));
        assert!(admits("Bearer s3cret"));
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "bearer s3cret",
            "s3cret",
            "Basic s3cret",
        ] {
            assert!(!admits(wrong), "{wrong}");
        }
        assert!(!key.admits(None));
    }
}
