//! JSON pointers into objects without allocating: `serde_json::Value::pointer` unescapes every
//! token of the pointer into two new strings (for `~1` and `~0`) on every call, and the
//! relation indexes call it a few times per object (2.5 % of a 5,000-object audit's
//! instructions, issue 12). [`At::at`] is the same lookup.

use serde_json::Value;

/// `Value::pointer`, without its allocations.
pub trait At {
    /// The value at RFC 6901 JSON pointer `pointer`, exactly as `Value::pointer` finds it.
    fn at(&self, pointer: &str) -> Option<&Value>;
}

impl At for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        // An escaped token is rare (our pointers name fields); serde_json unescapes it.
        if pointer.contains('~') {
            return self.pointer(pointer);
        }
        if pointer.is_empty() {
            return Some(self);
        }
        pointer
            .strip_prefix('/')?
            .split('/')
            .try_fold(self, |v, token| match v {
                Value::Object(map) => map.get(token),
                Value::Array(list) => index(token).and_then(|i| list.get(i)),
                _ => None,
            })
    }
}

/// An array index as serde_json's pointer reads one: digits, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::At;
    use serde_json::json;

    /// Every pointer finds what serde_json's finds, escapes, indexes and misses included.
    #[test]
    fn at_is_serde_jsons_pointer() {
        let v = json!({
            "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}, {"port": 443}]},
            "a/b": 1, "m~n": 2, "": {"": 3}, "0": [4], "list": [[5, 6]],
        });
        for p in [
            "",
            "/",
            "//",
            "/spec",
            "/spec/selector/app",
            "/spec/ports/0/port",
            "/spec/ports/1",
            "/spec/ports/2",
            "/spec/ports/01",
            "/spec/ports/+1",
            "/spec/ports/-1",
            "/spec/ports/",
            "/a~1b",
            "/m~0n",
            "/a/b",
            "/missing",
            "spec",
            "/spec/selector/app/deeper",
            "/0/0",
            "/list/0/1",
            "/list/0/1/0",
            "/spec/ports/0/port/x",
            "/spec//selector",
            "/spec/ports/18446744073709551616",
        ] {
            assert_eq!(v.at(p), v.pointer(p), "{p:?}");
        }
    }
}
