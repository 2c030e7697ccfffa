//! Which objects a check applies to: `Kind`, `v1/Kind` or `group/version/Kind`.

/// A kind matcher parsed from `Kind`, `v1/Kind` or `group/version/Kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindMatcher {
    pub api_version: Option<String>,
    pub kind: String,
}

impl KindMatcher {
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric());
        match parts.as_slice() {
            [kind] if valid(kind) => Some(Self {
                api_version: None,
                kind: (*kind).to_string(),
            }),
            [version, kind] if valid(kind) && !version.is_empty() => Some(Self {
                api_version: Some((*version).to_string()),
                kind: (*kind).to_string(),
            }),
            [group, version, kind] if valid(kind) && !group.is_empty() && !version.is_empty() => {
                Some(Self {
                    api_version: Some(format!("{group}/{version}")),
                    kind: (*kind).to_string(),
                })
            }
            _ => None,
        }
    }

    pub fn matches(&self, api_version: &str, kind: &str) -> bool {
        self.kind == kind && self.api_version.as_deref().is_none_or(|v| v == api_version)
    }
}
