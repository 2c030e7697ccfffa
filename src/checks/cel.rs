//! The CEL environment every check expression runs in: the CEL standard library plus the
//! Kubernetes library functions checks need, with the names and semantics Kubernetes gives them
//! (`quantity()`, `isQuantity()`, and the quantity methods), and `selectorMatches()` for label
//! selectors. Programs are compiled once, when the checks load.

use super::quantity::Quantity;
use cel::extractors::This;
use cel::objects::{Key, Opaque, Value};
use cel::{Context, Env, ExecutionError, FunctionContext, Program};
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
    pub fn compile(&self, source: &str) -> Result<Program, String> {
        self.env.compile(source).map_err(|e| e.to_string())
    }

    /// A root context with the function library; evaluations add variables in inner scopes.
    pub fn root_context(&self) -> Context<'static, 'static> {
        let mut ctx = Context::with_env(self.env.clone());
        register(&mut ctx);
        ctx
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
        crate::sources::entropy(&s)
    })
    .expect(MSG);
    ctx.add_function("isCredentialName", |s: Arc<String>| {
        crate::sources::is_credential_key(&s)
    })
    .expect(MSG);
    ctx.add_function("looksLikeCredential", |s: Arc<String>| {
        crate::sources::looks_like_credential(&s)
    })
    .expect(MSG);
    ctx.add_function("undecided", undecided).expect(MSG);
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
    crate::sources::selector::matches(&sel, &labels).map_err(|e| ftx.error(e))
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
        Value::Opaque(o) => o
            .downcast_ref::<Quantity>()
            .map_or(serde_json::Value::Null, |q| q.to_string().into()),
        other => format!("{other:?}").into(),
    }
}

/// Converts JSON to a CEL value once, so each object is converted a single time per run.
pub fn json_to_cel(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| n.as_u64().map(Value::UInt))
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(a) => Value::List(Arc::new(a.iter().map(json_to_cel).collect())),
        serde_json::Value::Object(o) => {
            let map: std::collections::HashMap<Key, Value> = o
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), json_to_cel(v)))
                .collect();
            Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

/// Renders a CEL value for a message: strings bare, everything else as JSON.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => cel_to_json(other).to_string(),
    }
}
