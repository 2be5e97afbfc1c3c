//! exchange-gateway: the stateless REST front door.
//!
//! It validates each request against the symbol's rules, turns decimal strings into engine
//! integers, hands the command to the [`Exchange`] behind it (which logs it on the owning
//! shard and waits for the outcome) and answers with the execution report. It keeps no state of
//! its own, so any number of gateways can run side by side.
//!
//! # Layout
//! - [`exchange`]: the `Exchange` trait, the seam to the shards the routes use.
//! - [`shards`]: the `Exchange` over shards' logs (here or in other processes), `Pending`, and
//!   the one `Delivery` of outcomes to the requests and feeds, in process or relayed.
//! - [`feed`]: the `Feed` trait, the seam to the live market and private updates, and `Bus`,
//!   the in-process feed.
//! - [`auth`]: signed requests (HMAC-SHA256), permissions and rate limits.
//! - [`validate`]: request fields to engine values, or errors that name the field.
//! - [`dto`]: the API's JSON types and their conversion from engine integers.
//! - [`error`]: `ApiError` and the JSON error shape every failure takes.
//! - [`extract`]: the JSON body extractor.
//! - [`ws`]: the WebSocket tier (`GET /ws`): market data fan-out and private order updates.
//! - [`routes`]: the handlers; [`app`] puts them together with the middleware.
//! - [`dashboard`]: the trading screen, built into the binary and served at `/`.

pub mod auth;
pub mod dashboard;
pub mod dto;
pub mod error;
pub mod exchange;
pub mod extract;
pub mod feed;
pub mod history;
pub mod routes;
pub mod shards;
pub mod validate;
pub mod ws;

pub use auth::{Caller, RateLimits};
pub use exchange::{Exchange, ExchangeError, Read, ShardHealth, Submitted};
pub use exchange_accounts::{Accounts, AccountsError};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use exchange_core::{SymbolId, SymbolSpec, Timestamp};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares: one pointer, so that the clones axum makes for every request and
/// middleware cost one reference count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub exchange: Arc<dyn Exchange>,
    pub accounts: Arc<dyn Accounts>,
    pub feed: Arc<dyn feed::Feed>,
    pub limiter: Arc<auth::RateLimiter>,
    pub hub: Arc<ws::Hub>,
    pub ws: Arc<ws::WsConfig>,
    pub metrics: PrometheusHandle,
    /// The handles of the per-request metrics.
    pub http_metrics: Arc<HttpMetrics>,
    /// Candles and trade history (the rollup store), when there is one.
    pub history: Option<Arc<dyn exchange_functions::RollupStore>>,
    /// The demo account's key, set while `exchange --demo` runs (for the dashboard's button).
    pub demo: Arc<OnceLock<dashboard::DemoCredentials>>,
}

impl AppState {
    /// State for an exchange and its accounts, with the process's metrics recorder.
    pub fn new(
        exchange: Arc<dyn Exchange>,
        accounts: Arc<dyn Accounts>,
        feed: Arc<dyn feed::Feed>,
        limits: RateLimits,
        ws: ws::WsConfig,
    ) -> Self {
        Self(Arc::new(Shared {
            exchange,
            accounts,
            feed,
            limiter: Arc::new(auth::RateLimiter::new(limits)),
            hub: Arc::default(),
            ws: Arc::new(ws),
            metrics: metrics_handle(),
            http_metrics: Arc::default(),
            history: None,
            demo: Arc::default(),
        }))
    }

    /// Reads candles and trade history from `history`.
    pub fn with_history(mut self, history: Arc<dyn exchange_functions::RollupStore>) -> Self {
        Arc::make_mut(&mut self.0).history = Some(history);
        self
    }

    /// A listed symbol's spec (ids come from the exchange, so they are always listed).
    pub(crate) fn spec(&self, id: SymbolId) -> &SymbolSpec {
        self.exchange
            .symbols()
            .get(id)
            .expect("symbol ids come from the symbol table")
    }
}

/// The current time, stamped on each command as it enters the exchange.
pub fn now() -> Timestamp {
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Timestamp(ns)
}

/// The process's Prometheus recorder (installed on first use; no HTTP listener of its own:
/// `/metrics` is served by the app).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.000_01, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "exchange",
        description = "REST API of the exchange. Money is decimal strings; ids are strings; times are milliseconds since the epoch. Errors are `{code, error, message, field}`; codes are listed in docs/error-codes.md."
    ),
    tags(
        (name = "orders", description = "Placing, reading, amending and cancelling orders (signed)"),
        (name = "account", description = "Balances, fills and the ledger of the signing key's account (signed)"),
        (name = "admin", description = "Accounts, keys, deposits and withdrawals (signed, admin permission)"),
        (name = "market data", description = "Tickers, depth and trades"),
        (name = "exchange", description = "Symbols, health, metrics"),
    )
)]
struct ApiDoc;

/// The routes and their OpenAPI document. Private routes (orders, account, admin) need a
/// signed request; market data and exchange information are public.
pub fn routes(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use routes::{account, admin, market, orders, system};
    // Authentication wraps each method's handler, not the route: a method the route does not
    // have is answered 405 before any signature is asked for.
    let auth = middleware::from_fn_with_state(state.clone(), auth::authenticate);
    let signed = |(schemas, paths, router): UtoipaMethodRouter<AppState>| {
        (schemas, paths, router.route_layer(auth.clone()))
    };
    let private = OpenApiRouter::new()
        .routes(signed(routes!(
            orders::place_order,
            orders::list_orders,
            orders::cancel_all
        )))
        .routes(signed(routes!(
            orders::get_order,
            orders::amend_order,
            orders::cancel_order
        )))
        .routes(signed(routes!(
            orders::get_order_by_client_id,
            orders::cancel_order_by_client_id
        )))
        .routes(signed(routes!(orders::place_order_seed)))
        .routes(signed(routes!(orders::get_order_seed)))
        .routes(signed(routes!(account::account)))
        .routes(signed(routes!(account::trades)))
        .routes(signed(routes!(account::ledger)))
        .routes(signed(routes!(admin::create_account)))
        .routes(signed(routes!(admin::create_key)))
        .routes(signed(routes!(admin::disable_key)))
        .routes(signed(routes!(admin::deposit)))
        .routes(signed(routes!(admin::withdraw)))
        .routes(signed(routes!(admin::balances)))
        .routes(signed(routes!(admin::totals)));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(private)
        .routes(routes!(market::all_market_data))
        .routes(routes!(market::ticker))
        .routes(routes!(market::depth))
        .routes(routes!(market::trades))
        .routes(routes!(market::trade_history))
        .routes(routes!(market::candles))
        .routes(routes!(system::symbols))
        .routes(routes!(system::health))
        .routes(routes!(system::metrics))
        .routes(routes!(ws::ws))
        .routes(routes!(dashboard::demo_credentials))
        .split_for_parts()
}

/// The whole HTTP application: routes, `/openapi.json`, JSON errors, metrics, tracing, CORS,
/// compression and the body limit.
pub fn app(state: AppState) -> Router {
    let (router, api) = routes(&state);
    let api = Arc::new(api);
    router
        .route(
            "/openapi.json",
            get(move || async move { axum::Json(api.as_ref().clone()) }),
        )
        .fallback(dashboard::serve)
        .with_state(state.clone())
        // One layer, outermost first: each `Router::layer` call wraps every route in a boxed
        // service of its own, which every request clones and whose future it boxes.
        .layer(
            tower::ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(CorsLayer::permissive())
                .layer(CompressionLayer::new())
                // Outside the body limit, so that its 413 becomes JSON too.
                .layer(middleware::from_fn_with_state(state, edge))
                .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
        )
}

/// What every request goes through, outermost first: its metrics, the rate limits, and JSON
/// bodies for the errors axum and tower-http answer themselves. One middleware rather than
/// three: each `from_fn` layer clones the route and boxes a future for every request.
async fn edge(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    let response = match auth::rate_limit(&app, &req) {
        Some(refused) => refused,
        None => error::json_errors(next.run(req).await),
    };
    app.http_metrics.record(
        &method,
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status(),
        started.elapsed(),
    );
    response
}

/// Requests by method, route and status, and their latency by method and route. The handles
/// are looked up once per combination: building a metric's labels for every request costs
/// several allocations.
#[derive(Default)]
pub struct HttpMetrics {
    /// By route, then the few (method, status) pairs seen on it.
    handles: parking_lot::Mutex<HashMap<String, Vec<HttpHandles>>>,
}

struct HttpHandles {
    method: Method,
    status: u16,
    count: Counter,
    latency: Histogram,
}

impl HttpMetrics {
    fn record(&self, method: &Method, route: &str, status: StatusCode, took: Duration) {
        let status = status.as_u16();
        let mut handles = self.handles.lock();
        let on_route = match handles.get_mut(route) {
            Some(on_route) => on_route,
            None => handles.entry(route.to_owned()).or_default(),
        };
        let at = on_route
            .iter()
            .position(|h| h.method == method && h.status == status)
            .unwrap_or_else(|| {
                on_route.push(HttpHandles {
                    method: method.clone(),
                    status,
                    count: metrics::counter!("exchange_http_requests_total", "method" => method.to_string(), "route" => route.to_owned(), "status" => status.to_string()),
                    latency: metrics::histogram!("exchange_http_request_seconds", "method" => method.to_string(), "route" => route.to_owned()),
                });
                on_route.len() - 1
            });
        let (count, latency) = (on_route[at].count.clone(), on_route[at].latency.clone());
        drop(handles);
        count.increment(1);
        latency.record(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_metrics_count_each_method_route_and_status_apart() {
        let handle = metrics_handle();
        let m = HttpMetrics::default();
        let ms = Duration::from_millis(1);
        for _ in 0..3 {
            m.record(&Method::POST, "/metrics-test", StatusCode::CREATED, ms);
        }
        m.record(&Method::POST, "/metrics-test", StatusCode::BAD_REQUEST, ms);
        m.record(&Method::GET, "/metrics-test", StatusCode::CREATED, ms);
        let text = handle.render();
        let count = |method: &str, status: u16| {
            let prefix = format!(
                "exchange_http_requests_total{{method=\"{method}\",route=\"/metrics-test\",status=\"{status}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .map(|v| v.trim().to_owned())
        };
        assert_eq!(count("POST", 201).as_deref(), Some("3"));
        assert_eq!(count("POST", 400).as_deref(), Some("1"));
        assert_eq!(count("GET", 201).as_deref(), Some("1"));
        assert_eq!(count("GET", 400), None);
        assert!(text.contains(
            "exchange_http_request_seconds_count{method=\"POST\",route=\"/metrics-test\"} 4"
        ));
    }
}
