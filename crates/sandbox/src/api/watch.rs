//! List and watch with Kubernetes' semantics: label and field selectors,
//! `resourceVersion` + `resourceVersionMatch`, `limit` (answered in one
//! page, no `continue`), `watch=true` as a chunked stream of newline-
//! delimited WatchEvents, `allowWatchBookmarks`, `sendInitialEvents`,
//! `timeoutSeconds`, and 410 Gone (an ERROR event with a `Status` of code
//! 410, reason Expired) for a resourceVersion older than the store keeps.
//!
//! A watch never holds the store lock while writing to its socket: it reads
//! changes from the store's broadcast channel (or, after falling behind, from
//! the history) and writes through a bounded channel to the response body.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::handlers::to_wire;
use super::resources::ResourceDef;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::{ApiState, Body, Call, Target, json_response, table};
use crate::store::{Change, ChangeType, StoreError};

struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn from_query(call: &Call) -> Result<Self, ApiError> {
        let q = |k: &str| call.query.get(k).map(String::as_str).unwrap_or("");
        Ok(Filter {
            labels: LabelSelector::parse(q("labelSelector")).map_err(ApiError::bad_request)?,
            fields: FieldSelector::parse(q("fieldSelector")).map_err(ApiError::bad_request)?,
        })
    }

    /// `wire` is the object as served (field selectors see served names).
    fn matches(&self, wire: &Value) -> bool {
        self.labels.matches(wire) && self.fields.matches(wire)
    }
}

fn store_kind(res: &ResourceDef) -> &'static str {
    res.store_kind.unwrap_or(res.kind)
}

fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version {s:?}")))
}

pub fn list(state: &ApiState, t: &Target, call: &Call) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_query(call)?;
    let kind = store_kind(t.res);
    let ns = t.namespace.as_deref();
    let rv = call.query.get("resourceVersion").filter(|s| !s.is_empty());
    let rvm = call
        .query
        .get("resourceVersionMatch")
        .filter(|s| !s.is_empty());
    let (items, list_rv) = match (rv, rvm.map(String::as_str)) {
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        (Some(rv), Some("Exact")) => {
            let rv = parse_rv(rv)?;
            let items = state.store.list_at(kind, ns, rv).map_err(|e| match e {
                StoreError::Gone { .. } => ApiError::gone(format!(
                    "The resourceVersion for the provided list is too old: {rv} is older than {}",
                    state.store.oldest_rv()
                )),
                e => ApiError::from_store(e, t.res, ""),
            })?;
            (items, rv)
        }
        (Some(rv), m) => {
            if !matches!(m, None | Some("NotOlderThan")) {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: {:?}: supported values: \"Exact\", \"NotOlderThan\"",
                    m.unwrap_or("")
                )));
            }
            parse_rv(rv)?;
            // The store is always at its newest version, which is "not older
            // than" any version it has handed out.
            state.store.list_raw(kind, ns)
        }
        (None, None) => state.store.list_raw(kind, ns),
    };
    let items: Vec<Value> = items
        .into_iter()
        .map(|o| to_wire(t.res, o))
        .filter(|o| filter.matches(o))
        .collect();
    let rv = list_rv.to_string();
    if call.accept.contains("as=Table") {
        return Ok(json_response(200, &table::table(t.res, &items, &rv)));
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", t.res.kind),
            "apiVersion": t.res.api_version(),
            "metadata": {"resourceVersion": rv},
            "items": items,
        }),
    ))
}

/// Watch parameters, validated before the response starts.
struct WatchSpec {
    res: &'static ResourceDef,
    namespace: Option<String>,
    filter: Filter,
    /// `None`: start with synthetic ADDED events for the current state.
    from: Option<u64>,
    bookmarks: bool,
    initial_events_end: bool,
    timeout: Option<Duration>,
    /// `kubectl get -w` asks for Tables: each event then carries a one-row Table.
    table: bool,
}

pub fn watch(state: &ApiState, t: &Target, call: &Call) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_query(call)?;
    let q = |k: &str| {
        call.query
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    };
    let truthy = |k: &str| matches!(q(k), Some("true" | "1"));
    let send_initial = truthy("sendInitialEvents");
    let from = match q("resourceVersion") {
        None | Some("0") => None,
        Some(_) if send_initial => None,
        Some(rv) => Some(parse_rv(rv)?),
    };
    let timeout = match q("timeoutSeconds") {
        Some(s) => Some(Duration::from_secs(s.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("timeoutSeconds: invalid value {s:?}"))
        })?)),
        None => None,
    };
    let spec = WatchSpec {
        res: t.res,
        namespace: t.namespace.clone(),
        filter,
        from,
        bookmarks: truthy("allowWatchBookmarks"),
        initial_events_end: send_initial,
        timeout,
        table: call.accept.contains("as=Table"),
    };
    // Subscribe before reading anything, so no change falls in between.
    let rx = state.store.subscribe();
    let (tx, body_rx) = mpsc::channel::<Bytes>(256);
    let store = state.store.clone();
    let shutdown = state.shutdown.clone();
    let interval = state.bookmark_interval;
    tokio::spawn(async move {
        let mut w = Watcher {
            spec,
            store,
            tx,
            sent: HashSet::new(),
            last_rv: 0,
        };
        w.run(rx, interval, shutdown).await;
    });
    let mut body_rx = body_rx;
    let stream = futures::stream::poll_fn(move |cx| {
        body_rx
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b))))
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(StreamBody::new(stream).boxed())
        .unwrap_or_default())
}

struct Watcher {
    spec: WatchSpec,
    store: std::sync::Arc<crate::store::Store>,
    tx: mpsc::Sender<Bytes>,
    /// Objects this watch has shown as matching, so an update that moves an
    /// object out of the selector becomes DELETED (and into it, ADDED).
    sent: HashSet<(Option<String>, String)>,
    /// The newest resourceVersion delivered (or skipped) by this watch.
    last_rv: u64,
}

/// The client went away.
struct Closed;

impl Watcher {
    async fn run(
        &mut self,
        mut rx: broadcast::Receiver<Change>,
        interval: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        if self.start().await.is_err() {
            return;
        }
        let deadline = self.spec.timeout.map(|d| tokio::time::Instant::now() + d);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let r = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = sleep => return,
                _ = self.tx.closed() => return,
                _ = tick.tick(), if self.spec.bookmarks => self.bookmark(&mut rx, false).await,
                m = rx.recv() => match m {
                    Ok(c) => self.deliver(&c).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if r.is_err() {
                return;
            }
        }
    }

    /// The initial events: the current state, or the history since `from`.
    async fn start(&mut self) -> Result<(), Closed> {
        let kind = store_kind(self.spec.res);
        let ns = self.spec.namespace.clone();
        match self.spec.from {
            None => {
                let (items, rv) = self.store.list_raw(kind, ns.as_deref());
                self.last_rv = rv;
                for o in items {
                    let wire = to_wire(self.spec.res, o);
                    if self.spec.filter.matches(&wire) {
                        self.sent.insert(key_of(&wire));
                        self.send("ADDED", &wire).await?;
                    }
                }
                if self.spec.initial_events_end {
                    self.send_bookmark(rv, true).await?;
                }
            }
            Some(from) => {
                // Which objects matched "before": approximated by the current
                // state, which decides ADDED vs MODIFIED for the first change.
                let (items, _) = self.store.list_raw(kind, ns.as_deref());
                for o in items {
                    let wire = to_wire(self.spec.res, o);
                    if self.spec.filter.matches(&wire) {
                        self.sent.insert(key_of(&wire));
                    }
                }
                self.last_rv = from;
                self.catch_up().await?;
            }
        }
        Ok(())
    }

    /// Re-reads the history after `last_rv` (after lagging the broadcast).
    async fn catch_up(&mut self) -> Result<(), Closed> {
        let kind = store_kind(self.spec.res);
        match self
            .store
            .changes_since(kind, self.spec.namespace.as_deref(), self.last_rv)
        {
            Ok(changes) => {
                for c in changes {
                    self.deliver(&c).await?;
                }
                Ok(())
            }
            Err(StoreError::Gone { rv, oldest }) => {
                let status = ApiError::gone(format!("too old resource version: {rv} ({oldest})"))
                    .to_status();
                let _ = self.send("ERROR", &status).await;
                Err(Closed)
            }
            Err(e) => {
                tracing::warn!(error = %e, "watch: reading the history failed");
                Err(Closed)
            }
        }
    }

    async fn deliver(&mut self, c: &Change) -> Result<(), Closed> {
        if c.rv <= self.last_rv {
            return Ok(());
        }
        self.last_rv = c.rv;
        if c.kind != store_kind(self.spec.res) {
            return Ok(());
        }
        if let Some(ns) = &self.spec.namespace
            && c.namespace.as_deref() != Some(ns.as_str())
        {
            return Ok(());
        }
        let wire = to_wire(self.spec.res, (*c.object).clone());
        let key = key_of(&wire);
        let matches = self.spec.filter.matches(&wire);
        let was = self.sent.contains(&key);
        let ty = match (c.kind_change, matches, was) {
            (ChangeType::Added, true, _) => "ADDED",
            (ChangeType::Added, false, _) => return Ok(()),
            (ChangeType::Deleted, m, w) if m || w => "DELETED",
            (ChangeType::Deleted, _, _) => return Ok(()),
            (ChangeType::Modified, true, true) => "MODIFIED",
            (ChangeType::Modified, true, false) => "ADDED",
            (ChangeType::Modified, false, true) => "DELETED",
            (ChangeType::Modified, false, false) => return Ok(()),
        };
        if ty == "DELETED" {
            self.sent.remove(&key);
        } else {
            self.sent.insert(key);
        }
        self.send(ty, &wire).await
    }

    /// Sends a BOOKMARK at the current resourceVersion, after delivering
    /// every change up to it (so the bookmark never runs ahead of events).
    async fn bookmark(
        &mut self,
        rx: &mut broadcast::Receiver<Change>,
        end: bool,
    ) -> Result<(), Closed> {
        let rv = self.store.current_rv();
        loop {
            match rx.try_recv() {
                Ok(c) => self.deliver(&c).await?,
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.catch_up().await?,
                Err(_) => break,
            }
        }
        let rv = rv.max(self.last_rv);
        self.last_rv = rv;
        self.send_bookmark(rv, end).await
    }

    async fn send_bookmark(&mut self, rv: u64, end: bool) -> Result<(), Closed> {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.spec.res.kind, "apiVersion": self.spec.res.api_version(), "metadata": meta});
        self.send("BOOKMARK", &obj).await
    }

    async fn send(&mut self, ty: &str, obj: &Value) -> Result<(), Closed> {
        let tabled;
        let obj = if self.spec.table && matches!(ty, "ADDED" | "MODIFIED" | "DELETED") {
            let rv = obj["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            tabled = table::table(self.spec.res, std::slice::from_ref(obj), &rv);
            &tabled
        } else {
            obj
        };
        let mut line =
            serde_json::to_vec(&json!({"type": ty, "object": obj})).map_err(|_| Closed)?;
        line.push(b'\n');
        self.tx.send(Bytes::from(line)).await.map_err(|_| Closed)
    }
}

fn key_of(wire: &Value) -> (Option<String>, String) {
    (
        wire["metadata"]["namespace"].as_str().map(str::to_string),
        wire["metadata"]["name"].as_str().unwrap_or("").to_string(),
    )
}
