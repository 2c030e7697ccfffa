//! Parsing a list page into `serde_json::Value` without ever building an item's
//! `metadata.managedFields`: server-side apply's bookkeeping, often half of an object's JSON,
//! which the audit drops anyway (see the module doc of `sources::kube`). Skipping it while the
//! page is parsed, instead of removing it after, means a page of 500 objects never holds 500 of
//! them at once. Everything else is built exactly as `serde_json::from_slice::<Value>` builds it
//! (same parser, same errors, last duplicate key wins); only the page, its `items`, each item
//! and each item's `metadata` go through the visitor below, every other value is a plain
//! `Value`.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Parses one page.
pub(super) fn parse(body: &[u8]) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let v = Level::Page.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Where in a page a value sits: which of its keys are read with a level of their own.
#[derive(Clone, Copy)]
enum Level {
    Page,
    Items,
    Item,
    Metadata,
}

impl Level {
    /// The level of a map's value under `key`, or `None` for a plain value.
    fn child(self, key: &str) -> Option<Level> {
        match (self, key) {
            (Level::Page, "items") => Some(Level::Items),
            (Level::Item, "metadata") => Some(Level::Metadata),
            _ => None,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Level {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    // The scalars as serde_json's own `Value` visitor makes them.
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut list = Vec::new();
        if matches!(self, Level::Items) {
            while let Some(item) = seq.next_element_seed(Level::Item)? {
                list.push(item);
            }
        } else {
            while let Some(v) = seq.next_element::<Value>()? {
                list.push(v);
            }
        }
        Ok(Value::Array(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if matches!(self, Level::Metadata) && key == "managedFields" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let v = match self.child(&key) {
                Some(level) => map.next_value_seed(level)?,
                None => map.next_value::<Value>()?,
            };
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_parses_as_serde_json_parses_it_without_managed_fields() {
        let page = br#"{"kind": "PodList", "metadata": {"continue": "t", "managedFields": [1]},
            "items": [
              {"metadata": {"name": "a", "managedFields": [{"manager": "m"}], "labels": {"x": "1"}},
               "spec": {"managedFields": "kept: not metadata", "n": [1.5, -2, 18446744073709551615, null, true]}},
              {"metadata": {"managedFields": 1, "name": "b", "managedFields": 2}},
              "not an object", [1, {"metadata": {"managedFields": 3}}]
            ]}"#;
        let mut expected: Value = serde_json::from_slice(page).unwrap();
        for item in expected["items"].as_array_mut().unwrap() {
            if let Some(meta) = item.pointer_mut("/metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
        assert_eq!(parse(page).unwrap(), expected);
        // Only items' metadata loses it: the page's own and a nested object's are kept.
        assert_eq!(
            expected["metadata"]["managedFields"],
            serde_json::json!([1])
        );
        assert_eq!(expected["items"][3][1]["metadata"]["managedFields"], 3);
    }

    #[test]
    fn invalid_pages_fail_as_serde_json_fails() {
        for body in [&b"{"[..], b"", b"{\"items\": [} ", b"[1] x", b"nul"] {
            let ours = parse(body).unwrap_err().to_string();
            let theirs = serde_json::from_slice::<Value>(body)
                .unwrap_err()
                .to_string();
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(body));
        }
    }
}
