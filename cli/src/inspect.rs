//! `info` and `verify`: what a file is, and whether every byte of it (and
//! of the pages file it names) holds.

use std::io::Read;
use std::path::Path;

use serde_json::json;
use stateify::value::{decode, Value};

use crate::input::{self, Failure, Kind, Result};
use crate::remote::PagesFile;
use crate::{emit, graph_error, open, Cli, MAX_DEPTH};

/// The checkpoint id in a pages file's header, if it has one.
pub(crate) fn pages_header(src: &dyn pgalloc::PageSource) -> Result<Option<u128>> {
    let mut h = vec![0u8; pgalloc::PAGES_HEADER as usize];
    let mut n = 0;
    while n < h.len() {
        match src.read_at(&mut h[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(pgalloc::read_pages_header(&h[..n]).ok())
}

/// Pages (after the header, if any) and how many are all zeros.
pub(crate) fn pages_summary(file: &Path, skip: u64) -> Result<(u64, u64)> {
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

pub(crate) fn read_full(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

pub(crate) fn info(cli: &Cli, file: &Path) -> Result<u8> {
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
            // The checkpoints below an incremental one, by name.
            let chain = crate::chain::chain_of(file)?;
            if let Some(c) = &chain {
                t.push_str(&format!(
                    "chain: {} layers, oldest first: {} (`verify` checks each and their parents)\n",
                    c.len(),
                    c.iter()
                        .map(|p| p.state.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" <- ")
                ));
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
                    "chain": chain.map(|c| c.iter().map(|p| p.state.clone()).collect::<Vec<_>>()),
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
            let id = pages_header(&std::fs::File::open(file)?)?;
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

pub(crate) fn verify(cli: &Cli, file: &Path) -> Result<u8> {
    let (mut text, mut j, top_meta) = verify_one(cli, file)?;
    // An incremental checkpoint: every layer below, and the chain (each
    // layer's page metadata as its verification read it).
    if let Some(chain) = crate::chain::chain_of(file)? {
        let mut layers_json = Vec::new();
        let mut metas = Vec::new();
        for p in &chain[..chain.len() - 1] {
            let (t, lj, meta) = verify_one(cli, &p.state)
                .map_err(|Failure(m)| Failure(format!("{}: {m}", p.state.display())))?;
            text += &format!("{}: {t}", p.state.display());
            layers_json.push(lj);
            metas.push((p, meta));
        }
        metas.push((&chain[chain.len() - 1], top_meta));
        let infos = metas
            .into_iter()
            .map(|(p, meta)| {
                let at = |m: String| Failure(format!("{}: {m}", p.state.display()));
                let meta =
                    meta.ok_or_else(|| at("no page metadata record (SavedFile) in it".into()))?;
                pgalloc::read_layer(&meta[..]).map_err(|e| at(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        pgalloc::check_chain(&infos).map_err(|e| Failure(e.to_string()))?;
        text += &format!(
            "chain: {} layers, each delta's parent checked by digest:\n",
            infos.len()
        );
        for (p, l) in chain.iter().zip(&infos) {
            text += &format!("  {}: {}\n", p.state.display(), crate::chain::describe(l));
        }
        j["chain"] = json!(chain
            .iter()
            .zip(&infos)
            .map(|(p, l)| {
                let mut v = crate::chain::layer_json(l);
                v["state"] = json!(p.state);
                v
            })
            .collect::<Vec<_>>());
        j["layers_below"] = json!(layers_json);
    }
    emit(cli, text, j)
}

/// Verifies one statefile or stream (and the pages file it names); returns
/// what to print, and its page metadata record, if it has one.
fn verify_one(cli: &Cli, file: &Path) -> Result<(String, serde_json::Value, Option<Vec<u8>>)> {
    let mut inp = open(cli, file)?;
    let kind = inp.kind;
    let (mut graphs, mut raw) = (0u64, 0u64);
    let mut page_meta = None;
    while let Some(r) = inp.next_record()? {
        match &r.body {
            Some(body) => {
                let g = decode(body, MAX_DEPTH).map_err(|e| graph_error(&r, e))?;
                if crate::chain::is_saved_file(&g.root) {
                    page_meta = Some(crate::chain::record(body));
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
    if let (Some(pages), Some(record)) = (named_pages_file(file)?, &page_meta) {
        let source = pages.source()?;
        let r = pgalloc::verify_pages(&record[..], &*source)
            .map_err(|e| Failure(format!("pages file {}: {e}", pages.label())))?;
        let how = if r.verified {
            "every piece against its BLAKE3 digest"
        } else {
            "its length only (saved without page digests)"
        };
        text += &format!(
            "pages file {} (checkpoint {:032x}): {} blocks, {} bytes; verified {how}\n",
            pages.label(),
            r.checkpoint_id,
            r.blocks,
            r.bytes
        );
        pages_json = json!({"file": pages.label(), "checkpoint_id": format!("{:032x}", r.checkpoint_id),
            "blocks": r.blocks, "bytes": r.bytes, "digests": r.verified});
    }
    Ok((
        text,
        json!({"ok": true, "kind": kind.name(), "graphs": graphs, "raw_records": raw, "pages": pages_json}),
        page_meta,
    ))
}

/// What `info` shows of a page metadata record (`pgalloc`'s `SavedFile`).
pub(crate) struct PageMeta {
    record: usize,
    checkpoint_id: u128,
    /// Digested pieces, and their size.
    digests: usize,
    piece: u64,
    /// Where it stands in a chain of incremental checkpoints.
    layer: Option<pgalloc::LayerInfo>,
}

/// The page metadata records of a statefile (its contents read, so keyed
/// files need `--key-file`).
pub(crate) fn page_metadata(cli: &Cli, file: &Path) -> Result<Vec<PageMeta>> {
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
            layer: pgalloc::read_layer(&crate::chain::record(body)[..]).ok(),
        });
    }
    Ok(out)
}

/// Whether each page metadata record's pages can be verified.
pub(crate) fn page_meta_info(metas: &[PageMeta]) -> Option<(String, serde_json::Value)> {
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
        if let Some(l) = &m.layer {
            text += &format!(
                "page metadata (record {}): {}\n",
                m.record,
                crate::chain::describe(l)
            );
        }
    }
    let list: Vec<_> = metas
        .iter()
        .map(|m| {
            json!({"record": m.record, "digest_pieces": m.digests,
                "layer": m.layer.as_ref().map(crate::chain::layer_json)})
        })
        .collect();
    (!list.is_empty()).then(|| (text, json!(list)))
}

pub(crate) struct PairInfo {
    text: String,
    json: serde_json::Value,
}

/// For a statefile that names its pages file: the pages file's checkpoint
/// id (from its header) and, when the contents were read (`metas`),
/// whether the page metadata inside names the same checkpoint.
pub(crate) fn pair_info(file: &Path, metas: Option<&[PageMeta]>) -> Result<Option<PairInfo>> {
    let Some(pages) = named_pages_file(file)? else {
        return Ok(None);
    };
    let in_pages = match pages.source().and_then(|s| pages_header(&*s)) {
        Ok(id) => id,
        Err(Failure(m)) => {
            return Ok(Some(PairInfo {
                text: format!("pages file: {} ({m})\n", pages.label()),
                json: json!({"file": pages.label(), "error": m}),
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
            pages.label(),
            in_pages.map_or("unknown: no header".into(), hex)
        ),
        json: json!({
            "file": pages.label(),
            "checkpoint_id": in_pages.map(hex),
            "matches": in_meta.map(|m| Some(m) == in_pages),
        }),
    }))
}

/// The pages file a statefile's metadata names (key `pages`, a file beside
/// it, or an object beside it in the store it was fetched from), if it
/// names one.
pub(crate) fn named_pages_file(file: &Path) -> Result<Option<PagesFile>> {
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
    Ok(Some(match crate::remote::store_of(file) {
        Some(store) => PagesFile::Remote {
            store,
            name: name.clone(),
        },
        None => PagesFile::Local(file.with_file_name(name)),
    }))
}
