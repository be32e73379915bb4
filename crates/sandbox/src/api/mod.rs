//! The sandbox's API server: the subset of the Kubernetes API that baton,
//! kube-rs and kubectl (`get`, `describe`, `set image`, `rollout`, `scale`,
//! `delete`, `apply`, `diff`, `auth can-i`) use, over plain HTTP/1.1 on
//! loopback, in Kubernetes' JSON wire format.
//!
//! Part of a SIMULATOR: no TLS, no authentication (any bearer token is
//! accepted), no RBAC beyond [`AccessRule`] deny rules, no protobuf (but
//! for the SelfSubjectAccessReview body `kubectl auth can-i` sends), only a
//! skeleton OpenAPI v3 document (enough for kubectl to use server-side
//! field validation; `/openapi/v2` is 404), and no managedFields:
//! server-side apply merges the manifest into the live object without
//! field-ownership conflict tracking.
//!
//! See [`serve`] for the entry point; [`handlers`] has the verbs and
//! [`watch`] the list/watch semantics.

pub mod autoscaling;
pub mod eviction;
pub mod handlers;
pub mod openapi;
pub mod patch;
pub mod podio;
pub mod prepare;
pub mod protobuf;
pub mod resources;
pub mod selector;
pub mod status;
pub mod table;
pub mod watch;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clusterip::{SERVICE_IP_PREFIX, ServiceIpRange};
use crate::config::AccessRule;
use crate::store::Store;
use crate::truth::GroundTruth;
use resources::ResourceDef;
use status::ApiError;

/// The body type of every response: whole JSON documents or a watch stream.
pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted (Kubernetes' limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Everything a request handler needs; shared by all connections.
pub struct ApiState {
    pub store: Arc<Store>,
    /// Verbs on resources refused with 403 (tests of missing permissions).
    pub deny: Vec<AccessRule>,
    /// When set, only what these match is allowed (a Role's rules).
    pub allow: Option<Vec<AccessRule>>,
    /// The proxy's connection log, served at `/sandbox/v1/ground-truth`.
    pub ground_truth: Option<GroundTruth>,
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// Where NodePorts are allocated (the proxy binds them there).
    pub node_port_bind: IpAddr,
    /// Where ClusterIPs come from (the proxy listens on them).
    pub service_ips: ServiceIpRange,
    /// Where the next ClusterIP search starts ([`ServiceIpRange::next_free`]);
    /// the lock also keeps two concurrent creates from picking one address.
    pub(crate) service_ip_cursor: Mutex<u32>,
    /// Stops watches when the sandbox shuts down.
    pub shutdown: CancellationToken,
    /// Process containers' output and stdin, for `pods/log` and `pods/attach`.
    pub processes: crate::kubelet::process::ProcessTable,
}

impl ApiState {
    pub fn new(store: Arc<Store>, shutdown: CancellationToken) -> Self {
        ApiState {
            store,
            deny: Vec::new(),
            allow: None,
            ground_truth: None,
            bookmark_interval: Duration::from_secs(5),
            node_port_bind: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            service_ips: ServiceIpRange::new(
                crate::config::ClusterConfig::default().service_ip_base,
                SERVICE_IP_PREFIX,
            ),
            service_ip_cursor: Mutex::new(0),
            shutdown,
            processes: Default::default(),
        }
    }

    fn denied(&self, verb: &str, group: &str, resource: &str) -> bool {
        let self_review = verb == "create"
            && group == "authorization.k8s.io"
            && resource == "selfsubjectaccessreviews";
        self.deny.iter().any(|r| r.denies(verb, group, resource))
            || (!self_review
                && self
                    .allow
                    .as_ref()
                    .is_some_and(|allow| !allow.iter().any(|r| r.matches(verb, group, resource))))
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled.
pub fn serve(
    listener: TcpListener,
    state: Arc<ApiState>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "api server: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let state = state.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(&state, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades();
                tokio::select! {
                    r = conn => if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "api server: connection ended");
                    },
                    _ = shutdown.cancelled() => {}
                }
            });
        }
        tracing::debug!("api server stopped");
    })
}

/// A request for a resource, parsed from its path and method.
#[derive(Debug)]
pub struct Target {
    pub res: &'static ResourceDef,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    /// The legacy `/watch/` path prefix.
    pub watch_path: bool,
}

enum Route {
    Root,
    Health,
    Version,
    CoreVersions,
    Groups,
    Group(String),
    Resources(String, String),
    GroundTruth,
    PodTruth,
    EvictionTruth,
    OpenApiRoot,
    OpenApi(String),
    Resource(Target),
}

fn route(path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let nf = || ApiError::not_found_path(path);
    Ok(match segs.as_slice() {
        [] => Route::Root,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["version"] => Route::Version,
        ["api"] => Route::CoreVersions,
        ["api", "v1"] => Route::Resources(String::new(), "v1".into()),
        ["api", "v1", rest @ ..] => Route::Resource(target("", "v1", rest).ok_or_else(nf)?),
        ["apis"] => Route::Groups,
        ["apis", g] if resources::GROUPS.contains(g) => Route::Group(g.to_string()),
        ["apis", g, v] => Route::Resources(g.to_string(), v.to_string()),
        ["apis", g, v, rest @ ..] => Route::Resource(target(g, v, rest).ok_or_else(nf)?),
        ["sandbox", "v1", "ground-truth"] => Route::GroundTruth,
        ["sandbox", "v1", "pod-truth"] => Route::PodTruth,
        ["sandbox", "v1", "eviction-truth"] => Route::EvictionTruth,
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", rest @ ..] => Route::OpenApi(rest.join("/")),
        _ => return Err(nf()),
    })
}

fn target(group: &str, version: &str, mut rest: &[&str]) -> Option<Target> {
    let mut watch_path = false;
    if rest.first() == Some(&"watch") {
        watch_path = true;
        rest = &rest[1..];
    }
    let (namespace, rest) = match rest {
        ["namespaces", ns, r, tail @ ..]
            if resources::find(group, version, r).is_some_and(|d| d.namespaced) =>
        {
            (Some(ns.to_string()), {
                let mut v = vec![*r];
                v.extend_from_slice(tail);
                v
            })
        }
        _ => (None, rest.to_vec()),
    };
    let res = resources::find(group, version, rest.first()?)?;
    let name = rest.get(1).map(|s| s.to_string());
    let sub = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 || (res.namespaced && namespace.is_none() && name.is_some()) {
        return None;
    }
    if let Some(s) = &sub
        && res.sub(s).is_none()
    {
        return None;
    }
    Some(Target {
        res,
        namespace,
        name,
        sub,
        watch_path,
    })
}

/// Query parameters, percent-decoded.
pub type Query = HashMap<String, String>;

fn parse_query(q: Option<&str>) -> Query {
    let mut out = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON response.
pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

/// Answers one request; never fails (errors become `Status` responses).
pub async fn handle(state: &ApiState, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = match handle_inner(state, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "api request");
    resp
}

/// The parts of a request the verb handlers read.
pub struct Call {
    pub method: Method,
    pub query: Query,
    pub accept: String,
    pub content_type: String,
    pub body: Bytes,
}

async fn handle_inner(
    state: &ApiState,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    let header = |h: header::HeaderName| {
        req.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let accept = header(header::ACCEPT);
    let content_type = header(header::CONTENT_TYPE);
    let method = req.method().clone();
    let route = route(&path)?;
    if method != Method::GET && !matches!(route, Route::Resource(_)) {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not allowed on {path}"),
        ));
    }
    if let Route::Resource(t) = &route
        && t.sub.as_deref() == Some("attach")
    {
        // A WebSocket upgrade: the request itself is handed over.
        check_access(state, t, "create")?;
        return podio::attach(state, t, &query, req).await;
    }
    match route {
        Route::Root => Ok(json_response(
            200,
            &serde_json::json!({"paths": ["/api", "/api/v1", "/apis", "/version", "/sandbox/v1/ground-truth", "/sandbox/v1/pod-truth", "/sandbox/v1/eviction-truth"]}),
        )),
        Route::Health => Ok(Response::builder()
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Full::new(Bytes::from_static(b"ok")).boxed())
            .unwrap_or_default()),
        Route::Version => Ok(json_response(200, &resources::version())),
        Route::CoreVersions => Ok(json_response(200, &resources::core_versions("127.0.0.1"))),
        Route::Groups => Ok(json_response(200, &resources::group_list())),
        Route::Group(g) => Ok(json_response(200, &resources::group(&g))),
        Route::Resources(g, v) => resources::resource_list(&g, &v)
            .map(|l| json_response(200, &l))
            .ok_or_else(|| ApiError::not_found_path(&path)),
        Route::GroundTruth => Ok(json_response(200, &ground_truth_json(state))),
        Route::PodTruth => Ok(json_response(
            200,
            &serde_json::to_value(
                state
                    .ground_truth
                    .as_ref()
                    .map(|gt| gt.pod_moments())
                    .unwrap_or_default(),
            )
            .unwrap_or(Value::Array(Vec::new())),
        )),
        Route::EvictionTruth => Ok(json_response(
            200,
            &serde_json::to_value(
                state
                    .ground_truth
                    .as_ref()
                    .map(|gt| gt.evictions())
                    .unwrap_or_default(),
            )
            .unwrap_or(Value::Array(Vec::new())),
        )),
        Route::OpenApiRoot => Ok(json_response(200, &openapi::root())),
        Route::OpenApi(gv) => openapi::group_version(&gv)
            .map(|d| json_response(200, &d))
            .ok_or_else(|| ApiError::not_found_path(&path)),
        Route::Resource(t) => {
            let body = Limited::new(req.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    ApiError::new(
                        413,
                        "RequestEntityTooLarge",
                        format!("reading the body: {e}"),
                    )
                })?
                .to_bytes();
            let call = Call {
                method,
                query,
                accept,
                content_type,
                body,
            };
            dispatch(state, t, call).await
        }
    }
}

/// The proxy's ground-truth log as JSON (`[]` before the cluster runs).
fn ground_truth_json(state: &ApiState) -> Value {
    match &state.ground_truth {
        Some(gt) => serde_json::to_value(gt.snapshot()).unwrap_or(Value::Array(Vec::new())),
        None => Value::Array(Vec::new()),
    }
}

/// The Kubernetes verb of a request.
fn verb(t: &Target, call: &Call) -> &'static str {
    if t.sub.as_deref() == Some("attach") {
        return "create";
    }
    let watch_q = matches!(
        call.query.get("watch").map(String::as_str),
        Some("true" | "1")
    );
    match (&call.method, t.name.is_some()) {
        (&Method::GET, true) if !t.watch_path => "get",
        (&Method::GET, _) if t.watch_path || watch_q => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, false) => "create",
        (&Method::POST, true) if t.sub.is_some() => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unsupported",
    }
}

async fn dispatch(state: &ApiState, t: Target, call: Call) -> Result<Response<Body>, ApiError> {
    let verb = verb(&t, &call);
    check_access(state, &t, verb)?;
    let allowed = match &t.sub {
        Some(s) => t.res.sub(s).is_some_and(|s| s.verbs.contains(&verb)),
        None => t.res.allows(verb) || (verb == "watch" && t.res.allows("list")),
    };
    if !allowed {
        return Err(ApiError::method_not_allowed(verb, t.res));
    }
    match verb {
        "get" => handlers::get(state, &t, &call),
        "list" => watch::list(state, &t, &call),
        "watch" => watch::watch(state, &t, &call),
        "create" => handlers::create(state, &t, &call),
        "update" => handlers::update(state, &t, &call),
        "patch" => handlers::patch(state, &t, &call),
        "delete" => handlers::delete(state, &t, &call),
        _ => Err(ApiError::method_not_allowed(verb, t.res)),
    }
}

/// 403 when a deny rule (or the allow list) refuses `verb` on the
/// resource or subresource (`pods/attach`, `pods/log`).
fn check_access(state: &ApiState, t: &Target, verb: &str) -> Result<(), ApiError> {
    let resource = match &t.sub {
        Some(s) => format!("{}/{}", t.res.plural, s),
        None => t.res.plural.to_string(),
    };
    if state.denied(verb, t.res.group, &resource) {
        let ns = t
            .namespace
            .as_deref()
            .map(|n| format!(" in the namespace \"{n}\""))
            .unwrap_or_default();
        let grp = if t.res.group.is_empty() {
            "\"\"".to_string()
        } else {
            format!("\"{}\"", t.res.group)
        };
        let what = match &t.name {
            Some(n) => format!("{} \"{n}\"", t.res.qualified()),
            None => t.res.qualified(),
        };
        return Err(ApiError::forbidden(format!(
            "{what} is forbidden: User \"baton-sandbox\" cannot {verb} resource \"{resource}\" in API group {grp}{ns} (denied by a sandbox access rule)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_resources_namespaces_and_subresources() {
        let Ok(Route::Resource(t)) =
            route("/apis/apps/v1/namespaces/default/deployments/web/scale")
        else {
            panic!("no route")
        };
        assert_eq!(t.res.plural, "deployments");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.sub.as_deref(), Some("scale"));
        let Ok(Route::Resource(t)) = route("/api/v1/namespaces/kube-system") else {
            panic!("no route")
        };
        assert_eq!(
            (t.res.plural, t.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        let Ok(Route::Resource(t)) = route("/api/v1/watch/namespaces/default/pods") else {
            panic!("no route")
        };
        assert!(t.watch_path && t.name.is_none());
        assert!(route("/api/v1/pods/x").is_err());
        assert!(route("/apis/apps/v1/namespaces/default/deployments/web/nope").is_err());
        assert!(route("/openapi/v2").is_err());
        assert!(matches!(route("/apis/batch/v1"), Ok(Route::Resources(..))));
    }

    #[test]
    fn query_strings_are_percent_decoded() {
        let q = parse_query(Some(
            "labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x=%zz&y=%4",
        ));
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "%zz");
        assert_eq!(q["y"], "%4");
    }
}
