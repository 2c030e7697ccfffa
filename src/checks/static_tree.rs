//! The built-in catalog as static data: build.rs writes each check file as a constant tree of
//! [`Static`] nodes, and a run deserializes the check model straight from it, with no text to
//! scan (issue 12, target 4: reading the catalog's JSON, 255 KB scanned and unescaped at every
//! run, was an eighth of a one-file audit's instructions).
//!
//! Why our own: no crate deserializes from a tree the compiler builds as a constant
//! (`serde_json::Value` cannot be one: its maps allocate). serde's `value` module gives the map,
//! sequence and enum accessors, so what is here is only the dispatch, on the rules
//! `serde_json::Value`'s own deserializer follows (a null is `None`, a string or a one-entry
//! map is an enum). `tests/catalog.rs` holds every built-in check read from its tree equal to
//! the same file read from its YAML.

use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, IntoDeserializer};
use std::marker::PhantomData;

/// One node of a check file, as build.rs writes it.
#[derive(Debug)]
pub enum Static {
    Null,
    Bool(bool),
    UInt(u64),
    Int(i64),
    /// An `f64` by its bits: exact, and a plain integer in the generated code.
    Float(u64),
    Str(&'static str),
    Seq(&'static [Static]),
    Map(&'static [(&'static str, Static)]),
}

/// A deserializer of one node; `E` is the error the reading of the whole tree gives.
pub struct De<'a, E> {
    node: &'a Static,
    error: PhantomData<E>,
}

impl<'a, E> De<'a, E> {
    pub fn new(node: &'a Static) -> Self {
        Self {
            node,
            error: PhantomData,
        }
    }
}

impl<'de, E: de::Error> IntoDeserializer<'de, E> for De<'de, E> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de, E: de::Error> de::Deserializer<'de> for De<'de, E> {
    type Error = E;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.node {
            Static::Null => visitor.visit_unit(),
            Static::Bool(b) => visitor.visit_bool(*b),
            Static::UInt(u) => visitor.visit_u64(*u),
            Static::Int(i) => visitor.visit_i64(*i),
            Static::Float(bits) => visitor.visit_f64(f64::from_bits(*bits)),
            Static::Str(s) => visitor.visit_borrowed_str(s),
            Static::Seq(items) => {
                let mut seq = SeqDeserializer::new(items.iter().map(De::new));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Static::Map(entries) => {
                let mut map = MapDeserializer::new(entries.iter().map(|(k, v)| (*k, De::new(v))));
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.node {
            Static::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, E> {
        match self.node {
            Static::Str(s) => visitor.visit_enum((*s).into_deserializer()),
            Static::Map(entries) if entries.len() == 1 => {
                visitor.visit_enum(MapAccessDeserializer::new(MapDeserializer::new(
                    entries.iter().map(|(k, v)| (*k, De::new(v))),
                )))
            }
            // Anything else is not an enum: the visitor names what it expected.
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, E> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::{De, Static};
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Sample {
        name: String,
        count: u32,
        ratio: f64,
        offset: i64,
        on: bool,
        absent: Option<String>,
        present: Option<Vec<String>>,
        kind: Kind,
        shaped: Kind,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "kebab-case")]
    enum Kind {
        Plain,
        WithData(u32),
    }

    static SAMPLE: Static = Static::Map(&[
        ("name", Static::Str("a \"quoted\"\nline")),
        ("count", Static::UInt(3)),
        ("ratio", Static::Float(0x3FE0_0000_0000_0000)),
        ("offset", Static::Int(-2)),
        ("on", Static::Bool(true)),
        ("absent", Static::Null),
        ("present", Static::Seq(&[Static::Str("x")])),
        ("kind", Static::Str("plain")),
        ("shaped", Static::Map(&[("with-data", Static::UInt(7))])),
    ]);

    type Error = serde::de::value::Error;

    #[test]
    fn reads_as_the_same_json_would() {
        let from_tree = Sample::deserialize(De::<Error>::new(&SAMPLE)).unwrap();
        let from_json: Sample = serde_json::from_str(
            r#"{"name": "a \"quoted\"\nline", "count": 3, "ratio": 0.5, "offset": -2, "on": true,
                "absent": null, "present": ["x"], "kind": "plain", "shaped": {"with-data": 7}}"#,
        )
        .unwrap();
        assert_eq!(from_tree, from_json);
    }

    #[test]
    fn what_the_model_refuses_is_refused() {
        static UNKNOWN: Static = Static::Map(&[("nmae", Static::Str("x"))]);
        static WRONG: Static = Static::Map(&[("count", Static::Str("3"))]);
        static NEGATIVE: Static = Static::Map(&[("count", Static::Int(-1))]);
        let e = Sample::deserialize(De::<Error>::new(&UNKNOWN)).unwrap_err();
        assert!(e.to_string().contains("unknown field `nmae`"), "{e}");
        let e = Sample::deserialize(De::<Error>::new(&WRONG)).unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        assert!(Sample::deserialize(De::<Error>::new(&NEGATIVE)).is_err());
    }
}
