//! `stateify`: inspect checkpoints — statefiles, plain record streams and
//! pages files. Exit codes: 0 success, 1 `diff` found differences, 2 an
//! unreadable, corrupt or wrongly keyed file (or a bad path).

use stateify_cli::input;
use stateify_cli::render;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use input::{Failure, Input, Kind, Result};
use serde_json::json;
use stateify::value::{decode, Value};

/// Graphs nested deeper than this are refused (the tree is dropped
/// recursively).
const MAX_DEPTH: usize = 4096;

#[derive(Parser)]
#[command(name = "stateify", version, about = "Inspect stateify checkpoints")]
struct Cli {
    /// Output JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The key of a keyed statefile (the file's bytes are the key).
    #[arg(long, global = true, value_name = "FILE")]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Format, compression, chunks, sizes and metadata (no key needed).
    Info { file: PathBuf },
    /// Full integrity check: every MAC, every record, every graph.
    Verify { file: PathBuf },
    /// Every record: graphs with type and field names, raw records summarized.
    Print { file: PathBuf },
    /// The graph as a tree of paths: /RECORD/field/index/key...
    Ls {
        file: PathBuf,
        #[arg(default_value = "/")]
        path: String,
        /// With type and size.
        #[arg(short = 'l')]
        long: bool,
    },
    /// The value at a path.
    Cat { file: PathBuf, path: String },
    /// Per type: count, encoded bytes, share of the file.
    Stats {
        file: PathBuf,
        /// How many types to show.
        #[arg(long, default_value_t = 20)]
        top: usize,
    },
    /// Structural differences by path; exit code 1 when they differ.
    Diff { a: PathBuf, b: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(Failure(msg)) => {
            if cli.json {
                println!("{}", json!({ "error": msg }));
            }
            eprintln!("stateify: {msg}");
            ExitCode::from(2)
        }
    }
}

fn open(cli: &Cli, file: &Path) -> Result<Input> {
    let key = input::read_key(cli.key_file.as_deref())?;
    Input::open(file, key.as_deref())
}

fn at(file: &Path) -> impl Fn(Failure) -> Failure + '_ {
    move |Failure(m)| Failure(format!("{}: {m}", file.display()))
}

fn run(cli: &Cli) -> Result<u8> {
    match &cli.cmd {
        Cmd::Info { file } => info(cli, file).map_err(at(file)),
        Cmd::Verify { file } => verify(cli, file).map_err(at(file)),
        Cmd::Print { file } => print(cli, file).map_err(at(file)),
        Cmd::Ls { file, path, long } => ls(cli, file, path, *long).map_err(at(file)),
        Cmd::Cat { file, path } => cat(cli, file, path).map_err(at(file)),
        Cmd::Stats { file, top } => stats(cli, file, *top).map_err(at(file)),
        Cmd::Diff { a, b } => diff(cli, a, b),
    }
}

fn emit(cli: &Cli, text: String, j: serde_json::Value) -> Result<u8> {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        print!("{text}");
    }
    Ok(0)
}

fn graph_error(r: &input::Record, e: stateify::Error) -> Failure {
    Failure(format!("record {} at byte {}: {e}", r.index, r.offset))
}

// ---- info and verify -----------------------------------------------------------

/// The checkpoint id in a pages file's header, if it has one.
fn pages_header(file: &Path) -> Result<Option<u128>> {
    let mut f = std::fs::File::open(file)?;
    let mut h = vec![0u8; pgalloc::PAGES_HEADER as usize];
    let n = read_full(&mut f, &mut h)?;
    Ok(pgalloc::read_pages_header(&h[..n]).ok())
}

/// Pages (after the header, if any) and how many are all zeros.
fn pages_summary(file: &Path, skip: u64) -> Result<(u64, u64)> {
    let mut f = std::fs::File::open(file)?;
    std::io::copy(&mut (&mut f).take(skip), &mut std::io::sink())?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut pages, mut zero) = (0u64, 0u64);
    loop {
        let n = read_full(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        for p in buf[..n].chunks(4096) {
            pages += 1;
            zero += p.iter().all(|&b| b == 0) as u64;
        }
    }
    Ok((pages, zero))
}

fn read_full(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn info(cli: &Cli, file: &Path) -> Result<u8> {
    let kind = input::kind_of(file)?;
    let size = std::fs::metadata(file)?.len();
    match kind {
        Kind::Statefile => {
            let i = statefile::inspect(std::io::BufReader::new(std::fs::File::open(file)?))?;
            let h = &i.header;
            let mut t = format!(
                "statefile {}.{}, {} bytes\ncompression: {:?}\nintegrity: {}\nchunks: {} data, {} bytes stored\nend chunk: {}\nmetadata:\n",
                h.version.0,
                h.version.1,
                size,
                h.compression,
                if h.keyed { "keyed MAC (verify needs --key-file)" } else { "checksum (no key)" },
                i.chunks,
                i.stored_bytes,
                match i.total {
                    Some(t) => format!("{t} bytes of data"),
                    None => "missing (truncated)".into(),
                }
            );
            for (k, v) in &h.metadata {
                t.push_str(&format!("  {k} = {v}\n"));
            }
            // The contents, once, when they can be read.
            let metas = if h.keyed && cli.key_file.is_none() {
                None
            } else {
                Some(page_metadata(cli, file)?)
            };
            let pair = pair_info(file, metas.as_deref())?;
            if let Some(p) = &pair {
                t.push_str(&p.text);
            }
            let page_meta = metas.as_deref().and_then(page_meta_info);
            if let Some((text, _)) = &page_meta {
                t.push_str(text);
            }
            emit(
                cli,
                t,
                json!({
                    "kind": "statefile",
                    "version": format!("{}.{}", h.version.0, h.version.1),
                    "bytes": size,
                    "compression": format!("{:?}", h.compression),
                    "keyed": h.keyed,
                    "chunks": i.chunks,
                    "stored_bytes": i.stored_bytes,
                    "total": i.total,
                    "metadata": h.metadata,
                    "pages": pair.map(|p| p.json),
                    "page_metadata": page_meta.map(|(_, j)| j),
                }),
            )
        }
        Kind::Stream => {
            let mut inp = open(cli, file)?;
            let (mut graphs, mut raw, mut raw_bytes) = (0u64, 0u64, 0u64);
            while let Some(r) = inp.next_record()? {
                match r.body {
                    Some(_) => graphs += 1,
                    None => {
                        raw += 1;
                        raw_bytes += r.len;
                    }
                }
            }
            emit(
                cli,
                format!("record stream, {size} bytes\nrecords: {graphs} graphs, {raw} raw ({raw_bytes} bytes)\n"),
                json!({"kind": "stream", "bytes": size, "graphs": graphs, "raw_records": raw, "raw_bytes": raw_bytes}),
            )
        }
        Kind::Pages => {
            let id = pages_header(file)?;
            let (pages, zero) = pages_summary(file, id.map_or(0, |_| pgalloc::PAGES_HEADER))?;
            let head = match id {
                Some(id) => format!("pages file of checkpoint {id:032x}"),
                None => {
                    "pages file (no header: written before checkpoint ids, or not a pages file)"
                        .into()
                }
            };
            emit(
                cli,
                format!("{head}, {size} bytes\npages: {pages}, of which all-zero: {zero}\n"),
                json!({"kind": "pages", "bytes": size, "checkpoint_id": id.map(|id| format!("{id:032x}")), "pages": pages, "zero_pages": zero}),
            )
        }
    }
}

fn verify(cli: &Cli, file: &Path) -> Result<u8> {
    let mut inp = open(cli, file)?;
    let kind = inp.kind;
    let (mut graphs, mut raw) = (0u64, 0u64);
    let mut page_meta = None;
    while let Some(r) = inp.next_record()? {
        match &r.body {
            Some(body) => {
                let g = decode(body, MAX_DEPTH).map_err(|e| graph_error(&r, e))?;
                if matches!(
                    g.root,
                    Value::Struct {
                        name: "SavedFile",
                        ..
                    }
                ) {
                    page_meta = Some(body.clone());
                }
                graphs += 1;
            }
            None => raw += 1,
        }
    }
    inp.finish()?;
    let what = match kind {
        Kind::Statefile => "every chunk MAC, the end chunk",
        Kind::Stream => "the record framing",
        Kind::Pages => "nothing",
    };
    let mut text = format!("OK: {graphs} graphs and {raw} raw records; verified {what}\n");
    let mut pages_json = serde_json::Value::Null;
    // A checkpoint that names its pages file (`statefile::write_pair`):
    // the pages against the page metadata record.
    if let (Some(pages), Some(meta)) = (named_pages_file(file)?, page_meta) {
        let mut record = Vec::with_capacity(meta.len() + 10);
        stateify::write_header(&mut record, meta.len() as u64, true)?;
        record.extend_from_slice(&meta);
        let source = std::fs::File::open(&pages)
            .map_err(|e| Failure(format!("pages file {}: {e}", pages.display())))?;
        let r = pgalloc::verify_pages(&record[..], &source)
            .map_err(|e| Failure(format!("pages file {}: {e}", pages.display())))?;
        let how = if r.verified {
            "every piece against its BLAKE3 digest"
        } else {
            "its length only (saved without page digests)"
        };
        text += &format!(
            "pages file {} (checkpoint {:032x}): {} blocks, {} bytes; verified {how}\n",
            pages.display(),
            r.checkpoint_id,
            r.blocks,
            r.bytes
        );
        pages_json = json!({"file": pages.display().to_string(), "checkpoint_id": format!("{:032x}", r.checkpoint_id),
            "blocks": r.blocks, "bytes": r.bytes, "digests": r.verified});
    }
    emit(
        cli,
        text,
        json!({"ok": true, "kind": kind.name(), "graphs": graphs, "raw_records": raw, "pages": pages_json}),
    )
}

/// What `info` shows of a page metadata record (`pgalloc`'s `SavedFile`).
struct PageMeta {
    record: usize,
    checkpoint_id: u128,
    /// Digested pieces, and their size.
    digests: usize,
    piece: u64,
}

/// The page metadata records of a statefile (its contents read, so keyed
/// files need `--key-file`).
fn page_metadata(cli: &Cli, file: &Path) -> Result<Vec<PageMeta>> {
    let mut inp = open(cli, file)?;
    let mut out = Vec::new();
    while let Some(r) = inp.next_record()? {
        let Some(body) = &r.body else { continue };
        let g = decode(body, MAX_DEPTH).map_err(|e| graph_error(&r, e))?;
        let Value::Struct {
            name: "SavedFile",
            fields,
        } = &g.root
        else {
            continue;
        };
        let field = |n: &str| fields.iter().find(|(f, _)| *f == n).map(|(_, v)| v);
        out.push(PageMeta {
            record: r.index,
            checkpoint_id: match field("checkpoint_id") {
                Some(Value::Int(i)) => *i as u128,
                Some(Value::BigUInt(u)) => *u,
                _ => 0,
            },
            digests: match field("digests") {
                Some(Value::Packed(_, b)) => b.len() / 32,
                _ => 0,
            },
            piece: match field("piece_size") {
                Some(Value::Int(p)) if *p > 0 => *p as u64,
                _ => 256 << 10,
            },
        });
    }
    Ok(out)
}

/// Whether each page metadata record's pages can be verified.
fn page_meta_info(metas: &[PageMeta]) -> Option<(String, serde_json::Value)> {
    let mut text = String::new();
    for m in metas {
        let line = if m.digests == 0 {
            "none: its pages load unverified (saved before page digests, or without them)"
                .to_string()
        } else {
            format!(
                "{} pieces of {} KiB, each checked as it is read",
                m.digests,
                m.piece >> 10
            )
        };
        text += &format!(
            "page metadata (record {}): page digests: {line}\n",
            m.record
        );
    }
    let list: Vec<_> = metas
        .iter()
        .map(|m| json!({"record": m.record, "digest_pieces": m.digests}))
        .collect();
    (!list.is_empty()).then(|| (text, json!(list)))
}

struct PairInfo {
    text: String,
    json: serde_json::Value,
}

/// For a statefile that names its pages file: the pages file's checkpoint
/// id (from its header) and, when the contents were read (`metas`),
/// whether the page metadata inside names the same checkpoint.
fn pair_info(file: &Path, metas: Option<&[PageMeta]>) -> Result<Option<PairInfo>> {
    let Some(pages) = named_pages_file(file)? else {
        return Ok(None);
    };
    let in_pages = match pages_header(&pages) {
        Ok(id) => id,
        Err(Failure(m)) => {
            return Ok(Some(PairInfo {
                text: format!("pages file: {} ({m})\n", pages.display()),
                json: json!({"file": pages.display().to_string(), "error": m}),
            }))
        }
    };
    let in_meta = metas.map(|m| m.last().map_or(0, |m| m.checkpoint_id));
    let hex = |id: u128| format!("{id:032x}");
    let verdict = match (in_meta, in_pages) {
        (None, _) => "pair: not checked (the contents need --key-file)".to_string(),
        (Some(m), Some(p)) if m == p => {
            "pair: matches (the page metadata names the same checkpoint)".into()
        }
        (Some(m), p) => format!(
            "pair: MISMATCH: the page metadata names checkpoint {}, the pages file {}",
            hex(m),
            p.map_or("none (no header)".into(), hex)
        ),
    };
    Ok(Some(PairInfo {
        text: format!(
            "pages file: {} (checkpoint {})\n{verdict}\n",
            pages.display(),
            in_pages.map_or("unknown: no header".into(), hex)
        ),
        json: json!({
            "file": pages.display().to_string(),
            "checkpoint_id": in_pages.map(hex),
            "matches": in_meta.map(|m| Some(m) == in_pages),
        }),
    }))
}

/// The pages file a statefile's metadata names (key `pages`, a file beside
/// it), if it names one.
fn named_pages_file(file: &Path) -> Result<Option<PathBuf>> {
    if input::kind_of(file)? != Kind::Statefile {
        return Ok(None);
    }
    let header = statefile::read_header(std::io::BufReader::new(std::fs::File::open(file)?))
        .map_err(|e| Failure(e.to_string()))?;
    let Some(name) = header.metadata.get(statefile::PAGES_KEY) else {
        return Ok(None);
    };
    if name.contains(['/', '\0']) || name.starts_with('.') {
        return Err(Failure(format!(
            "the metadata names pages file {name:?}, not a file beside it"
        )));
    }
    Ok(Some(file.with_file_name(name)))
}

// ---- print, ls, cat --------------------------------------------------------------

fn print(cli: &Cli, file: &Path) -> Result<u8> {
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
fn decode_record(r: &input::Record) -> Result<stateify::value::Graph<'_>> {
    let body = r.body.as_ref().ok_or_else(|| {
        Failure(format!(
            "record {} is a raw record ({} bytes)",
            r.index, r.len
        ))
    })?;
    decode(body, MAX_DEPTH).map_err(|e| graph_error(r, e))
}

/// Finds record `index` of the file (its body read in, not decoded).
fn record_at(inp: &mut Input, index: usize) -> Result<input::Record> {
    while let Some(r) = inp.next_record()? {
        if r.index == index {
            return Ok(r);
        }
    }
    Err(Failure(format!("no record {index}")))
}

fn split_path(path: &str) -> Result<(Option<usize>, Vec<&str>)> {
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
struct Objects<'a, 'de> {
    values: HashMap<u64, &'a Value<'de>>,
    paths: HashMap<u64, String>,
}

impl<'a, 'de> Objects<'a, 'de> {
    /// Indexes `root`; paths (which cost a string per value) only if
    /// `prefix` is given.
    fn of(g: &'a stateify::value::Graph<'de>, prefix: Option<String>) -> Self {
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

    fn add(&mut self, v: &'a Value<'de>, path: Option<String>) {
        let mut cur = v;
        loop {
            match cur {
                Value::Object { id, value, .. } => {
                    self.values.entry(*id).or_insert(value);
                    if let Some(p) = &path {
                        self.paths.entry(*id).or_insert_with(|| p.clone());
                    }
                    cur = value;
                }
                Value::Some(x) | Value::Weak(x) => cur = x,
                Value::Dyn { value, .. } | Value::Variant { value, .. } => cur = value,
                _ => break,
            }
        }
        for (name, child) in v.children() {
            self.add(child, path.as_ref().map(|p| format!("{p}/{name}")));
        }
    }

    /// A reference stands for the object it refers to.
    fn follow(&self, v: &'a Value<'de>) -> &'a Value<'de> {
        ref_id(v)
            .and_then(|id| self.values.get(&id).copied())
            .unwrap_or(v)
    }

    /// Where the object a reference names is defined.
    fn link(&self, v: &Value<'_>) -> Option<String> {
        ref_id(v).map(|id| self.paths.get(&id).cloned().unwrap_or(format!("#{id}")))
    }
}

/// The object id a reference (possibly weak or optional) names.
fn ref_id(v: &Value<'_>) -> Option<u64> {
    match v {
        Value::Ref(id) => Some(*id),
        Value::Weak(x) | Value::Some(x) => ref_id(x),
        _ => None,
    }
}

/// The value at `parts` under the root of record `index`.
fn walk<'a, 'de>(
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

fn size_of(v: &Value<'_>) -> String {
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

fn ls(cli: &Cli, file: &Path, path: &str, long: bool) -> Result<u8> {
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

fn cat(cli: &Cli, file: &Path, path: &str) -> Result<u8> {
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

// ---- stats and diff ----------------------------------------------------------------

fn stats(cli: &Cli, file: &Path, top: usize) -> Result<u8> {
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

fn diff_values(a: &Value<'_>, b: &Value<'_>, path: &str, out: &mut Vec<(char, String, String)>) {
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

/// Every path at which each shared object of a graph is reached: where its
/// value is written and every reference to it, strong or weak.
fn reach_paths(g: &stateify::value::Graph<'_>, prefix: &str) -> HashMap<u64, Vec<String>> {
    fn add(v: &Value<'_>, path: String, out: &mut HashMap<u64, Vec<String>>) {
        let mut cur = v;
        loop {
            match cur {
                Value::Object { id, value, .. } => {
                    out.entry(*id).or_default().push(path.clone());
                    cur = value;
                }
                Value::Ref(id) => {
                    out.entry(*id).or_default().push(path.clone());
                    break;
                }
                Value::Some(x) | Value::Weak(x) => cur = x,
                Value::Dyn { value, .. } | Value::Variant { value, .. } => cur = value,
                _ => break,
            }
        }
        for (name, child) in v.children() {
            add(child, format!("{path}/{name}"), out);
        }
    }
    let mut out = HashMap::new();
    add(&g.root, prefix.to_string(), &mut out);
    out
}

/// A change found at `path` (under the path where a shared object's value
/// happens to be written) as the user would look for it: at the shortest
/// path that reaches the same place, with the others listed.
fn reached_as(
    path: &str,
    objs: &Objects<'_, '_>,
    reach: &HashMap<u64, Vec<String>>,
) -> (String, Vec<String>) {
    // The innermost object whose value holds the change.
    let inner = objs
        .paths
        .iter()
        .filter(|(_, def)| path == def.as_str() || path.starts_with(&format!("{def}/")))
        .max_by_key(|(_, def)| def.len());
    let Some((id, def)) = inner else {
        return (path.to_string(), Vec::new());
    };
    let rest = &path[def.len()..];
    let mut all: Vec<String> = reach
        .get(id)
        .into_iter()
        .flatten()
        .map(|p| format!("{p}{rest}"))
        .collect();
    all.sort_by_key(|p| (p.matches('/').count(), p.len(), p.clone()));
    all.dedup();
    if all.is_empty() {
        return (path.to_string(), Vec::new());
    }
    let first = all.remove(0);
    (first, all)
}

fn diff(cli: &Cli, a: &Path, b: &Path) -> Result<u8> {
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
                    // path that reaches it, in the graph that has it.
                    let (oa, ob) = (
                        Objects::of(&ga, Some(prefix.clone())),
                        Objects::of(&gb, Some(prefix.clone())),
                    );
                    let (pa, pb) = (reach_paths(&ga, &prefix), reach_paths(&gb, &prefix));
                    for (k, p, d) in found {
                        let (objs, reach) = if k == '+' { (&ob, &pb) } else { (&oa, &pa) };
                        let (shown, also) = reached_as(&p, objs, reach);
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
