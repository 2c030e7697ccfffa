//! The MLSDM Deployment's rollout, read from the cluster (GET only): its time, when `--since` is
//! not given, and which rollout it is, which each checkpoint reads again.

use crate::UsageError;
use crate::cli::CheckArgs;
use serde_json::Value;

/// Which rollout of the Deployment is current: what a checkpoint compares with the one the watch
/// started on. Not the time (the Progressing condition's moves on an HPA scale-up, and `kubectl
/// rollout undo` twice makes an old ReplicaSet current again with its old creation time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Identity {
    /// The Deployment's uid: another one is a Deployment deleted and created again.
    pub deployment: String,
    /// Its `deployment.kubernetes.io/revision`: every rollout and every undo moves it.
    pub revision: Option<String>,
    /// The current ReplicaSet's uid; `None` when there is none, `Err` when the ReplicaSets
    /// could not be read (the answer's status).
    pub replica_set: Result<Option<String>, u16>,
}

/// The rollout time and the rollout's identity; `source` says where the time was read.
pub(super) struct Rollout {
    pub time: f64,
    pub source: String,
    pub identity: Identity,
}

/// A read of the rollout that failed: exit 3, as any source that cannot be read.
fn unread(what: &str) -> UsageError {
    UsageError::Unreachable(crate::sources::kube::ClusterError::other(format!(
        "could not read the rollout the watch follows from {what}"
    )))
}

/// The MLSDM Deployment's rollout: its time is its current ReplicaSet's creation, else the time
/// its Progressing condition last changed, else its creation.
pub(super) fn rollout(args: &CheckArgs) -> Result<Option<Rollout>, UsageError> {
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
        // No Deployment because the cluster could not be read (a 429 or 503 listing them) is
        // not "no Deployment": the watch would follow no rollout, and every checkpoint would
        // judge whatever runs, a rollback included (review finding).
        if let Some(e) = report
            .results
            .iter()
            .find(|r| r.status == crate::report::Status::Error)
        {
            return Err(unread(&format!("the MLSDM Deployments: {}", e.message)));
        }
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
        // The answer, or its status when it was not a success.
        let get = |path: String| {
            let api = api.clone();
            async move {
                let answer = api
                    .get(&path, "application/json")
                    .await
                    .map_err(UsageError::Unreachable)?;
                if !answer.status.is_success() {
                    return Ok(Err(answer.status.as_u16()));
                }
                Ok::<Result<Value, u16>, UsageError>(Ok(
                    serde_json::from_slice(&answer.body).unwrap_or(Value::Null)
                ))
            }
        };
        let d = match get(format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}")).await? {
            Ok(d) => d,
            // Gone since it was listed a moment ago: no rollout to follow.
            Err(404) => return Ok(None),
            Err(status) => {
                return Err(unread(&format!("Deployment {ns}/{name}: the API server answered {status}")));
            }
        };
        let ts = |v: &Value| {
            v.as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.timestamp() as f64)
        };
        let uid = d["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let revision = d["metadata"]["annotations"]["deployment.kubernetes.io/revision"].clone();
        let rs = get(format!("/apis/apps/v1/namespaces/{ns}/replicasets")).await?;
        let current = rs.as_ref().ok().and_then(|rs| {
            rs["items"]
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
                .filter_map(|r| {
                    Some((
                        ts(&r["metadata"]["creationTimestamp"])?,
                        r["metadata"]["uid"].as_str().unwrap_or_default().to_string(),
                        // Made current again by an undo: the Deployment controller lists the
                        // revisions it held before.
                        r["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"]
                            .as_str()
                            .is_some_and(|h| !h.is_empty()),
                    ))
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
        });
        let identity = Identity {
            deployment: uid.clone(),
            revision: revision.as_str().map(str::to_string),
            replica_set: rs.map(|_| current.as_ref().map(|(_, uid, _)| uid.clone())),
        };
        let found = |time: f64, source: String| Ok(Some(Rollout { time, source, identity: identity.clone() }));
        let progressing = d["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Progressing")
            .and_then(|c| ts(&c["lastUpdateTime"]));
        match current {
            Some((t, _, false)) => {
                return found(t, format!("the creation of Deployment {ns}/{name}'s current ReplicaSet"));
            }
            // An undo (or a template rolled back to) makes an old ReplicaSet current again: its
            // creation is an earlier rollout's, hours or days ago, and the checkpoints had come
            // due at once on the previous release's samples (review finding). The Progressing
            // condition's last update, when it is after that creation, is when it became current.
            Some((t, _, true)) => {
                return match progressing.filter(|p| *p > t) {
                    Some(p) => found(p, format!("Deployment {ns}/{name}'s Progressing condition (its current ReplicaSet was created for an earlier revision and made current again)")),
                    None => Err(unread(&format!(
                        "Deployment {ns}/{name}: its current ReplicaSet was created for an earlier revision (made current again by an undo), and no later Progressing condition says when: give --since"
                    ))),
                };
            }
            None => {}
        }
        if let Some(t) = progressing {
            return found(t, format!("Deployment {ns}/{name}'s Progressing condition"));
        }
        match ts(&d["metadata"]["creationTimestamp"]) {
            Some(t) => found(t, format!("the creation of Deployment {ns}/{name} (no ReplicaSet or Progressing condition)")),
            None => Ok(None),
        }
    })
}
