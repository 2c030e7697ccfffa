//! Bounds on an expression before and after parsing: its length and bracket nesting (checked
//! before the parser recurses over it) and its syntax tree's depth.

use cel::IdedExpr;
use cel::common::ast::{EntryExpr, Expr};

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
pub(super) const INLINE_SOURCE: usize = 512;
pub(super) const INLINE_NESTING: usize = 6;

/// Enough for the parser's worst case at [`MAX_SOURCE`] in a debug build (measured by
/// `hostile_sources_are_refused_not_a_crash`); only the pages touched are committed.
pub(super) const PARSE_STACK: usize = 256 * 1024 * 1024;

/// Refuses a source too long, or nesting brackets deeper than [`MAX_DEPTH`], before the parser
/// sees it: each bracket is several levels of the parser's recursion (2,000 `(` overflowed it).
pub(super) fn bounded_source(source: &str) -> Result<usize, String> {
    if source.len() > MAX_SOURCE {
        return Err(format!(
            "the expression is {} bytes long; the most is {MAX_SOURCE} (split it into several validations)",
            source.len()
        ));
    }
    // CEL's quotes; no comment syntax is given: a bracket in a `//` comment over-counts, and a
    // raw string ending in a backslash under-counts (MAX_SOURCE and the parse stack still bound
    // the parser).
    let deepest = crate::nesting::deepest(source, b"'\"", None);
    if deepest > MAX_DEPTH {
        return Err(format!(
            "the expression nests brackets {deepest} deep; the most is {MAX_DEPTH} (split it into several validations)"
        ));
    }
    Ok(deepest)
}

/// Runs `parse` inline for a short source, else on a thread with room for the parser's
/// recursion (a bounded source still recurses once per token in the worst case).
pub(super) fn with_stack<T: Send>(
    source: &str,
    nesting: usize,
    parse: impl FnOnce() -> T + Send,
) -> Result<T, String> {
    if (source.len() <= INLINE_SOURCE && nesting <= INLINE_NESTING) || ON_PARSE_STACK.get() {
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
pub(super) fn depth(e: &IdedExpr) -> usize {
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

pub(super) fn entries_depth(entries: &[cel::common::ast::IdedEntryExpr]) -> usize {
    entries
        .iter()
        .map(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => depth(&me.key).max(depth(&me.value)),
            EntryExpr::StructField(f) => depth(&f.value),
        })
        .max()
        .unwrap_or(0)
}

std::thread_local! {
    /// Whether this thread was started with [`PARSE_STACK`] of stack ([`spawn_scoped`]): any
    /// expression parses on it without a thread of its own.
    static ON_PARSE_STACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Starts `f` on a scoped thread with [`PARSE_STACK`] of stack (reserved, committed only as
/// touched), on which expressions compile inline: the evaluation threads, which compile the
/// catalog's expressions as they first evaluate them, would otherwise start one more thread per
/// long expression (three in a one-file audit, each a stack and a malloc arena to set up). If
/// such a stack cannot be had (an address-space limit), `f` gets a default thread, and long
/// expressions their own threads as before.
pub fn spawn_scoped<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    f: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    let f = std::sync::Arc::new(std::sync::Mutex::new(Some(f)));
    let big = {
        let f = std::sync::Arc::clone(&f);
        std::thread::Builder::new()
            .name(name.into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(scope, move || {
                ON_PARSE_STACK.set(true);
                take(&f)()
            })
    };
    big.unwrap_or_else(|_| scope.spawn(move || take(&f)()))
}

/// The closure a spawn attempt was given (a failed attempt leaves it for the next).
fn take<F>(f: &std::sync::Mutex<Option<F>>) -> F {
    f.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .expect("a thread takes its closure once")
}
