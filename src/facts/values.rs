//! The values CEL expressions see: JSON facts converted to CEL values (once per object, shared
//! by reference), and back. Here rather than in `checks::cel` because the facts store caches
//! these values; the expression language only reads them.

use cel::ExecutionError;
use cel::common::traits::{
    Adder, Comparer, Container, Divider, Indexer, Iterable, Modder, Multiplier, Negator, Sizer,
    Subtractor, Zeroer,
};
use cel::common::types::Type;
use cel::common::value::{Builtin, BuiltinRef, CowVal, Val};
use cel::objects::{Key, Value};
use std::sync::Arc;

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

/// A converted value shared by reference count: cel 0.15 binds variables as `Box<dyn Val>` trees
/// and deep-copies a `Value` into one on every binding, so each object is converted once and the
/// `related` lists of other objects hold these handles instead of copies. Every operation is the
/// inner value's own; only taking the value apart by move copies (that part of) it.
#[derive(Clone)]
pub struct SharedVal(pub Arc<dyn Val>);

/// As the inner value: cel prints a value in some error messages (a function given a map where
/// it takes a string), which must read the same as for the value cel would have built.
impl std::fmt::Debug for SharedVal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl SharedVal {
    /// Converts a JSON value once.
    pub fn from_json(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Array(a) => Self(shared_list(a)),
            serde_json::Value::Object(o) => Self(shared_map(o)),
            _ => Self(Arc::from(json_to_val(v))),
        }
    }
}

impl Val for SharedVal {
    fn get_type(&self) -> &Type {
        self.0.get_type()
    }
    fn cel_type() -> &'static Type {
        // Its type is the inner value's, known only per instance (as for cel's own structs).
        unreachable!("SharedVal has no static type")
    }
    fn as_adder<'b, 'v>(&'b self) -> Option<&'b (dyn Adder + 'v)>
    where
        Self: 'v,
    {
        self.0.as_adder()
    }
    fn as_comparer(&self) -> Option<&dyn Comparer> {
        self.0.as_comparer()
    }
    fn as_container(&self) -> Option<&dyn Container> {
        self.0.as_container()
    }
    fn as_divider<'b, 'v>(&'b self) -> Option<&'b (dyn Divider + 'v)>
    where
        Self: 'v,
    {
        self.0.as_divider()
    }
    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        self.0.as_indexer()
    }
    fn into_indexer<'v>(self: Box<Self>) -> Option<Box<dyn Indexer + 'v>>
    where
        Self: 'v,
    {
        self.0.as_indexer().is_some().then(|| {
            let indexer: Box<dyn Indexer + 'v> = Box::new(SharedIndexer(self.0));
            indexer
        })
    }
    fn as_iterable<'b, 'v>(&'b self) -> Option<&'b (dyn Iterable + 'v)>
    where
        Self: 'v,
    {
        self.0.as_iterable()
    }
    fn as_modder<'b, 'v>(&'b self) -> Option<&'b (dyn Modder + 'v)>
    where
        Self: 'v,
    {
        self.0.as_modder()
    }
    fn as_multiplier<'b, 'v>(&'b self) -> Option<&'b (dyn Multiplier + 'v)>
    where
        Self: 'v,
    {
        self.0.as_multiplier()
    }
    fn as_negator<'b, 'v>(&'b self) -> Option<&'b (dyn Negator + 'v)>
    where
        Self: 'v,
    {
        self.0.as_negator()
    }
    fn as_sizer(&self) -> Option<&dyn Sizer> {
        self.0.as_sizer()
    }
    fn as_subtractor<'b, 'v>(&'b self) -> Option<&'b (dyn Subtractor + 'v)>
    where
        Self: 'v,
    {
        self.0.as_subtractor()
    }
    fn as_zeroer(&self) -> Option<&dyn Zeroer> {
        self.0.as_zeroer()
    }
    fn equals(&self, other: &dyn Val) -> bool {
        self.0.equals(other)
    }
    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(self.clone())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        self.0.as_any()
    }
    fn as_builtin<'b, 'v>(&'b self) -> BuiltinRef<'b, 'v>
    where
        Self: 'v,
    {
        self.0.as_builtin()
    }
    fn into_builtin<'v>(self: Box<Self>) -> Option<Builtin<'v>>
    where
        Self: 'v,
    {
        // Moving out of a shared value: a copy of it, as cel's own conversion makes.
        self.0.clone_as_boxed().into_builtin()
    }
}

/// `SharedVal::into_indexer`: indexing a shared map or list moved into an expression copies only
/// the element taken.
struct SharedIndexer(Arc<dyn Val>);

impl Indexer for SharedIndexer {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.0
            .as_indexer()
            .expect("checked in into_indexer")
            .get(idx)
    }
    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        Ok(self
            .0
            .as_indexer()
            .expect("checked in into_indexer")
            .get(idx)?
            .into_owned())
    }
}

/// `json_to_cel` and cel's conversion of its result to `Box<dyn Val>` in one pass, without the
/// intermediate `Value` tree: the same values (integers that fit `i64` are ints, other integers
/// uints, the rest doubles; strings, lists and maps as cel builds them).
///
/// Every list and map is a [`SharedVal`]: cel copies a value whenever an expression keeps it
/// (`containers.filter(c, ...)` keeps whole containers, a variable resolved by value), and a
/// deep copy of a container was 15 % of a manifest audit's instructions (issue 12); a shared
/// one is copied by reference count.
pub fn json_to_val(v: &serde_json::Value) -> Box<dyn Val> {
    use cel::common::types::{CelBool, CelDouble, CelInt, CelNull, CelString, CelUInt};
    match v {
        serde_json::Value::Null => Box::new(CelNull),
        serde_json::Value::Bool(b) => Box::new(CelBool::from(*b)),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            (None, None) => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        serde_json::Value::String(s) => Box::new(CelString::from(s.clone())),
        serde_json::Value::Array(a) => Box::new(SharedVal(shared_list(a))),
        serde_json::Value::Object(o) => Box::new(SharedVal(shared_map(o))),
    }
}

/// A JSON list converted, behind the reference count of a [`SharedVal`].
fn shared_list(a: &[serde_json::Value]) -> Arc<dyn Val> {
    Arc::new(cel::common::types::CelList::from(
        a.iter().map(json_to_val).collect::<Vec<_>>(),
    ))
}

/// A JSON map converted, behind the reference count of a [`SharedVal`].
fn shared_map(o: &serde_json::Map<String, serde_json::Value>) -> Arc<dyn Val> {
    Arc::new(cel::common::types::CelMap::from(
        o.iter()
            .map(|(k, v)| (map_key(k), json_to_val(v)))
            .collect::<std::collections::HashMap<_, _>>(),
    ))
}

/// Bytes of distinct map keys kept for the whole process (see `map_key`).
const INTERNED_KEY_BYTES: usize = 4 << 20;

/// A map key as cel holds it. Keys are a small vocabulary (field names, label and annotation
/// keys) that every object repeats, so each distinct key is stored once for the process and
/// every map borrows it, instead of one heap string per key of every map (issue 12). Bounded:
/// past `INTERNED_KEY_BYTES` of distinct keys (a long `watch` of ever new keys) new keys are
/// owned, as cel's own conversion makes them. Either way the key's value is the same.
fn map_key(k: &str) -> cel::common::types::CelMapKey<'static> {
    use std::collections::HashSet;
    use std::sync::{OnceLock, RwLock};
    static KEYS: OnceLock<RwLock<(HashSet<&'static str>, usize)>> = OnceLock::new();
    let keys = KEYS.get_or_init(RwLock::default);
    // A poisoned lock only means another thread panicked while inserting: the set is intact.
    if let Some(&interned) = keys
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .0
        .get(k)
    {
        return interned.into();
    }
    let mut guard = keys
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (set, bytes) = &mut *guard;
    if let Some(&interned) = set.get(k) {
        return interned.into();
    }
    if *bytes + k.len() > INTERNED_KEY_BYTES {
        return k.to_string().into();
    }
    *bytes += k.len();
    let interned: &'static str = Box::leak(k.into());
    set.insert(interned);
    interned.into()
}
