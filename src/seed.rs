//! MLSDM's production checklist (the seed), embedded: its sections and lines in their own order,
//! so reports read top to bottom like the checklist a reviewer knows.

/// The seed itself, embedded once (the Markdown renderer lays it out again from this text, by
/// the lines of `items`).
pub const TEXT: &str = include_str!("../fixtures/seed/PRODUCTION_CHECKLIST.md");

/// One checkbox line of the seed, leaf or group, as the Markdown parser nests it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The line's index in the seed text (from 0): its identity.
    pub line: usize,
    /// The text after `- [ ] `, as written (bold and code marks kept: roles and check files
    /// name lines by this text).
    pub text: String,
    /// `Part / Section / Group`, as check files write `section` (for a leaf).
    pub section: String,
    /// The lines of the checkbox items nested directly under this one (a group line has some).
    pub children: Vec<usize>,
}

impl Item {
    pub fn is_leaf(&self) -> bool {
        self.children.is_empty()
    }
}

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

/// Every checkbox item of the seed in document order, parsed once. This is the only parser of
/// the checklist: the renderers lay the seed out again by these items' lines.
pub fn items() -> &'static [Item] {
    static ITEMS: std::sync::OnceLock<Vec<Item>> = std::sync::OnceLock::new();
    ITEMS.get_or_init(|| parse(TEXT))
}

/// The checkbox item on `line` of the seed text, if there is one.
pub fn item_at(line: usize) -> Option<&'static Item> {
    let items = items();
    items
        .binary_search_by_key(&line, |i| i.line)
        .ok()
        .map(|k| &items[k])
}

/// The structure comes from pulldown-cmark (headings, lists nested as CommonMark nests them, task
/// markers); the text of a heading or an item is taken from the source line as written.
fn parse(text: &str) -> Vec<Item> {
    use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| line_starts.partition_point(|&s| s <= offset) - 1;
    // Indexed, not `text.lines().nth(line)`: that walked the seed from its top for every item
    // (5 % of a one-file run's instructions).
    let lines: Vec<&str> = text.lines().collect();
    let source_line = |line: usize| lines.get(line).copied().unwrap_or_default();

    let mut items: Vec<Item> = Vec::new();
    let mut h2 = String::new();
    let mut h3: Option<String> = None;
    // Open list items: (index in `items` once its task marker is seen, its line).
    let mut open: Vec<(Option<usize>, usize)> = Vec::new();
    // The group a top-level item with children names ("**Kubernetes Cluster** (if using K8s)").
    let mut group: Option<String> = None;
    for (event, range) in Parser::new_ext(text, Options::ENABLE_TASKLISTS).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                let heading = source_line(line_of(range.start))
                    .trim_start_matches('#')
                    .trim();
                match level {
                    HeadingLevel::H2 => {
                        h2 = part(heading);
                        h3 = None;
                    }
                    HeadingLevel::H3 => h3 = Some(clean(heading)),
                    _ => {}
                }
            }
            Event::Start(Tag::Item) => open.push((None, line_of(range.start))),
            Event::End(TagEnd::Item) => {
                open.pop();
            }
            Event::TaskListMarker(_) => {
                let Some(&(_, line)) = open.last() else {
                    continue;
                };
                let raw = source_line(line).trim_start();
                let item_text = raw
                    .strip_prefix("- [ ] ")
                    .or_else(|| raw.get(6..))
                    .unwrap_or(raw)
                    .to_string();
                let parent = open.iter().rev().skip(1).find_map(|(slot, _)| *slot);
                let mut section = h2.clone();
                if let Some(h) = &h3 {
                    section = format!("{section} / {h}");
                }
                match parent {
                    None => {
                        let name = clean(item_text.split(':').next().unwrap_or(&item_text));
                        group = Some(name.split(" (").next().unwrap_or(&name).to_string());
                    }
                    Some(p) => {
                        if let Some(g) = &group {
                            section = format!("{section} / {g}");
                        }
                        items[p].children.push(line);
                    }
                }
                if let Some(last) = open.last_mut() {
                    last.0 = Some(items.len());
                }
                items.push(Item {
                    line,
                    text: item_text,
                    section,
                    children: Vec::new(),
                });
            }
            _ => {}
        }
    }
    items
}

/// The leaf lines of the seed in order, each with its section path.
pub fn lines() -> Vec<SeedLine> {
    items()
        .iter()
        .filter(|i| i.is_leaf())
        .map(|i| SeedLine {
            section: i.section.clone(),
            text: i.text.clone(),
            seed_line: i.line,
        })
        .collect()
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

    /// CommonMark could read a checkbox line as the continuation of the one above it; every
    /// `- [ ] ` line of the text must be an item, and a group's lines are indented under it.
    #[test]
    fn every_checkbox_line_is_an_item() {
        let boxes: Vec<usize> = TEXT
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with("- [ ] "))
            .map(|(i, _)| i)
            .collect();
        let lines: Vec<usize> = items().iter().map(|i| i.line).collect();
        assert_eq!(lines, boxes);
        let indent = |line: usize| {
            let l = TEXT.lines().nth(line).unwrap();
            l.len() - l.trim_start().len()
        };
        for item in items() {
            for &child in &item.children {
                assert!(indent(child) > indent(item.line), "line {child}");
                assert!(item_at(child).is_some());
            }
        }
        assert_eq!(items().iter().filter(|i| !i.is_leaf()).count(), 41);
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
