//! The audit plan: `check`'s arguments resolved and validated once (ripgrep's low-level ->
//! high-level arguments), then `audit` over the plan alone. `Plan::from_args` is the only place
//! that reads clap's `CheckArgs`; `audit` sees typed values (checks, selector, sources, windows,
//! waivers, attestations, baseline), so a test or another front end builds a `Plan` directly.
//!
//! Everything the user must fix in the arguments or the files they name (checks, waivers,
//! attestations, baseline, flags) fails in `from_args`, before any network I/O; `audit` reads
//! the manifests, the cluster, the service and its metrics.
//!
//! One file (about 690 lines): `from_args` and `audit` are the two halves of one contract (what
//! the plan holds is what the audit may rely on), read together when a flag is added.

use crate::checks::{self, Check, Source};
use crate::cli::CheckArgs;
use crate::report::{self, Attestation, Report, Target};
use crate::review::{self, waivers};
use crate::sources::{self, render::Renderer};
use crate::{activity, config, diag, docs, engine, input, k8s, promql, redact, signoff};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// Why the audit could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// Input files the user must fix (checks, manifests, waivers, attestations, a saved
    /// report), every problem at its place.
    #[error("{0}")]
    Input(#[from] diag::Diagnostics),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Signoff(#[from] signoff::SignoffError),
    /// The cluster could not be reached or refused the credentials: the exit code is its kind's.
    #[error("{0}")]
    Unreachable(#[from] sources::kube::ClusterError),
    /// No source of the run gave anything to decide on (exit 3): an empty input or a selector
    /// that matches nothing is not a pass.
    #[error("{0}")]
    NothingAudited(String),
}

impl From<diag::Diagnostic> for UsageError {
    fn from(d: diag::Diagnostic) -> Self {
        Self::Input(d.into())
    }
}

impl UsageError {
    /// The input errors at their places, for tools that read them as data (`-o json`).
    pub fn diagnostics(&self) -> Option<&diag::Diagnostics> {
        match self {
            Self::Input(d) => Some(d),
            _ => None,
        }
    }

    /// 3 when a source could not be reached, 2 for everything the user must fix in the input.
    pub fn exit_code(&self) -> u8 {
        if let Self::Unreachable(e) = self {
            e.exit_code()
        } else if matches!(self, Self::NothingAudited(_)) {
            3
        } else {
            2
        }
    }
}

/// Loads checks and applies `--only`/`--skip`, rejecting ids that do not exist.
pub fn select_checks(
    all: Vec<Check>,
    only: &[String],
    skip: &[String],
) -> Result<Vec<Check>, UsageError> {
    for id in only.iter().chain(skip) {
        if !all.iter().any(|c| &c.id == id) {
            return Err(UsageError::Invalid(docs::unknown_check(id, &all)));
        }
    }
    Ok(all
        .into_iter()
        .filter(|c| only.is_empty() || only.contains(&c.id))
        .filter(|c| !skip.contains(&c.id))
        .collect())
}

/// What the audit reads the Kubernetes objects from.
#[derive(Clone, Debug)]
pub enum Objects {
    /// Manifest files or directories (`-` is stdin), then what kustomize or Helm rendered (a
    /// later definition of the same object wins), each render bounded by `render_timeout`.
    Manifests {
        paths: Vec<PathBuf>,
        renderers: Vec<Renderer>,
        render_timeout: Duration,
    },
    /// The live cluster (and its service and metrics through the API server).
    Cluster(sources::kube::ClusterOptions),
    /// No objects: only the service (`--no-cluster` with `--endpoint` or `--prometheus`).
    None,
}

/// A `check` run, resolved and validated: no flag text is left to interpret.
pub struct Plan {
    /// The checks to evaluate (after `--only`/`--skip` and the team's requirements).
    pub checks: Vec<Check>,
    /// Optional checks whose requirement is not declared: reported as skipped, not evaluated.
    pub optional_checks: Vec<Check>,
    /// Every loaded check id (waivers in object annotations are validated against all of them,
    /// not only those `--only` selects).
    pub known_checks: Vec<String>,
    /// `--selector`: as typed (for the report and messages) and as a LabelSelector.
    pub selector: Option<(String, serde_json::Value)>,
    pub objects: Objects,
    /// Endpoints, Prometheus, HTTP timeouts, `--observe`, `--window`.
    pub http: sources::http::HttpOptions,
    /// Waivers from the waiver file (validated); annotation waivers are read by `audit`.
    pub waivers: Vec<waivers::Waiver>,
    /// Whether `mlsdm-audit.io/waive` annotations on audited objects are honoured.
    pub annotation_waivers: bool,
    pub attestations: Option<(PathBuf, Vec<(String, Attestation)>)>,
    pub baseline: Option<(PathBuf, Report)>,
    /// `--expect-image` / `--expect-version`, the `params` checks read.
    pub expect_image: Option<String>,
    pub expect_version: Option<String>,
    pub fail_on: checks::Severity,
    pub fail_on_new: bool,
    /// `--allow-empty`: a run that decided nothing is reported rather than refused.
    pub allow_empty: bool,
    /// The ids of the checks `--only`/`--skip` left out, recorded in the report: a subset
    /// audit's pass must not read as the whole checklist's.
    pub left_out: Vec<String>,
    /// The checklist lines of the team's checks in `left_out`, by id (recorded in the report).
    pub left_out_checklist: std::collections::BTreeMap<String, Vec<String>>,
}

impl Plan {
    /// A plan over manifest paths with the built-in checks and every default: what `check -f
    /// PATH` does with no other flag, no team config and no waiver file (optional checks whose
    /// requirement is in `requirements` are evaluated, the others reported as skipped).
    pub fn manifests(
        paths: Vec<PathBuf>,
        requirements: &[checks::requirements::Requirement],
    ) -> Result<Self, UsageError> {
        let all = checks::load_with(&[], false)?;
        let known_checks = all.iter().map(|c| c.id.clone()).collect();
        let (checks, optional_checks) = config::partition(all, requirements);
        Ok(Self {
            checks,
            optional_checks,
            known_checks,
            selector: None,
            objects: Objects::Manifests {
                paths,
                renderers: Vec::new(),
                render_timeout: Duration::from_mins(2),
            },
            http: sources::http::HttpOptions {
                timeout: Duration::from_secs(5),
                ..Default::default()
            },
            waivers: Vec::new(),
            annotation_waivers: true,
            attestations: None,
            baseline: None,
            expect_image: None,
            expect_version: None,
            fail_on: checks::Severity::High,
            fail_on_new: false,
            allow_empty: false,
            left_out: Vec::new(),
            left_out_checklist: std::collections::BTreeMap::new(),
        })
    }

    /// Resolves `check`'s arguments: loads and selects the checks, parses every flag, reads and
    /// validates the waiver, attestation and baseline files. Sets the process-wide input cap
    /// (`--max-input-size`) first, so the files it reads are bounded by it.
    pub fn from_args(args: &CheckArgs) -> Result<Self, UsageError> {
        if let Some(size) = &args.max_input_size {
            input::set_cap_from_flag(size).map_err(UsageError::Invalid)?;
        }
        let loading = activity::start("loading the checks");
        let all = checks::load_with(&args.checks, args.override_builtin)?;
        drop(loading);
        // Waivers are validated against every known check, not only those --only selects.
        let known_checks: Vec<String> = all.iter().map(|c| c.id.clone()).collect();
        // The checklist lines of the team's checks, kept for those --only/--skip leave out
        // (only then): a built-in check's come from the catalog at render time.
        let lines_of: Vec<(String, Vec<String>)> = if args.only.is_empty() && args.skip.is_empty() {
            Vec::new()
        } else {
            // A check without checklist lines stands in the checklist as its title.
            all.iter()
                .filter(|c| !c.builtin)
                .map(|c| {
                    let lines = if c.checklist.is_empty() {
                        vec![c.title.clone()]
                    } else {
                        c.checklist.clone()
                    };
                    (c.id.clone(), lines)
                })
                .collect()
        };
        let checks = select_checks(all, &args.only, &args.skip)?;
        let left_out: Vec<String> = known_checks
            .iter()
            .filter(|id| !checks.iter().any(|c| &c.id == *id))
            .cloned()
            .collect();
        let left_out_checklist = lines_of
            .into_iter()
            .filter(|(id, _)| left_out.contains(id))
            .collect();
        // Optional checks whose requirement the team has not declared are not evaluated.
        let (checks, optional_checks) = config::partition(checks, &args.requirements);
        if checks.is_empty() && !optional_checks.is_empty() && !args.allow_empty {
            let ids: Vec<&str> = optional_checks.iter().map(|c| c.id.as_str()).collect();
            return Err(UsageError::NothingAudited(format!(
                "nothing audited: every selected check is optional and its requirement is not declared ({}); declare it in .mlsdm-audit.yaml's requirements or with --require",
                ids.join(", ")
            )));
        }
        let selector = args
            .selector
            .as_deref()
            .map(|s| k8s::selector::parse(s).map(|v| (s.to_string(), v)))
            .transpose()
            .map_err(|e| UsageError::Invalid(format!("--selector: {e}")))?;
        let renderers = renderers(args);
        let manifest_mode = !args.manifests.is_empty() || !renderers.is_empty();
        let cluster_options = cluster_options(args)?;
        let objects = if manifest_mode {
            Objects::Manifests {
                paths: args.manifests.clone(),
                // Validated only when something is rendered, as the flag has no other use.
                render_timeout: if renderers.is_empty() {
                    Duration::ZERO
                } else {
                    timeout_flag("--render-timeout", &args.render_timeout)?
                },
                renderers,
            }
        } else if args.no_cluster {
            Objects::None
        } else {
            Objects::Cluster(cluster_options)
        };
        let http = http_options(args)?;
        // Without Prometheus, metrics checks run on the built-in evaluator (scraping endpoints
        // or pods).
        if http.prometheus.is_none()
            && (!http.endpoints.is_empty() || matches!(objects, Objects::Cluster(_)))
        {
            reject_unsupported_queries(&checks)?;
        }
        let waiver_file = args.waivers.clone().or_else(|| {
            Some(std::path::PathBuf::from(waivers::DEFAULT_FILE)).filter(|p| p.exists())
        });
        let ids: Vec<&str> = known_checks.iter().map(String::as_str).collect();
        let waiver_set = match &waiver_file {
            Some(path) => waivers::load_file(path, &ids)?,
            None => Vec::new(),
        };
        let attestations = args
            .attestations
            .as_deref()
            .map(|p| {
                let selected: Vec<&Check> = checks.iter().chain(&optional_checks).collect();
                review::attestations::load(p, &selected).map(|a| (p.to_path_buf(), a))
            })
            .transpose()?;
        let baseline = args
            .baseline
            .as_deref()
            .map(|p| {
                // With --fail-on-new a baseline's failures stop gating, as waivers do: a file
                // another user may write is refused as a waivers file is (review finding).
                crate::input::refuse_untrusted(
                    p,
                    "the baseline report",
                    "with --fail-on-new its failures are known debt",
                )
                .map_err(|why| diag::Diagnostic::file(p.display().to_string(), why))?;
                read_report(p).map(|r| (p.to_path_buf(), r))
            })
            .transpose()?;
        Ok(Self {
            checks,
            optional_checks,
            known_checks,
            selector,
            objects,
            http,
            waivers: waiver_set,
            annotation_waivers: !args.no_annotation_waivers,
            attestations,
            baseline,
            expect_image: args.expect_image.clone(),
            expect_version: args.expect_version.clone(),
            fail_on: args.fail_on.map_or(checks::Severity::High, Into::into),
            fail_on_new: args.fail_on_new,
            allow_empty: args.allow_empty,
            left_out,
            left_out_checklist,
        })
    }

    /// The report's `target.mode`.
    pub fn mode(&self) -> report::Mode {
        match self.objects {
            Objects::Manifests { .. } => report::Mode::Manifests,
            Objects::Cluster(_) => report::Mode::Cluster,
            Objects::None => report::Mode::Service,
        }
    }
}

/// Runs the plan: reads the objects (manifests, renders or the cluster), probes the service and
/// its metrics, evaluates the checks and applies waivers, attestations and the baseline.
pub fn audit(plan: &Plan) -> Result<Report, UsageError> {
    let checks = &plan.checks;
    let optional = config::skipped_results(&plan.optional_checks);
    let (manifest_mode, cluster_mode) = match plan.objects {
        Objects::Manifests { .. } => (true, false),
        Objects::Cluster(_) => (false, true),
        Objects::None => (false, false),
    };
    let (loaded_objects, mut notes, manifests_digest) = match &plan.objects {
        Objects::Manifests {
            paths,
            renderers,
            render_timeout,
        } => {
            let _reading = activity::start("reading the manifests");
            let loaded = load_manifests(paths, renderers, *render_timeout)?;
            // Every input named is part of the release: one that gave nothing (an overlay that
            // renders empty, a directory of other YAML) next to one that gave objects was
            // passed as if the release were the others alone. With no object at all,
            // `nothing_audited` says so below.
            let digest = loaded.digest();
            let mut notes = loaded.notes;
            // With --allow-empty it is still said (and recorded): accepted, not hidden.
            if !loaded.objects.is_empty() && !loaded.empty_inputs.is_empty() {
                notes.push(report::Note {
                    kind: report::NoteKind::EmptyInput,
                    message: format!(
                        "nothing audited from {}: no Kubernetes object in it, while the other inputs gave some; the release was audited without it ({})",
                        loaded.empty_inputs.join(", "),
                        accepts(plan.allow_empty)
                    ),
                });
            }
            (loaded.objects, notes, Some(digest))
        }
        _ => (Vec::new(), Vec::new(), None),
    };
    let mut http = plan.http.clone();

    let mut sources = BTreeSet::new();
    if manifest_mode || cluster_mode {
        sources.insert(Source::Kubernetes);
    }
    // A live audit probes the service through the API server when there is no --endpoint.
    if !http.endpoints.is_empty() || cluster_mode {
        sources.insert(Source::Http);
    }
    if !http.endpoints.is_empty() || http.prometheus.is_some() || cluster_mode {
        sources.insert(Source::Metrics);
    }
    let needs_network =
        cluster_mode || sources.contains(&Source::Http) || sources.contains(&Source::Metrics);
    let runtime = needs_network
        .then(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        })
        .transpose()
        .map_err(|e| UsageError::Invalid(format!("cannot start the async runtime: {e}")))?;

    let mut cluster_target = None;
    let mut cluster_api = None;
    let (objects, origin, kind_errors, missing_kinds) = match (&runtime, &plan.objects) {
        (Some(rt), Objects::Cluster(cluster_opts)) => {
            let extra: Vec<(String, Option<String>)> = checks
                .iter()
                .flat_map(|c| {
                    c.kinds()
                        .iter()
                        .map(|k| (k.kind.clone(), k.api_version.clone()))
                })
                .collect();
            let _running = crate::activity::start("reading the cluster");
            let cf = rt.block_on(async {
                let (api, context, default_ns) = sources::kube::connect(cluster_opts)
                    .await
                    .map_err(|e| match e {
                        sources::kube::ConnectError::Config(m) => UsageError::Invalid(m),
                        sources::kube::ConnectError::Cluster(c) => UsageError::Unreachable(c),
                    })?;
                sources::kube::gather(&api, cluster_opts, &default_ns, &extra)
                    .await
                    .map(|mut f| {
                        f.context = context;
                        (f, api)
                    })
                    .map_err(UsageError::Unreachable)
            })?;
            let (cf, api) = cf;
            cluster_api = Some(api);
            let origin = match &cf.namespace {
                Some(ns) => format!("namespace {ns} of {}", cf.server),
                None => format!("the cluster at {}", cf.server),
            };
            cluster_target = Some(report::ClusterTarget {
                server: cf.server.clone(),
                context: cf.context.clone(),
                namespace: cf.namespace.clone(),
                requests: cf.requests,
            });
            (cf.objects, origin, cf.kind_errors, cf.missing_kinds)
        }
        _ => (
            loaded_objects,
            "the audited manifests".to_string(),
            std::collections::BTreeMap::default(),
            BTreeSet::default(),
        ),
    };
    let selector_text = plan.selector.as_ref().map(|(s, _)| s.clone());
    let selector = plan.selector.as_ref().map(|(_, v)| v.clone());
    let mut facts = sources::Facts::new(objects, sources, selector, &origin);
    facts.kind_errors = kind_errors;
    facts.live = cluster_mode;
    facts.missing_kinds = missing_kinds;
    facts.params = serde_json::json!({"expectImage": plan.expect_image, "expectVersion": plan.expect_version, "live": cluster_mode});
    if let Some(why) = nothing_audited(&facts, selector_text.as_deref(), &notes) {
        if !plan.allow_empty {
            return Err(UsageError::NothingAudited(format!(
                "{why} ({})",
                accepts(false)
            )));
        }
        notes.push(report::Note {
            kind: report::NoteKind::NothingAudited,
            message: format!("{why} ({})", accepts(true)),
        });
    }
    if let Some(sel) = &selector_text {
        let left_out: Vec<String> = facts
            .mlsdm_workloads_out_of_scope()
            .map(sources::Object::reference)
            .collect();
        if !left_out.is_empty() {
            notes.push(report::Note {
                kind: report::NoteKind::OutOfScope,
                message: format!(
                    "not audited: {} run(s) MLSDM but the selector {sel:?} leaves {} out",
                    left_out.join(", "),
                    if left_out.len() == 1 { "it" } else { "them" }
                ),
            });
        }
    }
    let mlsdm_workloads: Vec<usize> = facts.mlsdm_workloads().map(|w| w.slot).collect();
    http.endpoint_workload = (mlsdm_workloads.len() == 1).then(|| mlsdm_workloads[0]);
    // The release's namespace, when its MLSDM workloads share one: Prometheus's series must be
    // that namespace's (`sources::metrics::prometheus_down_targets`).
    let namespaces: BTreeSet<&str> = facts
        .mlsdm_workloads()
        .filter_map(|w| w.namespace.as_deref())
        .collect();
    http.release_namespace = (namespaces.len() == 1)
        .then(|| namespaces.into_iter().next().map(str::to_string))
        .flatten();
    // Through the API server: the Services and pods of the MLSDM workloads, or, when --endpoint
    // names the service, its pods only, for the per-pod checks (`sources::http::probe_all`).
    let proxy_targets = match &cluster_api {
        Some(_) if http.endpoints.is_empty() => facts.proxy_targets(),
        Some(_) => facts
            .proxy_targets()
            .into_iter()
            .filter(|t| t.kind == "Pod")
            .collect(),
        None => Vec::new(),
    };
    let proxied = cluster_api
        .as_ref()
        .map(|api| (api, proxy_targets.as_slice()));
    if let Some(rt) = &runtime
        && (facts.sources.contains(&Source::Http) || facts.sources.contains(&Source::Metrics))
    {
        let _running = crate::activity::start("probing the service and its metrics");
        facts.service = rt
            .block_on(sources::http::gather(checks, &http, proxied))
            .map_err(UsageError::Invalid)?;
        facts.endpoints.clone_from(&http.endpoints);
        facts.prometheus.clone_from(&http.prometheus);
        notes.extend(one_pod_sampled(checks, &facts.service, &http.endpoints));
    }
    let mut waiver_set = plan.waivers.clone();
    if plan.annotation_waivers {
        let ids: Vec<&str> = plan.known_checks.iter().map(String::as_str).collect();
        waiver_set.extend(waivers::from_annotations(&facts.objects, &ids)?);
    }
    let running = activity::start("evaluating the checks");
    let mut parts = engine::evaluate_parts(checks, &facts);
    drop(running);
    config::external_evidence(parts.iter_mut().flatten(), checks, &facts.objects);
    // The objects are not read after this: freed before the results are joined, sorted and
    // rendered, so their memory and the report's do not add up (issue 12). Freeing them (some
    // million allocations at 5,000 objects) is one core's work that nothing waits for: it runs
    // on its own thread while this one sorts and renders. (A thread that cannot be started
    // drops its closure, and with it the facts, here.)
    if crate::parallel::threads_for(facts.objects.len(), engine::OBJECTS_PER_THREAD) > 1 {
        let _ = std::thread::Builder::new().spawn(move || drop(facts));
    } else {
        // A few objects free in less time than a thread takes to start.
        drop(facts);
    }
    let mut results = engine::concat(parts);
    // Whatever the sources: a run in which no check was evaluated (every result skipped or
    // awaiting a reviewer) decided nothing, and is not a pass.
    if !results
        .iter()
        .any(|r| !matches!(r.status, report::Status::Skipped | report::Status::Manual))
    {
        let why = format!(
            "nothing audited: none of the {} selected check(s) could be evaluated from the sources of this run (give --manifests, a cluster, --endpoint or --prometheus for them; {})",
            checks.len(),
            accepts(plan.allow_empty)
        );
        if !plan.allow_empty {
            return Err(UsageError::NothingAudited(why));
        }
        notes.push(report::Note {
            kind: report::NoteKind::NothingAudited,
            message: why,
        });
    }
    results.extend(optional);
    waivers::apply(&mut results, &waiver_set, chrono::Utc::now().date_naive());
    if let Some((_, a)) = &plan.attestations {
        review::attestations::apply(&mut results, a);
    }
    let mut redefined = Vec::new();
    if let Some((_, b)) = &plan.baseline {
        let definitions = checks
            .iter()
            .map(|c| (c.id.as_str(), c.sha256.as_str()))
            .collect();
        redefined = review::baseline::mark(&mut results, b, &definitions);
    }
    // Evaluated, but nothing decided (after attestations, which may decide a result): a run
    // with no evidence is not a pass (`report::decides_nothing` says what counts).
    let gated: Vec<&report::CheckResult> = results
        .iter()
        .filter(|r| r.severity >= plan.fail_on)
        .collect();
    if report::decides_nothing(&results, plan.fail_on) {
        let considered: Vec<report::CheckResult> = if gated.is_empty() {
            results.clone()
        } else {
            gated.into_iter().cloned().collect()
        };
        notes.push(nothing_decided(&considered, plan.fail_on));
    }
    let manifests = match &plan.objects {
        Objects::Manifests {
            paths, renderers, ..
        } => paths
            .iter()
            .map(|p| p.display().to_string())
            .chain(renderers.iter().map(Renderer::source_name))
            .collect(),
        _ => Vec::new(),
    };
    let target = Target {
        mode: plan.mode(),
        cluster: cluster_target,
        manifests,
        selector: selector_text,
        fail_on: plan.fail_on,
        attestations: plan
            .attestations
            .as_ref()
            .map(|(p, _)| p.display().to_string()),
        baseline: plan.baseline.as_ref().map(|(p, _)| p.display().to_string()),
        fail_on_new: plan.fail_on_new,
        endpoints: http.endpoints.clone(),
        prometheus: http.prometheus.clone(),
        prometheus_selector: http.prometheus_scope.as_ref().map(|s| s.text().to_string()),
        insecure_skip_tls_verify: http.insecure,
        active: http.active,
        observe_seconds: (!http.observe.is_zero()).then_some(http.observe.as_secs()),
        window_seconds: http.window.map(|w| w.as_secs()),
        fleet: Vec::new(),
        left_out: plan.left_out.clone(),
        left_out_checklist: plan.left_out_checklist.clone(),
        allow_empty: plan.allow_empty,
        catalog: Some(report::catalog_digest()),
        manifests_digest,
    };
    if !plan.left_out.is_empty() {
        // The shorter list: what ran (`--only`) or what was left out (`--skip`).
        let ran: Vec<&str> = plan
            .known_checks
            .iter()
            .filter(|id| !plan.left_out.contains(id))
            .map(String::as_str)
            .collect();
        let message = if ran.len() < plan.left_out.len() {
            format!(
                "a subset audit: --only/--skip ran {} of the {} checks ({}); the checklist lines only the others cover were not audited",
                ran.len(),
                plan.known_checks.len(),
                ran.join(", ")
            )
        } else {
            format!(
                "a subset audit: --only/--skip left out {} of the {} checks ({}); the checklist lines only they cover were not audited",
                plan.left_out.len(),
                plan.known_checks.len(),
                plan.left_out.join(", ")
            )
        };
        notes.push(report::Note {
            kind: report::NoteKind::Subset,
            message,
        });
    }
    if let Some((path, b)) = &plan.baseline
        && let Some(why) = baseline_mismatch(&b.target, &target)
    {
        notes.push(report::Note {
            kind: report::NoteKind::BaselineMismatch,
            message: format!(
                "the baseline {} is a report of {why}: a failure it holds is read as known debt here",
                path.display()
            ),
        });
    }
    if let Some((path, _)) = &plan.baseline
        && !redefined.is_empty()
    {
        notes.push(report::Note {
            kind: report::NoteKind::BaselineMismatch,
            message: format!(
                "the baseline {} was written with other definitions of {}: their failures are new here (a validation's number may name another rule now)",
                path.display(),
                redefined.join(", ")
            ),
        });
    }
    let mut report = Report::new(target, results);
    report.checks = checks.iter().map(report::CheckOrigin::of).collect();
    report.notes = notes;
    Ok(report)
}

/// How a baseline's audit differs from this run's, if it does: another mode, cluster or
/// namespace (results carry no cluster outside a fleet run, so staging's report matched
/// production's objects by kind, namespace and name, and was accepted without a word).
fn baseline_mismatch(baseline: &Target, run: &Target) -> Option<String> {
    if baseline.mode != run.mode {
        return Some(format!(
            "a {} audit, not a {} audit",
            baseline.mode, run.mode
        ));
    }
    match (&baseline.cluster, &run.cluster) {
        (Some(b), Some(r)) if b.server != r.server => {
            Some(format!("the cluster at {}, not {}", b.server, r.server))
        }
        (Some(b), Some(r)) if b.namespace != r.namespace => Some(format!(
            "namespace {}, not {}",
            b.namespace.as_deref().unwrap_or("(all)"),
            r.namespace.as_deref().unwrap_or("(all)")
        )),
        _ => None,
    }
}

fn renderers(args: &CheckArgs) -> Vec<Renderer> {
    args.kustomize
        .iter()
        .cloned()
        .map(Renderer::Kustomize)
        .chain(args.helm_chart.iter().map(|chart| Renderer::Helm {
            chart: chart.clone(),
            values: args.helm_values.clone(),
        }))
        .collect()
}

/// Reads the manifest paths, then renders kustomize and Helm (in that order: a later definition
/// of the same object wins).
fn load_manifests(
    paths: &[PathBuf],
    renderers: &[Renderer],
    render_timeout: Duration,
) -> Result<sources::manifests::Loaded, UsageError> {
    let mut inputs: Vec<sources::manifests::Input> = paths
        .iter()
        .cloned()
        .map(sources::manifests::Input::Path)
        .collect();
    for r in renderers {
        inputs.push(sources::render::render(r, render_timeout).map_err(UsageError::Invalid)?);
    }
    Ok(sources::manifests::load_inputs(&inputs)?)
}

/// The note of a run that decided nothing at its gate (`fail_on`): which checks are no-data, and
/// the first one's reason.
fn nothing_decided(results: &[report::CheckResult], fail_on: checks::Severity) -> report::Note {
    let no_data: Vec<&report::CheckResult> = results
        .iter()
        .filter(|r| r.status == report::Status::NoData)
        .collect();
    let ids: Vec<&str> = no_data
        .iter()
        .map(|r| r.id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let shown = ids.len().min(5);
    let more = if ids.len() > shown {
        format!(" and {} more", ids.len() - shown)
    } else {
        String::new()
    };
    let why = no_data
        .first()
        .map(|r| format!(" ({}: {})", r.id.as_str(), r.message))
        .unwrap_or_default();
    report::Note {
        kind: report::NoteKind::NothingDecided,
        message: format!(
            "nothing decided at or above {fail_on}: every evaluated check there is no-data: {}{more}{why}; --allow-empty accepts an undecided run",
            ids[..shown].join(", ")
        ),
    }
}

/// Refuses a run whose Kubernetes source gave nothing to audit: every kubernetes check would be
/// no-data and the gate would open on an empty `helm template` or a selector that matches nothing.
/// What `--allow-empty` does to an empty input or run, said in its note or error.
fn accepts(allowed: bool) -> &'static str {
    if allowed {
        "accepted: --allow-empty"
    } else {
        "--allow-empty accepts it"
    }
}

/// Why the run audited nothing, if it did not: no object, or no MLSDM workload.
fn nothing_audited(
    facts: &sources::Facts,
    selector: Option<&str>,
    notes: &[report::Note],
) -> Option<String> {
    if !facts.sources.contains(&Source::Kubernetes) || facts.mlsdm_workloads().next().is_some() {
        return None;
    }
    let what = if facts.objects.is_empty() {
        "no Kubernetes object".to_string()
    } else if let Some(sel) = selector {
        format!("no MLSDM workload matching --selector {sel:?}")
    } else {
        "no MLSDM workload (a Deployment, StatefulSet or DaemonSet running MLSDM)".to_string()
    };
    let unreadable = if facts.kind_errors.is_empty() {
        String::new()
    } else {
        let kinds: Vec<String> = facts
            .kind_errors
            .iter()
            .map(|(k, e)| format!("{k}: {e}"))
            .collect();
        format!("; kinds that could not be listed: {}", kinds.join("; "))
    };
    let skipped: Vec<&str> = notes
        .iter()
        .filter(|n| n.kind == report::NoteKind::SkippedFile)
        .map(|n| n.message.as_str())
        .collect();
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!("; {}", skipped.join("; "))
    };
    Some(format!(
        "nothing audited: {what} in {}{unreadable}{skipped}",
        facts.origin
    ))
}

/// `--timeout`: the bound on the whole `check` run.
pub fn total_timeout(args: &CheckArgs) -> Result<std::time::Duration, UsageError> {
    let t = duration_flag("--timeout", &args.timeout)?;
    if t.is_zero() {
        return Err(UsageError::Invalid(format!(
            "--timeout {:?}: must be longer than zero",
            args.timeout
        )));
    }
    Ok(t)
}

/// Reads a saved JSON report (signed or not).
pub fn read_report(path: &std::path::Path) -> Result<Report, UsageError> {
    let mut report = read_report_as_written(path)?;
    // Results taken out of a report (its summary and its list of checks still count them) are
    // refused, as `verify` and `report --merge` refuse them: rendered, such a report gave a PASS
    // verdict, a green JUnit file and an empty SARIF one, with a warning on stderr only
    // (review finding).
    let why = report.inconsistencies();
    if !why.is_empty() {
        return Err(diag::Diagnostic::file(
            path.display().to_string(),
            format!("the report does not hold together: {}", why.join("; ")),
        )
        .into());
    }
    // The counts are the results', not what the file says: an edited `summary` showed "0 fail"
    // above a list of failures in every format.
    report.summary = report::Summary::of(&report.results);
    Ok(report)
}

/// A saved report as its file says it (summary included), of this schema version.
pub fn read_report_as_written(path: &std::path::Path) -> Result<Report, UsageError> {
    let text = input::read_file(path)
        .map_err(|e| diag::Diagnostic::file(path.display().to_string(), e))?;
    let report: Report = serde_json::from_str(&text).map_err(|e| {
        UsageError::from(diag::Diagnostic::json(
            path.display().to_string(),
            "not an mlsdm-audit JSON report",
            &e,
        ))
    })?;
    if report.schema_version != report::SCHEMA_VERSION {
        return Err(diag::Diagnostic::file(
            path.display().to_string(),
            format!(
                "schemaVersion {:?}: this mlsdm-audit reads reports of schema version {:?}",
                report.schema_version,
                report::SCHEMA_VERSION
            ),
        )
        .into());
    }
    Ok(report)
}

pub(crate) fn duration_flag(flag: &str, value: &str) -> Result<std::time::Duration, UsageError> {
    checks::parse_duration_exact(value).ok_or_else(|| {
        UsageError::Invalid(format!(
            "{flag} {value:?}: expected a duration like 500ms, 1.5s, 2m or 1h30m"
        ))
    })
}

/// A timeout flag: a duration longer than zero (a zero timeout would fail every request).
fn timeout_flag(flag: &str, value: &str) -> Result<std::time::Duration, UsageError> {
    let d = duration_flag(flag, value)?;
    if d.is_zero() {
        return Err(UsageError::Invalid(format!(
            "{flag} {value:?}: must be longer than zero"
        )));
    }
    Ok(d)
}

fn url_flag(flag: &str, value: &str) -> Result<String, UsageError> {
    // Credentials in the URL (https://user:pass@host, https://TOKEN@host, ?token=...) are sent
    // by the client and must never be printed: every form of them is masked before anything,
    // an error about this very URL included, can print it. The URL is kept as typed (it is
    // shown masked), so the forms are the typed one, the decoded one the client sends (in the
    // Authorization header, base64 of user:password) and the url crate's re-encoded one.
    sources::register_url_credentials(value);
    match reqwest::Url::parse(value) {
        // Each check's path is appended to the URL as typed: after a query or a fragment it
        // would land in them, and every check would ask the base URL's own page (a 200 there
        // passed /health).
        Ok(u) if u.query().is_some() || u.fragment().is_some() => {
            Err(UsageError::Invalid(format!(
                "{flag} {:?}: expected a base URL without a query (?...) or a fragment (#...): each check's path is appended to it",
                redact::text(value)
            )))
        }
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host_str().is_some() => {
            Ok(value.trim_end_matches('/').to_string())
        }
        _ => Err(UsageError::Invalid(format!(
            "{flag} {:?}: expected an http:// or https:// URL",
            redact::text(value)
        ))),
    }
}

/// Per-pod checks answered by an `--endpoint` URL: a Service or an ingress there answers from
/// one pod of several, so their passes speak for the pod that answered. Said in every format;
/// a live audit sends them to each pod instead (`sources::http::probe_all`).
fn one_pod_sampled(
    checks: &[Check],
    service: &crate::facts::service::ServiceFacts,
    endpoints: &[String],
) -> Option<report::Note> {
    use crate::facts::service::HttpOutcome;
    let sampled: Vec<&str> = checks
        .iter()
        .filter(|c| c.request().is_some_and(|r| r.per_pod))
        .filter(|c| {
            service.http.get(&c.id).is_some_and(|probes| {
                probes.iter().any(|p| {
                    endpoints.contains(&p.target) && !matches!(p.outcome, HttpOutcome::Skipped(..))
                })
            })
        })
        .map(|c| c.id.as_str())
        .collect();
    (!sampled.is_empty()).then(|| report::Note {
        kind: report::NoteKind::OnePodSampled,
        message: format!(
            "{} check(s) of each pod ({}) asked {} once: behind a Service or an ingress that is one pod of several, and their results speak for the pod that answered (audit with the cluster, which asks each pod through the API server, or give each pod's address)",
            sampled.len(),
            sampled.join(", "),
            endpoints.join(", ")
        ),
    })
}

/// A conventional environment variable name (`MLSDM_API_KEY`, `mlsdm_api_key`): letters,
/// digits and `_`, not starting with a digit, words joined by `_` unless it is short, and
/// nothing a key would look like (a key from `openssl rand -hex 32`, or a base32 secret like
/// `JBSWY3DPEHPK3PXP`, is letters and digits with no `_`).
fn is_variable_name(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && (s.len() <= 8 || s.contains('_'))
        && !crate::k8s::secrets::looks_like_credential(s)
}

pub(crate) fn http_options(args: &CheckArgs) -> Result<sources::http::HttpOptions, UsageError> {
    let api_key = match &args.api_key_env {
        None => None,
        // A key read from a file (`KEY=$(cat key)` keeps no newline, `export KEY=$'...\n'`
        // does) ends the line: no header value can hold the newline, and no key ends in one.
        Some(var) => Some(
            std::env::var(var)
                .map_err(|_| {
                    // `--api-key-env "$MLSDM_API_KEY"` (the key, not its variable's name) is an
                    // easy slip, and CI logs keep what this prints: only a variable's name is
                    // echoed.
                    if is_variable_name(var) {
                        UsageError::Invalid(format!(
                            "--api-key-env {var}: that environment variable is not set"
                        ))
                    } else {
                        redact::register(var);
                        UsageError::Invalid(
                            "--api-key-env: the value given is not an environment variable's name \
                             (it is not shown: it may be the key itself); give the name of the \
                             variable that holds the key, e.g. --api-key-env MLSDM_API_KEY"
                                .into(),
                        )
                    }
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
    };
    // A service may reflect the Authorization header: the key is masked in every output.
    if let Some(key) = &api_key {
        redact::register(key);
    }
    Ok(sources::http::HttpOptions {
        endpoints: args
            .endpoints
            .iter()
            .map(|e| url_flag("--endpoint", e))
            .collect::<Result<_, _>>()?,
        prometheus: args
            .prometheus
            .as_deref()
            .map(|p| url_flag("--prometheus", p))
            .transpose()?,
        prometheus_scope: match (&args.prometheus_selector, &args.prometheus) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(UsageError::Invalid(
                    "--prometheus-selector scopes the queries sent to --prometheus: give --prometheus too".into(),
                ));
            }
            (Some(s), Some(_)) => Some(
                crate::promql::Scope::parse(s)
                    .map_err(|e| UsageError::Invalid(format!("--prometheus-selector {e}")))?,
            ),
        },
        timeout: timeout_flag("--http-timeout", &args.http_timeout)?,
        ca_file: args.ca_file.clone(),
        insecure: args.insecure_skip_tls_verify,
        api_key,
        active: args.active,
        observe: args
            .observe
            .as_deref()
            .map(|o| duration_flag("--observe", o))
            .transpose()?
            .unwrap_or_default(),
        window: args
            .window
            .as_deref()
            .map(|w| duration_flag("--window", w))
            .transpose()?,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        endpoint_workload: None,
        release_namespace: None,
    })
}

/// Without Prometheus the tool evaluates PromQL itself; a query outside its subset stops the run.
fn reject_unsupported_queries(checks: &[Check]) -> Result<(), UsageError> {
    let mut problems = Vec::new();
    for c in checks {
        if let Some(m) = c.metrics()
            && let Err(e) = promql::check_supported(m.query.expr())
        {
            problems.push(format!("{}: {e}", c.origin));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(UsageError::Invalid(problems.join("\n")))
    }
}

pub(crate) fn cluster_options(
    args: &CheckArgs,
) -> Result<sources::kube::ClusterOptions, UsageError> {
    Ok(sources::kube::ClusterOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: args.namespace.clone(),
        all_namespaces: args.all_namespaces,
        qps: args.qps,
        burst: args.burst,
        timeout: timeout_flag("--request-timeout", &args.request_timeout)?,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        max_pages: args.max_list_pages,
    })
}
