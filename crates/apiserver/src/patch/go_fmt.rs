//! JSON values as Go's `fmt` prints what `encoding/json` makes of them (`%v`): Kubernetes
//! puts them in error messages, which clients compare.

use std::collections::BTreeMap;

use serde_json::Value;

/// A JSON value as Go's `%+v` prints what `json.Unmarshal` makes of it: `map[k:v ...]` with
/// sorted keys, `[a b]`, strings bare, integers as integers and other numbers as `%g`.
pub fn go_text(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => go_float(f),
            (None, None) => n.to_string(),
        },
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_text).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            let pairs: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_text(v)))
                .collect();
            format!("map[{}]", pairs.join(" "))
        }
    }
}

/// A float as Go's `%v` prints it (`%g` at the shortest precision): the shortest digits,
/// with an exponent (`1e+06`, `1e-05`) when the exponent is below -4 or at least 6.
fn go_float(f: f64) -> String {
    let scientific = format!("{f:e}");
    let (mantissa, exp) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return f.to_string();
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_go_prints_what_json_unmarshal_makes_of_them() {
        for (json, want) in [
            (r#"{"data":{"b":"2","a":1}}"#, "map[data:map[a:1 b:2]]"),
            (r#"{"x":[1,"a",null,true]}"#, "map[x:[1 a <nil> true]]"),
            ("1.5", "1.5"),
            ("1000000.0", "1e+06"),
            ("123456.0", "123456"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("1234567.5", "1.2345675e+06"),
            ("-2", "-2"),
        ] {
            let v: Value = serde_json::from_str(json).unwrap();
            assert_eq!(go_text(&v), want, "{json}");
        }
    }
}
