//! A fast path for the common part of a check's expression: boolean logic over fields of the
//! objects (`has(item.livenessProbe.httpGet) && item.livenessProbe.httpGet.path in [...]`),
//! evaluated straight on the values cel holds, without cel's machinery.
//!
//! Why our own: cel's interpreter resolves every `a.b.c` as a qualified name (the name joined,
//! each prefix looked up in each scope), allocates intermediate results and builds errors it
//! then drops; evaluation was half of a manifest audit, and the bench's target 1 (issue 12)
//! could not be met inside it. This module is not a second CEL. It evaluates a node only where
//! it knows cel's answer for it (the list at [`step`]); any other node outside a comprehension
//! is handed to cel (`Value::resolve_val`, in the same context, so the same value), and its
//! value used; inside a comprehension the whole comprehension is handed to cel. An expression
//! whose value is an error is evaluated again by cel from the start, so every message is cel's;
//! the errors cel absorbs (`error || true`) are absorbed by the same rules. Operands are
//! evaluated in cel's order and an error stops a node where cel's `?` stops it, so the cost
//! meter is charged what cel's evaluation charges (the same `@cost_*` calls, the same sizes);
//! what a node handed to cel had charged is taken back first.
//!
//! The one assumption beyond cel's rules: a select chain `a.b.c` whose root is a variable is
//! that variable with its fields selected, as cel resolves it when no variable is named `a.b`
//! or `a.b.c`. Variables are named by this program (the Kubernetes and service variables, a
//! comprehension's), never with a dot.
//!
//! Held to cel by `checks/cel/tests.rs::the_fast_path_agrees_with_cel` (value and charges, on
//! the semantics it must not guess) and by tests/equivalence.rs, whose straightforward path
//! evaluates with cel alone ([`FastPath`]): the same report on every fixture and a generated
//! release.

use super::cost::{SPENT, cost_exceeded};
use super::rewrite::{CHARGE_ITER, CHARGE_RESULT};
use crate::k8s::quantity::Quantity;
use cel::common::ast::{CallExpr, ComprehensionExpr, Expr, IdedExpr, LiteralValue};
use cel::common::types::{CelBool, CelDouble, CelInt, CelMap, CelNull, CelUInt, Kind};
use cel::common::value::{BuiltinRef, CowVal, Val};
use cel::objects::Value;
use cel::{Context, ExecutionError};
use std::rc::Rc;

/// A value on the fast path: a scalar, or a value cel holds (borrowed, or made by cel for a
/// part of the expression this module left to it).
#[derive(Clone)]
enum Fv<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(&'a str),
    /// A type, by cel's name for it (`type(x)`, `int`, `map`...).
    Type(&'a str),
    /// A list literal of the expression, evaluated (`x in ['a', 'b']`).
    List(Rc<[Fv<'a>]>),
    /// A Kubernetes quantity (`quantity(s)`, the host function).
    Quantity(Rc<Quantity>),
    /// A map or list (or any other value) cel holds.
    Val(&'a dyn Val),
    /// A value cel made (a call this module leaves to cel): scalars are read as the above.
    Owned(Rc<dyn Val + 'a>),
}

/// cel gives an error here. Which one is cel's to say: an expression whose value is an error
/// is evaluated again by cel; one that absorbs it (`error || true`) has cel's value.
struct Failed;

/// A step of the fast path: `None` where this module does not know cel's answer.
type Out<'a> = Option<Result<Fv<'a>, Failed>>;

/// The value of a step, or the step's outcome returned (an error propagates as cel's `?` does).
macro_rules! value {
    ($step:expr) => {
        match $step {
            Some(Ok(v)) => v,
            Some(Err(f)) => return Some(Err(f)),
            None => return None,
        }
    };
}

impl<'a> Fv<'a> {
    /// A value cel holds, as the fast path reads it.
    fn of(v: &'a dyn Val) -> Self {
        Self::scalar(v).unwrap_or(Self::Val(v))
    }

    fn scalar(v: &'a dyn Val) -> Option<Self> {
        Some(match v.get_type().kind() {
            Kind::Boolean => Self::Bool(*v.downcast_ref::<CelBool>()?.inner()),
            Kind::Int => Self::Int(*v.downcast_ref::<CelInt>()?.inner()),
            Kind::UInt => Self::UInt(*v.downcast_ref::<CelUInt>()?.inner()),
            Kind::Double => Self::Double(*v.downcast_ref::<CelDouble>()?.inner()),
            Kind::NullType => {
                v.downcast_ref::<CelNull>()?;
                Self::Null
            }
            Kind::String => match v.as_builtin() {
                BuiltinRef::String(s) => Self::Str(s.inner()),
                _ => return None,
            },
            _ => return None,
        })
    }

    /// A value cel made.
    fn owned(v: Box<dyn Val + 'a>) -> Self {
        let v: Rc<dyn Val + 'a> = Rc::from(v);
        // A string stays where it is, read through `text`.
        let copied = match Fv::scalar(v.as_ref()) {
            Some(Fv::Bool(b)) => Some(Fv::Bool(b)),
            Some(Fv::Int(i)) => Some(Fv::Int(i)),
            Some(Fv::UInt(u)) => Some(Fv::UInt(u)),
            Some(Fv::Double(d)) => Some(Fv::Double(d)),
            Some(Fv::Null) => Some(Fv::Null),
            _ => None,
        };
        copied.unwrap_or(Fv::Owned(v))
    }

    /// A string, borrowed or made by cel.
    fn text(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            Self::Owned(v) => match v.as_builtin() {
                BuiltinRef::String(s) => Some(s.inner()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The value cel holds for this one, if cel holds it (not a scalar of the fast path).
    fn held(&self) -> Option<&(dyn Val + 'a)> {
        match self {
            Self::Val(v) => Some(*v),
            Self::Owned(v) => Some(v.as_ref()),
            _ => None,
        }
    }

    /// A map cel holds, borrowed for `'a` (a map cel made is not selected into here).
    fn map(&self) -> Option<&'a CelMap<'a>> {
        match self {
            Self::Val(v) => match v.as_builtin() {
                BuiltinRef::Map(m) => Some(m),
                _ => None,
            },
            _ => None,
        }
    }

    /// The size the cost meter charges for this value (`cost::cost_of`): elements of a list or
    /// map, a string's size as cel gives it (code points), nothing for a scalar.
    fn cost(&self) -> u64 {
        match self {
            Self::Str(s) => s.chars().count() as u64,
            Self::List(l) => l.len() as u64,
            Self::Val(_) | Self::Owned(_) => super::cost::cost_of(self.held().expect("held")),
            _ => 0,
        }
    }

    /// cel's name for this value's type, as `type()` gives it.
    fn type_name(&self) -> Option<&str> {
        Some(match self {
            Self::Null => "null_type",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::UInt(_) => "uint",
            Self::Double(_) => "double",
            Self::Str(_) => "string",
            Self::Val(_) | Self::Owned(_) => self.held()?.get_type().name(),
            Self::Type(_) | Self::List(_) | Self::Quantity(_) => return None,
        })
    }

    /// `self == other` where the fast path knows cel's answer: two scalars of one type, two
    /// types, or `null` on either side (a value equals null only if it is null).
    fn equals(&self, other: &Self) -> Option<bool> {
        if let (Some(a), Some(b)) = (self.text(), other.text()) {
            return Some(a == b);
        }
        Some(match (self, other) {
            (Self::Null, Self::Null) => true,
            (Self::Null, x) | (x, Self::Null) => match x {
                Self::Bool(_) | Self::Int(_) | Self::UInt(_) | Self::Double(_) | Self::Str(_) => {
                    false
                }
                // A map or list is never null (`null.equals` asks for a null; their `equals`
                // for a map or list); another value cel holds (an optional) is not known here.
                Self::Val(v)
                    if matches!(v.as_builtin(), BuiltinRef::Map(_) | BuiltinRef::List(_)) =>
                {
                    false
                }
                _ => return None,
            },
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::Int(a), Self::Int(b)) => a == b,
            (Self::UInt(a), Self::UInt(b)) => a == b,
            (Self::Type(a), Self::Type(b)) => a == b,
            _ => return None,
        })
    }

    /// The value as cel binds a variable (a comprehension's, for [`delegate`]).
    fn boxed(&self) -> Option<Box<dyn Val + 'a>> {
        use cel::common::types::{CelList, CelString};
        Some(match self {
            Self::Null => Box::new(CelNull),
            Self::Bool(b) => Box::new(CelBool::from(*b)),
            Self::Int(i) => Box::new(CelInt::from(*i)),
            Self::UInt(u) => Box::new(CelUInt::from(*u)),
            Self::Double(d) => Box::new(CelDouble::from(*d)),
            Self::Str(s) => Box::new(CelString::from(*s)),
            Self::List(items) => Box::new(CelList::from(
                items.iter().map(Fv::boxed).collect::<Option<Vec<_>>>()?,
            )),
            Self::Val(v) => v.clone_as_boxed(),
            Self::Owned(v) => v.clone_as_boxed(),
            Self::Quantity(q) => {
                Box::<dyn Val>::try_from(Value::Opaque(std::sync::Arc::new((**q).clone()))).ok()?
            }
            Self::Type(_) => return None,
        })
    }

    /// The value bound for cel by [`delegate`]: the same map or list, never a copy of one. A
    /// copy of a map cel made is a new hash map, which lists its keys in another order than
    /// the map it copies: `m.map(k, k)[0]` and `dyn(m).map(k, k)[0]` (the second handed to
    /// cel) would differ where cel's one binding makes them equal (review finding). The
    /// objects' maps and lists are shared (`SharedVal`), so their copies are the same map; a
    /// map cel made, or one bound without sharing, makes the node cel's as a whole. A list
    /// built here past [`MAX_BUILT`] is cel's too (copied on every step, it was quadratic).
    fn bound(&self) -> Option<Box<dyn Val + 'a>> {
        use cel::common::types::CelList;
        match self {
            Self::List(items) if items.len() > MAX_BUILT => None,
            Self::List(items) => Some(Box::new(CelList::from(
                items.iter().map(Fv::bound).collect::<Option<Vec<_>>>()?,
            ))),
            Self::Val(v) => shared_copy(*v),
            Self::Owned(v) => shared_copy(v.as_ref()),
            other => other.boxed(),
        }
    }

    /// The elements of a list built here or borrowed from cel (not one cel made).
    fn elements(&self) -> Option<Vec<Fv<'a>>> {
        match self {
            Self::List(items) => Some(items.to_vec()),
            Self::Val(v) => match v.as_builtin() {
                BuiltinRef::List(l) => Some(l.inner().iter().map(|x| Fv::of(x.as_ref())).collect()),
                _ => None,
            },
            _ => None,
        }
    }

    /// A quantity as the quantity functions read their operands (`functions::as_quantity`):
    /// a quantity, or an int.
    fn quantity(&self) -> Option<Quantity> {
        match self {
            Self::Quantity(q) => Some((**q).clone()),
            Self::Int(i) => Some(Quantity::from_integer(*i)),
            _ => None,
        }
    }

    fn into_value(self) -> Option<Value> {
        Some(match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(b),
            Self::Int(i) => Value::Int(i),
            Self::UInt(u) => Value::UInt(u),
            Self::Double(d) => Value::Float(d),
            Self::Str(s) => Value::String(std::sync::Arc::new(s.to_string())),
            Self::Val(_) | Self::Owned(_) => Value::try_from(self.held()?).ok()?,
            Self::Type(_) | Self::List(_) | Self::Quantity(_) => return None,
        })
    }
}

thread_local! {
    /// Whether evaluations on this thread may take the fast path (see [`FastPath`]).
    static ENABLED: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Whether this thread's evaluations take the fast path, for as long as the guard lives: the
/// engine's straightforward reference path evaluates with cel alone, so that
/// tests/equivalence.rs compares the fast path's reports with cel's.
pub struct FastPath(bool);

impl FastPath {
    pub fn set(enabled: bool) -> Self {
        Self(ENABLED.with(|e| e.replace(enabled)))
    }
}

impl Drop for FastPath {
    fn drop(&mut self) {
        ENABLED.with(|e| e.set(self.0));
    }
}

fn spent() -> u64 {
    SPENT.with(std::cell::Cell::get)
}

fn set_spent(to: u64) {
    SPENT.with(|s| s.set(to));
}

/// The outcome of the fast path: cel's value, cel's cost error, or `None` (cel evaluates the
/// expression, as for one that fails: the error's words are cel's).
pub(super) fn execute(expr: &IdedExpr, ctx: &Context) -> Option<Result<Value, ExecutionError>> {
    if !ENABLED.with(std::cell::Cell::get) {
        return None;
    }
    let spent_before = spent();
    let mut locals = Vec::new();
    let outcome = match eval(expr, ctx, &mut locals) {
        Some(Ok(v)) => v.into_value(),
        Some(Err(Failed)) | None => None,
    };
    let Some(value) = outcome else {
        // cel evaluates the whole expression again and charges what it spends.
        set_spent(spent_before);
        return None;
    };
    Some(if spent() > super::cost::COST_LIMIT {
        Err(cost_exceeded())
    } else {
        Ok(value)
    })
}

/// A `forEach`'s elements where the fast path gives its list: borrowed from the values cel
/// holds, or made (a map an element is built into); else `None`, and cel evaluates it.
pub(super) fn items<'a>(
    expr: &'a IdedExpr,
    ctx: &'a Context<'a, 'a>,
) -> Option<Vec<CowVal<'a, 'a>>> {
    if !ENABLED.with(std::cell::Cell::get) {
        return None;
    }
    let spent_before = spent();
    let mut locals = Vec::new();
    let element = |item: &Fv<'a>| -> Option<CowVal<'a, 'a>> {
        Some(match item {
            Fv::Val(v) => CowVal::Borrowed(*v),
            other => CowVal::Owned(other.boxed()?),
        })
    };
    let items = match eval(expr, ctx, &mut locals) {
        Some(Ok(Fv::Owned(made))) => match made.as_builtin() {
            BuiltinRef::List(l) => Some(
                l.inner()
                    .iter()
                    .map(|x| CowVal::Owned(x.clone_as_boxed()))
                    .collect(),
            ),
            _ => None,
        },
        Some(Ok(list)) => list
            .elements()
            .and_then(|e| e.iter().map(element).collect()),
        _ => None,
    };
    // Past the budget cel's evaluation fails; it gives that error itself.
    if items.is_none() || spent() > super::cost::COST_LIMIT {
        set_spent(spent_before);
        return None;
    }
    items
}

/// The comprehension variables in scope, innermost last.
type Locals<'a> = Vec<(&'a str, Fv<'a>)>;

/// `e` evaluated: by [`step`] where it knows cel's answer, else by cel, in the same context
/// with the comprehension variables in scope bound as cel binds them ([`delegate`]); cel then
/// charges what `e` costs in place of what the fast path had charged.
fn eval<'a>(e: &'a IdedExpr, ctx: &'a Context<'a, 'a>, locals: &mut Locals<'a>) -> Out<'a> {
    let entry = spent();
    match step(e, ctx, locals) {
        None => {
            set_spent(entry);
            delegate(e, ctx, locals)
        }
        out => out,
    }
}

/// `e` evaluated by cel. Outside a comprehension in the expression's own context; inside one,
/// in a scope holding the comprehension variables in scope (innermost last, so it shadows),
/// where cel's evaluation has them in a scope each: a name resolves to the same value.
fn delegate<'a>(e: &'a IdedExpr, ctx: &'a Context<'a, 'a>, locals: &Locals<'a>) -> Out<'a> {
    if locals.is_empty() {
        return Some(match Value::resolve_val(e, ctx) {
            Ok(CowVal::Borrowed(v)) => Ok(Fv::of(v)),
            Ok(CowVal::Owned(v)) => Ok(Fv::owned(v)),
            Err(_) => Err(Failed),
        });
    }
    let mut scope = ctx.new_inner_scope();
    for (name, value) in locals {
        scope.add_variable_as_val(*name, value.bound()?);
    }
    Some(match Value::resolve_val(e, &scope) {
        Ok(CowVal::Owned(v)) => Ok(Fv::owned(v)),
        // A value of the scope, kept past it: the same map or list, as for the bindings.
        Ok(CowVal::Borrowed(v)) => Ok(Fv::owned(shared_copy(v)?)),
        Err(_) => Err(Failed),
    })
}

/// `v` copied where the copy is the same value to cel: a scalar or a string, or a map or list
/// shared by reference (`SharedVal`); `None` for any other container (see [`Fv::bound`]).
fn shared_copy<'a>(v: &(dyn Val + 'a)) -> Option<Box<dyn Val + 'a>> {
    let copy = v.clone_as_boxed();
    let same = match (v.as_builtin(), copy.as_builtin()) {
        (BuiltinRef::Map(a), BuiltinRef::Map(b)) => std::ptr::eq(a, b),
        (BuiltinRef::List(a), BuiltinRef::List(b)) => std::ptr::eq(a, b),
        (
            BuiltinRef::Map(_)
            | BuiltinRef::List(_)
            | BuiltinRef::Optional(_)
            | BuiltinRef::Struct(_),
            _,
        ) => false,
        _ => !matches!(v.get_type().kind(), Kind::Map | Kind::List),
    };
    same.then_some(copy)
}

/// `e`'s value where every step is one of these, with cel's result; `None` at anything else:
/// - literals (not bytes), variables, comprehension variables, type names;
/// - `a.f`, `a[k]` and `has(a.f)` on a map (a missing key is cel's error), `l[i]` on a list;
/// - `&&`, `||` (absorbing an error as cel does), `!`, `_ ? _ : _`;
/// - `==`, `!=` where [`Fv::equals`] knows; `<`, `<=`, `>`, `>=` on two ints, uints or strings;
/// - `+`, `-` on two ints (without overflow);
/// - `in` a list of strings or a map, for a string;
/// - `size` of a string, list or map; `startsWith`, `endsWith`, `contains` on strings; `type`;
/// - the cost meter's calls, charged as `cost::charging` charges them;
/// - list literals, and comprehensions over a list or map whose steps are the above and fail
///   nowhere (cel defers a step's error: that is left to it).
///
/// Operands are evaluated in cel's order, and an operand's error ends the step as cel's `?`
/// does, so that what is evaluated, and charged, is what cel evaluates.
fn step<'a>(e: &'a IdedExpr, ctx: &'a Context<'a, 'a>, locals: &mut Locals<'a>) -> Out<'a> {
    match &e.expr {
        Expr::Literal(l) => Some(Ok(match l {
            LiteralValue::Boolean(b) => Fv::Bool(*b.inner()),
            LiteralValue::Int(i) => Fv::Int(*i.inner()),
            LiteralValue::UInt(u) => Fv::UInt(*u.inner()),
            LiteralValue::Double(d) => Fv::Double(*d.inner()),
            LiteralValue::String(s) => Fv::Str(s.inner()),
            LiteralValue::Null => Fv::Null,
            LiteralValue::Bytes(_) => return None,
        })),
        Expr::Ident(name) => variable(name, ctx, locals).map(Ok),
        Expr::Select(s) => {
            let operand = value!(eval(&s.operand, ctx, locals));
            if let Fv::Owned(made) = &operand {
                // A map cel made (a call's result): the field is copied out of it.
                let BuiltinRef::Map(map) = made.as_builtin() else {
                    return None;
                };
                let found = field(map, &s.field);
                return Some(if s.test {
                    Ok(Fv::Bool(found.is_some()))
                } else {
                    found.map(|v| Fv::owned(v.clone_as_boxed())).ok_or(Failed)
                });
            }
            let map = operand.map()?;
            let found = field(map, &s.field);
            Some(if s.test {
                Ok(Fv::Bool(found.is_some()))
            } else {
                found.map(Fv::of).ok_or(Failed)
            })
        }
        Expr::Call(call) => self::call(call, ctx, locals),
        Expr::List(l) => {
            if !l.optional_indices.is_empty() {
                return None;
            }
            let mut items = Vec::with_capacity(l.elements.len());
            for x in &l.elements {
                items.push(value!(eval(x, ctx, locals)));
            }
            Some(Ok(Fv::List(items.into())))
        }
        Expr::Comprehension(c) => comprehension(c, ctx, locals),
        Expr::Map(m) => map_literal(m, ctx, locals),
        Expr::Struct(_) | Expr::Unspecified => None,
    }
}

/// The type names an expression may compare `type(x)` with.
const TYPE_NAMES: &[&str] = &[
    "bool",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// A variable: a comprehension's, innermost first, else the context's; else a type's name.
fn variable<'a>(name: &'a str, ctx: &'a Context<'a, 'a>, locals: &Locals<'a>) -> Option<Fv<'a>> {
    if let Some((_, v)) = locals.iter().rev().find(|(n, _)| *n == name) {
        return Some(v.clone());
    }
    match ctx.get_variable(name) {
        Some(CowVal::Borrowed(v)) => Some(Fv::of(v)),
        Some(CowVal::Owned(_)) => None,
        None => TYPE_NAMES.contains(&name).then_some(Fv::Type(name)),
    }
}

/// The value at string key `name` of `map`: the entry cel's lookup finds. A small map is
/// scanned (cheaper than hashing the key with SipHash, as cel's map does).
fn field<'b, 'v>(map: &'b CelMap<'v>, name: &str) -> Option<&'b (dyn Val + 'v)> {
    let entries = map.inner();
    if entries.len() <= 8 {
        entries.iter().find_map(|(k, v)| match k {
            cel::common::types::CelMapKey::String(s) if s.inner() == name => Some(v.as_ref()),
            _ => None,
        })
    } else {
        let key = cel::common::types::CelString::from(name);
        match cel::common::traits::Indexer::get(map, &key).ok()? {
            CowVal::Borrowed(v) => Some(v),
            CowVal::Owned(_) => None,
        }
    }
}

/// cel's `try_bool`: a boolean, or an error (of a non-boolean too).
fn truth(step: Out<'_>) -> Option<Result<bool, Failed>> {
    Some(match step? {
        Ok(Fv::Bool(b)) => Ok(b),
        Ok(_) | Err(Failed) => Err(Failed),
    })
}

fn call<'a>(call: &'a CallExpr, ctx: &'a Context<'a, 'a>, locals: &mut Locals<'a>) -> Out<'a> {
    use cel::common::ast::operators as op;
    let name = call.func_name.as_str();
    let args = call.args.as_slice();
    if let Some(target) = &call.target {
        // cel evaluates a member call's arguments before its target.
        return match args {
            [] if name == "size" => size(value!(eval(target, ctx, locals))),
            [] if name == "flatten" => flatten(&value!(eval(target, ctx, locals))),
            [arg] => {
                let arg = value!(eval(arg, ctx, locals));
                let this = value!(eval(target, ctx, locals));
                if name == "split" {
                    return split(&this, &arg);
                }
                member(name, &this, &arg)
            }
            _ => None,
        };
    }
    match (name, args) {
        (op::LOGICAL_AND | op::LOGICAL_OR, [l, r]) => {
            // cel: the left side decides if it is the absorbing value; else the right side is
            // evaluated (its error propagates), and a boolean there decides with a boolean left
            // side, or absorbs an error on the left.
            let absorbing = name == op::LOGICAL_OR;
            let left = truth(eval(l, ctx, locals))?;
            if matches!(left, Ok(b) if b == absorbing) {
                return Some(Ok(Fv::Bool(absorbing)));
            }
            let right = value!(eval(r, ctx, locals));
            Some(match (left, right) {
                (Ok(_), Fv::Bool(r)) => Ok(Fv::Bool(r)),
                (Err(Failed), Fv::Bool(r)) if r == absorbing => Ok(Fv::Bool(absorbing)),
                _ => Err(Failed),
            })
        }
        (op::LOGICAL_NOT, [x]) => Some(match value!(eval(x, ctx, locals)) {
            Fv::Bool(b) => Ok(Fv::Bool(!b)),
            _ => Err(Failed),
        }),
        (op::NOT_STRICTLY_FALSE, [x]) => {
            Some(Ok(Fv::Bool(truth(eval(x, ctx, locals))?.unwrap_or(true))))
        }
        (op::CONDITIONAL, [c, t, f]) => match truth(eval(c, ctx, locals))? {
            Ok(true) => eval(t, ctx, locals),
            Ok(false) => eval(f, ctx, locals),
            Err(Failed) => Some(Err(Failed)),
        },
        (op::EQUALS | op::NOT_EQUALS, [l, r]) => {
            let l = value!(eval(l, ctx, locals));
            let r = value!(eval(r, ctx, locals));
            Some(Ok(Fv::Bool(l.equals(&r)? == (name == op::EQUALS))))
        }
        (op::LESS | op::LESS_EQUALS | op::GREATER | op::GREATER_EQUALS, [l, r]) => {
            use std::cmp::Ordering;
            let l = value!(eval(l, ctx, locals));
            let r = value!(eval(r, ctx, locals));
            let ordering = match (&l, &r) {
                (Fv::Int(a), Fv::Int(b)) => a.cmp(b),
                (Fv::UInt(a), Fv::UInt(b)) => a.cmp(b),
                _ => l.text()?.cmp(r.text()?),
            };
            Some(Ok(Fv::Bool(match name {
                op::LESS => ordering == Ordering::Less,
                op::LESS_EQUALS => ordering != Ordering::Greater,
                op::GREATER => ordering == Ordering::Greater,
                _ => ordering != Ordering::Less,
            })))
        }
        (op::ADD | op::SUBSTRACT, [left, right]) => {
            let left = value!(eval(left, ctx, locals));
            let right = value!(eval(right, ctx, locals));
            if name == op::ADD
                && let Some(joined) = concat(&left, &right)
            {
                return Some(Ok(joined));
            }
            let (Fv::Int(a), Fv::Int(b)) = (left, right) else {
                return None;
            };
            let sum = if name == op::ADD {
                a.checked_add(b)
            } else {
                a.checked_sub(b)
            };
            sum.map(|n| Ok(Fv::Int(n)))
        }
        (op::INDEX, [container, key]) => {
            let container = value!(eval(container, ctx, locals));
            // cel unwraps an optional container before it evaluates the key (and an empty one
            // is `optional.none()` with the key never evaluated): cel's (review finding).
            if container
                .held()
                .is_some_and(|v| matches!(v.as_builtin(), BuiltinRef::Optional(_)))
            {
                return None;
            }
            let key = value!(eval(key, ctx, locals));
            if let (Some(map), Some(key)) = (container.map(), key.text()) {
                return Some(field(map, key).map(Fv::of).ok_or(Failed));
            }
            let Fv::Int(i) = key else {
                return None;
            };
            let i = usize::try_from(i).ok();
            match container {
                Fv::Val(v) => {
                    let BuiltinRef::List(list) = v.as_builtin() else {
                        return None;
                    };
                    let element = i.and_then(|i| list.inner().get(i));
                    Some(element.map(|x| Fv::of(x.as_ref())).ok_or(Failed))
                }
                Fv::List(items) => Some(i.and_then(|i| items.get(i).cloned()).ok_or(Failed)),
                Fv::Owned(made) => {
                    let BuiltinRef::List(list) = made.as_builtin() else {
                        return None;
                    };
                    let element = i.and_then(|i| list.inner().get(i));
                    Some(element.map(|x| Fv::owned(x.clone_as_boxed())).ok_or(Failed))
                }
                _ => None,
            }
        }
        (op::IN, [l, r]) => {
            let needle = value!(eval(l, ctx, locals));
            let haystack = value!(eval(r, ctx, locals));
            match &haystack {
                Fv::List(items) => contains(items.iter().cloned(), &needle),
                Fv::Val(v) => match v.as_builtin() {
                    BuiltinRef::List(l) => {
                        contains(l.inner().iter().map(|x| Fv::of(x.as_ref())), &needle)
                    }
                    BuiltinRef::Map(m) => Some(Ok(Fv::Bool(field(m, needle.text()?).is_some()))),
                    _ => None,
                },
                _ => None,
            }
        }
        ("size", [x]) => size(value!(eval(x, ctx, locals))),
        ("string", [x]) => {
            let x = value!(eval(x, ctx, locals));
            let text = match &x {
                Fv::Int(i) => i.to_string(),
                Fv::UInt(u) => u.to_string(),
                Fv::Str(_) => return Some(Ok(x)),
                _ => x.text()?.to_string(),
            };
            let made: Rc<dyn Val + 'a> = Rc::new(cel::common::types::CelString::from(text));
            Some(Ok(Fv::Owned(made)))
        }
        ("quantity", [x]) => {
            let x = value!(eval(x, ctx, locals));
            Some(
                Quantity::parse(x.text()?)
                    .map(|q| Fv::Quantity(Rc::new(q)))
                    .map_err(|_| Failed),
            )
        }
        ("type", [x]) => {
            let x = value!(eval(x, ctx, locals));
            // The name lives as long as the value cel holds, or is a constant.
            let name: &'a str = match x {
                Fv::Val(v) => v.get_type().name(),
                Fv::Owned(_) | Fv::Type(_) | Fv::List(_) | Fv::Quantity(_) => return None,
                scalar => match scalar.type_name()? {
                    "null_type" => "null_type",
                    "bool" => "bool",
                    "int" => "int",
                    "uint" => "uint",
                    "double" => "double",
                    _ => "string",
                },
            };
            Some(Ok(Fv::Type(name)))
        }
        (CHARGE_ITER | CHARGE_RESULT, [x]) => {
            let v = value!(eval(x, ctx, locals));
            let base = u64::from(name == CHARGE_RESULT);
            let spent = spent().saturating_add(base + v.cost());
            set_spent(spent);
            // Past the budget cel's evaluation fails here; it gives that error itself.
            (spent <= super::cost::COST_LIMIT).then_some(Ok(v))
        }
        _ => None,
    }
}

/// The longest list the fast path builds by `+` (a `map` or `filter` step appends one element
/// per step, copying the list so far): longer, cel builds it, in place.
const MAX_BUILT: usize = 256;

/// `l + r` for two strings (cel's concatenation) or two lists, built or borrowed (a `map` or
/// `filter` step, `@result + [x]`; `containers + initContainers`).
fn concat<'a>(l: &Fv<'a>, r: &Fv<'a>) -> Option<Fv<'a>> {
    if let (Some(a), Some(b)) = (l.elements(), r.elements()) {
        if a.len() + b.len() > MAX_BUILT {
            return None;
        }
        return Some(Fv::List(a.into_iter().chain(b).collect()));
    }
    let joined = [l.text()?, r.text()?].concat();
    let made: Rc<dyn Val + 'a> = Rc::new(cel::common::types::CelString::from(joined));
    Some(Fv::Owned(made))
}

/// `s.split(sep)` (cel's strings extension) for a non-empty separator: the parts, borrowed.
fn split<'a>(s: &Fv<'a>, sep: &Fv<'a>) -> Out<'a> {
    let (Fv::Str(s), Some(sep)) = (s, sep.text()) else {
        return None;
    };
    if sep.is_empty() {
        return None;
    }
    Some(Ok(Fv::List(s.split(sep).map(Fv::Str).collect())))
}

/// `list.flatten()` (cel's lists extension, one level): each element that is a list spliced in,
/// any other kept.
fn flatten<'a>(list: &Fv<'a>) -> Out<'a> {
    let mut flat = Vec::new();
    for element in list.elements()? {
        match element.elements() {
            Some(inner) => flat.extend(inner),
            // A list this module does not read (one cel made) is cel's to splice.
            None if element
                .held()
                .is_some_and(|v| v.get_type().kind() == Kind::List) =>
            {
                return None;
            }
            None => flat.push(element),
        }
    }
    Some(Ok(Fv::List(flat.into())))
}

/// A map literal with string keys (`{'container': c.name, 'env': e}`), built as cel builds it:
/// each entry's key, then its value. A repeated key, another key type or an optional entry is
/// cel's to evaluate.
fn map_literal<'a>(
    m: &'a cel::common::ast::MapExpr,
    ctx: &'a Context<'a, 'a>,
    locals: &mut Locals<'a>,
) -> Out<'a> {
    use cel::common::ast::EntryExpr;
    use cel::common::types::{CelMapKey, CelString};
    let mut map: std::collections::HashMap<CelMapKey<'a>, Box<dyn Val + 'a>> =
        std::collections::HashMap::with_capacity(m.entries.len());
    for entry in &m.entries {
        let EntryExpr::MapEntry(e) = &entry.expr else {
            return None;
        };
        if e.optional {
            return None;
        }
        let key = value!(eval(&e.key, ctx, locals));
        let key = CelMapKey::String(CelString::from(key.text()?.to_string()));
        let value = value!(eval(&e.value, ctx, locals)).boxed()?;
        if map.insert(key, value).is_some() {
            return None;
        }
    }
    let made: Rc<dyn Val + 'a> = Rc::new(CelMap::from(map));
    Some(Ok(Fv::Owned(made)))
}

/// `needle in items` where [`Fv::equals`] knows each comparison (cel compares each element
/// with `==`).
fn contains<'a>(items: impl Iterator<Item = Fv<'a>>, needle: &Fv<'a>) -> Out<'a> {
    let mut found = false;
    for item in items {
        found |= needle.equals(&item)?;
    }
    Some(Ok(Fv::Bool(found)))
}

/// A member call on a string with one string argument, or a quantity comparison.
fn member<'a>(name: &str, this: &Fv<'a>, arg: &Fv<'a>) -> Out<'a> {
    if let "compareTo" | "isGreaterThan" | "isLessThan" = name {
        let (a, b) = (this.quantity()?, arg.quantity()?);
        return Some(Ok(match name {
            "compareTo" => Fv::Int(a.cmp(&b) as i64),
            "isGreaterThan" => Fv::Bool(a > b),
            _ => Fv::Bool(a < b),
        }));
    }
    let (this, arg) = (this.text()?, arg.text()?);
    Some(Ok(Fv::Bool(match name {
        "startsWith" => this.starts_with(arg),
        "endsWith" => this.ends_with(arg),
        "contains" => this.contains(arg),
        _ => return None,
    })))
}

/// `size(x)`: a string's code points, a list's or map's elements.
fn size(x: Fv<'_>) -> Out<'_> {
    let n = if let Some(s) = x.text() {
        s.chars().count()
    } else {
        match &x {
            Fv::List(l) => l.len(),
            _ => match x.held()?.as_builtin() {
                BuiltinRef::List(l) => l.inner().len(),
                BuiltinRef::Map(m) => m.inner().len(),
                _ => return None,
            },
        }
    };
    i64::try_from(n).ok().map(|n| Ok(Fv::Int(n)))
}

/// A comprehension as cel runs it: the accumulator's start, the range, then per element the
/// loop condition (stop when false), the element bound (in the accumulator's scope, where it
/// stays after its step), the step; the result. A step that fails is left to cel, which
/// defers it (`all` and `exists` absorb an element's error if another decides).
fn comprehension<'a>(
    c: &'a ComprehensionExpr,
    ctx: &'a Context<'a, 'a>,
    locals: &mut Locals<'a>,
) -> Out<'a> {
    if c.iter_var2.is_some() || c.iter_var == c.accu_var {
        return None;
    }
    let accu = value!(eval(&c.accu_init, ctx, locals));
    let range = value!(eval(&c.iter_range, ctx, locals));
    let depth = locals.len();
    locals.push((c.accu_var.as_str(), accu));
    let outcome = (|| {
        let items: Box<dyn Iterator<Item = Fv<'a>>> = match &range {
            Fv::List(l) => Box::new(l.iter().cloned()),
            Fv::Val(v) => match v.as_builtin() {
                BuiltinRef::List(l) => Box::new(l.inner().iter().map(|x| Fv::of(x.as_ref()))),
                BuiltinRef::Map(m) => Box::new(m.inner().keys().map(|k| Fv::of(k.inner()))),
                _ => return None,
            },
            // A list or map cel made: its elements copied out, as cel binds them.
            Fv::Owned(made) => match made.as_builtin() {
                BuiltinRef::List(l) => {
                    Box::new(l.inner().iter().map(|x| Fv::owned(x.clone_as_boxed())))
                }
                BuiltinRef::Map(m) => Box::new(
                    m.inner()
                        .keys()
                        .map(|k| Fv::owned(k.inner().clone_as_boxed())),
                ),
                _ => return None,
            },
            _ => return None,
        };
        for item in items {
            if !truth(eval(&c.loop_cond, ctx, locals))?.ok()? {
                break;
            }
            locals.truncate(depth + 1);
            locals.push((c.iter_var.as_str(), item));
            let accu = eval(&c.loop_step, ctx, locals)?.ok()?;
            locals[depth].1 = accu;
        }
        eval(&c.result, ctx, locals)
    })();
    locals.truncate(depth);
    outcome
}
