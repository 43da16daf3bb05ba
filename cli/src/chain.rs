//! Chains of incremental checkpoints: a statefile whose metadata names a
//! parent (`statefile::PARENT_KEY`) holds a delta of the memory saved in
//! the parent. `info` shows where a statefile stands in its chain, `verify`
//! checks every layer and that each delta is its parent's, `squash` writes
//! the chain out as one full checkpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use stateify::value::{decode, Value};

use crate::input::{self, Failure, Result};
use crate::{emit, Cli, MAX_DEPTH};

/// The checkpoints of the chain `file` ends, oldest first (`file` last),
/// or `None` if its metadata names no parent.
pub(crate) fn chain_of(file: &Path) -> Result<Option<Vec<statefile::Pair>>> {
    // A statefile fetched from a store sits in a temporary directory: its
    // parents are not beside it (chains live in local directories).
    if input::kind_of(file)? != input::Kind::Statefile || crate::remote::store_of(file).is_some() {
        return Ok(None);
    }
    let header = statefile::read_header(BufReader::new(std::fs::File::open(file)?))?;
    if !header.metadata.contains_key(statefile::PARENT_KEY) {
        return Ok(None);
    }
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".state"))
        .ok_or_else(|| {
            Failure(
                "an incremental checkpoint's statefile is NAME.state beside its parent's".into(),
            )
        })?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    Ok(Some(statefile::find_chain(dir, name)?))
}

/// Whether a graph's root is pgalloc's page metadata.
pub(crate) fn is_saved_file(root: &Value<'_>) -> bool {
    matches!(
        root,
        Value::Struct {
            name: "SavedFile",
            ..
        }
    )
}

/// Whether a graph record's root is pgalloc's page metadata.
fn is_page_metadata(body: &[u8]) -> Result<bool> {
    Ok(is_saved_file(&decode(body, MAX_DEPTH)?.root))
}

/// A record's header and body.
pub(crate) fn record(body: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(body.len() + 10);
    // Writing into a Vec cannot fail; a length over 2^63 cannot be read.
    let _ = stateify::write_header(&mut r, body.len() as u64, true);
    r.extend_from_slice(body);
    r
}

/// The page metadata record (header and body) of the statefile `file`.
pub(crate) fn page_metadata_record(cli: &Cli, file: &Path) -> Result<Vec<u8>> {
    let mut inp = crate::open(cli, file)?;
    while let Some(r) = inp.next_record()? {
        if let Some(body) = &r.body {
            let found = is_page_metadata(body).map_err(|Failure(m)| {
                Failure(format!("record {} at byte {}: {m}", r.index, r.offset))
            })?;
            if found {
                return Ok(record(body));
            }
        }
    }
    Err(Failure("no page metadata record (SavedFile) in it".into()))
}

fn at(p: &Path) -> impl Fn(Failure) -> Failure + '_ {
    move |Failure(m)| Failure(format!("{}: {m}", p.display()))
}

fn short(d: &[u8; 32]) -> String {
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// One line on a layer.
pub(crate) fn describe(l: &pgalloc::LayerInfo) -> String {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    match &l.parent {
        None => format!(
            "full checkpoint {} ({:.2} MiB of pages{})",
            short(&l.digest),
            mib(l.page_bytes),
            match &l.squashed {
                Some(d) => format!(", squashed from a chain up to {}", short(d)),
                None => String::new(),
            }
        ),
        Some(p) => format!(
            "delta {} {} on parent {} ({:.2} MiB changed, {:.2} MiB of pages)",
            l.layer,
            short(&l.digest),
            short(p),
            mib(l.changed_bytes),
            mib(l.page_bytes)
        ),
    }
}

pub(crate) fn layer_json(l: &pgalloc::LayerInfo) -> serde_json::Value {
    let hex = |d: &[u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    json!({
        "layer": l.layer,
        "digest": hex(&l.digest),
        "parent": l.parent.as_ref().map(hex),
        "squashed_from": l.squashed.as_ref().map(hex),
        "changed_bytes": l.changed_bytes,
        "page_bytes": l.page_bytes,
    })
}

/// `stateify squash FILE NAME`: the chain `FILE` ends, written beside it
/// as checkpoint `NAME` — a statefile with the same records, metadata and
/// compression, its page metadata replaced by the squashed memory's, and
/// a new pages file holding every page (`statefile::write_pair`, so a
/// crash leaves no half checkpoint).
pub(crate) fn squash(cli: &Cli, file: &Path, name: &str) -> Result<u8> {
    let chain = chain_of(file)?.ok_or_else(|| {
        Failure(
            "not an incremental checkpoint (its metadata names no parent): nothing to squash"
                .into(),
        )
    })?;
    let key = input::read_key(cli.key_file.as_deref())?;
    let mut layers = Vec::new();
    for p in &chain {
        let rec = page_metadata_record(cli, &p.state).map_err(at(&p.state))?;
        let pages = std::fs::File::open(&p.pages)
            .map_err(|e| Failure(format!("{}: {e}", p.pages.display())))?;
        layers.push((rec, Arc::new(pages) as Arc<dyn pgalloc::PageSource>));
    }
    let top = chain.last().expect("a chain has its top");
    let dir = top.state.parent().unwrap_or(Path::new("."));
    let (stats, records) = statefile::write_pair(dir, name, |state, pages, pages_name| {
        let mut page_meta = Vec::new();
        let stats = pgalloc::squash(
            layers.iter().map(|(rec, src)| (&rec[..], src.clone())),
            &mut page_meta,
            pages,
            &pgalloc::SaveOpts::default(),
        )
        .map_err(|e| Failure(e.to_string()))?;
        let records = copy_statefile(&top.state, key.as_deref(), state, pages_name, &page_meta)?;
        Ok::<_, Failure>((stats, records))
    })?;
    let out = statefile::find_pair(dir, name)?;
    emit(
        cli,
        format!(
            "squashed {} checkpoints ({}) into {}: {records} records, {:.2} MiB of pages in {}\n",
            chain.len(),
            chain
                .iter()
                .map(|p| p.state.display().to_string())
                .collect::<Vec<_>>()
                .join(" <- "),
            out.state.display(),
            stats.bytes_written as f64 / (1 << 20) as f64,
            out.pages.display(),
        ),
        json!({"layers": chain.len(), "state": out.state, "pages": out.pages,
            "records": records, "page_bytes": stats.bytes_written}),
    )
}

/// Copies the statefile `from` into `out` record by record, its page
/// metadata record replaced by `page_meta`, its metadata naming
/// `pages_name` and no parent. Returns the records copied.
fn copy_statefile(
    from: &Path,
    key: Option<&[u8]>,
    out: &mut dyn Write,
    pages_name: &str,
    page_meta: &[u8],
) -> Result<u64> {
    let mut r = statefile::Reader::new(BufReader::new(std::fs::File::open(from)?), key)?;
    let h = r.header().clone();
    let mut meta: std::collections::BTreeMap<String, String> = h
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with('_') && k.as_str() != statefile::PARENT_KEY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta.insert(statefile::PAGES_KEY.into(), pages_name.into());
    let opts = statefile::Options {
        compression: h.compression,
        ..statefile::Options::default()
    };
    let mut w = statefile::Writer::with_options(out, key, &meta, opts)?;
    let mut n = 0u64;
    while !r.fill_buf()?.is_empty() {
        let (len, object) = stateify::read_header(&mut r)?;
        if object {
            let mut body = Vec::new();
            let got = (&mut r).take(len).read_to_end(&mut body)?;
            if got as u64 != len {
                return Err(Failure(format!("record {n}: truncated")));
            }
            if is_page_metadata(&body)? {
                w.write_all(page_meta)?;
            } else {
                w.write_all(&record(&body))?;
            }
        } else {
            stateify::write_header(&mut w, len, false)?;
            let got = std::io::copy(&mut (&mut r).take(len), &mut w)?;
            if got != len {
                return Err(Failure(format!("record {n}: truncated")));
            }
        }
        n += 1;
    }
    r.finish()?;
    w.finish()?;
    Ok(n)
}
