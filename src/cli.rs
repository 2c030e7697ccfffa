//! The command line (clap derive).

use crate::checks::Severity;
use crate::report::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXIT_CODES: &str = "Exit codes:
  0  nothing failed at or above --fail-on
  1  a check failed at or above --fail-on
  2  the audit could not start (bad flags, invalid check files, manifests or waivers)
  3  no failure, but a check at or above --fail-on ended in error
no-data, skipped, manual and waived results never change the exit code.";

/// Deployment-readiness auditor for MLSDM on Kubernetes: turns the production checklist into
/// evidence.
#[derive(Debug, Parser)]
#[command(name = "mlsdm-audit", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit manifests against the checks and print the checklist.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// List the loaded checks.
    ListChecks {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Extra check directories (add or override built-ins by id).
        #[arg(long = "checks", value_name = "DIR")]
        checks: Vec<PathBuf>,
    },
    /// Explain one check: what it checks, why it matters, how to fix it.
    Explain {
        id: String,
        #[arg(long = "checks", value_name = "DIR")]
        checks: Vec<PathBuf>,
    },
    /// Lint check files (for check authors); exit 0 when valid, 2 otherwise.
    ValidateChecks {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of a check file.
    Schema,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Manifest files or directories (recursive *.yaml, *.yml, *.json); `-` reads stdin.
    #[arg(long = "manifests", short = 'f', value_name = "PATH", required = true)]
    pub manifests: Vec<PathBuf>,
    /// Extra check directories (add or override built-ins by id).
    #[arg(long = "checks", value_name = "DIR")]
    pub checks: Vec<PathBuf>,
    /// Run only these check ids.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub only: Vec<String>,
    /// Skip these check ids.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub skip: Vec<String>,
    /// Label selector for the workloads that count as MLSDM (default: every workload).
    #[arg(long, short = 'l', value_name = "SELECTOR")]
    pub selector: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write the report to a file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Lowest severity whose failure fails the run.
    #[arg(long, value_enum, default_value = "high")]
    pub fail_on: SeverityArg,
    /// Waiver file (default: .mlsdm-audit-waivers.yaml when present).
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Ignore waivers written as annotations on the audited objects.
    #[arg(long)]
    pub no_annotation_waivers: bool,
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
