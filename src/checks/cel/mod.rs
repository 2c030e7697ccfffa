//! The CEL environment every check expression runs in: the CEL standard library plus the
//! Kubernetes library functions checks need, with the names and semantics Kubernetes gives them
//! (`quantity()`, `isQuantity()`, and the quantity methods), and `selectorMatches()` for label
//! selectors. Programs are compiled once: a `--checks` file's when it loads, a built-in check's
//! when first evaluated (`checks::Expr::program`, by cel's faster Pratt parser).
//!
//! Every evaluation runs under a cost budget ([`COST_LIMIT`]), as Kubernetes gives
//! ValidatingAdmissionPolicy expressions one: a check file is data a team (or an attacker) wrote,
//! and a nested comprehension or a string doubled in a loop must end as `error` for that object,
//! not as minutes of CPU or gigabytes of memory. The `cel` crate has no cost hook, so
//! [`Program`] rewrites the compiled AST once: each comprehension's range and each call that can
//! build a large value pass through an internal function (a name no expression can write) that
//! charges what they cost to a per-thread meter and fails the evaluation once it is spent.
//!
//! The parts: the environment and compiling here; `cost.rs` (the meter, [`Program`],
//! [`Budget`]), `fast.rs` (the fast path [`Program`] evaluates first: the nodes whose cel
//! result it knows, on cel's values, and cel for the rest), `rewrite.rs` (the meter's rewrite of a tree and what the tree reads, which
//! build.rs runs on the built-in expressions too), `tree_code.rs` (the trees build.rs encodes),
//! `limits.rs` (source length, nesting and depth bounds), `names.rs` (unresolved names,
//! suggestions), `functions.rs` (the host functions and the value conversions); Kubernetes'
//! extension libraries are in `../k8s_lib.rs`.

mod cost;
mod fast;
mod functions;
mod limits;
mod names;
mod rewrite;
#[cfg(test)]
mod tests;
// Its encoder runs in build.rs and the tests; a run only decodes.
#[cfg_attr(not(test), allow(dead_code))]
mod tree_code;

pub use cost::{Budget, COST_LIMIT, Program, budget_message};
pub use fast::FastPath;
use functions::register;
pub use functions::{REGEX_SIZE_LIMIT, bounded_regex, cel_to_json, display, host_function_names};
pub use limits::{MAX_DEPTH, MAX_SOURCE, spawn_scoped};
use limits::{bounded_source, depth, with_stack};
use names::{MACROS, SUGGESTIONS, Walk, collect_calls};
pub use names::{Unresolved, near};
pub use rewrite::{HOST_FUNCTIONS, Metering};

pub use crate::facts::values::{SharedVal, json_to_cel, json_to_val};
use crate::k8s::quantity::Quantity;
use cel::objects::Opaque;
use cel::{Context, Env};
use std::sync::Arc;

impl Opaque for Quantity {
    fn runtime_type_name(&self) -> &'static str {
        "kubernetes.Quantity"
    }
}

/// The built-in checks' expressions that build.rs parsed and prepared (`rewrite::prepare`):
/// (source, start, end, reads), the metered tree at `start..end` of [`TREES`]; sorted by source.
#[allow(clippy::unreadable_literal)] // generated offsets
static PREBUILT: &[(&str, u32, u32, &[&str])] = include!(concat!(env!("OUT_DIR"), "/cel_trees.rs"));
static TREES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cel_trees.bin"));

/// build.rs's entry for `source`, if it is a built-in check's expression.
fn prebuilt_entry(
    source: &str,
) -> Option<&'static (&'static str, u32, u32, &'static [&'static str])> {
    let i = PREBUILT.binary_search_by(|(s, ..)| (*s).cmp(source)).ok()?;
    PREBUILT.get(i)
}

/// The metered syntax tree build.rs made of `source` (the Pratt parser's tree, as
/// [`CelEnv::compile_builtin`] would parse it, through `rewrite::prepare`) and what it reads,
/// if `source` is a built-in check's expression.
fn prebuilt(source: &str) -> Option<(cel::common::ast::IdedExpr, &'static [&'static str])> {
    let &(_, start, end, reads) = prebuilt_entry(source)?;
    Some((
        tree_code::decode(TREES.get(start as usize..end as usize)?)?,
        reads,
    ))
}

/// What the built-in expression `source` reads, from build.rs's table without decoding its tree
/// (finding a check's dependencies decoded every expression of it, its messages included);
/// `None` for a source build.rs did not prepare.
pub fn prebuilt_reads(source: &str) -> Option<&'static [&'static str]> {
    prebuilt_entry(source).map(|&(.., reads)| reads)
}

/// Compiles expressions and hands out contexts with the function library registered.
pub struct CelEnv {
    env: Arc<Env>,
}

impl Default for CelEnv {
    fn default() -> Self {
        // Kubernetes enables the strings and lists extension libraries; so do we.
        let mut env = Env::stdlib();
        for ext in [
            cel::extensions::strings,
            cel::extensions::lists,
            cel::extensions::math,
        ] {
            env.add_extension(ext)
                .expect("CEL extension registers once");
        }
        Self { env: Arc::new(env) }
    }
}

impl CelEnv {
    /// One environment for the whole process: building one (the standard library and three
    /// extensions) was a thirtieth of a one-file audit's instructions, once per evaluation
    /// thread. Contexts take it by `Arc`, and nothing changes it once built.
    pub fn shared() -> &'static Self {
        static SHARED: std::sync::OnceLock<CelEnv> = std::sync::OnceLock::new();
        SHARED.get_or_init(Self::default)
    }

    /// Compiles an expression; the error text carries the CEL parser's own column pointer.
    pub fn compile(&self, source: &str) -> Result<Program, CompileError> {
        self.parse_bounded(source)
            .map(|program| Program::new(program.expression().clone()))
    }

    /// As [`CelEnv::compile`], with what [`CelEnv::unresolved`] says of the same source, from
    /// one parse: the parser is most of a small run's start-up, and loading the catalog parsed
    /// every expression twice.
    pub fn compile_resolved(
        &self,
        source: &str,
        variables: &[&str],
    ) -> Result<(Program, Vec<Unresolved>), CompileError> {
        let program = self.parse_bounded(source)?;
        let unresolved = self.unresolved_in(
            source,
            program.expression(),
            program.source_info(),
            variables,
        );
        Ok((Program::new(program.expression().clone()), unresolved))
    }

    /// A built-in check's expression, parsed by cel's hand-written Pratt parser instead of its
    /// ANTLR one: the ANTLR parser was more than half of a one-file run's instructions (about
    /// 0.5 ms per expression), the Pratt parser a tenth of that. It expands only the standard
    /// macros and does not report a `--checks` file's syntax errors as the ANTLR parser words
    /// them, so it is kept to the catalog, where `tests/catalog.rs` holds every expression's
    /// tree to the ANTLR parser's: the same tree is the same program.
    /// It needs no environment: the Pratt parser is built from nothing but its defaults.
    pub fn compile_builtin(source: &str) -> Result<Program, CompileError> {
        if let Some((metered, reads)) = prebuilt(source) {
            return Ok(Program::prepared(metered, reads));
        }
        let nesting = bounded_source(source).map_err(CompileError::whole)?;
        with_stack(source, nesting, || {
            let expr = cel::parser::PrattParser::new()
                .parse(source)
                .map_err(|e| CompileError::parse(&e))?;
            let depth = depth(&expr);
            if depth > MAX_DEPTH {
                return Err(CompileError::whole(format!(
                    "the expression nests {depth} levels deep; the most is {MAX_DEPTH} (split it into several validations)"
                )));
            }
            Ok(Program::new(expr))
        })
        .map_err(CompileError::whole)?
    }

    /// `source` parsed within the bounds on its length, nesting and depth.
    fn parse_bounded(&self, source: &str) -> Result<cel::Program, CompileError> {
        let nesting = bounded_source(source).map_err(CompileError::whole)?;
        with_stack(source, nesting, || {
            let program = self.env.compile(source).map_err(|e| CompileError::parse(&e))?;
            let depth = depth(program.expression());
            if depth > MAX_DEPTH {
                return Err(CompileError::whole(format!(
                    "the expression nests {depth} levels deep; the most is {MAX_DEPTH} (split it into several validations)"
                )));
            }
            Ok(program)
        })
        .map_err(CompileError::whole)?
    }

    /// Whether a call to `name` reaches a function: cel's standard library and extensions (the
    /// environment refuses to let a context redeclare those) or one of ours.
    pub fn is_function(&self, name: &str) -> bool {
        host_function_names().any(|f| f == name)
            || Context::with_env(self.env.clone())
                .add_function(name, || false)
                .is_err()
    }

    /// Whether `name` is a type (`int`, `string`, `list`...), which an expression may name.
    pub fn is_type(&self, name: &str) -> bool {
        self.env.types().find_type(name).is_some()
    }

    fn unknown_function(&self, name: &str) -> String {
        if MACROS.contains(&name) {
            return format!(
                "`{name}` is a macro called with the wrong number of arguments (e.g. `list.{name}(x, p)`, `has(a.b)`)"
            );
        }
        let known = SUGGESTIONS
            .iter()
            .copied()
            .filter(|f| self.is_function(f))
            .chain(host_function_names())
            .chain(MACROS.iter().copied());
        let hint = near(name, known);
        let hint = if hint.is_empty() {
            String::new()
        } else {
            format!(" (did you mean `{}`?)", hint.join("`, `"))
        };
        format!(
            "unknown function `{name}`{hint}; available: the CEL standard library and macros, its strings, lists and math extensions, Kubernetes' libraries (quantity, url, ip, cidr, lists, regex) and this tool's (docs/writing-checks.md lists them)"
        )
    }

    /// Every variable or function `source` names that is neither in `variables` (nor bound by
    /// a comprehension) nor declared in this environment: each would be an error on every
    /// object. Empty when the source does not parse (`compile` reports that).
    pub fn unresolved(&self, source: &str, variables: &[&str]) -> Vec<Unresolved> {
        // Only called on a source that compiled: its size and depth are within bounds.
        let nesting = bounded_source(source).unwrap_or(MAX_DEPTH);
        let Ok(Ok((expr, info))) = with_stack(source, nesting, || {
            self.env.parser().parse_with_source_info(source)
        }) else {
            return Vec::new();
        };
        self.unresolved_in(source, &expr, &info, variables)
    }

    /// [`CelEnv::unresolved`] of `expr`, parsed from `source` with `info`.
    fn unresolved_in(
        &self,
        source: &str,
        expr: &cel::IdedExpr,
        info: &cel::common::ast::SourceInfo,
        variables: &[&str],
    ) -> Vec<Unresolved> {
        let mut walk = Walk {
            env: self,
            scope: variables.iter().map(|v| (*v).to_string()).collect(),
            found: Vec::new(),
        };
        walk.expr(expr);
        let mut calls = std::collections::HashMap::new();
        collect_calls(expr, &mut calls);
        walk.found
            .into_iter()
            .map(|(id, message)| {
                let mut start = info.offset_for(id).map_or(0, |(s, _)| s as usize);
                // A call's offset is its `(`: point at the function's name instead.
                if let Some(name) = calls.get(&id)
                    && source
                        .get(..start)
                        .is_some_and(|b| b.trim_end().ends_with(name.as_str()))
                {
                    start = source[..start].trim_end().len() - name.len();
                }
                let before = source.get(..start.min(source.len())).unwrap_or(source);
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                Unresolved {
                    line,
                    column,
                    message,
                }
            })
            .collect()
    }

    /// A root context with the function library; evaluations add variables in inner scopes.
    pub fn root_context(&self) -> Context<'static, 'static> {
        let mut ctx = Context::with_env(self.env.clone());
        register(&mut ctx);
        ctx
    }
}

/// Why an expression does not compile, and where in it when the parser says (the caller maps
/// that to the check file's line and column: no message is parsed back for a position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    /// 1-based line and column within the expression.
    pub position: Option<(usize, usize)>,
}

impl CompileError {
    fn whole(message: String) -> Self {
        Self {
            message,
            position: None,
        }
    }

    /// The parser's first error (the others usually follow from it).
    fn parse(errors: &cel::ParseErrors) -> Self {
        errors.errors.first().map_or_else(
            || Self::whole("the expression does not parse".into()),
            |e| Self {
                message: e.msg.clone(),
                position: match (usize::try_from(e.pos.0), usize::try_from(e.pos.1)) {
                    (Ok(line), Ok(column)) if line > 0 => Some((line, column.max(1))),
                    _ => None,
                },
            },
        )
    }
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some((line, column)) => {
                write!(f, "{} (at {line}:{column} of the expression)", self.message)
            }
            None => f.write_str(&self.message),
        }
    }
}
