//! The sandbox SIMULATOR's ingress controller: a small stand-in for
//! ingress-nginx, so that a profile can shift traffic between two Services
//! with canary weights, and so that endpoint lag behind an Ingress is the
//! lag behind a NodePort.
//!
//! It runs only when [`ClusterConfig::ingress_port`](crate::config::ClusterConfig)
//! is set: one TCP listener on `node_port_bind`. Per accepted connection it
//! reads the HTTP/1.1 request head (httparse; at most [`MAX_HEAD`] bytes,
//! within [`HEAD_TIMEOUT`]), chooses a Service by the rules of every
//! Ingress in the cluster ([`Routes`], pure), takes an endpoint of that
//! Service from the Service proxy's own lagging copy
//! ([`crate::proxy`]: the same round robin, propagation delay and jitter,
//! terminating fallback and `sessionAffinity`), and relays the connection
//! there: the head already read first, then bytes both ways
//! ([`crate::proxy::relay`], the NodePorts' relay). Every connection is in
//! the [`GroundTruth`], with the Ingress and Service chosen.
//!
//! Routing, as ingress-nginx does it:
//! - **Hosts**: the `Host` header without its port, matched exactly, then
//!   as a wildcard rule's host (`*.example.com` matches one label, as the
//!   Ingress API defines); a host no rule names goes to the rules with no
//!   host. Like nginx's server blocks, a named host never falls back to
//!   the rules with no host.
//! - **Paths**: `Exact` (the whole path, case-sensitive), `Prefix` (element
//!   by element: `/foo` matches `/foo`, `/foo/` and `/foo/bar`, not
//!   `/foobar`; a trailing slash in the rule is ignored) and
//!   `ImplementationSpecific` (nginx's plain string prefix); the longest
//!   matching path wins, `Exact` before `Prefix` at equal length. The query
//!   string is ignored; the path is not normalised.
//! - **Several Ingresses**: the oldest (creation time, then namespace and
//!   name) that defines a host and path wins it. An Ingress's
//!   `defaultBackend` serves the paths no rule matches on the hosts it
//!   defines first; an Ingress with a `defaultBackend` and no rules catches
//!   every host that matches nothing else. No match: `404` with nginx's
//!   page, as ingress-nginx's default backend answers.
//! - **Canary**: an Ingress annotated `nginx.ingress.kubernetes.io/canary:
//!   "true"` adds no routes of its own; for each of its host and path that a
//!   non-canary Ingress defines (same host, path and pathType), a request
//!   goes to the canary's Service with probability `canary-weight` /
//!   `canary-weight-total` (total default 100; a weight at or over the
//!   total sends everything), drawn per connection, else to the main one.
//!   A canary path with no main counterpart is ignored, as ingress-nginx
//!   ignores it.
//! - **Changes apply at once**: the rules are read from the store for each
//!   connection (rebuilt when the store changed), so an annotation patched
//!   now steers the next connection. ingress-nginx also applies canary
//!   weights without an nginx reload (its Lua balancer gets the new
//!   configuration), but only after its sync, usually within a second.
//! - **Failures** are answered as ingress-nginx answers them, with nginx's
//!   error pages: no endpoint `503` (also for a Service or port that does
//!   not exist), the Pod refuses the connection or resets it before
//!   answering `502`, no accept within the proxy's connect timeout (2 s;
//!   ingress-nginx's `proxy-connect-timeout` is 5 s) `504`; a malformed or
//!   oversized head `400`. A NodePort resets the client instead: clients
//!   of a real ingress see statuses, not resets.
//!
//! Deliberately not simulated, and what differs from ingress-nginx:
//! - every Ingress is served, whatever its `ingressClassName` (one
//!   controller that claims every class); no IngressClass resource;
//! - ingress-nginx retries a refused or timed-out connection on the next
//!   endpoint (`proxy-next-upstream: error timeout`, 3 tries) before
//!   answering 502/504; this proxy does not retry, so a request that
//!   reaches a Pod that stopped listening fails here where ingress-nginx
//!   might hide it;
//! - ingress-nginx ignores a Service's `sessionAffinity` (its affinity is a
//!   cookie annotation); here the shared endpoint choice honours
//!   `ClientIP` affinity by the client's address, as the NodePort does;
//! - ingress-nginx routes each request of a kept-alive connection on its
//!   own; here a connection goes where its first request went, and later
//!   requests on it follow (baton sends one request per connection);
//! - an upstream that closes without answering passes the close on
//!   (ingress-nginx: 502); no `X-Forwarded-*` headers, no rewrites, the
//!   bytes go through as sent;
//! - canary by header or cookie, `canary-by-*`, a canary's
//!   `defaultBackend`, regex paths, TLS, other annotations: none;
//! - `status.loadBalancer` gets the listener's IP (as ingress-nginx
//!   publishes its Service's), not its port, which is not 80.
//!
//! Not for: Service endpoint tables and the byte relay (those are
//! [`crate::proxy`]'s, shared).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::proxy::{self, Failures, PortRef, Tables};
use crate::store::Store;
use crate::truth::{ConnRecord, GroundTruth, Outcome, unix_ns};

/// The most a request head may take (nginx: `large_client_header_buffers`
/// 4 × 8k; ingress-nginx raises the buffers further).
pub const MAX_HEAD: usize = 32 * 1024;

/// How long a client may take to send its request head (nginx's
/// `client_header_timeout` is 60 s; a load generator sends it at once).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The annotation that makes an Ingress a canary.
pub const CANARY: &str = "nginx.ingress.kubernetes.io/canary";
/// The canary's share, out of [`CANARY_WEIGHT_TOTAL`].
pub const CANARY_WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";
/// What the weight is out of (default 100).
pub const CANARY_WEIGHT_TOTAL: &str = "nginx.ingress.kubernetes.io/canary-weight-total";

// ---- Validation (the API server's, for `kubectl apply`) -------------------

/// The checks the API server makes on an Ingress (a 422 message), those a
/// hand-written manifest gets wrong: rules or a default backend, hosts,
/// path types, absolute paths, one backend kind, one way to name a port.
pub fn validate(obj: &Value) -> Result<(), String> {
    let ing: Ingress = serde_json::from_value(obj.clone()).map_err(|e| format!("spec: {e}"))?;
    let spec = ing.spec.unwrap_or_default();
    let rules = spec.rules.unwrap_or_default();
    if spec.default_backend.is_none() && rules.is_empty() {
        return Err(
            "spec: Invalid value: \"\": either `defaultBackend` or `rules` must be specified"
                .into(),
        );
    }
    if let Some(b) = &spec.default_backend {
        validate_backend(b, "spec.defaultBackend")?;
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        if let Some(host) = rule.host.as_deref().filter(|h| !h.is_empty()) {
            let name = host.strip_prefix("*.").unwrap_or(host);
            if !is_dns_subdomain(name) || host.parse::<IpAddr>().is_ok() {
                return Err(format!(
                    "{at}.host: Invalid value: \"{host}\": a lowercase RFC 1123 subdomain (or `*.` and one) that is not an IP address"
                ));
            }
        }
        let Some(http) = &rule.http else { continue };
        if http.paths.is_empty() {
            return Err(format!("{at}.http.paths: Required value"));
        }
        for (j, p) in http.paths.iter().enumerate() {
            let at = format!("{at}.http.paths[{j}]");
            let ty = PathType::parse(&p.path_type).ok_or_else(|| {
                format!(
                    "{at}.pathType: Unsupported value: \"{}\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
                    p.path_type
                )
            })?;
            let path = p.path.as_deref().unwrap_or("");
            // An ImplementationSpecific path may be left out (nginx: `/`).
            let optional = ty == PathType::ImplementationSpecific && path.is_empty();
            if !optional && !path.starts_with('/') {
                return Err(format!(
                    "{at}.path: Invalid value: \"{path}\": must be an absolute path"
                ));
            }
            validate_backend(&p.backend, &format!("{at}.backend"))?;
        }
    }
    Ok(())
}

fn validate_backend(b: &IngressBackend, at: &str) -> Result<(), String> {
    match (&b.service, &b.resource) {
        (Some(_), Some(_)) => Err(format!(
            "{at}: Invalid value: \"\": cannot set both resource and service backends"
        )),
        (None, None) => Err(format!(
            "{at}: Invalid value: \"\": resource or service backend is required"
        )),
        (None, Some(_)) => Ok(()),
        (Some(s), None) => {
            if s.name.is_empty() {
                return Err(format!("{at}.service.name: Required value"));
            }
            let port = s.port.clone().unwrap_or_default();
            match (port.name.as_deref().filter(|n| !n.is_empty()), port.number) {
                (Some(_), Some(_)) => Err(format!(
                    "{at}.service.port: Invalid value: \"\": cannot set both port name & port number"
                )),
                (None, None) => Err(format!(
                    "{at}.service.port: Invalid value: \"\": port name or number is required"
                )),
                (None, Some(n)) if !(1..=65535).contains(&n) => Err(format!(
                    "{at}.service.port.number: Invalid value: {n}: must be between 1 and 65535, inclusive"
                )),
                _ => Ok(()),
            }
        }
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

// ---- Routing (pure) --------------------------------------------------------

/// An Ingress path's `pathType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathType {
    Exact,
    Prefix,
    ImplementationSpecific,
}

impl PathType {
    fn parse(s: &str) -> Option<PathType> {
        match s {
            "Exact" => Some(PathType::Exact),
            "Prefix" => Some(PathType::Prefix),
            "ImplementationSpecific" => Some(PathType::ImplementationSpecific),
            _ => None,
        }
    }

    /// Whether a rule path `rule` of this type matches the request path `path`.
    pub fn matches(self, rule: &str, path: &str) -> bool {
        match self {
            PathType::Exact => path == rule,
            PathType::Prefix => {
                let rule = rule.trim_end_matches('/');
                rule.is_empty()
                    || path
                        .strip_prefix(rule)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            PathType::ImplementationSpecific => path.starts_with(rule),
        }
    }

    /// At equal length, `Exact` wins over `Prefix` (the Ingress API), which
    /// wins over nginx's string prefix.
    fn rank(self) -> u8 {
        match self {
            PathType::Exact => 2,
            PathType::Prefix => 1,
            PathType::ImplementationSpecific => 0,
        }
    }
}

/// A Service port an Ingress sends to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    pub port: PortRef,
    /// The Ingress that named it, `namespace/name` (for the ground truth).
    pub ingress: String,
}

/// A canary Ingress's share of one host and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canary {
    pub backend: Backend,
    /// `canary-weight`, clamped to `0..=total`.
    pub weight: u32,
    /// `canary-weight-total` (default 100).
    pub total: u32,
}

/// Where one host and path goes: the main Ingress's backend, and maybe a
/// canary's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub main: Backend,
    pub canary: Option<Canary>,
}

impl Choice {
    fn new(main: Backend) -> Choice {
        Choice { main, canary: None }
    }

    /// The backend of one connection. `roll(total)` must return a number
    /// drawn uniformly from `0..total`: the canary is chosen when it is
    /// under the weight, as ingress-nginx's balancer does with
    /// `math.random(total) <= weight`. With no canary, or weight 0, there
    /// is no roll.
    pub fn pick(&self, roll: impl FnOnce(u32) -> u32) -> &Backend {
        match &self.canary {
            Some(c) if c.weight > 0 && roll(c.total) < c.weight => &c.backend,
            _ => &self.main,
        }
    }
}

#[derive(Clone, Debug)]
struct Location {
    path: String,
    ty: PathType,
    choice: Choice,
}

/// nginx's server block: the locations of one host, and where the rest of
/// its paths go (`None`: 404).
#[derive(Clone, Debug, Default)]
struct Server {
    locations: Vec<Location>,
    default: Option<Choice>,
}

impl Server {
    fn route(&self, path: &str) -> Option<&Choice> {
        self.locations
            .iter()
            .filter(|l| l.ty.matches(&l.path, path))
            .max_by_key(|l| (l.path.len(), l.ty.rank()))
            .map(|l| &l.choice)
            .or(self.default.as_ref())
    }
}

/// Every Ingress's rules, merged as ingress-nginx merges them.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    /// By host (lowercase; wildcards as written, `*.example.com`).
    servers: BTreeMap<String, Server>,
    /// Rules with no host, and hosts no rule names.
    catch_all: Server,
}

/// Whether an Ingress is a canary (`canary: "true"`, or any of Go's
/// `strconv.ParseBool` spellings of true, as ingress-nginx parses it).
pub fn is_canary(ing: &Ingress) -> bool {
    annotation(ing, CANARY).is_some_and(|v| matches!(v, "true" | "True" | "TRUE" | "t" | "T" | "1"))
}

fn annotation<'a>(ing: &'a Ingress, key: &str) -> Option<&'a str> {
    ing.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(|v| v.trim())
}

/// A canary's weight and total: an unreadable weight counts as 0, an
/// unreadable or non-positive total as 100 (ingress-nginx's defaults).
pub fn canary_weight(ing: &Ingress) -> (u32, u32) {
    let total = annotation(ing, CANARY_WEIGHT_TOTAL)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|t| *t > 0)
        .map_or(100, |t| t.min(i64::from(u32::MAX)) as u32);
    let weight = annotation(ing, CANARY_WEIGHT)
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(0, |w| w.clamp(0, i64::from(total)) as u32);
    (weight, total)
}

fn key(ing: &Ingress) -> String {
    format!(
        "{}/{}",
        ing.metadata.namespace.as_deref().unwrap_or("default"),
        ing.metadata.name.as_deref().unwrap_or("")
    )
}

/// A Service backend (`None` for a resource backend, which nginx ignores).
fn backend(b: &IngressBackend, ing: &Ingress) -> Option<Backend> {
    let s = b.service.as_ref()?;
    let port = s.port.as_ref()?;
    let port = match (port.number, port.name.as_deref()) {
        (Some(n), _) => PortRef::Number(n),
        (None, Some(n)) if !n.is_empty() => PortRef::Name(n.to_string()),
        _ => return None,
    };
    Some(Backend {
        namespace: ing
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        service: s.name.clone(),
        port,
        ingress: key(ing),
    })
}

/// Each Service path of an Ingress: (host, path, type, backend).
fn paths(ing: &Ingress) -> Vec<(String, String, PathType, Backend)> {
    let mut out = Vec::new();
    for rule in ing.spec.iter().flat_map(|s| s.rules.iter().flatten()) {
        let host = rule.host.as_deref().unwrap_or("").to_ascii_lowercase();
        for p in rule.http.iter().flat_map(|h| h.paths.iter()) {
            let (Some(ty), Some(b)) = (PathType::parse(&p.path_type), backend(&p.backend, ing))
            else {
                continue;
            };
            let path = p
                .path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or("/".into());
            out.push((host.clone(), path, ty, b));
        }
    }
    out
}

impl Routes {
    /// Merges `ingresses` (any order; those being deleted are left out).
    pub fn build(ingresses: &[Ingress]) -> Routes {
        let mut ings: Vec<&Ingress> = ingresses
            .iter()
            .filter(|i| i.metadata.deletion_timestamp.is_none())
            .collect();
        ings.sort_by_key(|i| (i.metadata.creation_timestamp.as_ref().map(|t| t.0), key(i)));
        let mut routes = Routes::default();
        for ing in ings.iter().filter(|i| !is_canary(i)) {
            let default = ing
                .spec
                .as_ref()
                .and_then(|s| s.default_backend.as_ref())
                .and_then(|b| backend(b, ing))
                .map(Choice::new);
            let has_rules = ing
                .spec
                .as_ref()
                .is_some_and(|s| s.rules.as_ref().is_some_and(|r| !r.is_empty()));
            if !has_rules && routes.catch_all.default.is_none() {
                routes.catch_all.default = default.clone();
            }
            for (host, path, ty, b) in paths(ing) {
                let server = if host.is_empty() {
                    &mut routes.catch_all
                } else {
                    routes.servers.entry(host).or_insert_with(|| Server {
                        locations: Vec::new(),
                        default: default.clone(),
                    })
                };
                if !server
                    .locations
                    .iter()
                    .any(|l| l.path == path && l.ty == ty)
                {
                    server.locations.push(Location {
                        path,
                        ty,
                        choice: Choice::new(b),
                    });
                }
            }
        }
        for ing in ings.iter().filter(|i| is_canary(i)) {
            let (weight, total) = canary_weight(ing);
            for (host, path, ty, b) in paths(ing) {
                let server = if host.is_empty() {
                    Some(&mut routes.catch_all)
                } else {
                    routes.servers.get_mut(&host)
                };
                let Some(loc) = server.and_then(|s| {
                    s.locations
                        .iter_mut()
                        .find(|l| l.path == path && l.ty == ty)
                }) else {
                    tracing::debug!(ingress = %key(ing), %host, %path, "canary path has no main Ingress; ignored");
                    continue;
                };
                if loc.choice.canary.is_none() {
                    loc.choice.canary = Some(Canary {
                        backend: b,
                        weight,
                        total,
                    });
                }
            }
        }
        routes
    }

    /// Where a request for `host` (no port, any case) and `path` (no query)
    /// goes; `None`: 404.
    pub fn route(&self, host: &str, path: &str) -> Option<&Choice> {
        let host = host.to_ascii_lowercase();
        let wildcard = || {
            let (_, parent) = host.split_once('.')?;
            self.servers.get(&format!("*.{parent}"))
        };
        self.servers
            .get(&host)
            .or_else(wildcard)
            .unwrap_or(&self.catch_all)
            .route(path)
    }
}

// ---- The request head (pure) ----------------------------------------------

/// What routing needs from a request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The `Host` header (or the absolute-form target's host) without its
    /// port, lowercase; empty when there is none.
    pub host: String,
    /// The target's path, without the query string.
    pub path: String,
}

/// Parses the start of a request: `Ok(None)` while the head is
/// incomplete, `Err` when it is not HTTP/1.x.
pub fn parse_head(buf: &[u8]) -> Result<Option<RequestHead>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(buf)?.is_partial() {
        return Ok(None);
    }
    let target = req.path.unwrap_or("/");
    let header_host = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .unwrap_or("");
    // Absolute form (`GET http://host/path`): its host wins (RFC 9112 §3.2.2).
    let (host, path) = match target.split_once("://") {
        Some((_, rest)) if !target.starts_with('/') => {
            let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
            (authority, path)
        }
        _ => (header_host, target),
    };
    let path = path.split(['?', '#']).next().unwrap_or("/");
    Ok(Some(RequestHead {
        host: strip_port(host.trim()).to_ascii_lowercase(),
        path: path.to_string(),
    }))
}

/// `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

// ---- The listener ----------------------------------------------------------

/// Binds the ingress controller's listener (synchronously, so the sandbox
/// knows its address before it returns).
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    TcpListener::from_std(l)
}

/// The routes as of the store's latest write, rebuilt only when it changed.
struct RouteCache {
    store: Arc<Store>,
    /// (resourceVersion of the list they were built from, routes).
    cached: Mutex<(u64, Arc<Routes>)>,
}

impl RouteCache {
    fn current(&self) -> Arc<Routes> {
        let rv = self.store.current_rv();
        {
            let c = self.cached.lock().expect("route cache");
            if c.0 == rv {
                return c.1.clone();
            }
        }
        let (ings, rv) = self.store.list::<Ingress>(None);
        let routes = Arc::new(Routes::build(&ings));
        *self.cached.lock().expect("route cache") = (rv, routes.clone());
        routes
    }
}

struct Ctx {
    routes: RouteCache,
    tables: Tables,
    gt: GroundTruth,
    port: u16,
    stop: CancellationToken,
}

/// Serves `listener` until `shutdown`, and keeps every Ingress's
/// `status.loadBalancer` pointing at it.
pub(crate) async fn run(
    listener: TcpListener,
    store: Arc<Store>,
    tables: Tables,
    gt: GroundTruth,
    shutdown: CancellationToken,
) {
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "ingress listener has no address");
            return;
        }
    };
    tracing::info!(%addr, "ingress controller listening");
    let status = tokio::spawn(publish_status(store.clone(), addr.ip(), shutdown.clone()));
    let ctx = Arc::new(Ctx {
        routes: RouteCache {
            store,
            cached: Mutex::new((u64::MAX, Arc::default())),
        },
        tables,
        gt,
        port: addr.port(),
        stop: shutdown.clone(),
    });
    loop {
        let (sock, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "ingress accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let ctx = ctx.clone();
        tokio::spawn(async move { handle(sock, peer, &ctx).await });
    }
    let _ = status.await;
}

/// Sets `status.loadBalancer.ingress` of every Ingress to the listener's
/// IP, as ingress-nginx publishes its address (what `kubectl get ingress`
/// shows as ADDRESS).
async fn publish_status(store: Arc<Store>, ip: IpAddr, shutdown: CancellationToken) {
    let want = json!({"loadBalancer": {"ingress": [{"ip": ip.to_string()}]}});
    let mut wakeups = store.wakeups(Duration::from_secs(1));
    loop {
        let (ings, _) = store.list_raw("Ingress", None);
        for i in ings.iter().filter(|i| i["status"] != want) {
            let ns = i["metadata"]["namespace"].as_str();
            let name = i["metadata"]["name"].as_str().unwrap_or("");
            // A concurrent delete is fine: the next pass sees it gone.
            let _ = store.modify_raw("Ingress", ns, name, |v| {
                v["status"] = want.clone();
                Ok(())
            });
        }
        if !wakeups.next(&shutdown).await {
            break;
        }
    }
}

/// Why no request head came.
enum NoHead {
    /// Malformed, or over [`MAX_HEAD`]: answered 400.
    Bad,
    /// Closed (or silent for [`HEAD_TIMEOUT`]) before a whole head.
    Closed,
    Reset,
    Shutdown,
}

/// Reads until the request head is complete; returns every byte read (the
/// head, and any body that came with it) and the parsed head.
async fn read_head(
    sock: &mut TcpStream,
    stop: &CancellationToken,
) -> Result<(Vec<u8>, RequestHead), NoHead> {
    let mut buf = Vec::with_capacity(4096);
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            let k = match sock.read(&mut chunk).await {
                Ok(0) => return Err(NoHead::Closed),
                Ok(k) => k,
                Err(_) => return Err(NoHead::Reset),
            };
            buf.extend_from_slice(&chunk[..k]);
            match parse_head(&buf) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) if buf.len() < MAX_HEAD => {}
                _ => return Err(NoHead::Bad),
            }
        }
    };
    let head = tokio::select! {
        _ = stop.cancelled() => Err(NoHead::Shutdown),
        r = tokio::time::timeout(HEAD_TIMEOUT, read) => r.unwrap_or(Err(NoHead::Closed)),
    }?;
    Ok((buf, head))
}

async fn handle(mut client: TcpStream, peer: SocketAddr, ctx: &Ctx) {
    let _ = client.set_nodelay(true);
    let id = ctx.gt.open(ConnRecord {
        id: 0,
        accepted_unix_ns: unix_ns(),
        client_addr: peer,
        namespace: String::new(),
        service: String::new(),
        node_port: ctx.port,
        pod: None,
        pod_addr: None,
        outcome: Outcome::Open,
        bytes_up: 0,
        bytes_down: 0,
        closed_unix_ns: None,
        ingress: Some(String::new()),
        entry: crate::truth::Entry::Ingress,
    });
    let finish = |outcome: Outcome| {
        ctx.gt.update(id, |r| {
            r.outcome = outcome;
            r.closed_unix_ns = Some(unix_ns());
        })
    };
    let (early, head) = match read_head(&mut client, &ctx.stop).await {
        Ok(x) => x,
        Err(NoHead::Bad) => {
            let (mut r, mut w) = client.split();
            proxy::answer(&mut r, &mut w, 400, &ctx.stop).await;
            return finish(Outcome::BadRequest);
        }
        Err(NoHead::Closed) => return finish(Outcome::BadRequest),
        Err(NoHead::Reset) => return finish(Outcome::ClientReset),
        Err(NoHead::Shutdown) => return finish(Outcome::Shutdown),
    };
    let routes = ctx.routes.current();
    let Some(choice) = routes.route(&head.host, &head.path) else {
        let (mut r, mut w) = client.split();
        proxy::answer(&mut r, &mut w, 404, &ctx.stop).await;
        return finish(Outcome::NoRoute);
    };
    let b = choice.pick(|total| rand::random_range(0..total));
    let pick = ctx.tables.get(&b.namespace, &b.service).and_then(|eps| {
        let port = eps.port_name(&b.port)?;
        eps.pick(&port, peer.ip())
    });
    ctx.gt.update(id, |r| {
        r.namespace = b.namespace.clone();
        r.service = b.service.clone();
        r.ingress = Some(b.ingress.clone());
        r.pod = pick.as_ref().map(|p| p.0.clone());
        r.pod_addr = pick.as_ref().map(|p| p.1);
    });
    proxy::relay(
        client,
        &early,
        pick.map(|p| p.1),
        Failures::HttpAnswer,
        id,
        &ctx.gt,
        &ctx.stop,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ing(v: Value) -> Ingress {
        serde_json::from_value(v).unwrap()
    }

    /// An Ingress `name` with `paths` as (host, path, pathType, service);
    /// created `age` seconds after the epoch (older first).
    fn ingress(
        name: &str,
        age: i64,
        annotations: Value,
        rules: &[(&str, &str, &str, &str)],
    ) -> Ingress {
        let mut by_host: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (host, path, ty, svc) in rules {
            by_host.entry(host).or_default().push(json!({
                "path": path, "pathType": ty,
                "backend": {"service": {"name": svc, "port": {"number": 80}}}}));
        }
        let rules: Vec<Value> = by_host
            .into_iter()
            .map(|(h, paths)| {
                let mut r = json!({"http": {"paths": paths}});
                if !h.is_empty() {
                    r["host"] = json!(h);
                }
                r
            })
            .collect();
        ing(json!({
            "metadata": {"name": name, "namespace": "default", "annotations": annotations,
                         "creationTimestamp": format!("2026-01-01T00:00:{age:02}Z")},
            "spec": {"ingressClassName": "nginx", "rules": rules},
        }))
    }

    fn svc(routes: &Routes, host: &str, path: &str) -> Option<String> {
        routes.route(host, path).map(|c| c.main.service.clone())
    }

    #[test]
    fn prefix_matches_element_by_element_and_exact_matches_the_whole_path() {
        use PathType::*;
        for (rule, path, want) in [
            ("/", "/anything/at/all", true),
            ("/foo", "/foo", true),
            ("/foo", "/foo/", true),
            ("/foo/", "/foo", true),
            ("/aaa/bbb", "/aaa/bbb/ccc", true),
            ("/aaa/bb", "/aaa/bbb", false),
            ("/aaa/bbb", "/aaa/bbbxyz", false),
            ("/aaa/bbb/", "/aaa/bbb", true),
        ] {
            assert_eq!(Prefix.matches(rule, path), want, "Prefix {rule} vs {path}");
        }
        assert!(Exact.matches("/foo", "/foo"));
        assert!(!Exact.matches("/foo", "/foo/"));
        assert!(!Exact.matches("/foo", "/FOO"));
        assert!(
            ImplementationSpecific.matches("/foo", "/foobar"),
            "nginx's string prefix"
        );
    }

    #[test]
    fn the_longest_path_wins_and_exact_beats_prefix_at_equal_length() {
        let r = Routes::build(&[ingress(
            "web",
            0,
            json!({}),
            &[
                ("", "/", "Prefix", "root"),
                ("", "/api", "Prefix", "api"),
                ("", "/api/v2", "Prefix", "v2"),
                ("", "/api", "Exact", "api-exact"),
            ],
        )]);
        assert_eq!(svc(&r, "", "/").as_deref(), Some("root"));
        assert_eq!(svc(&r, "", "/apix").as_deref(), Some("root"));
        assert_eq!(svc(&r, "", "/api").as_deref(), Some("api-exact"));
        assert_eq!(svc(&r, "", "/api/").as_deref(), Some("api"));
        assert_eq!(svc(&r, "", "/api/v2/x").as_deref(), Some("v2"));
    }

    #[test]
    fn hosts_match_exactly_then_by_wildcard_and_a_named_host_never_falls_back() {
        let r = Routes::build(&[ingress(
            "web",
            0,
            json!({}),
            &[
                ("shop.example.com", "/", "Prefix", "shop"),
                ("*.example.com", "/", "Prefix", "wild"),
                ("only.example.com", "/api", "Prefix", "only-api"),
                ("", "/", "Prefix", "any"),
            ],
        )]);
        assert_eq!(svc(&r, "shop.example.com", "/").as_deref(), Some("shop"));
        assert_eq!(svc(&r, "SHOP.example.com", "/").as_deref(), Some("shop"));
        assert_eq!(svc(&r, "blog.example.com", "/").as_deref(), Some("wild"));
        assert_eq!(
            svc(&r, "a.blog.example.com", "/").as_deref(),
            Some("any"),
            "a wildcard covers one label"
        );
        assert_eq!(svc(&r, "example.com", "/").as_deref(), Some("any"));
        assert_eq!(svc(&r, "", "/").as_deref(), Some("any"));
        assert_eq!(svc(&r, "other.org", "/x").as_deref(), Some("any"));
        assert_eq!(
            svc(&r, "only.example.com", "/api").as_deref(),
            Some("only-api")
        );
        assert_eq!(
            svc(&r, "only.example.com", "/"),
            None,
            "a named host's unmatched path is a 404, not the host-less rules'"
        );
    }

    #[test]
    fn no_rule_is_a_404_unless_a_default_backend_catches_it() {
        let only_host = ingress("web", 0, json!({}), &[("a.example", "/x", "Exact", "x")]);
        let r = Routes::build(std::slice::from_ref(&only_host));
        assert_eq!(svc(&r, "b.example", "/x"), None);
        assert_eq!(svc(&r, "a.example", "/y"), None);
        let mut with_default = only_host.clone();
        with_default.spec.as_mut().unwrap().default_backend = Some(
            serde_json::from_value(
                json!({"service": {"name": "fallback", "port": {"number": 80}}}),
            )
            .unwrap(),
        );
        let r = Routes::build(&[with_default]);
        assert_eq!(
            svc(&r, "a.example", "/y").as_deref(),
            Some("fallback"),
            "its defaultBackend serves the hosts it defines"
        );
        assert_eq!(svc(&r, "b.example", "/y"), None);
        let catch_all = ing(json!({"metadata": {"name": "all", "namespace": "default"},
            "spec": {"defaultBackend": {"service": {"name": "everything", "port": {"name": "http"}}}}}));
        let r = Routes::build(&[only_host, catch_all]);
        let c = r.route("b.example", "/y").unwrap();
        assert_eq!(c.main.service, "everything");
        assert_eq!(c.main.port, PortRef::Name("http".into()));
        assert_eq!(svc(&r, "a.example", "/x").as_deref(), Some("x"));
    }

    #[test]
    fn the_oldest_ingress_wins_a_host_and_path_that_several_define() {
        let old = ingress("b-old", 1, json!({}), &[("", "/", "Prefix", "old")]);
        let new = ingress(
            "a-new",
            2,
            json!({}),
            &[("", "/", "Prefix", "new"), ("", "/new", "Prefix", "new")],
        );
        let r = Routes::build(&[new, old]);
        assert_eq!(svc(&r, "", "/").as_deref(), Some("old"));
        assert_eq!(svc(&r, "", "/new").as_deref(), Some("new"));
        assert_eq!(r.route("", "/").unwrap().main.ingress, "default/b-old");
    }

    fn canary(weight: &str) -> Value {
        json!({CANARY: "true", CANARY_WEIGHT: weight})
    }

    #[test]
    fn a_canary_joins_the_main_ingress_on_the_same_host_path_and_type() {
        let main = ingress(
            "web",
            0,
            json!({}),
            &[
                ("", "/", "Prefix", "v1"),
                ("h.example", "/", "Prefix", "v1"),
            ],
        );
        let can = ingress(
            "web-canary",
            1,
            canary("30"),
            &[
                ("", "/", "Prefix", "v2"),
                ("", "/other", "Prefix", "v2"),
                ("h.example", "/", "Exact", "v2"),
            ],
        );
        let r = Routes::build(&[can, main]);
        let c = r.route("", "/x").unwrap();
        assert_eq!(c.main.service, "v1");
        let k = c.canary.as_ref().expect("canary on / Prefix");
        assert_eq!(
            (k.backend.service.as_str(), k.weight, k.total),
            ("v2", 30, 100)
        );
        assert_eq!(k.backend.ingress, "default/web-canary");
        assert_eq!(
            svc(&r, "", "/other").as_deref(),
            Some("v1"),
            "a canary adds no routes"
        );
        assert!(
            r.route("h.example", "/").unwrap().canary.is_none(),
            "Exact is not the main's Prefix"
        );
        // Alone, a canary routes nothing.
        let r = Routes::build(&[ingress("c", 0, canary("100"), &[("", "/", "Prefix", "v2")])]);
        assert_eq!(svc(&r, "", "/"), None);
    }

    #[test]
    fn the_canary_takes_weight_out_of_total_of_the_rolls() {
        let main = ingress("web", 0, json!({}), &[("", "/", "Prefix", "v1")]);
        let share = |ann: Value| {
            let r = Routes::build(&[
                main.clone(),
                ingress("c", 1, ann, &[("", "/", "Prefix", "v2")]),
            ]);
            let c = r.route("", "/").unwrap().clone();
            let total = c.canary.as_ref().map_or(100, |k| k.total);
            (0..total)
                .filter(|roll| {
                    c.pick(|t| {
                        assert_eq!(t, total);
                        *roll
                    })
                    .service
                        == "v2"
                })
                .count()
        };
        assert_eq!(share(canary("0")), 0);
        assert_eq!(share(canary("10")), 10);
        assert_eq!(share(canary("50")), 50);
        assert_eq!(share(canary("100")), 100);
        assert_eq!(share(canary("250")), 100, "over the total: everything");
        assert_eq!(share(canary("-5")), 0);
        assert_eq!(share(canary("ten")), 0, "unreadable: 0");
        assert_eq!(
            share(json!({CANARY: "true", CANARY_WEIGHT: "3", CANARY_WEIGHT_TOTAL: "4"})),
            3
        );
        assert_eq!(
            share(json!({CANARY: "false", CANARY_WEIGHT: "100"})),
            0,
            "not a canary: main wins the path"
        );
        assert_eq!(share(json!({CANARY: "True", CANARY_WEIGHT: "100"})), 100);
    }

    #[test]
    fn the_head_gives_the_host_without_port_and_the_path_without_query() {
        let h = |s: &str| parse_head(s.as_bytes()).unwrap();
        assert_eq!(
            h("GET /a/b?x=1 HTTP/1.1\r\nHost: Web.Example:8080\r\n\r\n"),
            Some(RequestHead {
                host: "web.example".into(),
                path: "/a/b".into()
            })
        );
        assert_eq!(h("GET / HTTP/1.1\r\nHost: web"), None, "incomplete");
        assert_eq!(h("GET / HTTP/1.0\r\n\r\n").unwrap().host, "", "no Host");
        assert_eq!(
            h("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").unwrap().host,
            "[::1]"
        );
        assert_eq!(
            h("GET http://abs.example:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n"),
            Some(RequestHead {
                host: "abs.example".into(),
                path: "/p".into()
            })
        );
        assert!(parse_head(b"\x16\x03\x01 not http\r\n\r\n").is_err());
    }

    #[test]
    fn validation_refuses_what_the_api_server_refuses() {
        let v = |spec: Value| validate(&json!({"metadata": {"name": "i"}, "spec": spec}));
        let svc = json!({"service": {"name": "web", "port": {"number": 80}}});
        assert!(v(json!({"defaultBackend": svc})).is_ok());
        assert!(
            v(json!({}))
                .unwrap_err()
                .contains("either `defaultBackend` or `rules`")
        );
        let path = |p: Value| v(json!({"rules": [{"host": "a.example", "http": {"paths": [p]}}]}));
        assert!(path(json!({"path": "/", "pathType": "Prefix", "backend": svc})).is_ok());
        assert!(path(json!({"pathType": "ImplementationSpecific", "backend": svc})).is_ok());
        let e = path(json!({"path": "/", "pathType": "Regex", "backend": svc})).unwrap_err();
        assert!(
            e.starts_with("spec.rules[0].http.paths[0].pathType: Unsupported value"),
            "{e}"
        );
        let e = path(json!({"path": "api", "pathType": "Prefix", "backend": svc})).unwrap_err();
        assert!(e.contains("must be an absolute path"), "{e}");
        let e = path(json!({"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80, "name": "http"}}}}))
        .unwrap_err();
        assert!(e.contains("cannot set both port name & port number"), "{e}");
        let e = path(
            json!({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web"}}}),
        )
        .unwrap_err();
        assert!(e.contains("port name or number is required"), "{e}");
        let e = v(json!({"rules": [{"host": "10.0.0.1"}]})).unwrap_err();
        assert!(e.starts_with("spec.rules[0].host"), "{e}");
        assert!(v(json!({"rules": [{"host": "*.example.com"}]})).is_ok());
    }
}
