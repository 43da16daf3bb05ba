//! Values as indented text and as JSON.

use serde_json::{json, Map, Value as Json};
use stateify::value::Value;

/// Indented text of a value (the `cat` view).
pub fn text(v: &Value<'_>, out: &mut String, indent: usize) {
    let pad = |out: &mut String, n: usize| out.push_str(&"  ".repeat(n.min(40)));
    let kids = v.children();
    let composite = matches!(
        v.inner(),
        Value::Struct { .. } | Value::Seq(_) | Value::Tuple(_) | Value::Map(_)
    );
    if !composite {
        out.push_str(&leaf_text(v));
        return;
    }
    out.push_str(&v.type_name());
    out.push_str(" {");
    for (name, child) in &kids {
        out.push('\n');
        pad(out, indent + 1);
        out.push_str(name);
        out.push_str(": ");
        text(child, out, indent + 1);
    }
    if !kids.is_empty() {
        out.push('\n');
        pad(out, indent);
    }
    out.push('}');
}

/// A value on one line: scalars, and wrappers around them.
pub fn leaf_text(v: &Value<'_>) -> String {
    match v {
        Value::Some(x) => format!("Some({})", leaf_text(x)),
        Value::Object { id, value, .. } => format!("#{id} = {}", leaf_text(value)),
        Value::Weak(x) => format!("weak {}", leaf_text(x)),
        Value::Dyn { name, value } => format!("dyn {name} {}", leaf_text(value)),
        Value::Variant { ty, variant, value } => match **value {
            Value::Unit => format!("{ty}::{variant}"),
            _ => format!("{ty}::{variant}({})", leaf_text(value)),
        },
        other => other.scalar_text(),
    }
}

/// JSON of a value: structs as objects with `"$type"`, shared objects as
/// `{"$id", "value"}`, references as `{"$ref"}`.
pub fn json(v: &Value<'_>) -> Json {
    match v {
        Value::Unit => json!(null),
        Value::Bool(b) => json!(b),
        Value::Int(i) => match i64::try_from(*i) {
            Ok(i) => json!(i),
            Err(_) => json!(i.to_string()),
        },
        Value::BigUInt(u) => json!(u.to_string()),
        Value::F32(b) => json!(f32::from_bits(*b)),
        Value::F64(b) => json!(f64::from_bits(*b)),
        Value::Char(c) => json!(char::from_u32(*c).map(|c| c.to_string())),
        Value::Str(s) => json!(s),
        Value::Packed(k, b) => json!({
            "$packed": k.name(),
            "len": b.len() / k.size(),
            "blake3": blake3::hash(b).to_hex().to_string(),
        }),
        Value::None => json!(null),
        Value::Some(x) => json(x),
        Value::Seq(items) | Value::Tuple(items) => Json::Array(items.iter().map(json).collect()),
        Value::Map(entries) => Json::Array(
            entries
                .iter()
                .map(|(k, v)| json!([json(k), json(v)]))
                .collect(),
        ),
        Value::Struct { name, fields } => {
            let mut m = Map::new();
            m.insert("$type".into(), json!(name));
            for (n, f) in fields {
                m.insert((*n).into(), json(f));
            }
            Json::Object(m)
        }
        Value::Variant { ty, variant, value } => {
            json!({"$type": ty, "$variant": variant, "value": json(value)})
        }
        Value::Object { id, value, .. } => json!({"$id": id, "value": json(value)}),
        Value::Ref(id) => json!({"$ref": id}),
        Value::Weak(x) => json!({"$weak": json(x)}),
        Value::WeakDead => json!({"$weak": null}),
        Value::Dyn { name, value } => json!({"$dyn": name, "value": json(value)}),
    }
}
