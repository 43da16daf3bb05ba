//! `diff`: structural differences by path, each change shown where the
//! user reaches it.

use std::collections::HashMap;
use std::path::Path;

use serde_json::json;
use stateify::value::{decode, Value};

use crate::input::Result;
use crate::paths::Reach;
use crate::{at, emit, graph_error, open, render, Cli, MAX_DEPTH};

pub(crate) fn diff_values(
    a: &Value<'_>,
    b: &Value<'_>,
    path: &str,
    out: &mut Vec<(char, String, String)>,
) {
    let same_shape = match (a.inner(), b.inner()) {
        (Value::Struct { name: x, .. }, Value::Struct { name: y, .. }) => x == y,
        (Value::Seq(_), Value::Seq(_))
        | (Value::Map(_), Value::Map(_))
        | (Value::Tuple(_), Value::Tuple(_)) => true,
        _ => false,
    };
    if !same_shape {
        if a != b {
            let (ta, tb) = (render::leaf_text(a), render::leaf_text(b));
            out.push(('~', path.to_string(), format!("{ta} -> {tb}")));
        }
        return;
    }
    let (ka, kb) = (a.children(), b.children());
    let b_by_name: HashMap<&str, &Value<'_>> = kb.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    for (name, va) in &ka {
        match b_by_name.get(name.as_str()) {
            Some(vb) => diff_values(va, vb, &format!("{path}/{name}"), out),
            None => out.push(('-', format!("{path}/{name}"), render::leaf_text(va))),
        }
    }
    let a_names: std::collections::HashSet<&str> = ka.iter().map(|(n, _)| n.as_str()).collect();
    for (name, vb) in &kb {
        if !a_names.contains(name.as_str()) {
            out.push(('+', format!("{path}/{name}"), render::leaf_text(vb)));
        }
    }
}

pub(crate) fn diff(cli: &Cli, a: &Path, b: &Path) -> Result<u8> {
    let mut ia = open(cli, a).map_err(at(a))?;
    let mut ib = open(cli, b).map_err(at(b))?;
    ia.hash_raw = true;
    ib.hash_raw = true;
    let mut out = Vec::new();
    loop {
        let ra = ia.next_record().map_err(at(a))?;
        let rb = ib.next_record().map_err(at(b))?;
        match (ra, rb) {
            (None, None) => break,
            (Some(r), None) => out.push(('-', format!("/{}", r.index), "record".into())),
            (None, Some(r)) => out.push(('+', format!("/{}", r.index), "record".into())),
            (Some(ra), Some(rb)) => match (&ra.body, &rb.body) {
                (Some(x), Some(y)) => {
                    let ga = decode(x, MAX_DEPTH)
                        .map_err(|e| graph_error(&ra, e))
                        .map_err(at(a))?;
                    let gb = decode(y, MAX_DEPTH)
                        .map_err(|e| graph_error(&rb, e))
                        .map_err(at(b))?;
                    let prefix = format!("/{}", ra.index);
                    let mut found = Vec::new();
                    diff_values(&ga.root, &gb.root, &prefix, &mut found);
                    // A change inside a shared object shows at the shortest
                    // path that reaches it, in the graph that has it (each
                    // graph indexed only if a change needs it).
                    let (mut reach_a, mut reach_b) = (None, None);
                    for (k, p, d) in found {
                        let reach = if k == '+' {
                            reach_b.get_or_insert_with(|| Reach::of(&gb, &prefix))
                        } else {
                            reach_a.get_or_insert_with(|| Reach::of(&ga, &prefix))
                        };
                        let (shown, also) = reach.shown(&p);
                        let d = match also.len() {
                            0 => d,
                            1..=3 => format!("{d} (also at {})", also.join(", ")),
                            n => {
                                format!("{d} (also at {} and {} more)", also[..3].join(", "), n - 3)
                            }
                        };
                        out.push((k, shown, d));
                    }
                }
                (None, None) if ra.raw_hash == rb.raw_hash => {}
                _ => out.push((
                    '~',
                    format!("/{}", ra.index),
                    format!("{} bytes -> {} bytes", ra.len, rb.len),
                )),
            },
        }
    }
    ia.finish().map_err(at(a))?;
    ib.finish().map_err(at(b))?;
    let text: String = out
        .iter()
        .map(|(k, p, d)| format!("{k} {p}: {d}\n"))
        .collect();
    let kind = |k: char| match k {
        '+' => "added",
        '-' => "removed",
        _ => "changed",
    };
    let j: Vec<_> = out
        .iter()
        .map(|(k, p, d)| json!({"change": kind(*k), "path": p, "detail": d}))
        .collect();
    emit(cli, text, json!(j))?;
    Ok(if out.is_empty() { 0 } else { 1 })
}
