//! A skeleton OpenAPI v3 document: no schemas, only the PATCH operations
//! with their `x-kubernetes-group-version-kind` and the `fieldValidation`
//! query parameter. That is what kubectl reads to learn that the server
//! validates fields itself, so `kubectl apply/create -f` work without
//! `--validate=false`. `/openapi/v2` stays 404: kubectl does not need it then.

use serde_json::{Map, Value, json};

use super::resources::{GROUPS, RESOURCES, versions};

/// `GET /openapi/v3`: where each group-version's document is.
pub fn root() -> Value {
    let mut paths = Map::new();
    let groups = GROUPS
        .iter()
        .flat_map(|g| versions(g).iter().map(move |v| format!("apis/{g}/{v}")));
    for gv in std::iter::once("api/v1".to_string()).chain(groups) {
        paths.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash=baton-sandbox")}),
        );
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub fn group_version(gv: &str) -> Option<Value> {
    let (group, version) = match gv {
        "api/v1" => ("", "v1"),
        _ => gv.strip_prefix("apis/")?.rsplit_once('/')?,
    };
    if !group.is_empty() && !GROUPS.contains(&group) || !versions(group).contains(&version) {
        return None;
    }
    let mut paths = Map::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version && r.allows("patch"))
    {
        let prefix = if group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let patch = json!({
            "operationId": format!("patch{}", r.kind),
            "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
            "parameters": [
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            ],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(path, json!({"patch": patch}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (baton sandbox, a simulator)", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_group_version_has_a_document_with_patch_operations() {
        let r = root();
        for (gv, v) in r["paths"].as_object().unwrap() {
            let url = v["serverRelativeURL"].as_str().unwrap();
            assert!(url.starts_with(&format!("/openapi/v3/{gv}")));
            let doc = group_version(gv).unwrap();
            assert!(doc["paths"].is_object(), "{gv}");
        }
        let apps = group_version("apis/apps/v1").unwrap();
        let d = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(d["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(group_version("apis/batch/v1").is_some());
        assert!(group_version("apis/batch/v2").is_none());
        assert!(group_version("apis/apps/v2").is_none());
        let hpa = group_version("apis/autoscaling/v2").unwrap();
        let p = &hpa["paths"]["/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}"]
            ["patch"];
        assert_eq!(p["x-kubernetes-group-version-kind"]["version"], "v2");
        assert!(r["paths"]["apis/autoscaling/v1"].is_object());
    }
}
