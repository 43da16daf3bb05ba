//! The path model: `/RECORD/field/index/key…` names every value of a
//! graph; shared objects are reached through every reference to them.

use std::collections::HashMap;

use stateify::value::Value;

use crate::input::{Failure, Result};

pub(crate) fn split_path(path: &str) -> Result<(Option<usize>, Vec<&str>)> {
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    match parts.next() {
        None => Ok((None, Vec::new())),
        Some(first) => {
            let i = first.parse().map_err(|_| {
                Failure(format!(
                    "path {path:?}: it starts with a record number, like /0"
                ))
            })?;
            Ok((Some(i), parts.collect()))
        }
    }
}

/// The shared objects of a graph: each one's value by id and, when asked
/// for, the path where it is defined.
#[derive(Default)]
pub(crate) struct Objects<'a, 'de> {
    values: HashMap<u64, &'a Value<'de>>,
    paths: HashMap<u64, String>,
}

impl<'a, 'de> Objects<'a, 'de> {
    /// Indexes `root`; paths (which cost a string per value) only if
    /// `prefix` is given.
    pub(crate) fn of(g: &'a stateify::value::Graph<'de>, prefix: Option<String>) -> Self {
        let mut o = Objects::default();
        // Objects defined after the root (announced by weak references
        // that no strong reference reached) have no path under it.
        let after = prefix.as_ref().map(|p| format!("{p} (after the root)"));
        o.add(&g.root, prefix);
        for v in &g.deferred {
            o.add(v, after.clone());
        }
        o
    }

    pub(crate) fn add(&mut self, v: &'a Value<'de>, path: Option<String>) {
        for layer in v.layers() {
            if let Value::Object { id, value, .. } = layer {
                self.values.entry(*id).or_insert(value);
                if let Some(p) = &path {
                    self.paths.entry(*id).or_insert_with(|| p.clone());
                }
            }
        }
        for (name, child) in v.children() {
            self.add(child, path.as_ref().map(|p| format!("{p}/{name}")));
        }
    }

    /// A reference stands for the object it refers to.
    pub(crate) fn follow(&self, v: &'a Value<'de>) -> &'a Value<'de> {
        ref_id(v)
            .and_then(|id| self.values.get(&id).copied())
            .unwrap_or(v)
    }

    /// Where the object a reference names is defined.
    pub(crate) fn link(&self, v: &Value<'_>) -> Option<String> {
        ref_id(v).map(|id| self.paths.get(&id).cloned().unwrap_or(format!("#{id}")))
    }
}

/// The object id a reference (possibly weak or optional) names.
pub(crate) fn ref_id(v: &Value<'_>) -> Option<u64> {
    match v {
        Value::Ref(id) => Some(*id),
        Value::Weak(x) | Value::Some(x) => ref_id(x),
        _ => None,
    }
}

/// The value at `parts` under the root of record `index`.
pub(crate) fn walk<'a, 'de>(
    root: &'a Value<'de>,
    objs: &Objects<'a, 'de>,
    index: usize,
    parts: &[&str],
) -> Result<&'a Value<'de>> {
    let mut v = root;
    for (depth, part) in parts.iter().enumerate() {
        let kids = objs.follow(v).children();
        v = kids
            .into_iter()
            .find(|(n, _)| n == part)
            .map(|(_, c)| c)
            .ok_or_else(|| {
                let under: String = parts[..depth].iter().map(|p| format!("/{p}")).collect();
                Failure(format!("path /{index}{under}: it has no {part:?}"))
            })?;
    }
    Ok(v)
}

pub(crate) fn size_of(v: &Value<'_>) -> String {
    match v.inner() {
        Value::Str(s) => format!("{} bytes", s.len()),
        Value::Packed(_, b) => format!("{} bytes", b.len()),
        other => match other.children().len() {
            0 => String::new(),
            1 => "1 entry".into(),
            n => format!("{n} entries"),
        },
    }
}

/// Where each shared object of a graph is reached: the path where its value
/// is written, and every path that reaches it (that one and each reference,
/// strong or weak). Built in one walk of the root.
pub(crate) struct Reach {
    by_def: HashMap<String, u64>,
    all: HashMap<u64, Vec<String>>,
}

impl Reach {
    pub(crate) fn of(g: &stateify::value::Graph<'_>, prefix: &str) -> Reach {
        fn add(v: &Value<'_>, path: String, r: &mut Reach) {
            for layer in v.layers() {
                match layer {
                    Value::Object { id, .. } => {
                        r.by_def.entry(path.clone()).or_insert(*id);
                        r.all.entry(*id).or_default().push(path.clone());
                    }
                    Value::Ref(id) => r.all.entry(*id).or_default().push(path.clone()),
                    _ => {}
                }
            }
            for (name, child) in v.children() {
                add(child, format!("{path}/{name}"), r);
            }
        }
        let mut r = Reach {
            by_def: HashMap::new(),
            all: HashMap::new(),
        };
        add(&g.root, prefix.to_string(), &mut r);
        r
    }

    /// A change found at `path` (under the path where a shared object's
    /// value happens to be written) as the user would look for it: at the
    /// shortest path that reaches the same place, with the others listed.
    pub(crate) fn shown(&self, path: &str) -> (String, Vec<String>) {
        // The innermost object whose value holds the change: the longest
        // prefix of `path`, cut at a `/`, where an object's value is written.
        let cuts = std::iter::once(path.len()).chain(path.rmatch_indices('/').map(|(i, _)| i));
        let inner = cuts
            .filter_map(|end| self.by_def.get(&path[..end]).map(|id| (id, end)))
            .next();
        let Some((id, end)) = inner else {
            return (path.to_string(), Vec::new());
        };
        let rest = &path[end..];
        let mut all: Vec<String> = self.all[id].iter().map(|p| format!("{p}{rest}")).collect();
        all.sort_by_key(|p| (p.matches('/').count(), p.len(), p.clone()));
        all.dedup();
        let first = all.remove(0);
        (first, all)
    }
}
