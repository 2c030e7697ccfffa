//! The cost meter: [`Program`] runs a tree rewritten once (`rewrite::meter`, at build time for
//! the built-in checks) so that comprehension ranges and value-building calls charge a
//! per-thread budget ([`COST_LIMIT`], shared by a [`Budget`]).

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
    pub(super) static SPENT: Cell<u64> = const { Cell::new(0) };
}

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
    reads: Reads,
}

/// The same for a built-in expression and the same source in a `--checks` file (the catalog's
/// tests compare them): the reads as a list, wherever they came from.
impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("metered", &self.metered)
            .field("reads", &self.reads().collect::<Vec<_>>())
            .finish()
    }
}

/// What an expression reads, sorted, each once: from build.rs's table for a built-in
/// expression, else collected when it compiled.
#[derive(Clone, Debug)]
enum Reads {
    Built(&'static [&'static str]),
    Collected(std::collections::BTreeSet<String>),
}

impl Program {
    /// Takes the parser's tree (cloning it was a tenth of compiling an expression): what it
    /// reads is collected before the tree is metered (`rewrite::prepare`).
    pub(super) fn new(expression: IdedExpr) -> Self {
        let (metered, reads) = super::rewrite::prepare(expression);
        Self {
            metered,
            reads: Reads::Collected(reads),
        }
    }

    /// A built-in expression as build.rs prepared it: `metered` already rewritten by
    /// `rewrite::prepare`, `reads` what that found.
    pub(super) fn prepared(metered: IdedExpr, reads: &'static [&'static str]) -> Self {
        Self {
            metered,
            reads: Reads::Built(reads),
        }
    }

    /// The tree as it runs (the tests evaluate it on the fast path alone).
    #[cfg(test)]
    pub(super) fn metered_tree(&self) -> &IdedExpr {
        &self.metered
    }

    /// What the expression reads, from its syntax tree: each variable it names (`object`) and
    /// each field it selects on one (`related.services`, also as `related['services']`). A
    /// variable used whole appears alone, meaning every field of it.
    pub fn reads(&self) -> impl Iterator<Item = &str> {
        let (built, collected) = match &self.reads {
            Reads::Built(r) => (Some(r.iter().copied()), None),
            Reads::Collected(r) => (None, Some(r.iter().map(String::as_str))),
        };
        built
            .into_iter()
            .flatten()
            .chain(collected.into_iter().flatten())
    }

    /// Evaluates the expression. Spending more than [`COST_LIMIT`] is an error even where CEL
    /// would absorb the error (`error || true` is `true` in CEL; an exhausted budget never is).
    pub fn execute(&self, ctx: &Context) -> cel::ResolveResult {
        if !SCOPED.with(Cell::get) {
            SPENT.with(|s| s.set(0));
        }
        // Boolean logic over fields is answered without cel's machinery where the answer is
        // known to be cel's; anything else is cel's to evaluate (`fast`).
        if let Some(outcome) = super::fast::execute(&self.metered, ctx) {
            return outcome;
        }
        self.execute_val(ctx)?.as_ref().try_into()
    }

    /// A `forEach` list's elements, borrowed where they can be, where the fast path gives them
    /// (`fast::items`);
    /// `None`: evaluate with [`Program::execute_val`].
    pub fn execute_items<'e>(&'e self, ctx: &'e Context<'e, 'e>) -> Option<Vec<CowVal<'e, 'e>>> {
        // As `execute`: outside a `Budget` each evaluation has its own.
        if !SCOPED.with(Cell::get) {
            SPENT.with(|s| s.set(0));
        }
        super::fast::items(&self.metered, ctx)
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
