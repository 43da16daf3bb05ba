//! Values as indented text and as JSON.

use serde_json::{json, Value as Json};
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

/// JSON of a value, through its `serde::Serialize` impl (its shape is
/// documented there: structs as objects with `"$type"`, shared objects as
/// `{"$id", "value"}`, references as `{"$ref"}`, packed arrays as hex).
pub fn json(v: &Value<'_>) -> Json {
    // Serializing a decoded value cannot fail: its map keys are strings.
    serde_json::to_value(v).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}
