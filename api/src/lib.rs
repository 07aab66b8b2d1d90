//! The HTTP layer of Spot Optimizer: poem + poem-openapi handlers, authentication, RBAC,
//! tenant scoping, automatic audit capture and the embedded web app.

pub mod auth;
pub mod body;
pub mod config;
pub mod console;
pub mod contract;
pub mod error;
pub mod gateway;
pub mod logs;
pub mod notify;
pub mod paging;
pub mod ratelimit;
pub mod report;
pub mod retention;
pub mod routes;
pub mod server;
pub mod state;
pub mod sweep;
pub mod web;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

pub use config::ServerConfig;
pub use state::AppState;

const API_DESCRIPTION: &str = "Spot Optimizer control plane API.\n\n\
Authenticate with `POST /api/auth/token` and send `Authorization: Bearer <access_token>`. \
Every tenant-scoped resource is filtered by the caller's organization: an id from another \
organization answers 404 exactly like one that does not exist. Viewers may read everything \
in their organization and receive 403 on every mutation. Every mutating request is recorded \
in the hash-chained audit log.\n\n\
Errors are JSON: `{\"error\": {\"code\": \"validation_failed\", \"message\": \"...\", \"field\": \"email\"}}` \
with 400 (unreadable body), 401, 403, 404, 409, 413, 415, 422 (a field is invalid or unknown) \
or 429 (with `Retry-After`).";

/// The OpenAPI service with every API group, mounted under `/api`.
pub fn openapi_service() -> OpenApiService<routes::Apis, ()> {
    OpenApiService::new(
        routes::apis(),
        "Spot Optimizer API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(API_DESCRIPTION)
    .url_prefix("/api")
}

/// The OpenAPI document as JSON (what `spot-optimizer openapi` prints and
/// `/api/openapi.json` serves): poem-openapi's document finished by [`contract::finish`]
/// (nullable `Option` fields, documented error responses).
pub fn openapi_json() -> String {
    contract::finish(&openapi_service().spec())
}

/// The whole HTTP application: API, docs, health probes and the web app.
pub fn app(state: AppState) -> impl Endpoint {
    let api = openapi_service();
    let raw = api.spec();
    let spec = contract::finish(&raw);
    // Swagger UI embeds the document verbatim: show the finished one.
    let docs_html = api.swagger_ui_html().replacen(&raw, &spec, 1);
    let docs = Route::new().at(
        "/",
        poem::endpoint::make_sync(move |_| poem::web::Html(docs_html.clone())),
    );
    let spec = poem::endpoint::make_sync(move |_| {
        poem::Response::builder()
            .content_type("application/json")
            .body(spec.clone())
    });
    Route::new()
        .nest("/api/openapi.json", spec)
        .nest("/api/docs", docs)
        .nest(
            spot_agent_protocol::API_PREFIX,
            routes::agent::agent_routes(),
        )
        .nest("/api", api)
        .at("/healthz", routes::health::healthz_plain)
        .at("/readyz", routes::health::readyz_plain)
        .at("/*path", web::spa)
        .at("/", web::spa)
        .around(gateway::gateway)
        .data(state)
}
