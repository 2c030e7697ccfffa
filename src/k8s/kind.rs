//! Which objects a check applies to: `Kind`, `v1/Kind` or `group/version/Kind`.

/// A kind matcher parsed from `Kind`, `v1/Kind` or `group/version/Kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindMatcher {
    pub api_version: Option<String>,
    pub kind: String,
    /// `Kind.group` when it names a group: see [`KindMatcher::qualified`].
    qualified: Option<String>,
}

impl KindMatcher {
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric());
        let (api_version, kind) = match parts.as_slice() {
            [kind] if valid(kind) => (None, *kind),
            [version, kind] if valid(kind) && !version.is_empty() => {
                (Some((*version).to_string()), *kind)
            }
            [group, version, kind] if valid(kind) && !group.is_empty() && !version.is_empty() => {
                (Some(format!("{group}/{version}")), *kind)
            }
            _ => return None,
        };
        let qualified = api_version
            .as_deref()
            .and_then(|v| v.split_once('/'))
            .map(|(group, _)| format!("{kind}.{group}"));
        Some(Self {
            api_version,
            kind: kind.to_string(),
            qualified,
        })
    }

    /// `Kind.group`: the name an object of a well-known kind carries when it comes from another
    /// group (`NetworkPolicy.crd.projectcalico.org`), so that no built-in check takes it for its
    /// own (`sources::manifests`); a matcher naming that group means it.
    pub fn qualified(&self) -> Option<&str> {
        self.qualified.as_deref()
    }

    pub fn matches(&self, api_version: &str, kind: &str) -> bool {
        self.api_version.as_deref().is_none_or(|v| v == api_version)
            && (self.kind == kind || self.qualified.as_deref() == Some(kind))
    }
}
