//! The MLSDM Deployment's rollout time, read from the cluster (GET only), when `--since` is not
//! given.

use crate::UsageError;
use crate::cli::CheckArgs;
use serde_json::Value;

/// The MLSDM Deployment's rollout time: its current ReplicaSet's creation, else the time its
/// Progressing condition last changed, else its creation.
pub(super) fn rollout_time(args: &CheckArgs) -> Result<Option<(f64, String)>, UsageError> {
    let mut a = args.clone();
    a.only = vec!["rollback-pods-failing-health".into()];
    a.skip = Vec::new();
    a.endpoints = Vec::new();
    a.prometheus = None;
    a.prometheus_selector = None;
    a.format = None;
    a.output = None;
    let report = match crate::run_check(&a) {
        Ok(r) => r,
        Err(e) if e.exit_code() == 2 => return Err(e),
        Err(e) => return Err(e),
    };
    let mut deployments: Vec<(String, String)> = report
        .results
        .iter()
        .filter_map(|r| {
            r.object
                .as_ref()
                .filter(|o| o.kind == "Deployment")
                .map(|o| {
                    (
                        o.namespace.clone().unwrap_or_else(|| "default".into()),
                        o.name.clone(),
                    )
                })
        })
        .collect();
    deployments.sort();
    deployments.dedup();
    // Whose rollout is "the" rollout is not decidable among several: the first one's could be
    // days old and end the watch at once.
    if deployments.len() > 1 {
        return Err(UsageError::Invalid(format!(
            "{} MLSDM Deployments match ({}): narrow to one with --selector or --namespace, or give --since",
            deployments.len(),
            deployments
                .iter()
                .map(|(ns, n)| format!("{ns}/{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let Some((ns, name)) = deployments.into_iter().next() else {
        return Ok(None);
    };
    let opts = crate::cluster_options(args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError::Invalid(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let (api, _, _) = crate::sources::kube::connect(&opts).await.map_err(|e| match e {
            crate::sources::kube::ConnectError::Config(m) => UsageError::Invalid(m),
            crate::sources::kube::ConnectError::Cluster(c) => UsageError::Unreachable(c),
        })?;
        let get = |path: String| {
            let api = api.clone();
            async move {
                let answer = api
                    .get(&path, "application/json")
                    .await
                    .map_err(UsageError::Unreachable)?;
                if !answer.status.is_success() {
                    return Ok(Value::Null);
                }
                Ok::<Value, UsageError>(serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
            }
        };
        let d = get(format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}")).await?;
        let ts = |v: &Value| {
            v.as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.timestamp() as f64)
        };
        let uid = d["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let revision = d["metadata"]["annotations"]["deployment.kubernetes.io/revision"].clone();
        let rs = get(format!("/apis/apps/v1/namespaces/{ns}/replicasets")).await?;
        let newest = rs["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                r["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|o| o["uid"].as_str() == Some(uid.as_str())))
                    && (revision.is_null()
                        || r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                            == revision)
            })
            .filter_map(|r| ts(&r["metadata"]["creationTimestamp"]))
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
        if let Some(t) = newest {
            return Ok(Some((t, format!("the creation of Deployment {ns}/{name}'s current ReplicaSet"))));
        }
        let progressing = d["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Progressing")
            .and_then(|c| ts(&c["lastUpdateTime"]));
        if let Some(t) = progressing {
            return Ok(Some((t, format!("Deployment {ns}/{name}'s Progressing condition"))));
        }
        Ok(ts(&d["metadata"]["creationTimestamp"])
            .map(|t| (t, format!("the creation of Deployment {ns}/{name} (no ReplicaSet or Progressing condition)"))))
    })
}
