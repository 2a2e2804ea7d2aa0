//! JSON matchers in the spirit of Complement's `match` package: dotted paths into a
//! response body (`"capabilities.m\\.change_password.enabled"`, `"devices.0.device_id"`),
//! with failures that print the whole body.

use serde_json::Value;

/// Follow a dotted path; `\.` escapes a dot inside a key (Matrix keys contain dots);
/// numeric segments index arrays.
pub fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in split_path(path) {
        cur = match cur {
            Value::Object(m) => m.get(&seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn split_path(path: &str) -> Vec<String> {
    let mut segs = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                segs.last_mut().expect("non-empty").push('.');
            }
            '.' => segs.push(String::new()),
            c => segs.last_mut().expect("non-empty").push(c),
        }
    }
    segs
}

/// The value at `path` equals `expected`.
#[track_caller]
pub fn json_key_equal(v: &Value, path: &str, expected: impl Into<Value>) {
    let expected = expected.into();
    match get(v, path) {
        Some(actual) => assert_eq!(actual, &expected, "{path} in {v}"),
        None => panic!("{path} missing from {v}"),
    }
}

/// Something is at `path`.
#[track_caller]
pub fn json_key_present(v: &Value, path: &str) -> Value {
    get(v, path).cloned().unwrap_or_else(|| panic!("{path} missing from {v}"))
}

/// Nothing is at `path`.
#[track_caller]
pub fn json_key_absent(v: &Value, path: &str) {
    if let Some(x) = get(v, path) {
        panic!("{path} should be absent but is {x} in {v}");
    }
}

/// The array at `path` has an element for which `f` holds.
#[track_caller]
pub fn json_array_any(v: &Value, path: &str, f: impl Fn(&Value) -> bool) {
    let arr = get(v, path)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{path} is not an array in {v}"));
    assert!(arr.iter().any(f), "no element of {path} matches in {v}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let v = json!({"capabilities": {"m.change_password": {"enabled": true}}, "devices": [{"id": "A"}]});
        json_key_equal(&v, "capabilities.m\\.change_password.enabled", true);
        json_key_equal(&v, "devices.0.id", "A");
        json_key_absent(&v, "devices.1");
        json_key_absent(&v, "capabilities.m.change_password");
        json_array_any(&v, "devices", |d| d["id"] == "A");
    }

    #[test]
    #[should_panic(expected = "missing")]
    fn missing_keys_fail() {
        json_key_equal(&json!({}), "a.b", 1);
    }
}
