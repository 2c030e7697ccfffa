//! A compact binary form of cel's syntax trees, so that the built-in checks' expressions are
//! parsed once, by build.rs, and a run only decodes them.
//!
//! Why our own format: parsing the 253 expressions a one-file run compiles was two fifths of
//! its instructions (issue 12, target 4: most of it cel's Pratt parser cloning each member
//! call's operands while it looks for a macro), and cel's AST types have no serde. The format is
//! private to one build: build.rs writes it with the cel the binary runs (one `Cargo.lock`
//! entry), a tree that does not decode is parsed from its source instead, and
//! `every_built_in_expression_decodes_to_its_parse` holds every built-in expression's decoded
//! tree equal to the Pratt parser's, node ids included.
//!
//! The layout, depth first: a node is its id (LEB128) and a tag byte, then its parts; a string
//! is its length (LEB128) and its UTF-8 bytes; a flag is one byte.

use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedEntryExpr, IdedExpr, ListExpr, LiteralValue,
    MapEntryExpr, MapExpr, SelectExpr, StructExpr, StructFieldExpr,
};

const UNSPECIFIED: u8 = 0;
const CALL: u8 = 1;
const COMPREHENSION: u8 = 2;
const IDENT: u8 = 3;
const LIST: u8 = 4;
const MAP: u8 = 5;
const SELECT: u8 = 6;
const STRUCT: u8 = 7;
const BOOL: u8 = 8;
const BYTES: u8 = 9;
const DOUBLE: u8 = 10;
const INT: u8 = 11;
const NULL: u8 = 12;
const STRING: u8 = 13;
const UINT: u8 = 14;

const STRUCT_FIELD: u8 = 0;
const MAP_ENTRY: u8 = 1;

/// Appends `e`'s encoding to `out`.
pub fn encode(e: &IdedExpr, out: &mut Vec<u8>) {
    uint(e.id, out);
    match &e.expr {
        Expr::Unspecified => out.push(UNSPECIFIED),
        Expr::Call(c) => {
            out.push(CALL);
            string(&c.func_name, out);
            flag(c.target.is_some(), out);
            if let Some(t) = &c.target {
                encode(t, out);
            }
            list(&c.args, out);
        }
        Expr::Comprehension(c) => {
            out.push(COMPREHENSION);
            encode(&c.iter_range, out);
            string(&c.iter_var, out);
            flag(c.iter_var2.is_some(), out);
            if let Some(v) = &c.iter_var2 {
                string(v, out);
            }
            string(&c.accu_var, out);
            for part in [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                encode(part, out);
            }
        }
        Expr::Ident(name) => {
            out.push(IDENT);
            string(name, out);
        }
        Expr::List(l) => {
            out.push(LIST);
            list(&l.elements, out);
            uint(l.optional_indices.len() as u64, out);
            for &i in &l.optional_indices {
                uint(i as u64, out);
            }
        }
        Expr::Map(m) => {
            out.push(MAP);
            entries(&m.entries, out);
        }
        Expr::Select(s) => {
            out.push(SELECT);
            encode(&s.operand, out);
            string(&s.field, out);
            flag(s.test, out);
        }
        Expr::Struct(s) => {
            out.push(STRUCT);
            string(&s.type_name, out);
            entries(&s.entries, out);
        }
        Expr::Literal(l) => match l {
            LiteralValue::Boolean(b) => {
                out.push(BOOL);
                flag(*b.inner(), out);
            }
            LiteralValue::Bytes(b) => {
                out.push(BYTES);
                bytes(b.inner(), out);
            }
            LiteralValue::Double(d) => {
                out.push(DOUBLE);
                out.extend_from_slice(&d.inner().to_bits().to_le_bytes());
            }
            LiteralValue::Int(i) => {
                out.push(INT);
                out.extend_from_slice(&i.inner().to_le_bytes());
            }
            LiteralValue::Null => out.push(NULL),
            LiteralValue::String(s) => {
                out.push(STRING);
                string(s.inner(), out);
            }
            LiteralValue::UInt(u) => {
                out.push(UINT);
                uint(*u.inner(), out);
            }
        },
    }
}

fn list(items: &[IdedExpr], out: &mut Vec<u8>) {
    uint(items.len() as u64, out);
    for item in items {
        encode(item, out);
    }
}

fn entries(entries: &[IdedEntryExpr], out: &mut Vec<u8>) {
    uint(entries.len() as u64, out);
    for entry in entries {
        uint(entry.id, out);
        match &entry.expr {
            EntryExpr::StructField(f) => {
                out.push(STRUCT_FIELD);
                string(&f.field, out);
                encode(&f.value, out);
                flag(f.optional, out);
            }
            EntryExpr::MapEntry(m) => {
                out.push(MAP_ENTRY);
                encode(&m.key, out);
                encode(&m.value, out);
                flag(m.optional, out);
            }
        }
    }
}

fn uint(mut v: u64, out: &mut Vec<u8>) {
    // LEB128: seven bits a byte, low bits first, the high bit set on all but the last.
    let low7 = |v: u64| u8::try_from(v & 0x7f).unwrap_or_default();
    while v >= 0x80 {
        out.push(low7(v) | 0x80);
        v >>= 7;
    }
    out.push(low7(v));
}

fn flag(b: bool, out: &mut Vec<u8>) {
    out.push(u8::from(b));
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    uint(b.len() as u64, out);
    out.extend_from_slice(b);
}

fn string(s: &str, out: &mut Vec<u8>) {
    bytes(s.as_bytes(), out);
}

/// The tree `encoded` holds, or `None` if it is not exactly one well-formed tree.
pub fn decode(encoded: &[u8]) -> Option<IdedExpr> {
    let mut reader = Reader(encoded);
    let tree = reader.node(0)?;
    reader.0.is_empty().then_some(tree)
}

/// Far deeper than any built-in expression's tree (a dozen comprehension levels, a few dozen
/// nodes), so that a damaged blob ends the decoding, not the stack; a tree past it is parsed.
const MAX_NESTING: usize = 256;

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn uint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn len(&mut self) -> Option<usize> {
        // A count never exceeds the bytes left: a damaged length cannot allocate.
        usize::try_from(self.uint()?)
            .ok()
            .filter(|&n| n <= self.0.len())
    }

    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn bytes(&mut self) -> Option<&[u8]> {
        let n = self.len()?;
        let (b, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(b)
    }

    fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_owned)
    }

    fn fixed(&mut self) -> Option<[u8; 8]> {
        let (b, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(*b)
    }

    fn nodes(&mut self, depth: usize) -> Option<Vec<IdedExpr>> {
        let n = self.len()?;
        // Sized once: collecting through `Option` does not know the count, and a call's one
        // or two arguments got room for four (a third of the decoded trees' memory was slack).
        // `n` is at most the bytes left, so a damaged count cannot allocate much.
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            nodes.push(self.node(depth)?);
        }
        Some(nodes)
    }

    fn node(&mut self, depth: usize) -> Option<IdedExpr> {
        let depth = depth + 1;
        if depth > MAX_NESTING {
            return None;
        }
        let id = self.uint()?;
        let expr = match self.byte()? {
            UNSPECIFIED => Expr::Unspecified,
            CALL => {
                let func_name = self.string()?;
                let target = if self.flag()? {
                    Some(Box::new(self.node(depth)?))
                } else {
                    None
                };
                Expr::Call(CallExpr {
                    func_name,
                    target,
                    args: self.nodes(depth)?,
                })
            }
            COMPREHENSION => {
                let iter_range = self.node(depth)?;
                let iter_var = self.string()?;
                let iter_var2 = if self.flag()? {
                    Some(self.string()?)
                } else {
                    None
                };
                Expr::Comprehension(Box::new(ComprehensionExpr {
                    iter_range,
                    iter_var,
                    iter_var2,
                    accu_var: self.string()?,
                    accu_init: self.node(depth)?,
                    loop_cond: self.node(depth)?,
                    loop_step: self.node(depth)?,
                    result: self.node(depth)?,
                }))
            }
            IDENT => Expr::Ident(self.string()?),
            LIST => {
                let elements = self.nodes(depth)?;
                let n = self.len()?;
                let optional_indices = (0..n)
                    .map(|_| self.uint().and_then(|i| usize::try_from(i).ok()))
                    .collect::<Option<_>>()?;
                Expr::List(ListExpr {
                    elements,
                    optional_indices,
                })
            }
            MAP => Expr::Map(MapExpr {
                entries: self.entries(depth)?,
            }),
            SELECT => {
                let operand = Box::new(self.node(depth)?);
                Expr::Select(SelectExpr {
                    operand,
                    field: self.string()?,
                    test: self.flag()?,
                })
            }
            STRUCT => {
                let type_name = self.string()?;
                Expr::Struct(StructExpr {
                    type_name,
                    entries: self.entries(depth)?,
                })
            }
            BOOL => Expr::Literal(LiteralValue::Boolean(self.flag()?.into())),
            BYTES => Expr::Literal(LiteralValue::Bytes(self.bytes()?.to_vec().into())),
            DOUBLE => Expr::Literal(LiteralValue::Double(
                f64::from_bits(u64::from_le_bytes(self.fixed()?)).into(),
            )),
            INT => Expr::Literal(LiteralValue::Int(i64::from_le_bytes(self.fixed()?).into())),
            NULL => Expr::Literal(LiteralValue::Null),
            STRING => Expr::Literal(LiteralValue::String(self.string()?.into())),
            UINT => Expr::Literal(LiteralValue::UInt(self.uint()?.into())),
            _ => return None,
        };
        Some(IdedExpr { id, expr })
    }

    fn entries(&mut self, depth: usize) -> Option<Vec<IdedEntryExpr>> {
        let n = self.len()?;
        (0..n)
            .map(|_| {
                let id = self.uint()?;
                let expr = match self.byte()? {
                    STRUCT_FIELD => EntryExpr::StructField(StructFieldExpr {
                        field: self.string()?,
                        value: self.node(depth)?,
                        optional: self.flag()?,
                    }),
                    MAP_ENTRY => EntryExpr::MapEntry(MapEntryExpr {
                        key: self.node(depth)?,
                        value: self.node(depth)?,
                        optional: self.flag()?,
                    }),
                    _ => return None,
                };
                Some(IdedEntryExpr { id, expr })
            })
            .collect()
    }
}
