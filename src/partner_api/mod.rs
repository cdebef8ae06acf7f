//! The partner REST API under `/api/v1`: partners and tokens (admin), customers, tenant
//! instances, devices and their claims, bulk import, the audit log, and its OpenAPI document.
//!
//! Served on its own HTTPS listener, never on the phones'. Every change is committed by the
//! store first; only then is the in-memory registry updated, so a phone's very next fetch sees
//! it. A partner sees only its own customers, tenants and devices: anything else answers 404,
//! exactly like something that does not exist.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::OuiTable;
use crate::registry::{Committed, Registry};
use crate::store::{DeviceRecord, Store, TenantRecord};

pub mod auth;
pub(crate) mod check;
pub(crate) mod customers;
pub(crate) mod devices;
pub mod error;
mod export;
mod openapi;
mod partners;
pub mod preview;
pub mod redirect;
pub(crate) mod tenants;
pub(crate) mod tokens;
pub(crate) mod users;
pub mod wire;

use error::ApiError;

/// Largest request body accepted, except bulk imports.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Largest bulk import body accepted.
pub const IMPORT_LIMIT: usize = 32 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    /// The source of truth.
    pub store: Arc<dyn Store>,
    /// The phones' cache, updated after each commit.
    pub registry: Arc<Registry>,
    /// Which vendor a MAC belongs to.
    pub ouis: Arc<OuiTable>,
    /// The administrator's token, if one is configured.
    pub admin_token: Option<auth::AdminToken>,
    /// Metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Renders what a device's phone will be served (`None` on a node that serves no phones).
    pub preview: Option<Arc<dyn preview::ConfigPreview>>,
    /// The vendors' redirect services.
    pub redirects: redirect::Redirects,
    /// `scheme://host[:port]` partners reach the portal at, for set-password links (`None`:
    /// the request's own `Host`).
    pub portal_url: Option<String>,
}

impl ApiState {
    /// Applies committed tenants and devices to the registry.
    pub async fn publish(&self, tenants: Vec<TenantRecord>, devices: Vec<DeviceRecord>) {
        self.publish_committed(Committed {
            tenants,
            devices,
            ..Committed::default()
        })
        .await;
    }

    /// Applies any committed change to the registry and refreshes the gauges.
    pub async fn publish_committed(&self, committed: Committed) {
        self.registry.apply(committed).await;
        self.metrics
            .devices
            .set(self.registry.device_count() as i64);
        self.metrics
            .tenants
            .set(self.registry.tenant_count() as i64);
    }
}

/// A JSON body: malformed JSON, wrong types and unknown fields are 400 with the parser's
/// explanation; a body over the limit is 413.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state, BODY_LIMIT).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Page size of the tenant and customer lists when the client names none: large enough that a
/// client written before these lists were paged still gets everything an ordinary partner has.
pub const LIST_PAGE: usize = 1000;

/// A list's page size from the query, 1–1000, or 400.
fn list_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(LIST_PAGE);
    if (1..=1000).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ))
    }
}

/// A page of a list as the response: the rows as a JSON array and, when the page is full, a
/// `Link: <route?after=…&limit=…>; rel="next"` header (RFC 8288) to the next one.
fn paged<T: serde::Serialize>(
    route: &str,
    rows: Vec<T>,
    limit: usize,
    last: Option<String>,
) -> Response {
    let next = (rows.len() == limit)
        .then_some(last)
        .flatten()
        .and_then(|after| {
            axum::http::HeaderValue::from_str(&format!(
                "<{route}?after={after}&limit={limit}>; rel=\"next\""
            ))
            .ok()
        });
    let mut response = axum::Json(rows).into_response();
    if let Some(link) = next {
        response
            .headers_mut()
            .insert(axum::http::header::LINK, link);
    }
    response
}

/// A path parameter: one that does not parse (a customer id that is not a number, or too
/// big) is 400 with the API's error body, as every other error.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// Like [`JsonBody`], but an empty body (or JSON `null`) means the defaults.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state, BODY_LIMIT).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null" {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

/// Reads a body of at most `limit` bytes.
pub async fn read_body<S: Send + Sync>(
    req: Request,
    _state: &S,
    limit: usize,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    // Read through our own limit, not axum's `Bytes` extractor, whose default 2 MB limit would
    // refuse a 32 MiB import before this one applies.
    let body = http_body_util::Limited::new(req.into_body(), limit);
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge(limit)),
        Err(e) => Err(ApiError::BadRequest(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

/// Parses JSON, naming the problem (line, column, field) in the error.
///
/// A number with a zero fraction (`30.0`) is an integer in JSON Schema, as the OpenAPI document
/// promises, where serde takes it for a float: a body refused for that alone is read again
/// with such numbers as integers.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::BadRequest("a JSON body is required".into())),
        // Every body the API takes is an object; serde would also fill a struct from an
        // array, field by field in order, which no schema promises.
        Some(b'{') => {}
        Some(_) => {
            return Err(ApiError::BadRequest(
                "invalid JSON body: invalid type: expected a JSON object".into(),
            ))
        }
    }
    serde_json::from_slice(bytes).or_else(|first| {
        let integral = serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|mut value| integral_numbers(&mut value).then_some(value));
        match integral {
            Some(value) => serde_json::from_value(value),
            None => Err(first),
        }
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    })
}

/// Turns every float with a zero fraction that an integer type can hold into that integer;
/// whether any was turned.
fn integral_numbers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) else {
                return false;
            };
            // Exact: below 2^53 every integer is a float.
            *value = Value::from(f as i64);
            true
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |any, item| integral_numbers(item) | any),
        Value::Object(members) => members
            .values_mut()
            .fold(false, |any, member| integral_numbers(member) | any),
        _ => false,
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "zerotouch partner API",
        version = "1",
        description = "Register (claim) the MACs of the phones you sell to your customers' tenant instances, and manage those tenants.\n\nAuthenticate with `Authorization: Bearer <token>`. Errors are `{\"error\": {\"code\", \"message\"}}` with a stable code. A resource of another partner answers 404, exactly like one that does not exist.\n\nBulk import (`POST /api/v1/devices/import`) is **per-row**: every row gets its own result; the accepted rows are committed together in one transaction, refused rows change nothing. So is a bulk release or move (`POST /api/v1/devices/bulk`): every MAC gets its own result, the accepted ones are changed in one transaction."
    ),
    modifiers(&BearerAuth),
    components(schemas(
        wire::VendorName,
        wire::TransportName,
        wire::PhoneAuthName,
        wire::MacText,
        wire::TenantNameText
    )),
    tags(
        (name = "admin", description = "Partners and their API tokens (administrator token only)"),
        (name = "customers", description = "The businesses a partner sells to"),
        (name = "tenants", description = "Tenant instances (one hosted PBX each) and what their phones receive"),
        (name = "devices", description = "Claiming phones for tenants"),
        (name = "tokens", description = "The calling partner's own API tokens"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The API's routes and its OpenAPI document, built from the same handler annotations so
/// they cannot disagree.
pub fn routes() -> (axum::Router<ApiState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(partners::create_partner, partners::list_partners))
        .routes(routes!(partners::create_token, partners::list_tokens))
        .routes(routes!(partners::revoke_token))
        .routes(routes!(tokens::create_own_token, tokens::list_own_tokens))
        .routes(routes!(tokens::revoke_own_token))
        .routes(routes!(partners::audit_log))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::reset_user))
        .routes(routes!(users::disable_user))
        .routes(routes!(users::enable_user))
        .routes(routes!(
            customers::create_customer,
            customers::list_customers
        ))
        .routes(routes!(customers::get_customer, customers::update_customer))
        .routes(routes!(tenants::create_tenant, tenants::list_tenants))
        .routes(routes!(
            tenants::get_tenant,
            tenants::update_tenant,
            tenants::delete_tenant
        ))
        .routes(routes!(devices::claim_device, devices::list_devices))
        .routes(routes!(
            devices::get_device,
            devices::update_device,
            devices::release_device
        ))
        .routes(routes!(devices::import_devices))
        .routes(routes!(devices::bulk_devices))
        .routes(routes!(export::export_devices))
        .routes(routes!(check::check_mac))
        .routes(routes!(devices::open_enrolment))
        .routes(routes!(devices::rotate_credentials))
        .routes(routes!(devices::revoke_credentials))
        .routes(routes!(preview::preview_config))
        .split_for_parts()
}

/// The complete API service.
pub fn router(state: ApiState) -> axum::Router {
    let (routes, mut doc) = routes();
    openapi::complete(&mut doc);
    doc.paths.paths.insert(
        "/api/v1/openapi.json".into(),
        utoipa::openapi::path::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .summary(Some("This document"))
                .security(utoipa::openapi::security::SecurityRequirement::default())
                .response(
                    "200",
                    utoipa::openapi::ResponseBuilder::new().description("OpenAPI 3 document"),
                ),
        ),
    );
    let doc = Arc::new(doc);
    routes
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::MethodNotAllowed(method.as_str().chars().take(32).collect())
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The per-connection service the API listener runs: the router, with the connection's facts
/// (the client address, for the audit log and the throttle of bad tokens) reachable by
/// handlers as an extension.
pub fn service(
    router: axum::Router,
) -> impl Fn(
    crate::server::ConnInfo,
) -> hyper_util::service::TowerToHyperService<
    tower_http::add_extension::AddExtension<axum::Router, crate::server::ConnInfo>,
> + Send
       + Sync
       + 'static {
    move |conn| {
        hyper_util::service::TowerToHyperService::new(
            tower::ServiceBuilder::new()
                .layer(tower_http::add_extension::AddExtensionLayer::new(conn))
                .service(router.clone()),
        )
    }
}

/// The `method` label: the methods the API knows, everything else `other`. A client may send
/// any token as a method; as a label it would grow `/metrics` without bound.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 7] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PATCH, "PATCH"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, label)| label)
}

/// Counts and times every request by route template and status, and logs it (the route
/// template, never the path or query: a set-password link's token stays out of the log).
pub(crate) async fn observe(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    let elapsed = started.elapsed();
    state
        .metrics
        .api_requests
        .with_label_values(&[route.as_str(), method_label(&method), status.as_str()])
        .inc();
    state
        .metrics
        .api_duration
        .with_label_values(&[route.as_str()])
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "zerotouch::api",
        %method,
        route,
        status = status.as_u16(),
        duration_us = elapsed.as_micros() as u64,
        "api request"
    );
    response.into_response()
}
