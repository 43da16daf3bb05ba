//! `print`, `ls`, `cat` and `stats`: the contents of a checkpoint.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use stateify::value::decode;

use crate::input::{self, Failure, Input, Result};
use crate::paths::{size_of, split_path, walk, Objects};
use crate::{emit, graph_error, open, render, Cli, MAX_DEPTH};

pub(crate) fn print(cli: &Cli, file: &Path) -> Result<u8> {
    let mut inp = open(cli, file)?;
    let mut text = String::new();
    let mut records = Vec::new();
    while let Some(r) = inp.next_record()? {
        match &r.body {
            Some(body) => {
                if cli.json {
                    let g = decode(body, MAX_DEPTH).map_err(|e| graph_error(&r, e))?;
                    records.push(json!({"record": r.index, "offset": r.offset, "bytes": r.len, "graph": render::json(&g.root)}));
                } else {
                    let mut s = String::new();
                    stateify::pretty::render_graph(body, &mut s).map_err(|e| graph_error(&r, e))?;
                    text.push_str(&format!(
                        "record {} (graph, {} bytes at {}): {s}\n",
                        r.index, r.len, r.offset
                    ));
                }
            }
            None => {
                records.push(
                    json!({"record": r.index, "offset": r.offset, "bytes": r.len, "raw": true}),
                );
                text.push_str(&format!(
                    "record {} (raw, {} bytes at {})\n",
                    r.index, r.len, r.offset
                ));
            }
        }
    }
    inp.finish()?;
    emit(cli, text, json!(records))
}

/// Decodes a graph record; a raw record is an error.
pub(crate) fn decode_record(r: &input::Record) -> Result<stateify::value::Graph<'_>> {
    let body = r.body.as_ref().ok_or_else(|| {
        Failure(format!(
            "record {} is a raw record ({} bytes)",
            r.index, r.len
        ))
    })?;
    decode(body, MAX_DEPTH).map_err(|e| graph_error(r, e))
}

/// Finds record `index` of the file (its body read in, not decoded).
pub(crate) fn record_at(inp: &mut Input, index: usize) -> Result<input::Record> {
    while let Some(r) = inp.next_record()? {
        if r.index == index {
            return Ok(r);
        }
    }
    Err(Failure(format!("no record {index}")))
}

pub(crate) fn ls(cli: &Cli, file: &Path, path: &str, long: bool) -> Result<u8> {
    let mut inp = open(cli, file)?;
    let (record, parts) = split_path(path)?;
    let mut text = String::new();
    let mut rows = Vec::new();
    let Some(index) = record else {
        while let Some(r) = inp.next_record()? {
            let (ty, size) = match &r.body {
                Some(body) => {
                    let g = decode(body, MAX_DEPTH).map_err(|e| graph_error(&r, e))?;
                    (g.root.type_name(), format!("{} bytes", r.len))
                }
                None => ("raw".into(), format!("{} bytes", r.len)),
            };
            text.push_str(&if long {
                format!("/{:<6} {ty:<24} {size}\n", r.index)
            } else {
                format!("/{}\n", r.index)
            });
            rows.push(json!({"path": format!("/{}", r.index), "type": ty, "size": size}));
        }
        inp.finish()?;
        return emit(cli, text, json!(rows));
    };
    let r = record_at(&mut inp, index)?;
    let g = decode_record(&r)?;
    let objs = Objects::of(&g, Some(format!("/{index}")));
    let node = objs.follow(walk(&g.root, &objs, index, &parts)?);
    let base = format!(
        "/{index}{}",
        parts.iter().map(|p| format!("/{p}")).collect::<String>()
    );
    for (name, child) in node.children() {
        let target = objs.link(child);
        let full = format!("{base}/{name}");
        let shown = match &target {
            Some(t) => format!("{full} -> {t}"),
            None => full.clone(),
        };
        text.push_str(&if long {
            format!("{shown:<40} {:<24} {}\n", child.type_name(), size_of(child))
        } else {
            format!("{shown}\n")
        });
        rows.push(json!({"path": full, "type": child.type_name(), "size": size_of(child), "link": target}));
    }
    emit(cli, text, json!(rows))
}

pub(crate) fn cat(cli: &Cli, file: &Path, path: &str) -> Result<u8> {
    let mut inp = open(cli, file)?;
    let (record, parts) = split_path(path)?;
    let index = record.ok_or_else(|| Failure("cat needs a path such as /0/field".into()))?;
    let r = record_at(&mut inp, index)?;
    let g = decode_record(&r)?;
    let v = walk(&g.root, &Objects::of(&g, None), index, &parts)?;
    let mut text = String::new();
    render::text(v, &mut text, 0);
    text.push('\n');
    emit(cli, text, render::json(v))
}

pub(crate) fn stats(cli: &Cli, file: &Path, top: usize) -> Result<u8> {
    let mut inp = open(cli, file)?;
    let mut types: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut total, mut raw_bytes, mut objects) = (0u64, 0u64, 0u64);
    while let Some(r) = inp.next_record()? {
        total += r.len;
        match &r.body {
            Some(body) => {
                let g = decode(body, MAX_DEPTH).map_err(|e| graph_error(&r, e))?;
                objects += g.objects;
                for (name, u) in &g.types {
                    let e = types.entry(name.to_string()).or_default();
                    e.0 += u.count;
                    e.1 += u.bytes;
                }
            }
            None => raw_bytes += r.len,
        }
    }
    inp.finish()?;
    let mut rows: Vec<_> = types.into_iter().collect();
    rows.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(&b.0)));
    rows.truncate(top);
    let share = |b: u64| 100.0 * b as f64 / total.max(1) as f64;
    let mut text = format!(
        "{total} bytes of records: {raw_bytes} in raw records ({:.1}%), {objects} shared objects\n{:<32} {:>10} {:>12} {:>7}\n",
        share(raw_bytes),
        "type (bytes include contents)",
        "count",
        "bytes",
        "share"
    );
    for (name, (count, bytes)) in &rows {
        text.push_str(&format!(
            "{name:<32} {count:>10} {bytes:>12} {:>6.1}%\n",
            share(*bytes)
        ));
    }
    let j: Vec<_> = rows
        .iter()
        .map(|(n, (c, b))| json!({"type": n, "count": c, "bytes": b, "share": share(*b)}))
        .collect();
    emit(
        cli,
        text,
        json!({"total_bytes": total, "raw_bytes": raw_bytes, "objects": objects, "types": j}),
    )
}
