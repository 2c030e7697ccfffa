//! The cost meter: [`Program`] rewrites a compiled tree once so that comprehension ranges and
//! value-building calls charge a per-thread budget ([`COST_LIMIT`], shared by a [`Budget`]).

use super::functions::{Metering, host_metering};
use super::names::collect_reads;
use cel::common::ast::{CallExpr, EntryExpr, Expr};
use cel::common::value::CowVal;
use cel::objects::Value;
use cel::{Context, ExecutionError, FunctionContext, IdedExpr};
use std::cell::Cell;

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
#[derive(Clone, Debug)]
pub struct Program {
    metered: IdedExpr,
    reads: std::collections::BTreeSet<String>,
}

impl Program {
    /// Takes the parser's tree (cloning it was a tenth of compiling an expression): what it
    /// reads is collected before the tree is metered.
    pub(super) fn new(mut expression: IdedExpr) -> Self {
        let mut reads = std::collections::BTreeSet::new();
        collect_reads(&expression, &mut Vec::new(), &mut reads);
        meter(&mut expression, &mut Vec::new());
        Self {
            metered: expression,
            reads,
        }
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
        self.execute_val(ctx)?.as_ref().try_into()
    }

    /// [`Program::execute`] without converting the result to a `Value`: it borrows what it
    /// can from the context (a `forEach` over an object's containers borrows the containers
    /// instead of copying them twice, into a `Value` and back into each `item`).
    pub fn execute_val<'e, 'v>(
        &'e self,
        ctx: &'e Context<'_, 'v>,
    ) -> Result<CowVal<'e, 'v>, cel::ExecutionError> {
        if !SCOPED.with(Cell::get) {
            SPENT.with(|s| s.set(0));
        }
        let result = Value::resolve_val(&self.metered, ctx);
        let spent = SPENT.with(Cell::get);
        if spent > COST_LIMIT {
            return Err(cost_exceeded());
        }
        result
    }
}

pub(super) fn cost_exceeded() -> ExecutionError {
    ExecutionError::function_error(
        "cost",
        format!(
            "the expression exceeded its evaluation cost budget ({COST_LIMIT} units: elements iterated plus bytes built) on this object"
        ),
    )
}

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

/// The size a value's cost is measured in: elements of a list or map, bytes of a string.
pub(super) fn cost_of(v: &(dyn cel::common::value::Val + '_)) -> u64 {
    if let Some(s) = v.as_sizer() {
        return u64::try_from(*s.size().inner()).unwrap_or(0);
    }
    if let Some(s) = v.downcast_ref::<cel::common::types::CelString>() {
        return s.inner().len() as u64;
    }
    0
}

/// Charges `cost` to this thread's evaluation; an error once the budget is spent.
pub(super) fn charge(cost: u64) -> Result<(), ExecutionError> {
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

pub(super) type Metered = Box<
    dyn for<'c, 'v> Fn(&mut FunctionContext<'c, 'v>) -> Result<CowVal<'c, 'v>, ExecutionError>
        + Send
        + Sync,
>;

/// The charging function: passes its one argument through (moved, not copied) after charging
/// `base` plus the argument's size.
pub(super) fn charging(base: u64) -> Metered {
    Box::new(move |ftx| {
        let value = ftx
            .args
            .pop()
            .ok_or_else(|| ExecutionError::invalid_argument_count(1, 0))?;
        charge(base + cost_of(value.as_ref()))?;
        Ok(value)
    })
}
