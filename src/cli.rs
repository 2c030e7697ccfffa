//! The command line (clap derive).

use crate::checks::Severity;
use crate::report::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXIT_CODES: &str = "Exit codes:
  0  nothing failed at or above --fail-on
  1  a check failed at or above --fail-on
  2  the audit could not start (bad flags, invalid check files, manifests, waivers or kubeconfig)
  3  no failure, but a check at or above --fail-on ended in error; or a source could not be
     reached; or nothing was audited (no object or no MLSDM workload; see --allow-empty);
     or nothing was decided (every evaluated result no-data); or a walked directory's
     kustomization changes the files it lists (audit it with --kustomize); or --timeout passed
  4  (watch only) a rollback criterion held for its whole window: roll back
  101  an internal error (a bug: stderr says where; please report it); never a verdict
no-data, skipped, manual and waived results never change the exit code, except that a run whose
every evaluated result is no-data decided nothing (3).";

/// `--version`: the crate's version and the commit it was built from ("unknown" without git).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MLSDM_AUDIT_GIT_COMMIT"),
    ")"
);

/// Deployment-readiness auditor for MLSDM on Kubernetes: turns the production checklist into
/// evidence.
#[derive(Debug, Parser)]
#[command(name = "mlsdm-audit", version = VERSION, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit manifests against the checks and print the checklist.
    #[command(after_help = EXIT_CODES)]
    Check(Box<CheckArgs>),
    /// Watch a release: the rollback criteria every --interval, the post-deployment checks at
    /// each checkpoint; exit 4 with the `kubectl rollout undo` command when a criterion holds.
    // Its own -o (status lines or JSON lines) replaces check's report format, which it never uses.
    #[command(
        after_help = EXIT_CODES,
        mut_arg("format", |a| a.long("report-format").short(None).visible_alias(None).hide(true)),
        mut_arg("timeout", |a| a.help("Not used by watch: it runs until --until; every request is bounded by --request-timeout and --http-timeout").hide(true)),
        mut_arg("output", |a| a.help("Also write the final post-deployment report here"))
    )]
    Watch(Box<WatchArgs>),
    /// List the loaded checks.
    ListChecks {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Extra check directories.
        #[arg(long = "checks", value_name = "DIR")]
        checks: Vec<PathBuf>,
        /// Let a --checks file replace the built-in check of the same id.
        #[arg(long, requires = "checks")]
        override_builtin: bool,
    },
    /// Explain one check: what it checks, why it matters, how to fix it.
    Explain {
        id: String,
        #[arg(long = "checks", value_name = "DIR")]
        checks: Vec<PathBuf>,
        /// Let a --checks file replace the built-in check of the same id.
        #[arg(long, requires = "checks")]
        override_builtin: bool,
    },
    /// Lint check files (for check authors); exit 0 when valid, 2 otherwise.
    ValidateChecks {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Run your checks against their own fixtures: DIR/tests/ID/pass/*.yaml must pass,
    /// DIR/tests/ID/fail/*.yaml must fail; exit 0 when every fixture holds, 1 otherwise.
    TestChecks {
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Print the JSON Schema of a check file, of .mlsdm-audit.yaml, or of the JSON report.
    Schema {
        #[arg(value_enum, default_value = "check")]
        of: SchemaOf,
    },
    /// Re-render a saved JSON report (signed or not) without re-running the audit; or, with
    /// --merge, join the JSON reports of several clusters into one fleet report.
    #[command(
        after_help = "Exit codes: 0 rendered; 2 bad input. With --merge: the merged report's gate, as `check` (0, 1 or 3; the worst of its parts), or 2 when the reports cannot be merged."
    )]
    Report {
        #[arg(value_name = "REPORT.json", required_unless_present = "merge")]
        report: Option<PathBuf>,
        /// Merge these JSON reports (one per cluster, or fleet reports) into one fleet report;
        /// each cluster is named by its file's name without .json (a fleet report keeps its
        /// clusters' names).
        #[arg(long, num_args = 1.., value_name = "REPORT.json", conflicts_with = "report")]
        merge: Vec<PathBuf>,
        /// Output format, as kubectl's -o (default: from --output-file's extension, else table).
        #[arg(
            long = "output",
            short = 'o',
            visible_alias = "format",
            value_enum,
            value_name = "FORMAT"
        )]
        format: Option<crate::report::Format>,
        /// Write the report to this file instead of stdout.
        #[arg(long = "output-file", value_name = "PATH")]
        output: Option<PathBuf>,
        #[command(flatten)]
        view: ViewArgs,
    },
    /// Sign a JSON report with your SSH key, as one of the checklist's sign-off roles.
    Signoff {
        #[arg(value_name = "REPORT.json")]
        report: PathBuf,
        /// Development Team Lead, DevOps/SRE Lead, Security Team or Product Owner (or an --extra-role).
        #[arg(long)]
        role: String,
        /// Your name as it should appear in the sign-off table.
        #[arg(long)]
        name: String,
        /// Your SSH private key (ed25519, ecdsa p256/p384/p521, or rsa of 2048 bits or more), as
        /// used for git commit signing.
        #[arg(long, value_name = "PATH")]
        key: PathBuf,
        /// Write the signed report here (default: update REPORT.json in place).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Accept another role besides the seed checklist's four.
        #[arg(long = "extra-role", value_name = "ROLE")]
        extra_roles: Vec<String>,
    },
    /// Print a shell completion script (bash: `source <(mlsdm-audit completions bash)`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `mlsdm-audit man > mlsdm-audit.1; man ./mlsdm-audit.1`.
    Man,
    /// Verify every signature in a signed report, and the report's own gate.
    #[command(
        after_help = "Exit codes: 0 every signature is valid by an allowed signer (and every required role signed) and the report passed its own gate; 1 a signature is invalid, untrusted (no --allowed-signers), by a key the allowed signers do not allow, the content changed after signing, or a required role is unsigned, or the --manifests given are not the ones it audited, or the report failed its gate; 2 bad input; 3 the report's gate could not decide (an error at or above its --fail-on)."
    )]
    Verify {
        #[arg(value_name = "REPORT.json")]
        report: PathBuf,
        /// git-style allowed signers file (`ssh-keygen -Y verify` semantics): name each signer,
        /// reject unknown keys. Without it no signature is trusted and no role counts as signed.
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
        /// Trust only allowed-signers lines whose principals match this identity, like
        /// `ssh-keygen -Y verify -I`.
        #[arg(long, value_name = "IDENTITY", requires = "allowed_signers")]
        principal: Option<String>,
        /// Print exactly the bytes signoff N (from 1) signed, for `ssh-keygen -Y verify -n mlsdm-audit`.
        // It verifies nothing: with the trust flags it exited 0 as if they had been checked.
        #[arg(
            long,
            value_name = "N",
            conflicts_with_all = ["allowed_signers", "principal", "fail_on_unsigned", "role_signer", "allow_narrowed", "manifests"]
        )]
        payload: Option<usize>,
        /// Fail unless each of these roles has a valid signature, each by a different signer
        /// (one key signing two required roles counts for one of them).
        #[arg(long, value_delimiter = ',', value_name = "ROLE,...")]
        fail_on_unsigned: Vec<String>,
        /// Who may sign a role: `'Security Team=bob@example.com,carol@example.com'`
        /// (identities, as --principal takes one; repeatable). A signoff of that role counts
        /// only when an allowed-signers line whose principals match one of them lists its key;
        /// without it any allowed key may sign any role.
        #[arg(long, value_name = "ROLE=IDENTITY,...", requires = "allowed_signers")]
        role_signer: Vec<String>,
        /// Accept a report of a narrowed audit (checks left out with --only/--skip,
        /// --allow-empty, --fail-on-new, or --fail-on critical); without it such a report does
        /// not verify: its pass is not the release's.
        #[arg(long)]
        allow_narrowed: bool,
        /// Hold the report to the release's manifests: fail unless reading these paths as
        /// `check --manifests` reads them (directories walked, `-` stdin), in the audit's order,
        /// gives the bytes the report audited. For a --kustomize or --helm-chart audit, pipe the
        /// render to `-`.
        #[arg(long = "manifests", short = 'f', value_name = "PATH")]
        manifests: Vec<PathBuf>,
        /// Largest manifest file or stdin stream --manifests reads, as `check --max-input-size`
        /// (default 256Mi): an audit that raised it verifies with the same.
        #[arg(long, value_name = "SIZE", requires = "manifests")]
        max_input_size: Option<String>,
    },
}

#[derive(Debug, Clone, Args)]
#[allow(clippy::struct_excessive_bools)] // one per command-line switch
pub struct CheckArgs {
    /// Manifest files or directories (recursive *.yaml, *.yml, *.json); `-` reads stdin.
    /// Files in a directory that are not Kubernetes objects (kustomization.yaml, a Helm chart)
    /// are skipped with a note. Without --manifests, --kustomize or --helm-chart, the live
    /// cluster is audited.
    #[arg(long = "manifests", short = 'f', value_name = "PATH")]
    pub manifests: Vec<PathBuf>,
    /// Audit what a kustomize directory renders (`kustomize build DIR`, or `kubectl kustomize
    /// DIR` without kustomize); repeatable.
    #[arg(long = "kustomize", short = 'k', value_name = "DIR")]
    pub kustomize: Vec<PathBuf>,
    /// Audit what a Helm chart renders (`helm template DIR`).
    #[arg(long = "helm-chart", value_name = "DIR")]
    pub helm_chart: Option<PathBuf>,
    /// Values file for --helm-chart (`helm template -f FILE`); repeatable.
    #[arg(long = "helm-values", value_name = "FILE", requires = "helm_chart")]
    pub helm_values: Vec<PathBuf>,
    /// How long --kustomize or --helm-chart may take to render.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub render_timeout: String,
    /// Path to the kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; several, comma-separated (`a,b,c`), audit each of those
    /// clusters into one fleet report.
    #[arg(long, value_name = "NAME[,NAME...]", conflicts_with_all = ["manifests", "kustomize", "helm_chart"])]
    pub context: Option<String>,
    /// Audit the cluster of every context in the kubeconfig into one fleet report.
    #[arg(long, conflicts_with_all = ["context", "manifests", "kustomize", "helm_chart", "no_cluster", "endpoints", "prometheus", "baseline"])]
    pub all_contexts: bool,
    /// Namespace to audit (default: the context's namespace).
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Audit every namespace.
    #[arg(long, short = 'A', conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Do not read a cluster: audit only --endpoint / --prometheus.
    #[arg(long, conflicts_with_all = ["manifests", "kustomize", "helm_chart", "kubeconfig", "context", "all_contexts"])]
    pub no_cluster: bool,
    /// Requests per second to the API server (client-go style limiter).
    #[arg(long, default_value_t = 50.0, value_name = "N")]
    pub qps: f64,
    /// Requests allowed at once above --qps.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub burst: u32,
    /// The most pages (of 500 objects) one list may take; a longer list is an error, not a pass.
    #[arg(long, default_value_t = crate::sources::kube::DEFAULT_MAX_PAGES, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_list_pages: u32,
    /// Timeout of each request to the API server (the whole answer, headers and body), and of
    /// the kubeconfig's exec credential plugin.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub request_timeout: String,
    /// Bound on the whole run: when it passes, the audit stops with exit 3 and one line naming
    /// what was still running; no report is written.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,
    /// The image the MLSDM workloads must run ("Image version verified").
    #[arg(long, value_name = "IMAGE")]
    pub expect_image: Option<String>,
    /// The version (image tag) the MLSDM workloads must run.
    #[arg(long, value_name = "VERSION")]
    pub expect_version: Option<String>,
    /// MLSDM's base URL (an Ingress, a port-forward); repeatable. Enables the http checks, and
    /// the metrics checks by scraping /health/metrics when there is no --prometheus (rates need
    /// one process behind it: a load-balanced URL is refused for them).
    #[arg(long = "endpoint", value_name = "URL")]
    pub endpoints: Vec<String>,
    /// A Prometheus server to evaluate the metrics checks with PromQL.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Label matchers added to every query sent to --prometheus, e.g.
    /// '{namespace="mlsdm-production"}': needed when it holds more than one MLSDM release's
    /// series (the checks aggregate over all it holds).
    #[arg(long, value_name = "MATCHERS")]
    pub prometheus_selector: Option<String>,
    /// Extra CA certificates (PEM) to trust for --endpoint and --prometheus.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify TLS certificates (recorded in the report).
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
    /// Timeout of each HTTP request, to an --endpoint or through the API server's proxy.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub http_timeout: String,
    /// Environment variable holding MLSDM's API key, for the authenticated probes (never printed).
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Run active probes: rate-limit bursts, end-to-end generation and the bounded load probe.
    #[arg(long)]
    pub active: bool,
    /// Scrape /health/metrics repeatedly for this long before evaluating the metrics checks.
    #[arg(long, value_name = "DURATION")]
    pub observe: Option<String>,
    /// Shorten every metrics check's `for` window to this (a longer one is not taken: a failure
    /// must last the whole window to fail).
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,
    /// Extra check directories (their ids must be new, unless --override-builtin).
    #[arg(long = "checks", value_name = "DIR")]
    pub checks: Vec<PathBuf>,
    /// Let a --checks file replace the built-in check of the same id (recorded in the report).
    #[arg(long, requires = "checks")]
    pub override_builtin: bool,
    /// Run only these check ids.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub only: Vec<String>,
    /// Skip these check ids.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub skip: Vec<String>,
    /// Label selector for the workloads that count as MLSDM (default: every workload).
    #[arg(long, short = 'l', value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Output format, as kubectl's -o (default: from --output-file's extension, else table).
    #[arg(
        long = "output",
        short = 'o',
        visible_alias = "format",
        value_enum,
        value_name = "FORMAT"
    )]
    pub format: Option<Format>,
    /// Write the report to this file instead of stdout.
    #[arg(long = "output-file", value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Lowest severity whose failure fails the run [default: high].
    #[arg(long, value_enum)]
    pub fail_on: Option<SeverityArg>,
    /// Waiver file (default: .mlsdm-audit-waivers.yaml when present).
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Ignore waivers written as annotations on the audited objects.
    #[arg(long)]
    pub no_annotation_waivers: bool,
    /// Reviewers' attestations of manual items (YAML: check, by, date, evidence).
    #[arg(long, value_name = "FILE")]
    pub attestations: Option<PathBuf>,
    /// The last approved JSON report: mark each result new, fixed or unchanged.
    #[arg(long, value_name = "REPORT.json")]
    pub baseline: Option<PathBuf>,
    /// Gate only on failures that are new against --baseline (errors always gate).
    #[arg(long, requires = "baseline")]
    pub fail_on_new: bool,
    /// Accept a run in which no object, or no MLSDM workload, was audited, or every evaluated
    /// result is no-data (exit 0 instead of 3).
    #[arg(long)]
    pub allow_empty: bool,
    /// Largest manifest file or stdin stream read (default 256Mi; suffixes Ki, Mi, Gi).
    #[arg(long, value_name = "SIZE")]
    pub max_input_size: Option<String>,
    /// The team's config file (default: .mlsdm-audit.yaml in the working directory or above it,
    /// up to the repository's top): defaults for these flags and the requirements profile.
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,
    /// Ignore .mlsdm-audit.yaml.
    #[arg(long)]
    pub no_config: bool,
    /// Declare optional or conditional checklist items that apply here (added to the config
    /// file's `requirements`); the checks of undeclared ones are skipped.
    #[arg(
        long = "require",
        value_enum,
        value_delimiter = ',',
        value_name = "REQUIREMENT,..."
    )]
    pub requirements: Vec<crate::checks::requirements::Requirement>,
    #[command(flatten)]
    pub view: ViewArgs,
}

/// How the result reaches a person: the terminal view, quiet or verbose, colour.
#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// The checklist as tables instead of the summary and failures (-o table only): all,
    /// failed (failures and errors) or open (everything not passing).
    #[arg(long, value_enum, value_name = "WHICH")]
    pub show: Option<crate::report::table::Show>,
    /// Print nothing on stdout and no notes: the exit code says it, errors still go to stderr
    /// (--output-file is still written).
    #[arg(long, short = 'q', conflicts_with_all = ["verbose", "show"])]
    pub quiet: bool,
    /// More detail on stderr: -v what was audited and how many checks ran, -vv every result.
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colour the table: auto (only on a terminal, and not when NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
    pub color: crate::report::table::ColorChoice,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SchemaOf {
    /// A check file (checks/*.yaml, --checks DIR).
    Check,
    /// The team config file, .mlsdm-audit.yaml.
    Config,
    /// The JSON report (`-o json`).
    Report,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    /// The catalog as docs/checks.md.
    Markdown,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SeverityArg {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Self {
        match s {
            SeverityArg::Info => Self::Info,
            SeverityArg::Low => Self::Low,
            SeverityArg::Medium => Self::Medium,
            SeverityArg::High => Self::High,
            SeverityArg::Critical => Self::Critical,
        }
    }
}

impl From<Severity> for SeverityArg {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Info => Self::Info,
            Severity::Low => Self::Low,
            Severity::Medium => Self::Medium,
            Severity::High => Self::High,
            Severity::Critical => Self::Critical,
        }
    }
}

/// The completion script of `shell`, from the same clap model as the parser.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory as _;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mlsdm-audit", &mut out);
    out
}

/// The man page (roff), with every subcommand's options.
pub fn man_page() -> Vec<u8> {
    use clap::CommandFactory as _;
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = clap_mangen::Man::new(Cli::command()).render(&mut out);
    out
}

/// How `watch` reports each evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EventFormat {
    /// One status line per criterion and the time to the next checkpoint (default on a terminal).
    Status,
    /// One JSON object per line and event (default otherwise), for log pipelines.
    Jsonl,
}

/// `mlsdm-audit watch`: `check`'s source flags plus the schedule.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub check: CheckArgs,
    /// How often the rollback criteria are evaluated.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub interval: String,
    /// When, after the rollout, to write a report of the post-deployment checks (default:
    /// 1h,4h,24h, those not after --until). One after --until is refused: it would never be
    /// written.
    #[arg(long, value_delimiter = ',', value_name = "DURATION,...")]
    pub checkpoints: Vec<String>,
    /// The rollout time: RFC 3339 or a duration ago (`15m`). Default: the MLSDM Deployment's
    /// newest ReplicaSet's creation (read from the cluster), else the start of the watch.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Stop this long after the rollout (default: at the last checkpoint).
    #[arg(long, value_name = "DURATION")]
    pub until: Option<String>,
    /// Where the checkpoint, rollback and final reports are written (created if missing).
    #[arg(long, default_value = "mlsdm-watch", value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Events as status lines or JSON lines (default: status on a terminal, else jsonl).
    #[arg(long = "output", short = 'o', value_enum, value_name = "FORMAT")]
    pub events: Option<EventFormat>,
}
