//! A checkpoint opened for the mount: every record copied once into an
//! unlinked temporary file (decoded from the statefile, every chunk MAC
//! checked on the way) and mapped, each graph record indexed by
//! `stateify::value::Lazy`, the statefile's metadata, and the saved pages.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pgalloc::{PageSource, SavedPages};
use stateify::value::{Lazy, Node};

use crate::input::{Failure, Result};
use crate::remote::PagesFile;
use crate::{graph_error, inspect, MAX_DEPTH};

/// One record of the checkpoint.
pub(crate) struct Record {
    /// The body (a graph record's after its header).
    pub body: &'static [u8],
    /// The index of a graph record; `None` for a raw record.
    pub graph: Option<Lazy<'static>>,
}

pub(crate) struct Checkpoint {
    pub records: Vec<Record>,
    pub metadata: Vec<(String, String)>,
    pub pages: Option<SavedPages>,
    /// Time to read, check and index the file.
    pub open_time: Duration,
    /// Bytes of records held in the temporary file.
    pub bytes: u64,
}

/// Writes into the temporary file, counting the bytes (its offset).
struct Sink(File, Rc<Cell<u64>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1.set(self.1.get() + n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Pages saved inline: the raw records after the page metadata, one
/// after another.
struct Inline(Vec<&'static [u8]>);

impl PageSource for Inline {
    fn read_at(&self, buf: &mut [u8], mut offset: u64) -> io::Result<usize> {
        for part in &self.0 {
            let len = part.len() as u64;
            if offset < len {
                let n = buf.len().min((len - offset) as usize);
                buf[..n].copy_from_slice(&part[offset as usize..offset as usize + n]);
                return Ok(n);
            }
            offset -= len;
        }
        Ok(0)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.iter().map(|p| p.len() as u64).sum())
    }
}

impl Checkpoint {
    pub(crate) fn open(cli: &crate::Cli, file: &Path, pages: Option<&Path>) -> Result<Checkpoint> {
        let started = Instant::now();
        let mut inp = crate::open(cli, file)?;
        let metadata = inp.metadata().into_iter().collect();
        let tmp = tempfile::tempfile()
            .map_err(|e| Failure(format!("a temporary file for the records: {e}")))?;
        let written = Rc::new(Cell::new(0u64));
        // Raw bodies stream straight into the file; graph bodies are
        // written here, through the same file offset, so the order holds.
        inp.raw_to = Some(Box::new(Sink(tmp.try_clone()?, written.clone())));
        let mut graphs = Sink(tmp.try_clone()?, written.clone());
        let mut spans = Vec::new();
        // Taken before the record is read: a raw body is written while it
        // is read.
        let mut start = written.get();
        while let Some(mut r) = inp.next_record()? {
            // The body now lives in the file; the record keeps its place.
            let graph = r
                .body
                .take()
                .map(|body| graphs.write_all(&body))
                .transpose()?;
            spans.push((start, graph.is_some(), r));
            start = written.get();
        }
        inp.finish()?;
        let total = written.get();
        let bytes: &'static [u8] = if total == 0 {
            &[]
        } else {
            // SAFETY: the file is our own, unlinked and never written after
            // this point, so nothing can change or truncate it under the
            // map. The map is leaked: it lives as long as the mount process.
            let map = unsafe { memmap2::Mmap::map(&tmp) }?;
            &Box::leak(Box::new(map))[..]
        };
        let mut records = Vec::with_capacity(spans.len());
        for (start, graph, r) in spans {
            let body = usize::try_from(start)
                .ok()
                .zip(usize::try_from(start + r.len).ok())
                .and_then(|(s, e)| bytes.get(s..e))
                .ok_or_else(|| {
                    Failure(format!(
                        "record {}: {} bytes at {start} of a {total}-byte copy",
                        r.index, r.len
                    ))
                })?;
            let graph = match graph {
                true => Some(Lazy::new(body, MAX_DEPTH).map_err(|e| graph_error(&r, e))?),
                false => None,
            };
            records.push(Record { body, graph });
        }
        let pages = open_pages(cli, file, pages, &records)?;
        Ok(Checkpoint {
            records,
            metadata,
            pages,
            open_time: started.elapsed(),
            bytes: total,
        })
    }
}

/// The saved page memory of the first page metadata record (pgalloc's
/// `SavedFile`): from `pages` if given, else from the pages file the
/// statefile names, else from the raw records after it (pages saved
/// inline). A checkpoint whose pages are in a file it does not name (and
/// none given) is mounted without them, with a note. An incremental
/// checkpoint shows its chain's memory: each page from the newest layer
/// that changed it.
fn open_pages(
    cli: &crate::Cli,
    file: &Path,
    pages: Option<&Path>,
    records: &[Record],
) -> Result<Option<SavedPages>> {
    let meta = records.iter().position(|r| {
        r.graph
            .as_ref()
            .and_then(|g| g.node(g.root()).ok())
            .is_some_and(|n| matches!(n, Node::Dir { ty, .. } if ty == "SavedFile"))
    });
    let Some(meta) = meta else { return Ok(None) };
    let body = records[meta].body;
    let record = crate::chain::record(body);
    let path = match pages {
        Some(p) => Some(PagesFile::Local(p.to_path_buf())),
        None => inspect::named_pages_file(file)?,
    };
    let source: Box<dyn PageSource> = match &path {
        Some(path) => path.source()?,
        None => Box::new(Inline(
            records[meta + 1..]
                .iter()
                .take_while(|r| r.graph.is_none())
                .map(|r| r.body)
                .collect(),
        )),
    };
    let chain = match pages {
        Some(_) => None,
        None => crate::chain::chain_of(file)?,
    };
    let opened = match chain {
        Some(chain) => {
            let mut lower = Vec::new();
            for p in &chain[..chain.len() - 1] {
                let rec = crate::chain::page_metadata_record(cli, &p.state)
                    .map_err(|Failure(m)| Failure(format!("{}: {m}", p.state.display())))?;
                let src: Box<dyn PageSource> = Box::new(
                    std::fs::File::open(&p.pages)
                        .map_err(|e| Failure(format!("{}: {e}", p.pages.display())))?,
                );
                lower.push((rec, src));
            }
            lower.push((record.clone(), source));
            SavedPages::open_chain(
                lower
                    .into_iter()
                    .map(|(rec, src)| (std::io::Cursor::new(rec), src)),
            )
        }
        None => SavedPages::open(&record[..], source),
    };
    match opened {
        Ok(p) => Ok(Some(p)),
        // A graph of another type that happens to be named `SavedFile`.
        Err(pgalloc::Error::Meta(e)) => {
            eprintln!(
                "stateify: record {meta} is named SavedFile but is not page metadata ({e}); \
                 mounting without /pages"
            );
            Ok(None)
        }
        Err(pgalloc::Error::PagesFile(_)) if path.is_none() => {
            eprintln!(
                "stateify: the pages of record {meta} are in a pages file the checkpoint does not name; \
                 mounting without /pages (give it with --pages FILE)"
            );
            Ok(None)
        }
        Err(pgalloc::Error::Chain(m)) => {
            eprintln!("stateify: the pages of record {meta} are {m}; mounting without /pages");
            Ok(None)
        }
        Err(e) => Err(Failure(format!(
            "saved pages (record {meta}{}): {e}",
            path.map(|p| format!(", {}", p.label())).unwrap_or_default()
        ))),
    }
}
