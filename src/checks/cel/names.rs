//! What an expression names that its environment does not provide (identifiers, functions), and
//! suggestions for misspellings. What it reads is `rewrite::collect_reads`.

use super::CelEnv;

/// The standard macros, expanded when parsing: a call left by that name has the wrong arity.
pub(super) const MACROS: &[&str] = &["has", "all", "exists", "exists_one", "map", "filter"];

/// Names offered as suggestions for a misspelt function: kept only if the environment really
/// declares them (see `CelEnv::is_function`).
pub(super) const SUGGESTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "type",
    "dyn",
    "duration",
    "timestamp",
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
    "format",
    "reverse",
    "strings.quote",
    "slice",
    "flatten",
    "distinct",
    "sort",
    "sortBy",
    "lists.range",
    "first",
    "last",
    "math.greatest",
    "math.least",
    "math.abs",
    "math.ceil",
    "math.floor",
    "math.round",
    "math.sign",
    "math.trunc",
    "math.isNaN",
    "math.isInf",
    "math.isFinite",
    "optional.of",
    "optional.none",
    "optional.ofNonZeroValue",
    "hasValue",
    "value",
    "orValue",
    "or",
];

/// An identifier an expression names that its environment does not provide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// 1-based line and column (in characters) within the expression.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Comprehension accumulators the macros introduce: never named by the author.
pub(super) fn is_internal(name: &str) -> bool {
    name.starts_with('@') || name.starts_with("__")
}

/// `a.b.c` as segments, when the expression is only names and field selections.
pub(super) fn segments(e: &cel::IdedExpr) -> Option<Vec<&str>> {
    use cel::common::ast::Expr;
    match &e.expr {
        Expr::Ident(n) => Some(vec![n.as_str()]),
        Expr::Select(s) if !s.test => {
            let mut v = segments(&s.operand)?;
            v.push(s.field.as_str());
            Some(v)
        }
        _ => None,
    }
}

/// Levenshtein distance, for suggestions.
pub(super) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidates within two edits (or equal ignoring case) of `name`, nearest first.
pub fn near<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut found: Vec<(usize, &str)> = candidates
        .filter(|c| *c != name)
        .map(|c| (distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= 2)
        .collect();
    found.sort_unstable();
    found.dedup();
    found.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Each call's id and function name.
pub(super) fn collect_calls(e: &cel::IdedExpr, out: &mut std::collections::HashMap<u64, String>) {
    use cel::common::ast::{EntryExpr, Expr};
    let mut children: Vec<&cel::IdedExpr> = Vec::new();
    match &e.expr {
        Expr::Call(c) => {
            out.insert(e.id, c.func_name.clone());
            children.extend(c.target.as_deref());
            children.extend(&c.args);
        }
        Expr::Select(s) => children.push(&s.operand),
        Expr::Comprehension(c) => children.extend([
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]),
        Expr::List(l) => children.extend(&l.elements),
        Expr::Map(m) => {
            for entry in &m.entries {
                if let EntryExpr::MapEntry(me) = &entry.expr {
                    children.extend([&me.key, &me.value]);
                }
            }
        }
        Expr::Struct(st) => {
            for entry in &st.entries {
                match &entry.expr {
                    EntryExpr::StructField(f) => children.push(&f.value),
                    EntryExpr::MapEntry(me) => children.extend([&me.key, &me.value]),
                }
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    for c in children {
        collect_calls(c, out);
    }
}

pub(super) struct Walk<'a> {
    pub(super) env: &'a CelEnv,
    pub(super) scope: Vec<String>,
    pub(super) found: Vec<(u64, String)>,
}

impl Walk<'_> {
    pub(super) fn expr(&mut self, e: &cel::IdedExpr) {
        use cel::common::ast::{EntryExpr, Expr};
        match &e.expr {
            Expr::Ident(name) => {
                if !self.scope.iter().any(|v| v == name) && !self.env.is_type(name) {
                    let available: Vec<&str> = self
                        .scope
                        .iter()
                        .map(String::as_str)
                        .filter(|v| !is_internal(v))
                        .collect();
                    let hint = near(name, available.iter().copied());
                    let hint = if hint.is_empty() {
                        String::new()
                    } else {
                        format!(" (did you mean `{}`?)", hint.join("`, `"))
                    };
                    self.found.push((
                        e.id,
                        format!(
                            "unknown variable `{name}`{hint}; available: {}",
                            if available.is_empty() {
                                "none".to_string()
                            } else {
                                available.join(", ")
                            }
                        ),
                    ));
                }
            }
            Expr::Select(s) => self.expr(&s.operand),
            Expr::Call(c) => {
                let mut qualified = false;
                if let Some(target) = &c.target {
                    // `math.greatest(...)`: a namespaced function, unless `math` is a variable.
                    if let Some(segs) = segments(target)
                        && !self.scope.iter().any(|v| v == segs[0])
                        && self
                            .env
                            .is_function(&format!("{}.{}", segs.join("."), c.func_name))
                    {
                        qualified = true;
                    } else {
                        self.expr(target);
                    }
                }
                let operator = !c.func_name.chars().next().is_some_and(char::is_alphabetic);
                let depth = self.scope.len();
                if !qualified && !operator && !self.env.is_function(&c.func_name) {
                    self.found
                        .push((e.id, self.env.unknown_function(&c.func_name)));
                    // A misspelt macro (`exist(p, ...)`): its variable is not another error.
                    if let Some(cel::common::ast::Expr::Ident(v)) = c.args.first().map(|a| &a.expr)
                    {
                        self.scope.push(v.clone());
                    }
                }
                for a in &c.args {
                    self.expr(a);
                }
                self.scope.truncate(depth);
            }
            Expr::Comprehension(c) => {
                self.expr(&c.iter_range);
                self.expr(&c.accu_init);
                let depth = self.scope.len();
                self.scope.push(c.iter_var.clone());
                if let Some(v) = &c.iter_var2 {
                    self.scope.push(v.clone());
                }
                self.scope.push(c.accu_var.clone());
                self.expr(&c.loop_cond);
                self.expr(&c.loop_step);
                self.expr(&c.result);
                self.scope.truncate(depth);
            }
            Expr::List(l) => {
                for x in &l.elements {
                    self.expr(x);
                }
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.expr(&me.key);
                        self.expr(&me.value);
                    }
                }
            }
            Expr::Struct(st) => {
                for entry in &st.entries {
                    match &entry.expr {
                        EntryExpr::StructField(f) => self.expr(&f.value),
                        EntryExpr::MapEntry(me) => {
                            self.expr(&me.key);
                            self.expr(&me.value);
                        }
                    }
                }
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
}
