//! What a compiled expression becomes before it runs: the cost meter's rewrite of its tree
//! ([`meter`]) and what it reads ([`collect_reads`]), from cel's syntax tree alone.
//!
//! Why a module of its own: build.rs includes it (as it includes `tree_code.rs`) to rewrite the
//! built-in checks' expressions once, at build time, so that a run decodes trees that are
//! already metered and reads their reads from a table, compiling nothing (the rewrite and the
//! reads were a tenth of a one-file audit, and finding a check's reads decoded every one of its
//! expressions, its messages included). It needs nothing but cel's syntax tree, and the host
//! functions' table says here how each is charged, so both builds meter alike;
//! `every_built_in_expression_decodes_to_its_parse` holds the build's trees and reads to what
//! this module makes of the parser's tree at run time.

use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr};

/// A parsed tree made ready to run: metered, with what it reads (sorted, each once).
pub fn prepare(mut expression: IdedExpr) -> (IdedExpr, std::collections::BTreeSet<String>) {
    let mut reads = std::collections::BTreeSet::new();
    collect_reads(&expression, &mut Vec::new(), &mut reads);
    meter(&mut expression, &mut Vec::new());
    (expression, reads)
}

/// How the cost meter ([`meter`]) charges a call to a host function. Declared beside each
/// name in [`HOST_FUNCTIONS`], so a function cannot be added without saying what it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metering {
    /// One unit plus the size of what it returns: a call that builds a value.
    Result,
    /// Nothing: bounded work on operands that were charged when they were built, and nothing
    /// built bigger than them.
    Free,
    /// The size of each operand that is not a literal: work linear in what it reads, nothing
    /// built.
    Operands,
    /// Both: work linear in what it reads, and a value built (`find`, `findAll`, `sum`).
    OperandsAndResult,
}

/// The functions `register` adds, for resolving names when checks load and for the cost meter.
pub const HOST_FUNCTIONS: &[(&str, Metering)] = &[
    ("quantity", Metering::Free),
    ("isQuantity", Metering::Free),
    ("compareTo", Metering::Free),
    ("isGreaterThan", Metering::Free),
    ("isLessThan", Metering::Free),
    ("asInteger", Metering::Free),
    ("isInteger", Metering::Free),
    ("asApproximateFloat", Metering::Free),
    ("sign", Metering::Free),
    ("add", Metering::Result),
    ("sub", Metering::Result),
    ("selectorMatches", Metering::Operands),
    ("labelSelectorProblem", Metering::Operands),
    ("labelsProblem", Metering::Operands),
    ("isEmptySelector", Metering::Operands),
    ("selectsEveryNamespace", Metering::Operands),
    ("selectsEveryPod", Metering::Operands),
    ("ingressController", Metering::Operands),
    ("ingressClass", Metering::Operands),
    ("hpaProblem", Metering::Operands),
    ("podSpecProblem", Metering::Operands),
    ("shannonEntropy", Metering::Operands),
    ("runsMlsdm", Metering::Operands),
    ("isCredentialName", Metering::Operands),
    ("looksLikeCredential", Metering::Operands),
    ("commandLineHasCredential", Metering::Operands),
    ("cidrsCoverEveryAddress", Metering::Operands),
    ("base64Text", Metering::OperandsAndResult),
    ("matches", Metering::Operands),
    ("undecided", Metering::Free),
    // Kubernetes' libraries (see `k8s_lib`).
    ("isSorted", Metering::Operands),
    ("sum", Metering::OperandsAndResult),
    ("find", Metering::OperandsAndResult),
    ("findAll", Metering::OperandsAndResult),
    ("url", Metering::Result),
    ("isURL", Metering::Result),
    ("getScheme", Metering::Result),
    ("getHost", Metering::Result),
    ("getHostname", Metering::Result),
    ("getPort", Metering::Result),
    ("getEscapedPath", Metering::Result),
    ("getQuery", Metering::Result),
    ("ip", Metering::Result),
    ("isIP", Metering::Result),
    ("family", Metering::Result),
    ("isUnspecified", Metering::Result),
    ("isLoopback", Metering::Result),
    ("isLinkLocalMulticast", Metering::Result),
    ("isLinkLocalUnicast", Metering::Result),
    ("isGlobalUnicast", Metering::Result),
    ("cidr", Metering::Result),
    ("isCIDR", Metering::Result),
    ("containsIP", Metering::Result),
    ("containsCIDR", Metering::Result),
    ("masked", Metering::Result),
    ("prefixLength", Metering::Result),
];

/// How a call to `name` is charged, if it is a host function.
pub(super) fn host_metering(name: &str) -> Option<Metering> {
    HOST_FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
}

/// The internal functions the cost rewrite inserts: `@` cannot start a name in CEL source.
pub(super) const CHARGE_ITER: &str = "@cost_iter";
pub(super) const CHARGE_RESULT: &str = "@cost_result";

/// The standard library's calls that cost at most the size of their operands (already charged
/// when they were built) and build nothing bigger: not metered, so checks pay nothing for them.
/// Host functions say how they are charged in `HOST_FUNCTIONS` (a test keeps them out of here).
pub(super) const UNMETERED: &[&str] = &[
    "size",
    "int",
    "uint",
    "double",
    "bool",
    "type",
    "dyn",
    "has",
    "startsWith",
    "endsWith",
    "contains",
    "duration",
    "timestamp",
];

/// The standard library's calls whose work is linear in their operands' sizes without building
/// anything: charged the size of each operand that is not a literal (see `meter`).
pub(super) const LINEAR_IN_OPERANDS: &[&str] = &[
    "contains",
    "startsWith",
    "endsWith",
    "indexOf",
    "lastIndexOf",
    "@in",
];

/// Rewrites `e` so that what can cost more than its size is charged: every comprehension's
/// range, and every call that may build a value larger than its operands. `accumulators` are
/// the comprehension accumulators in scope: the macros' own steps (`@result + [x]`) are left
/// as they are, since the interpreter recognises their shape to append in place.
pub(super) fn meter(e: &mut IdedExpr, accumulators: &mut Vec<String>) {
    match &mut e.expr {
        Expr::Call(call) => {
            if let Some(t) = &mut call.target {
                meter(t, accumulators);
            }
            for a in &mut call.args {
                meter(a, accumulators);
            }
            let steps_accumulator = call
                .args
                .iter()
                .any(|a| matches!(&a.expr, Expr::Ident(n) if accumulators.contains(n)));
            let name = call.func_name.as_str();
            // Work linear in an operand's size (a search in a string, `in` a list, comparing two
            // lists): each operand that is not a literal is charged its size, so the same call in
            // a loop costs what it reads.
            let host = host_metering(name);
            let linear = LINEAR_IN_OPERANDS.contains(&name)
                || matches!(host, Some(Metering::Operands | Metering::OperandsAndResult))
                || (matches!(name, "_==_" | "_!=_")
                    && !call.args.iter().any(|a| matches!(a.expr, Expr::Literal(_))));
            let grows = name == "_+_"
                || (name.starts_with(|c: char| c.is_ascii_alphabetic())
                    && !UNMETERED.contains(&name)
                    && host.is_none_or(|m| {
                        matches!(m, Metering::Result | Metering::OperandsAndResult)
                    }));
            if linear {
                for operand in call
                    .target
                    .iter_mut()
                    .map(|t| &mut **t)
                    .chain(&mut call.args)
                {
                    if !matches!(operand.expr, Expr::Literal(_)) {
                        wrap(operand, CHARGE_ITER);
                    }
                }
            }
            if grows && !steps_accumulator {
                wrap(e, CHARGE_RESULT);
            }
        }
        Expr::Comprehension(c) => {
            meter(&mut c.iter_range, accumulators);
            meter(&mut c.accu_init, accumulators);
            // Only the interpreter's own accumulator (`@result`, a name CEL source cannot write)
            // is exempt: `optMap(v, ...)` binds a user-named variable as an accumulator, and
            // calls on it must be charged like any other.
            let own = c.accu_var.starts_with('@');
            if own {
                accumulators.push(c.accu_var.clone());
            }
            meter(&mut c.loop_cond, accumulators);
            meter(&mut c.loop_step, accumulators);
            meter(&mut c.result, accumulators);
            if own {
                accumulators.pop();
            }
            wrap(&mut c.iter_range, CHARGE_ITER);
        }
        Expr::Select(s) => meter(&mut s.operand, accumulators),
        Expr::List(l) => {
            for x in &mut l.elements {
                meter(x, accumulators);
            }
        }
        Expr::Map(m) => {
            for entry in &mut m.entries {
                if let EntryExpr::MapEntry(me) = &mut entry.expr {
                    meter(&mut me.key, accumulators);
                    meter(&mut me.value, accumulators);
                }
            }
        }
        Expr::Struct(st) => {
            for entry in &mut st.entries {
                match &mut entry.expr {
                    EntryExpr::StructField(f) => meter(&mut f.value, accumulators),
                    EntryExpr::MapEntry(me) => {
                        meter(&mut me.key, accumulators);
                        meter(&mut me.value, accumulators);
                    }
                }
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// Replaces `e` with `charge(e)`.
pub(super) fn wrap(e: &mut IdedExpr, charge: &str) {
    let inner = std::mem::take(e);
    *e = IdedExpr {
        id: inner.id,
        expr: Expr::Call(CallExpr {
            func_name: charge.to_string(),
            target: None,
            args: vec![inner],
        }),
    };
}

/// What `e` reads from the variables it is given (`bound`: names a comprehension binds, which
/// are not inputs).
pub(super) fn collect_reads<'e>(
    e: &'e IdedExpr,
    bound: &mut Vec<&'e str>,
    out: &mut std::collections::BTreeSet<String>,
) {
    let free = |name: &str, bound: &Vec<&str>| !bound.contains(&name);
    let field_of = |e: &IdedExpr, bound: &Vec<&str>| -> Option<String> {
        match &e.expr {
            Expr::Select(s) => match &s.operand.expr {
                Expr::Ident(root) if free(root, bound) => Some(format!("{root}.{}", s.field)),
                _ => None,
            },
            Expr::Call(c) if c.func_name == "_[_]" => match c.args.as_slice() {
                [root, key] => match (&root.expr, &key.expr) {
                    (
                        Expr::Ident(root),
                        Expr::Literal(cel::common::ast::LiteralValue::String(k)),
                    ) if free(root, bound) => Some(format!("{root}.{}", k.inner())),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
    };
    if let Some(path) = field_of(e, bound) {
        out.insert(path);
        return;
    }
    match &e.expr {
        Expr::Ident(name) => {
            if free(name, bound) && !out.contains(name.as_str()) {
                out.insert(name.clone());
            }
        }
        Expr::Call(call) => {
            for x in call.target.iter().map(|t| &**t).chain(&call.args) {
                collect_reads(x, bound, out);
            }
        }
        Expr::Comprehension(c) => {
            collect_reads(&c.iter_range, bound, out);
            collect_reads(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(&c.iter_var);
            bound.extend(c.iter_var2.as_deref());
            bound.push(&c.accu_var);
            for x in [&c.loop_cond, &c.loop_step, &c.result] {
                collect_reads(x, bound, out);
            }
            bound.truncate(depth);
        }
        Expr::Select(s) => collect_reads(&s.operand, bound, out),
        Expr::List(l) => l.elements.iter().for_each(|x| collect_reads(x, bound, out)),
        Expr::Map(m) => m
            .entries
            .iter()
            .for_each(|entry| entry_reads(entry, bound, out)),
        Expr::Struct(st) => st
            .entries
            .iter()
            .for_each(|entry| entry_reads(entry, bound, out)),
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

pub(super) fn entry_reads<'e>(
    entry: &'e cel::common::ast::IdedEntryExpr,
    bound: &mut Vec<&'e str>,
    out: &mut std::collections::BTreeSet<String>,
) {
    match &entry.expr {
        EntryExpr::MapEntry(me) => {
            collect_reads(&me.key, bound, out);
            collect_reads(&me.value, bound, out);
        }
        EntryExpr::StructField(f) => collect_reads(&f.value, bound, out),
    }
}
