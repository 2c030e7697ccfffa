//! The CEL environment every check expression runs in: the CEL standard library plus the
//! Kubernetes library functions checks need, with the names and semantics Kubernetes gives them
//! (`quantity()`, `isQuantity()`, and the quantity methods), and `selectorMatches()` for label
//! selectors. Programs are compiled once, when the checks load.
//!
//! Every evaluation runs under a cost budget ([`COST_LIMIT`]), as Kubernetes gives
//! ValidatingAdmissionPolicy expressions one: a check file is data a team (or an attacker) wrote,
//! and a nested comprehension or a string doubled in a loop must end as `error` for that object,
//! not as minutes of CPU or gigabytes of memory. The `cel` crate has no cost hook, so
//! [`Program`] rewrites the compiled AST once: each comprehension's range and each call that can
//! build a large value pass through an internal function (a name no expression can write) that
//! charges what they cost to a per-thread meter and fails the evaluation once it is spent.

pub use crate::facts::values::{SharedVal, json_to_cel, json_to_val};
use crate::k8s::quantity::Quantity;
use cel::common::ast::{CallExpr, EntryExpr, Expr};
use cel::common::value::CowVal;
use cel::extractors::This;
use cel::objects::{Key, Opaque, Value};
use cel::{Context, Env, ExecutionError, FunctionContext, IdedExpr};
use std::cell::Cell;
use std::sync::Arc;

impl Opaque for Quantity {
    fn runtime_type_name(&self) -> &'static str {
        "kubernetes.Quantity"
    }
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
    /// Compiles an expression; the error text carries the CEL parser's own column pointer.
    pub fn compile(&self, source: &str) -> Result<Program, CompileError> {
        let nesting = bounded_source(source).map_err(CompileError::whole)?;
        let program = with_stack(source, nesting, || {
            let program = self.env.compile(source).map_err(|e| CompileError::parse(&e))?;
            let depth = depth(program.expression());
            if depth > MAX_DEPTH {
                return Err(CompileError::whole(format!(
                    "the expression nests {depth} levels deep; the most is {MAX_DEPTH} (split it into several validations)"
                )));
            }
            Ok(program)
        })
        .map_err(CompileError::whole)??;
        Ok(Program::new(program.expression()))
    }

    /// Whether a call to `name` reaches a function: cel's standard library and extensions (the
    /// environment refuses to let a context redeclare those) or one of ours.
    pub fn is_function(&self, name: &str) -> bool {
        HOST_FUNCTIONS.contains(&name)
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
            .chain(HOST_FUNCTIONS.iter().copied())
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
        let mut walk = Walk {
            env: self,
            scope: variables.iter().map(|v| (*v).to_string()).collect(),
            found: Vec::new(),
        };
        walk.expr(&expr);
        let mut calls = std::collections::HashMap::new();
        collect_calls(&expr, &mut calls);
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

/// The most one evaluation may cost: one unit per element a comprehension walks, and one per
/// call plus the size (bytes or elements) of what a growing call (`+`, the strings and lists
/// extensions' builders, `string()`) returns. Kubernetes' per-expression limit for CRD
/// validation rules is the same million; the built-in catalog spends a few hundred per object.
pub const COST_LIMIT: u64 = 1_000_000;

thread_local! {
    /// What the evaluation running on this thread has spent (reset by [`Program::execute`]).
    static SPENT: Cell<u64> = const { Cell::new(0) };
}

/// The internal functions the cost rewrite inserts: `@` cannot start a name in CEL source.
const CHARGE_ITER: &str = "@cost_iter";
const CHARGE_RESULT: &str = "@cost_result";

/// Calls that cost at most the size of their operands (already charged when they were built)
/// and build nothing bigger: not metered, so checks pay nothing for them.
const UNMETERED: &[&str] = &[
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
    "matches",
    "duration",
    "timestamp",
    "quantity",
    "isQuantity",
    "compareTo",
    "isGreaterThan",
    "isLessThan",
    "asInteger",
    "isInteger",
    "asApproximateFloat",
    "sign",
    "selectorMatches",
    "shannonEntropy",
    "isCredentialName",
    "looksLikeCredential",
    "undecided",
];

/// How deep an expression's syntax tree may nest. The interpreter recurses once per level (and
/// a few times per comprehension), so without a limit a check file nesting a few dozen `map`s
/// overflowed the evaluating thread's stack and aborted the whole audit. The built-in catalog
/// nests at most a dozen levels; cel-go's parser allows 250 but evaluates on a growable stack.
pub const MAX_DEPTH: usize = 40;

/// The longest expression source: the parser recurses per token in the worst case (a chain of
/// 50,000 `+` overflowed the main thread's stack). The built-in catalog's longest is 777 bytes;
/// cel-go allows 100,000 code points, on a growable stack.
pub const MAX_SOURCE: usize = 16 * 1024;

/// Sources longer than this, or nesting brackets deeper than [`INLINE_NESTING`], are parsed on
/// a thread with [`PARSE_STACK`] of stack: a debug build's parser takes tens of KiB per bracket.
const INLINE_SOURCE: usize = 512;
const INLINE_NESTING: usize = 6;

/// Enough for the parser's worst case at [`MAX_SOURCE`] in a debug build (measured by
/// `hostile_sources_are_refused_not_a_crash`); only the pages touched are committed.
const PARSE_STACK: usize = 256 * 1024 * 1024;

/// Refuses a source too long, or nesting brackets deeper than [`MAX_DEPTH`], before the parser
/// sees it: each bracket is several levels of the parser's recursion (2,000 `(` overflowed it).
fn bounded_source(source: &str) -> Result<usize, String> {
    if source.len() > MAX_SOURCE {
        return Err(format!(
            "the expression is {} bytes long; the most is {MAX_SOURCE} (split it into several validations)",
            source.len()
        ));
    }
    let (mut level, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => {
                level += 1;
                deepest = deepest.max(level);
            }
            (None, ')' | ']' | '}') => level = level.saturating_sub(1),
            // Text inside a literal, or any other token.
            _ => {}
        }
    }
    if deepest > MAX_DEPTH {
        return Err(format!(
            "the expression nests brackets {deepest} deep; the most is {MAX_DEPTH} (split it into several validations)"
        ));
    }
    Ok(deepest)
}

/// Runs `parse` inline for a short source, else on a thread with room for the parser's
/// recursion (a bounded source still recurses once per token in the worst case).
fn with_stack<T: Send>(
    source: &str,
    nesting: usize,
    parse: impl FnOnce() -> T + Send,
) -> Result<T, String> {
    if source.len() <= INLINE_SOURCE && nesting <= INLINE_NESTING {
        return Ok(parse());
    }
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("cel-parse".into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(scope, parse)
            .map_err(|e| format!("cannot start a thread to parse the expression: {e}"))?;
        Ok(handle
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e)))
    })
}

/// The nesting depth of `e`: comprehensions count their loop step's depth below their range.
fn depth(e: &IdedExpr) -> usize {
    1 + match &e.expr {
        Expr::Call(call) => call
            .target
            .iter()
            .map(|t| depth(t))
            .chain(call.args.iter().map(depth))
            .max()
            .unwrap_or(0),
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .map(depth)
        .max()
        .unwrap_or(0),
        Expr::Select(s) => depth(&s.operand),
        Expr::List(l) => l.elements.iter().map(depth).max().unwrap_or(0),
        Expr::Map(m) => entries_depth(&m.entries),
        Expr::Struct(st) => entries_depth(&st.entries),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => 0,
    }
}

fn entries_depth(entries: &[cel::common::ast::IdedEntryExpr]) -> usize {
    entries
        .iter()
        .map(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => depth(&me.key).max(depth(&me.value)),
            EntryExpr::StructField(f) => depth(&f.value),
        })
        .max()
        .unwrap_or(0)
}

/// Calls whose work is linear in their operands' sizes without building anything: charged the
/// size of each operand that is not a literal (see `meter`).
const LINEAR_IN_OPERANDS: &[&str] = &[
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "shannonEntropy",
    "looksLikeCredential",
    "isCredentialName",
    "selectorMatches",
    "indexOf",
    "lastIndexOf",
    "@in",
];

thread_local! {
    /// Whether a [`Budget`] spans the evaluations on this thread (else each evaluation has its own).
    static SCOPED: Cell<bool> = const { Cell::new(false) };
}

/// One budget for several evaluations: every expression a check runs on one object (its `when`,
/// its `forEach` and each item's validations and messages) shares it, so a `forEach` of many
/// items cannot buy a fresh budget per item. Without one, each evaluation has its own.
pub struct Budget(());

impl Budget {
    pub fn start() -> Self {
        SPENT.with(|s| s.set(0));
        SCOPED.with(|s| s.set(true));
        Self(())
    }

    /// Whether this budget is spent: the remaining evaluations would only fail at once.
    pub fn exhausted(&self) -> bool {
        SPENT.with(Cell::get) > COST_LIMIT
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        SCOPED.with(|s| s.set(false));
        SPENT.with(|s| s.set(0));
    }
}

/// The message of an exhausted budget (the same as each evaluation's error).
pub fn budget_message() -> String {
    cost_exceeded().to_string()
}

/// A compiled expression that runs under the cost budget.
#[derive(Clone)]
pub struct Program {
    metered: IdedExpr,
    reads: std::collections::BTreeSet<String>,
}

impl Program {
    fn new(expression: &IdedExpr) -> Self {
        let mut metered = expression.clone();
        meter(&mut metered, &mut Vec::new());
        let mut reads = std::collections::BTreeSet::new();
        collect_reads(expression, &mut Vec::new(), &mut reads);
        Self { metered, reads }
    }

    /// What the expression reads, from its syntax tree: each variable it names (`object`) and
    /// each field it selects on one (`related.services`, also as `related['services']`). A
    /// variable used whole appears alone, meaning every field of it.
    pub fn reads(&self) -> &std::collections::BTreeSet<String> {
        &self.reads
    }

    /// Evaluates the expression. Spending more than [`COST_LIMIT`] is an error even where CEL
    /// would absorb the error (`error || true` is `true` in CEL; an exhausted budget never is).
    pub fn execute(&self, ctx: &Context) -> cel::ResolveResult {
        if !SCOPED.with(Cell::get) {
            SPENT.with(|s| s.set(0));
        }
        let result = Value::resolve(&self.metered, ctx);
        let spent = SPENT.with(Cell::get);
        if spent > COST_LIMIT {
            return Err(cost_exceeded());
        }
        result
    }
}

fn cost_exceeded() -> ExecutionError {
    ExecutionError::function_error(
        "cost",
        format!(
            "the expression exceeded its evaluation cost budget ({COST_LIMIT} units: elements iterated plus bytes built) on this object"
        ),
    )
}

/// What `e` reads from the variables it is given (`bound`: names a comprehension binds, which
/// are not inputs).
fn collect_reads(
    e: &IdedExpr,
    bound: &mut Vec<String>,
    out: &mut std::collections::BTreeSet<String>,
) {
    let free = |name: &String, bound: &Vec<String>| !bound.contains(name);
    let field_of = |e: &IdedExpr, bound: &Vec<String>| -> Option<String> {
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
            if free(name, bound) {
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
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
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

fn entry_reads(
    entry: &cel::common::ast::IdedEntryExpr,
    bound: &mut Vec<String>,
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

/// Rewrites `e` so that what can cost more than its size is charged: every comprehension's
/// range, and every call that may build a value larger than its operands. `accumulators` are
/// the comprehension accumulators in scope: the macros' own steps (`@result + [x]`) are left
/// as they are, since the interpreter recognises their shape to append in place.
fn meter(e: &mut IdedExpr, accumulators: &mut Vec<String>) {
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
            let name = call.func_name.clone();
            // Work linear in an operand's size (a search in a string, `in` a list, comparing two
            // lists): each operand that is not a literal is charged its size, so the same call in
            // a loop costs what it reads.
            let linear = LINEAR_IN_OPERANDS.contains(&name.as_str())
                || (matches!(name.as_str(), "_==_" | "_!=_")
                    && !call.args.iter().any(|a| matches!(a.expr, Expr::Literal(_))));
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
            let grows = name == "_+_"
                || (name.starts_with(|c: char| c.is_ascii_alphabetic())
                    && !UNMETERED.contains(&name.as_str()));
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
fn wrap(e: &mut IdedExpr, charge: &str) {
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

/// The size a value's cost is measured in: elements of a list or map, bytes of a string.
fn cost_of(v: &(dyn cel::common::value::Val + '_)) -> u64 {
    if let Some(s) = v.as_sizer() {
        return u64::try_from(*s.size().inner()).unwrap_or(0);
    }
    if let Some(s) = v.downcast_ref::<cel::common::types::CelString>() {
        return s.inner().len() as u64;
    }
    0
}

/// Charges `cost` to this thread's evaluation; an error once the budget is spent.
fn charge(cost: u64) -> Result<(), ExecutionError> {
    let spent = SPENT.with(|s| {
        let spent = s.get().saturating_add(cost);
        s.set(spent);
        spent
    });
    if spent > COST_LIMIT {
        Err(cost_exceeded())
    } else {
        Ok(())
    }
}

type Metered = Box<
    dyn for<'c, 'v> Fn(&mut FunctionContext<'c, 'v>) -> Result<CowVal<'c, 'v>, ExecutionError>
        + Send
        + Sync,
>;

/// The charging function: passes its one argument through (moved, not copied) after charging
/// `base` plus the argument's size.
fn charging(base: u64) -> Metered {
    Box::new(move |ftx| {
        let value = ftx
            .args
            .pop()
            .ok_or_else(|| ExecutionError::invalid_argument_count(1, 0))?;
        charge(base + cost_of(value.as_ref()))?;
        Ok(value)
    })
}

/// The functions `register` adds, for resolving names when checks load.
pub const HOST_FUNCTIONS: &[&str] = &[
    "quantity",
    "isQuantity",
    "compareTo",
    "isGreaterThan",
    "isLessThan",
    "asInteger",
    "isInteger",
    "asApproximateFloat",
    "sign",
    "add",
    "sub",
    "selectorMatches",
    "shannonEntropy",
    "isCredentialName",
    "looksLikeCredential",
    "matches",
    "undecided",
    // Kubernetes' libraries (see `k8s_lib`).
    "isSorted",
    "sum",
    "find",
    "findAll",
    "url",
    "isURL",
    "getScheme",
    "getHost",
    "getHostname",
    "getPort",
    "getEscapedPath",
    "getQuery",
    "ip",
    "isIP",
    "family",
    "isUnspecified",
    "isLoopback",
    "isLinkLocalMulticast",
    "isLinkLocalUnicast",
    "isGlobalUnicast",
    "cidr",
    "isCIDR",
    "containsIP",
    "containsCIDR",
    "masked",
    "prefixLength",
];

/// The most memory one `matches` pattern may compile to (and its lazy DFA may use): a pattern
/// like `(a|b){20000}X` is refused instead of costing seconds on every object.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `matches` as cel defines it (RE2 syntax, unanchored), with the compiled size bounded and
/// compiled patterns cached: checks call it with the same few patterns on every object.
fn matches(
    ftx: &FunctionContext,
    This(this): This<Arc<String>>,
    pattern: Arc<String>,
) -> Result<bool, ExecutionError> {
    bounded_regex(&pattern)
        .map(|re| re.is_match(&this))
        .map_err(|e| ftx.error(e))
}

/// A check's regular expression, compiled within [`REGEX_SIZE_LIMIT`] and cached: checks use
/// the same few patterns on every object (`matches`, `find`, `findAll`).
pub fn bounded_regex(pattern: &str) -> Result<regex::Regex, String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Compiled = Result<regex::Regex, String>;
    static CACHE: Mutex<Option<HashMap<String, Compiled>>> = Mutex::new(None);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let cache = cache.get_or_insert_with(HashMap::new);
    if cache.len() > 1024 {
        cache.clear();
    }
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| {
            regex::RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| match e {
                    regex::Error::CompiledTooBig(_) => format!(
                        "the regular expression is too large: it compiles to more than {} KiB (the limit for a check's pattern)",
                        REGEX_SIZE_LIMIT / 1024
                    ),
                    other => format!("not a valid regular expression: {other}"),
                })
        })
        .clone()
}

/// The standard macros, expanded when parsing: a call left by that name has the wrong arity.
const MACROS: &[&str] = &["has", "all", "exists", "exists_one", "map", "filter"];

/// Names offered as suggestions for a misspelt function: kept only if the environment really
/// declares them (see `CelEnv::is_function`).
const SUGGESTIONS: &[&str] = &[
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
fn is_internal(name: &str) -> bool {
    name.starts_with('@') || name.starts_with("__")
}

/// `a.b.c` as segments, when the expression is only names and field selections.
fn segments(e: &cel::IdedExpr) -> Option<Vec<&str>> {
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
fn distance(a: &str, b: &str) -> usize {
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
fn collect_calls(e: &cel::IdedExpr, out: &mut std::collections::HashMap<u64, String>) {
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

struct Walk<'a> {
    env: &'a CelEnv,
    scope: Vec<String>,
    found: Vec<(u64, String)>,
}

impl Walk<'_> {
    fn expr(&mut self, e: &cel::IdedExpr) {
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

fn register(ctx: &mut Context<'static, 'static>) {
    // Registration only fails on a duplicate name, which is a programming error caught by tests.
    const MSG: &str = "CEL function registered twice";
    ctx.add_function("quantity", quantity).expect(MSG);
    ctx.add_function("isQuantity", is_quantity).expect(MSG);
    ctx.add_function("compareTo", compare_to).expect(MSG);
    ctx.add_function("isGreaterThan", is_greater_than)
        .expect(MSG);
    ctx.add_function("isLessThan", is_less_than).expect(MSG);
    ctx.add_function("asInteger", as_integer).expect(MSG);
    ctx.add_function("isInteger", is_integer).expect(MSG);
    ctx.add_function("asApproximateFloat", as_approximate_float)
        .expect(MSG);
    ctx.add_function("sign", sign).expect(MSG);
    ctx.add_function("add", add_quantity).expect(MSG);
    ctx.add_function("sub", sub_quantity).expect(MSG);
    ctx.add_function("selectorMatches", selector_matches)
        .expect(MSG);
    ctx.add_function("shannonEntropy", |s: Arc<String>| {
        crate::k8s::secrets::entropy(&s)
    })
    .expect(MSG);
    ctx.add_function("isCredentialName", |s: Arc<String>| {
        crate::k8s::secrets::is_credential_key(&s)
    })
    .expect(MSG);
    ctx.add_function("looksLikeCredential", |s: Arc<String>| {
        crate::k8s::secrets::looks_like_credential(&s)
    })
    .expect(MSG);
    ctx.add_function("matches", matches).expect(MSG);
    ctx.add_function("undecided", undecided).expect(MSG);
    {
        use super::k8s_lib as k;
        ctx.add_function("isSorted", k::is_sorted).expect(MSG);
        ctx.add_function("sum", k::sum).expect(MSG);
        ctx.add_function("find", k::find).expect(MSG);
        ctx.add_function("findAll", k::find_all).expect(MSG);
        ctx.add_function("url", k::url).expect(MSG);
        ctx.add_function("isURL", k::is_url).expect(MSG);
        ctx.add_function("getScheme", k::get_scheme).expect(MSG);
        ctx.add_function("getHost", k::get_host).expect(MSG);
        ctx.add_function("getHostname", k::get_hostname).expect(MSG);
        ctx.add_function("getPort", k::get_port).expect(MSG);
        ctx.add_function("getEscapedPath", k::get_escaped_path)
            .expect(MSG);
        ctx.add_function("getQuery", k::get_query).expect(MSG);
        ctx.add_function("ip", k::ip).expect(MSG);
        ctx.add_function("isIP", k::is_ip).expect(MSG);
        ctx.add_function("family", k::family).expect(MSG);
        ctx.add_function("isUnspecified", k::is_unspecified)
            .expect(MSG);
        ctx.add_function("isLoopback", k::is_loopback).expect(MSG);
        ctx.add_function("isLinkLocalMulticast", k::is_link_local_multicast)
            .expect(MSG);
        ctx.add_function("isLinkLocalUnicast", k::is_link_local_unicast)
            .expect(MSG);
        ctx.add_function("isGlobalUnicast", k::is_global_unicast)
            .expect(MSG);
        ctx.add_function("cidr", k::cidr).expect(MSG);
        ctx.add_function("isCIDR", k::is_cidr).expect(MSG);
        ctx.add_function("containsIP", k::contains_ip).expect(MSG);
        ctx.add_function("containsCIDR", k::contains_cidr)
            .expect(MSG);
        ctx.add_function("masked", k::masked).expect(MSG);
        ctx.add_function("prefixLength", k::prefix_length)
            .expect(MSG);
    }
    // The cost meter (see `Program`): a comprehension pays per element, a call per byte built.
    ctx.add_function(CHARGE_ITER, charging(0)).expect(MSG);
    ctx.add_function(CHARGE_RESULT, charging(1)).expect(MSG);
}

/// `undecided(why)`: the check cannot be decided; the result is `error` with `why`.
#[allow(clippy::needless_pass_by_value)]
fn undecided(ftx: &FunctionContext, why: Arc<String>) -> Result<Value, ExecutionError> {
    Err(ftx.error(why.to_string()))
}

fn quantity(ftx: &FunctionContext, s: Arc<String>) -> Result<Value, ExecutionError> {
    Quantity::parse(&s)
        .map(|q| Value::Opaque(Arc::new(q)))
        .map_err(|e| ftx.error(e))
}

#[allow(clippy::needless_pass_by_value)]
fn is_quantity(s: Arc<String>) -> bool {
    Quantity::parse(&s).is_ok()
}

fn as_quantity(ftx: &FunctionContext, v: &Value) -> Result<Quantity, ExecutionError> {
    match v {
        Value::Opaque(o) => o
            .downcast_ref::<Quantity>()
            .cloned()
            .ok_or_else(|| ftx.error("expected a quantity")),
        Value::Int(i) => Ok(Quantity::from_integer(*i)),
        other => Err(ftx.error(format!("expected a quantity, got {}", other.type_of()))),
    }
}

fn this_quantity(ftx: &FunctionContext, this: &Value) -> Result<Quantity, ExecutionError> {
    as_quantity(ftx, this)
}

fn compare_to(
    ftx: &FunctionContext,
    This(this): This<Value>,
    other: Value,
) -> Result<i64, ExecutionError> {
    let a = this_quantity(ftx, &this)?;
    let b = as_quantity(ftx, &other)?;
    Ok(a.cmp(&b) as i64)
}

fn is_greater_than(
    ftx: &FunctionContext,
    This(this): This<Value>,
    other: Value,
) -> Result<bool, ExecutionError> {
    Ok(this_quantity(ftx, &this)? > as_quantity(ftx, &other)?)
}

fn is_less_than(
    ftx: &FunctionContext,
    This(this): This<Value>,
    other: Value,
) -> Result<bool, ExecutionError> {
    Ok(this_quantity(ftx, &this)? < as_quantity(ftx, &other)?)
}

fn as_integer(ftx: &FunctionContext, This(this): This<Value>) -> Result<i64, ExecutionError> {
    let q = this_quantity(ftx, &this)?;
    q.as_integer()
        .ok_or_else(|| ftx.error(format!("cannot convert value {q} to integer")))
}

fn is_integer(ftx: &FunctionContext, This(this): This<Value>) -> Result<bool, ExecutionError> {
    Ok(this_quantity(ftx, &this)?.is_integer())
}

fn as_approximate_float(
    ftx: &FunctionContext,
    This(this): This<Value>,
) -> Result<f64, ExecutionError> {
    Ok(this_quantity(ftx, &this)?.as_approximate_float())
}

fn sign(ftx: &FunctionContext, This(this): This<Value>) -> Result<i64, ExecutionError> {
    Ok(this_quantity(ftx, &this)?.sign())
}

fn add_quantity(
    ftx: &FunctionContext,
    This(this): This<Value>,
    other: Value,
) -> Result<Value, ExecutionError> {
    let sum = this_quantity(ftx, &this)?.add(&as_quantity(ftx, &other)?);
    Ok(Value::Opaque(Arc::new(sum)))
}

fn sub_quantity(
    ftx: &FunctionContext,
    This(this): This<Value>,
    other: Value,
) -> Result<Value, ExecutionError> {
    let diff = this_quantity(ftx, &this)?.sub(&as_quantity(ftx, &other)?);
    Ok(Value::Opaque(Arc::new(diff)))
}

/// `selectorMatches(selector, labels)`: Kubernetes label-selector semantics. `selector` is a
/// `LabelSelector` (`matchLabels` and `matchExpressions`) or a plain map (a Service selector).
/// An empty selector matches everything, as for NetworkPolicy `podSelector: {}`.
fn selector_matches(
    ftx: &FunctionContext,
    selector: Value,
    labels: Value,
) -> Result<bool, ExecutionError> {
    let sel = cel_to_json(&selector);
    let labels = cel_to_json(&labels);
    crate::k8s::selector::matches(&sel, &labels).map_err(|e| ftx.error(e))
}

/// Converts a CEL value back to JSON (for helpers that share Rust code with the facts layer).
pub fn cel_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::UInt(u) => (*u).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::String(s) => s.as_str().into(),
        Value::List(l) => l.iter().map(cel_to_json).collect(),
        Value::Map(m) => m
            .map
            .iter()
            .map(|(k, v)| {
                let key = match k {
                    Key::String(s) => s.to_string(),
                    other => other.to_string(),
                };
                (key, cel_to_json(v))
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Value::Opaque(o) => o.downcast_ref::<Quantity>().map_or_else(
            || super::k8s_lib::display(o.as_ref()).map_or(serde_json::Value::Null, Into::into),
            |q| q.to_string().into(),
        ),
        other => format!("{other:?}").into(),
    }
}

/// Renders a CEL value for a message: strings bare, everything else as JSON.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => cel_to_json(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_against_the_environment() {
        let env = CelEnv::default();
        for f in HOST_FUNCTIONS {
            assert!(env.is_function(f), "{f}");
            // Each is really callable: not an undeclared reference.
            let p = env.compile(&format!("{f}('1')")).unwrap();
            let err = p.execute(&env.root_context()).err().map(|e| e.to_string());
            assert!(
                !err.as_deref().unwrap_or_default().contains("Undeclared"),
                "{f}: {err:?}"
            );
        }
        for ok in [
            "size(object) > 0 && object.name.startsWith('a') && object.name.matches('^a')",
            "object.items.all(x, x.exists(y, y == 1)) && object.items.map(x, x + 1).size() > 0",
            "math.greatest(1, 2) == 2 && strings.quote('a') != '' && type(object) == map",
            "int('1') + double(2) > 0.0 && string(1) == '1' && has(object.a) && duration('1s') > duration('0s')",
            "object.items.filter(x, x > 1).exists_one(y, y == 2) && [1, 2].sort() == [1, 2]",
            "{'a': object}.a != null && dyn(1) == 1 && quantity('1Gi').isGreaterThan(quantity('1Mi'))",
        ] {
            assert_eq!(env.unresolved(ok, &["object"]), Vec::new(), "{ok}");
        }
        let bad = env.unresolved("objects.size() > 0 && lenght(object) > 0", &["object"]);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0]
                .message
                .starts_with("unknown variable `objects` (did you mean `object`?)")
        );
        assert_eq!((bad[0].line, bad[0].column), (1, 1));
        assert!(bad[1].message.starts_with("unknown function `lenght`"));
        assert_eq!((bad[1].line, bad[1].column), (1, 23));
        // A comprehension's variable is not visible outside it.
        let bad = env.unresolved("object.all(x, x > 0) && x > 0", &["object"]);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!((bad[0].line, bad[0].column), (1, 25));
    }

    /// Evaluates `src` with `xs` bound to the list 0..n.
    fn run_over(env: &CelEnv, src: &str, n: i64) -> Result<Value, String> {
        let mut ctx = env.root_context();
        ctx.add_variable_from_value("xs", (0..n).map(Value::Int).collect::<Vec<_>>());
        env.compile(src)
            .unwrap()
            .execute(&ctx)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn evaluation_cost_is_bounded() {
        let env = CelEnv::default();
        // 400^3 = 64 million steps (26 s before the budget): an error, after a million.
        let nested =
            run_over(&env, "xs.all(a, xs.all(b, xs.all(c, a + b + c >= 0)))", 400).unwrap_err();
        assert!(nested.contains("cost budget"), "{nested}");
        // What a call builds is charged by its size: 2,000 copies of a 1,000-byte string.
        let joined = run_over(
            &env,
            &format!("size(xs.map(x, '{}').join('')) > 0", "a".repeat(1000)),
            2000,
        )
        .unwrap_err();
        assert!(joined.contains("cost budget"), "{joined}");
        // CEL absorbs an error in `||` and `exists`: an exhausted budget is never absorbed.
        let absorbed = run_over(
            &env,
            "xs.exists(a, a == 399 || xs.exists(b, xs.exists(c, b + c < 0)))",
            400,
        )
        .unwrap_err();
        assert!(absorbed.contains("cost budget"), "{absorbed}");
        let absorbed =
            run_over(&env, "xs.all(b, xs.all(c, b + c >= 0)) || true", 2000).unwrap_err();
        assert!(absorbed.contains("cost budget"), "{absorbed}");
    }

    #[test]
    fn nesting_is_bounded_at_load_so_evaluation_cannot_overflow_the_stack() {
        let env = CelEnv::default();
        let nest = |levels: usize| {
            let mut e = String::from("'ab'");
            for level in 0..levels {
                e = format!("[{e}].map(s{level}, s{level} + s{level})[0]");
            }
            format!("size({e}) > 0")
        };
        // Twenty levels aborted the audit with a stack overflow: refused when the check loads.
        let deep = env
            .compile(&nest(20))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            deep.contains("nests") && deep.contains("the most is"),
            "{deep}"
        );
        // The deepest expression allowed runs on a thread with the default 2 MiB stack (a test
        // thread's, and less than the engine's), in a debug build.
        let mut levels = 0;
        while env.compile(&nest(levels + 1)).is_ok() {
            levels += 1;
        }
        assert!(levels >= 5, "{levels}");
        assert_eq!(run_over(&env, &nest(levels), 0), Ok(Value::Bool(true)));
        let mut ors = String::from("xs.size() == 0");
        while env.compile(&format!("({ors} || false)")).is_ok() {
            ors = format!("({ors} || false)");
        }
        assert_eq!(run_over(&env, &ors, 0), Ok(Value::Bool(true)));
    }

    #[test]
    fn hostile_sources_are_refused_not_a_crash() {
        let env = CelEnv::default();
        let refused = |src: &str| {
            env.compile(src)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        // Each of these aborted the process with a stack overflow when a check file held it.
        let parens = format!("{}true{}", "(".repeat(2000), ")".repeat(2000));
        assert!(refused(&parens).contains("nests brackets"), "parens");
        let long = format!("1{} > 0", " + 1".repeat(50_000));
        assert!(refused(&long).contains("bytes long"), "long");
        // Brackets inside string literals are text, not nesting.
        assert!(env.compile(&format!("'{}' != ''", "(".repeat(100))).is_ok());
        // The worst a bounded source can be still parses on the parser's own thread: long
        // chains of operators, selections and negations, at the size limit.
        let chain = |unit: &str, head: &str, tail: &str| {
            let n = (MAX_SOURCE - head.len() - tail.len()) / unit.len();
            format!("{head}{}{tail}", unit.repeat(n))
        };
        for src in [
            chain(" + 1", "1", " > 0"),
            chain(".a", "xs", " == 1"),
            chain("!", "", "true"),
            chain("-", "", "1 < 0"),
            chain(" || false", "true", ""),
        ] {
            // Refused by depth, or compiled: never a crash.
            let _ = env.compile(&src);
        }
    }

    /// Review findings: a user-named accumulator (`optMap`'s) escaped the meter, and calls that
    /// read their operands (`contains`, `in`, `==` on lists) were free inside a loop.
    #[test]
    fn no_call_escapes_the_meter() {
        let env = CelEnv::default();
        let big = "a".repeat(4000);
        let opt_map = run_over(
            &env,
            &format!("optional.of('{big}').optMap(s, xs.all(i, size(s + s) > 0)).value()"),
            200_000,
        )
        .unwrap_err();
        assert!(opt_map.contains("cost budget"), "{opt_map}");
        let contains = run_over(
            &env,
            &format!("['{big}'].all(s, xs.all(i, !s.contains('bb')))"),
            200_000,
        )
        .unwrap_err();
        assert!(contains.contains("cost budget"), "{contains}");
        let member = run_over(&env, "xs.all(a, a in xs)", 5_000).unwrap_err();
        assert!(member.contains("cost budget"), "{member}");
        let equal = run_over(&env, "xs.all(a, xs != [a])", 5_000).unwrap_err();
        assert!(equal.contains("cost budget"), "{equal}");
        // Comparing with a literal costs nothing extra: the catalog's common case.
        assert_eq!(
            run_over(&env, "xs.all(a, a != 7 && 'x' != 'y')", 3),
            Ok(Value::Bool(true))
        );
    }

    /// One budget for everything a check evaluates on one object: `forEach` items do not each
    /// get a fresh one.
    #[test]
    fn a_budget_spans_several_evaluations() {
        let env = CelEnv::default();
        let each = env.compile("xs.all(a, a >= 0)").unwrap();
        let mut ctx = env.root_context();
        ctx.add_variable_from_value("xs", (0..400_000).map(Value::Int).collect::<Vec<_>>());
        // Alone, every evaluation fits.
        for _ in 0..3 {
            assert_eq!(each.execute(&ctx), Ok(Value::Bool(true)));
        }
        let budget = Budget::start();
        assert_eq!(each.execute(&ctx), Ok(Value::Bool(true)));
        assert_eq!(each.execute(&ctx), Ok(Value::Bool(true)));
        assert!(
            each.execute(&ctx)
                .unwrap_err()
                .to_string()
                .contains("cost budget")
        );
        assert!(budget.exhausted());
        drop(budget);
        assert_eq!(each.execute(&ctx), Ok(Value::Bool(true)));
    }

    #[test]
    fn the_cost_meter_keeps_cel_semantics() {
        let env = CelEnv::default();
        for (src, want) in [
            ("xs.map(x, x * 2) == [0, 2, 4]", true),
            ("xs.filter(x, x > 0).size() == 2", true),
            ("xs.exists_one(x, x == 1)", true),
            ("xs.all(x, xs.exists(y, y == x))", true),
            ("[1, 2] + [3] == [1, 2, 3] && 'a' + 'b' == 'ab'", true),
            ("'a,b'.split(',').join('-') == 'a-b'", true),
            ("{'a': 1}.all(k, k == 'a')", true),
            ("xs.exists(x, x == 7)", false),
        ] {
            assert_eq!(run_over(&env, src, 3), Ok(Value::Bool(want)), "{src}");
        }
        // The meter resets per evaluation: a program near the budget runs again and again.
        for _ in 0..3 {
            assert_eq!(
                run_over(&env, "xs.all(a, xs.all(b, a + b >= 0))", 600),
                Ok(Value::Bool(true))
            );
        }
        // Errors keep their CEL meaning: `error || true` is true when the budget is not spent.
        assert_eq!(
            run_over(&env, "xs.exists(x, x / 0 == 1 || true)", 3),
            Ok(Value::Bool(true))
        );
    }

    #[test]
    fn matches_is_bounded_and_keeps_cel_semantics() {
        let env = CelEnv::default();
        let run = |src: &str| {
            env.compile(src)
                .unwrap()
                .execute(&env.root_context())
                .map_err(|e| e.to_string())
        };
        assert_eq!(run("'abc'.matches('^a')"), Ok(Value::Bool(true)));
        assert_eq!(
            run("'abc'.matches('b')"),
            Ok(Value::Bool(true)),
            "unanchored"
        );
        assert_eq!(run("matches('abc', 'd')"), Ok(Value::Bool(false)));
        let started = std::time::Instant::now();
        let big = run("'ab'.matches('(a|b){20000}X')").unwrap_err();
        assert!(big.contains("too large"), "{big}");
        // Generous: refusing takes milliseconds; compiling it took seconds per object.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        let invalid = run("'a'.matches('(a')").unwrap_err();
        assert!(
            invalid.contains("not a valid regular expression"),
            "{invalid}"
        );
    }
}
