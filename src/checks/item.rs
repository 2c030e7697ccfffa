//! What the elements of a check's `forEach` are, declared in the check file (`item:`), so that a
//! failing element is reported as data (a container named X) rather than only as message text,
//! and a waiver for one container matches on its name.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kind of element a `forEach` yields.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum ItemKind {
    /// A container of a pod (template), or its status: a `container:` waiver can name it.
    Container,
    /// An init container: a `container:` waiver can name it.
    InitContainer,
    /// An ephemeral (debug) container: a `container:` waiver can name it.
    EphemeralContainer,
    /// A key of a ConfigMap's or Secret's data.
    Key,
}

impl ItemKind {
    /// A container of any sort, which a waiver's `container:` names.
    pub fn is_container(self) -> bool {
        matches!(
            self,
            Self::Container | Self::InitContainer | Self::EphemeralContainer
        )
    }
}

/// `item:` in a check file, as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemSpec {
    /// What each element of `forEach` is.
    pub kind: ItemKind,
    /// CEL expression over `item` (and the check's variables) giving the element's name, e.g.
    /// `item.name`.
    #[schemars(with = "String")]
    pub name: super::model::Located,
}

/// `item:` compiled: the kind, and the name expression over `item`.
#[derive(Debug)]
pub struct CompiledItem {
    pub kind: ItemKind,
    pub name: super::Expr,
}

#[cfg(test)]
mod tests {
    use crate::checks::{cel::CelEnv, parse_check};

    const HEAD: &str = "id: x\ntitle: X\nsection: S\nseverity: low\nsource: kubernetes\nmatch: {kinds: [Deployment]}\n";

    #[test]
    fn item_needs_for_each_and_a_name_expression_that_compiles() {
        let env = CelEnv::default();
        let text = format!(
            "{HEAD}item: {{kind: container, name: item.name}}\nvalidations: [{{expression: 'true'}}]\n"
        );
        let errs = parse_check("x.yaml", &text, &env).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].line, 7);
        assert!(errs[0].message.contains("without forEach"), "{errs:?}");
        let text = format!(
            "{HEAD}forEach: object.spec.template.spec.containers\nitem: {{kind: container, name: itme.name}}\nvalidations: [{{expression: 'true'}}]\n"
        );
        let errs = parse_check("x.yaml", &text, &env).unwrap_err();
        assert!(errs[0].message.starts_with("item.name: "), "{errs:?}");
        let text = format!(
            "{HEAD}forEach: object.spec.template.spec.containers\nitem: {{kind: initContainer, name: item.name}}\nvalidations: [{{expression: 'true'}}]\n"
        );
        let check = parse_check("x.yaml", &text, &env).unwrap();
        assert_eq!(
            check
                .kubernetes()
                .and_then(|k| k.item.as_ref())
                .map(|i| i.kind),
            Some(super::ItemKind::InitContainer)
        );
    }
}
