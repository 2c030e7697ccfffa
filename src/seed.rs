//! MLSDM's production checklist (the seed), embedded: its sections and lines in their own order,
//! so reports read top to bottom like the checklist a reviewer knows.

/// The seed itself, embedded once (the Markdown renderer lays it out again from this text).
pub const TEXT: &str = include_str!("../fixtures/seed/PRODUCTION_CHECKLIST.md");

/// One leaf checkbox line and the section path it sits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedLine {
    /// `Part / Section / Group`, as check files write `section`.
    pub section: String,
    pub text: String,
    /// The line's index in the seed text (from 0): its identity, by which renderers that lay the
    /// seed out again (Markdown) find its state. Never pair lines by their position in a list.
    pub seed_line: usize,
}

fn clean(s: &str) -> String {
    s.replace(['*', '`'], "")
        .replace('✅', "")
        .trim()
        .to_string()
}

fn part(h2: &str) -> String {
    match h2 {
        "Pre-Deployment Checklist" => "Pre-Deployment".into(),
        "Deployment Day Checklist" => "Deployment Day".into(),
        "Post-Deployment Monitoring (First 24 Hours)" => "Post-Deployment Monitoring".into(),
        other => other.into(),
    }
}

/// The leaf lines of the seed in order, each with its section path.
pub fn lines() -> Vec<SeedLine> {
    let mut h2 = String::new();
    let mut h3: Option<String> = None;
    let mut items: Vec<(usize, usize, String, String)> = Vec::new();
    for (i, l) in TEXT.lines().enumerate() {
        if let Some(h) = l.strip_prefix("## ") {
            h2 = part(h.trim());
            h3 = None;
        } else if let Some(h) = l.strip_prefix("### ") {
            h3 = Some(clean(h));
        } else {
            let trimmed = l.trim_start();
            if let Some(t) = trimmed.strip_prefix("- [ ] ") {
                let mut path = h2.clone();
                if let Some(h) = &h3 {
                    path = format!("{path} / {h}");
                }
                items.push((i, l.len() - trimmed.len(), t.to_string(), path));
            }
        }
    }
    let mut out = Vec::new();
    let mut group: Option<String> = None;
    for (k, (i, indent, text, path)) in items.iter().enumerate() {
        let has_children = items
            .get(k + 1)
            .is_some_and(|(j, next, _, _)| *j == i + 1 && next > indent);
        if *indent == 0 {
            // "**Kubernetes Cluster** (if using K8s)" is the group "Kubernetes Cluster".
            group = has_children.then(|| {
                let name = clean(text.split(':').next().unwrap_or(text));
                name.split(" (").next().unwrap_or(&name).to_string()
            });
        }
        if has_children {
            continue;
        }
        let section = match (&group, *indent > 0) {
            (Some(g), true) => format!("{path} / {g}"),
            _ => path.clone(),
        };
        out.push(SeedLine {
            section,
            text: text.clone(),
            seed_line: *i,
        });
    }
    out
}

/// The sign-off roles, in the seed's order: its Sign-Off lines' bold names
/// ("**Security Team**: ___ Date: ___"). `signoff` accepts these and the renderers list them.
pub fn roles() -> &'static [String] {
    static ROLES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ROLES.get_or_init(|| {
        lines()
            .into_iter()
            .filter(|l| l.section == "Sign-Off")
            .filter_map(|l| {
                let name = l.text.strip_prefix("**")?.split("**").next()?;
                Some(name.to_string())
            })
            .collect()
    })
}

/// Whether `role` is one of the seed's sign-off roles.
pub fn is_role(role: &str) -> bool {
    roles().iter().any(|r| r == role)
}

/// Section paths in the seed's order (each once).
pub fn sections() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lines() {
        if !out.contains(&l.section) {
            out.push(l.section);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_the_sign_off_section() {
        assert_eq!(
            roles(),
            [
                "Development Team Lead",
                "DevOps/SRE Lead",
                "Security Team",
                "Product Owner"
            ]
        );
    }

    #[test]
    fn parses_the_seed() {
        let lines = lines();
        assert_eq!(lines.len(), 180);
        assert_eq!(
            lines[0].section,
            "Pre-Deployment / Infrastructure / Container Registry Access"
        );
        assert_eq!(lines[0].text, "Access to container registry configured");
        assert!(
            lines
                .iter()
                .any(|l| l.section == "Post-Deployment Monitoring / Hour 1"
                    && l.text == "Error rate < 1%")
        );
        assert!(
            lines
                .iter()
                .any(|l| l.section == "Rollback Criteria" && l.text == "Data corruption detected")
        );
        assert!(
            lines
                .iter()
                .any(|l| l.section == "Continuous Improvement" && l.text.starts_with("Week 1"))
        );
        assert!(
            lines
                .iter()
                .any(|l| l.section == "Sign-Off" && l.text.starts_with("**Security Team**"))
        );
    }
}
