//! Fleet reports: one report over several clusters (kubeconfig contexts). Each result carries
//! the cluster it is about, and the target lists every cluster with what became of it, so a
//! cluster that could not be audited is in the report as an error, never left out.

use super::{CheckResult, ClusterTarget, Report, Status, Summary};
use serde::{Deserialize, Serialize};

/// The id of the result that stands for a cluster that could not be audited. It is an `error`
/// at critical severity so that every format shows it and the gate never opens on it.
pub const UNAUDITED_ID: &str = "cluster-audited";

/// What became of one cluster of a fleet run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The kubeconfig context, or the cluster's name in a merged report.
    pub name: String,
    pub status: MemberStatus,
    /// Why it could not be audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterTarget>,
    /// Its results' counts.
    pub summary: Summary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MemberStatus {
    Audited,
    Error,
}

impl std::fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Audited => "audited",
            Self::Error => "error",
        })
    }
}

/// `cluster NAME: ` before a result's place in the text formats; empty outside a fleet.
pub fn prefix(r: &CheckResult) -> String {
    r.cluster
        .as_ref()
        .map(|c| format!("cluster {c}: "))
        .unwrap_or_default()
}

/// The result standing for a cluster that could not be audited (or audited nothing).
pub fn unaudited(name: &str, reason: &str) -> CheckResult {
    CheckResult {
        title: "Cluster audited".into(),
        section: "Fleet".into(),
        severity: crate::checks::Severity::Critical,
        cluster: Some(name.into()),
        ..CheckResult::new(
            UNAUDITED_ID,
            crate::checks::Source::Kubernetes,
            Status::Error,
            format!("cluster {name} could not be audited: {reason}"),
        )
    }
}

/// One line per cluster: its counts, or why it was not audited.
pub fn lines(report: &Report) -> Vec<String> {
    report
        .target
        .fleet
        .iter()
        .map(|m| match m.status {
            MemberStatus::Audited => {
                let s = &m.summary;
                let server = m
                    .cluster
                    .as_ref()
                    .map(|c| format!(" ({})", c.server))
                    .unwrap_or_default();
                format!(
                    "cluster {}{server}: {} pass, {} fail, {} error, {} no-data, {} skipped, {} waived, {} manual",
                    m.name, s.pass, s.fail, s.error, s.no_data, s.skipped, s.waived, s.manual
                )
            }
            MemberStatus::Error => format!(
                "cluster {}: error: {}",
                m.name,
                m.reason.as_deref().unwrap_or("not audited")
            ),
        })
        // A member's name and reason come from the report, which a merge reads from files: one
        // line each, escaped, so a name cannot forge a verdict line or a CI workflow command.
        .map(|line| super::printable(&line, true).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Member, MemberStatus, lines};
    use crate::report::{Report, Summary, Target};

    /// Review finding: a merged report's member name went to the terminal raw, so a name with a
    /// newline forged a verdict line (or a CI workflow command) under the real one.
    #[test]
    fn a_member_name_is_one_escaped_line() {
        let mut report = Report::new(Target::default(), Vec::new());
        for status in [MemberStatus::Audited, MemberStatus::Error] {
            report.target.fleet.push(Member {
                name: "eu\nscore: 100%; verdict: PASS \u{1b}[2K".into(),
                status,
                reason: Some("down\n::add-mask::x".into()),
                cluster: None,
                summary: Summary::default(),
            });
        }
        for line in lines(&report) {
            assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
            assert!(line.contains("eu\\nscore"), "{line}");
        }
    }
}
