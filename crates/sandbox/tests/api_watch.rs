//! List and watch semantics through kube-rs: 410 Gone for a version older
//! than the store's history, a fresh list+watch that then misses nothing,
//! bookmarks, selectors on watches, timeouts and streaming lists.

mod api_support;

use std::collections::BTreeSet;
use std::time::Duration;

use api_support::*;
use baton_sandbox::{SandboxConfig, StoreConfig};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use serde_json::json;

const STEP: Duration = Duration::from_secs(20);

fn ns(name: &str) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

fn svc(name: &str, app: &str) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}},
        "spec": {"ports": [{"port": 80}], "selector": {"app": app}}}))
    .unwrap()
}

async fn tiny_history() -> baton_sandbox::Sandbox {
    start(SandboxConfig {
        store: StoreConfig { history: 3 },
        bookmark_interval: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await
}

#[tokio::test]
async fn watch_from_a_too_old_version_gets_410_then_a_fresh_list_and_watch_sees_every_change() {
    let sb = tiny_history().await;
    let api: Api<Namespace> = Api::all(client(&sb).await);
    for i in 0..6 {
        api.create(&PostParams::default(), &ns(&format!("old-{i}")))
            .await
            .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default(), "1")
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(STEP, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match first {
        WatchEvent::Error(s) => {
            assert_eq!(s.code, 410, "{s:?}");
            assert_eq!(s.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // A list at an exact, compacted version is 410 too.
    let (code, status) = raw(
        &sb,
        "GET",
        "/api/v1/namespaces?resourceVersion=1&resourceVersionMatch=Exact",
        "",
        b"",
    )
    .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (410, Some("Expired")),
        "{status}"
    );

    // Fresh list, then watch from its version: every later change arrives.
    let list = api.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    for i in 0..5 {
        api.create(&PostParams::default(), &ns(&format!("new-{i}")))
            .await
            .unwrap();
    }
    api.patch(
        "new-0",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
    )
    .await
    .unwrap();
    api.delete("new-1", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 7 {
        let ev = tokio::time::timeout(STEP, stream.try_next())
            .await
            .expect("event in time")
            .unwrap()
            .unwrap();
        seen.push(match ev {
            WatchEvent::Added(n) => format!("added {}", n.metadata.name.unwrap()),
            WatchEvent::Modified(n) => format!("modified {}", n.metadata.name.unwrap()),
            WatchEvent::Deleted(n) => format!("deleted {}", n.metadata.name.unwrap()),
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(
        seen,
        vec![
            "added new-0",
            "added new-1",
            "added new-2",
            "added new-3",
            "added new-4",
            "modified new-0",
            "deleted new-1"
        ]
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn kube_runtime_watcher_recovers_from_gone_and_sees_every_namespace() {
    let sb = tiny_history().await;
    let api: Api<Namespace> = Api::all(client(&sb).await);
    let mut names = BTreeSet::new();
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    // Initial sync.
    loop {
        match tokio::time::timeout(STEP, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitApply(n) => {
                names.insert(n.metadata.name.unwrap());
            }
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert!(names.contains("default"));
    for i in 0..8 {
        api.create(&PostParams::default(), &ns(&format!("w-{i}")))
            .await
            .unwrap();
    }
    // The watcher's watch starts from the list's version, which these
    // writes push out of the 3-change history: it gets 410, re-lists, and
    // must still end up with every namespace.
    let want: BTreeSet<String> = (0..8).map(|i| format!("w-{i}")).collect();
    let mut gone = 0;
    for _ in 0..200 {
        if want.is_subset(&names) {
            break;
        }
        match tokio::time::timeout(STEP, events.next())
            .await
            .unwrap()
            .unwrap()
        {
            Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => {
                names.insert(n.metadata.name.unwrap());
            }
            Ok(_) => {}
            Err(watcher::Error::WatchError(s)) if s.code == 410 => gone += 1,
            Err(e) => panic!("unexpected watcher error {e:?}"),
        }
    }
    assert!(want.is_subset(&names), "{names:?}");
    assert_eq!(gone, 1, "the first watch was too old");
    sb.shutdown().await;
}

#[tokio::test]
async fn watches_that_ask_get_bookmarks_at_the_current_version() {
    let sb = empty_sandbox().await;
    let api: Api<Service> = Api::default_namespaced(client(&sb).await);
    api.create(&PostParams::default(), &svc("a", "web"))
        .await
        .unwrap();
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let mut bookmark = None;
    for _ in 0..50 {
        if let WatchEvent::Bookmark(b) = tokio::time::timeout(STEP, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            bookmark = Some(b);
            break;
        }
    }
    let b = bookmark.expect("a bookmark");
    assert_eq!(
        b.metadata.resource_version,
        sb.store().current_rv().to_string()
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn label_selectors_filter_lists_and_watches_see_objects_leave_the_selector() {
    let sb = empty_sandbox().await;
    let api: Api<Service> = Api::default_namespaced(client(&sb).await);
    api.create(&PostParams::default(), &svc("a", "web"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &svc("b", "db"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &svc("c", "web"))
        .await
        .unwrap();
    let names = |l: kube::api::ObjectList<Service>| {
        l.items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app=web"))
                .await
                .unwrap()
        ),
        vec!["a", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app!=web"))
                .await
                .unwrap()
        ),
        vec!["b"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app in (db,x)"))
                .await
                .unwrap()
        ),
        vec!["b"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app notin (db)"))
                .await
                .unwrap()
        ),
        vec!["a", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("!app"))
                .await
                .unwrap()
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=c"))
                .await
                .unwrap()
        ),
        vec!["c"]
    );
    let e = api
        .list(&ListParams::default().labels("app in web"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref s) if s.code == 400),
        "{e:?}"
    );

    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(
            &WatchParams::default().labels("app=web").disable_bookmarks(),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(STEP, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, WatchEvent::Deleted(ref s) if s.metadata.name.as_deref() == Some("a")),
        "{ev:?}"
    );
    let ev = tokio::time::timeout(STEP, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, WatchEvent::Added(ref s) if s.metadata.name.as_deref() == Some("b")),
        "{ev:?}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_watch_with_timeout_seconds_ends_and_streaming_lists_sync() {
    let sb = empty_sandbox().await;
    let api: Api<Service> = Api::default_namespaced(client(&sb).await);
    api.create(&PostParams::default(), &svc("a", "web"))
        .await
        .unwrap();
    let stream = api
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), "0")
        .await
        .unwrap();
    let all: Vec<_> = tokio::time::timeout(STEP, stream.collect::<Vec<_>>())
        .await
        .expect("stream ends after its timeout");
    assert_eq!(all.len(), 1, "the synthetic ADDED of the one service");

    let mut events = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(STEP, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitApply(s) => got.push(s.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(got, vec!["a"]);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_watch_from_an_older_version_replays_the_history_with_its_event_types() {
    let sb = empty_sandbox().await;
    let api: Api<Service> = Api::default_namespaced(client(&sb).await);
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    api.create(&PostParams::default(), &svc("a", "web"))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &svc("b", "web"))
        .await
        .unwrap();
    api.delete("b", &DeleteParams::default()).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let ev = tokio::time::timeout(STEP, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(match ev {
            WatchEvent::Added(s) => format!("ADDED {}", s.metadata.name.unwrap()),
            WatchEvent::Modified(s) => format!("MODIFIED {}", s.metadata.name.unwrap()),
            WatchEvent::Deleted(s) => format!("DELETED {}", s.metadata.name.unwrap()),
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(seen, vec!["ADDED a", "MODIFIED a", "ADDED b", "DELETED b"]);
    sb.shutdown().await;
}
