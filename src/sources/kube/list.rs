//! Listing one kind: paged (500 a page, opaque continue tokens), and complete or an error.

use super::api::{Api, status_message};
use super::error::{ClusterError, ClusterErrorKind};
use crate::k8s::At as _;
use http::StatusCode;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde_json::Value;
use std::collections::BTreeSet;

pub(super) fn list_path(r: &ApiResource, namespace: Option<&str>) -> String {
    let base = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    match namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{}", r.plural),
        None => format!("{base}/{}", r.plural),
    }
}

pub(super) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What went wrong listing one kind.
pub(super) enum ListError {
    /// 403: the audit's RBAC lacks list on this resource.
    Forbidden(String),
    Other(String),
    Fatal(ClusterError),
}

/// Lists every object of a kind, page by page (limit 500, opaque continue tokens). A list that
/// does not complete (an error on a later page, a token that repeats or never ends, a page
/// without an `items` array) is an error for the whole kind: a partial list is never evaluated.
pub(super) async fn list_all(
    api: &Api,
    r: &ApiResource,
    caps: &ApiCapabilities,
    namespace: Option<&str>,
    metadata_only: bool,
    max_pages: u32,
) -> Result<Vec<Value>, ListError> {
    let scope_ns = if caps.scope == Scope::Namespaced {
        namespace
    } else {
        None
    };
    let path = list_path(r, scope_ns);
    let _running = crate::activity::start(format!("listing {} from {}", r.plural, api.server));
    let accept = if metadata_only {
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    } else {
        "application/json"
    };
    let mut items = Vec::new();
    let mut cont: Option<String> = None;
    let mut seen_tokens = BTreeSet::new();
    let mut pages: u32 = 0;
    // After a continue token expired (410), the list is asked again whole, once, as client-go's
    // pager does (`FullListIfExpired`): on a busy cluster a token outlives etcd's compaction
    // window (about five minutes) while a slow client pages through, and the audit had ended in
    // an error that asking again avoids. What the expired pages gave is dropped.
    let mut unpaged = false;
    let incomplete_whole = |e: &ClusterError| {
        format!(
            "listing {} again whole after its continue token expired (410) did not complete: {e}; a partial list is not evaluated",
            r.plural
        )
    };
    // `page` counts from 1: the page where the list broke off.
    let incomplete = |page: u32, why: String| {
        ListError::Other(format!(
            "{}: listing {} did not complete: {why} (page {page}); a partial list is not evaluated",
            api.server, r.plural
        ))
    };
    loop {
        let mut q = if unpaged {
            format!("{path}?")
        } else {
            format!("{path}?limit=500&")
        };
        if let Some(c) = &cont {
            q.push_str("continue=");
            q.push_str(&encode(c));
        }
        let q = q.trim_end_matches(['?', '&']).to_string();
        // The whole list after an expired token is one answer: over the input cap or past the
        // request timeout it is this kind's error, as the 410 that led to it would have been.
        let a = api.get(&q, accept).await.map_err(|e| {
            if unpaged {
                ListError::Other(incomplete_whole(&e))
            } else {
                ListError::Fatal(e)
            }
        })?;
        match a.status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED => {
                return Err(ListError::Fatal(ClusterError::new(
                    ClusterErrorKind::Unauthorized,
                    &api.server,
                    "",
                )));
            }
            StatusCode::FORBIDDEN => {
                let scope = scope_ns.map_or("cluster-wide".to_string(), |ns| {
                    format!("in namespace {ns}")
                });
                return Err(ListError::Forbidden(format!(
                    "forbidden (403) listing {} {scope}: {}; grant the audit's ServiceAccount `list` on `{}` in API group \"{}\" (see deploy/rbac.yaml)",
                    r.plural,
                    status_message(&a.body),
                    r.plural,
                    r.group
                )));
            }
            // Discovery served the kind a moment ago: a 404 now (a CRD being removed or not yet
            // established, a proxy or gateway in between) says nothing about its objects. Read
            // as "not served", it made every check of the kind no-data, and a failing
            // vulnerability report or Ingress vanished from a gate that then passed.
            StatusCode::NOT_FOUND if pages == 0 => {
                return Err(ListError::Other(format!(
                    "{} answered 404 listing {}, which its discovery serves (a CRD removed or not yet established, or a proxy in between): not evaluated",
                    api.server, r.plural
                )));
            }
            StatusCode::GONE if pages > 0 && !unpaged => {
                unpaged = true;
                items.clear();
                cont = None;
                seen_tokens.clear();
                pages = 0;
                continue;
            }
            // On a later page the kind was served: the earlier pages are not the whole list.
            s @ (StatusCode::NOT_FOUND | StatusCode::GONE) if pages > 0 => {
                return Err(incomplete(
                    pages + 1,
                    format!(
                        "the continue page answered {}: {}",
                        s.as_u16(),
                        status_message(&a.body)
                    ),
                ));
            }
            s => {
                return Err(ListError::Other(format!(
                    "{} answered {} listing {}: {}",
                    api.server,
                    s.as_u16(),
                    r.plural,
                    status_message(&a.body)
                )));
            }
        }
        let mut page: Value = super::page::parse(&a.body).map_err(|e| {
            ListError::Other(format!(
                "{}: listing {} returned invalid JSON: {e}",
                api.server, r.plural
            ))
        })?;
        // The body is parsed: its bytes are not needed while the items are converted.
        drop(a);
        let partial_metadata =
            page.get("kind").and_then(Value::as_str) == Some("PartialObjectMetadataList");
        // The items are moved out of the page, not copied: a page of 500 pods is then held once.
        let page_items = match page.get_mut("items") {
            Some(Value::Array(list)) => std::mem::take(list),
            // kube-apiserver builds metadata-only pages by appending to a nil slice, so an empty
            // one is encoded `items: null`. Full lists always carry `[]` (kubernetes#39822).
            Some(Value::Null) if partial_metadata => Vec::new(),
            None => return Err(incomplete(pages + 1, "a page has no `items`".into())),
            Some(Value::Null) => {
                return Err(incomplete(pages + 1, "a page has `items: null`".into()));
            }
            Some(other) => {
                return Err(incomplete(
                    pages + 1,
                    format!(
                        "a page's `items` is {}, not a list",
                        crate::sources::json_type(other)
                    ),
                ));
            }
        };
        items.reserve(page_items.len());
        for mut item in page_items {
            prepare(&mut item, r);
            items.push(item);
        }
        pages += 1;
        cont = match page.at("/metadata/continue") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if c.is_empty() => None,
            Some(Value::String(c)) => Some(c.clone()),
            Some(other) => {
                return Err(incomplete(
                    pages,
                    format!(
                        "the continue token is {}, not a string",
                        crate::sources::json_type(other)
                    ),
                ));
            }
        };
        let Some(token) = &cont else {
            return Ok(items);
        };
        if !seen_tokens.insert(token.clone()) {
            return Err(incomplete(
                pages,
                "the server sent a continue token it had already sent; the list would never end"
                    .into(),
            ));
        }
        if pages >= max_pages {
            return Err(incomplete(
                pages,
                format!(
                    "more than {max_pages} pages of 500 items, the cap (--max-list-pages {max_pages}); the server may be sending endless continue tokens"
                ),
            ));
        }
    }
}

/// What the audit keeps of one list item: the item as the server sent it, with the `kind` and
/// `apiVersion` that list items leave out, without `metadata.managedFields` (server-side apply's
/// bookkeeping of which manager set which field: often half an object's size, read by no
/// built-in check; see the module doc), and with its arrays no larger than they are.
fn prepare(item: &mut Value, r: &ApiResource) {
    if let Some(m) = item.as_object_mut() {
        m.insert("kind".into(), Value::String(r.kind.clone()));
        m.insert("apiVersion".into(), Value::String(r.api_version.clone()));
        // page::parse never builds it; removed here too so that no other parse can let it in.
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
    compact(item);
}

/// Gives every array in `v` its exact length as capacity. The parser grows arrays by doubling
/// (a one-container list holds room for four), and the objects live until every check has run:
/// this keeps them as small as the copy the list made before (issue 12, docs/performance.md).
fn compact(v: &mut Value) {
    match v {
        Value::Array(list) => {
            list.shrink_to_fit();
            list.iter_mut().for_each(compact);
        }
        Value::Object(map) => map.values_mut().for_each(compact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> ApiResource {
        ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
        }
    }

    #[test]
    fn an_item_keeps_every_field_but_managed_fields() {
        let sent = json!({
            "metadata": {"name": "a", "namespace": "n", "labels": {"app": "a"},
                         "annotations": {"x": "y"},
                         "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"containers": [{"name": "main", "env": [{"name": "A", "value": "1"}]}]},
            "status": {"phase": "Running", "conditions": []}
        });
        let mut item = sent.clone();
        prepare(&mut item, &pods());
        let mut expected = sent;
        let meta = expected["metadata"].as_object_mut().unwrap();
        meta.remove("managedFields");
        expected["kind"] = json!("Pod");
        expected["apiVersion"] = json!("v1");
        assert_eq!(item, expected);
    }

    #[test]
    fn arrays_hold_no_spare_room() {
        let mut v: Value = serde_json::from_str(r#"{"a": [1], "b": [{"c": [2, 3]}]}"#).unwrap();
        compact(&mut v);
        let cap = |p: &str| match v.at(p) {
            Some(Value::Array(l)) => l.capacity(),
            _ => unreachable!("{p} is an array"),
        };
        assert_eq!((cap("/a"), cap("/b"), cap("/b/0/c")), (1, 1, 2));
    }
}
