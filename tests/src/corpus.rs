//! The compatibility corpus: what each entry writes, and how today's code
//! reads it back.
//!
//! An [`Entry`] is a named case: `write` makes its files with today's code
//! (used once per corpus version, by `make-golden`), `read` loads files of
//! any version with today's code and describes what came back. The
//! sidecar `NAME.expect` beside the files records the reader's name and the
//! description (with its digest) at the time of writing; every later
//! version must read the files to the very same description.
//!
//! Readers are kept forever: a corpus version names them in its sidecars.
//! They never panic on bad input (the hostile test runs them on cut and
//! flipped files), and they refuse trailing bytes.

use std::collections::BTreeMap;
use std::io::{BufRead, Cursor, Read, Write};
use std::sync::Arc;

use pgalloc::{AllocOpts, FileRange, LoadOpts, MemoryFile, MemoryKind, SaveOpts, PAGE_SIZE};
use stateify::Stateify;

use crate::model::{self, Collections, Compound, Event, Packed, Scalars, Shapes, Sharing};
use crate::sandbox;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The files of one entry, by name.
pub type Files = BTreeMap<String, Vec<u8>>;

/// A record stream found in an entry's files.
pub struct Stream {
    /// Which file (a statefile's stream is its decoded contents).
    pub file: String,
    /// The record stream as stored.
    pub bytes: Vec<u8>,
    /// The loaded values saved again with today's code into the same
    /// records, for graphs loaded as the type that wrote them.
    pub reencoded: Option<Vec<u8>>,
}

/// What a reader found.
pub struct Loaded {
    /// Exact text of the loaded values (see `model`).
    pub description: String,
    pub streams: Vec<Stream>,
}

pub struct Entry {
    pub name: &'static str,
    /// What it covers, for the sidecar and the docs.
    pub about: &'static str,
    pub write: fn() -> Result<Files, BoxError>,
    pub read: fn(&Files) -> Result<Loaded, BoxError>,
}

/// The key of keyed statefiles in the corpus.
pub const KEY: &[u8] = b"stateify golden corpus key";

fn file<'a>(files: &'a Files, name: &str) -> Result<&'a [u8], BoxError> {
    files
        .get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| format!("missing file {name}").into())
}

fn one(name: &str, bytes: Vec<u8>) -> Files {
    Files::from([(name.to_string(), bytes)])
}

// ---- record streams ----

/// Reads a raw record: its header (an object record here is an error) and
/// its body, refusing a length beyond the input.
fn read_raw(cur: &mut Cursor<&[u8]>) -> Result<Vec<u8>, BoxError> {
    let at = cur.position();
    let (len, object) = stateify::read_header(&mut *cur)?;
    if object {
        return Err(format!("expected a raw record at byte {at}, found a graph record").into());
    }
    let left = cur.get_ref().len() as u64 - cur.position();
    if len > left {
        return Err(format!("raw record at byte {at}: {len} bytes claimed, {left} left").into());
    }
    let mut body = vec![0; len as usize];
    cur.read_exact(&mut body)?;
    Ok(body)
}

fn expect_end(cur: &Cursor<&[u8]>, what: &str) -> Result<(), BoxError> {
    let left = cur.get_ref().len() as u64 - cur.position();
    if left != 0 {
        return Err(format!("{what}: {left} trailing bytes at byte {}", cur.position()).into());
    }
    Ok(())
}

/// Loads one graph record as `T`, returns its description, and saves the
/// value again into `again`.
fn graph<T: Stateify>(
    cur: &mut Cursor<&[u8]>,
    describe: fn(&T) -> String,
    again: &mut Vec<u8>,
) -> Result<String, BoxError> {
    let at = cur.position();
    let v: T = stateify::load(&mut *cur).map_err(|e| format!("graph at byte {at}: {e}"))?;
    stateify::save(&mut *again, &v)?;
    Ok(describe(&v))
}

/// A stream of one graph record.
fn write_graph<T: Stateify>(name: &str, v: &T) -> Result<Files, BoxError> {
    Ok(one(name, stateify::to_vec(v)?))
}

/// Reads a file of one graph record as `T`.
fn read_graph<T: Stateify>(
    files: &Files,
    name: &str,
    describe: fn(&T) -> String,
) -> Result<Loaded, BoxError> {
    let bytes = file(files, name)?;
    let mut cur = Cursor::new(bytes);
    let mut again = Vec::new();
    let description = graph(&mut cur, describe, &mut again)?;
    expect_end(&cur, name)?;
    Ok(Loaded {
        description,
        streams: vec![Stream {
            file: name.into(),
            bytes: bytes.to_vec(),
            reencoded: Some(again),
        }],
    })
}

// ---- the mixed stream: several graph records and raw records ----

fn events() -> Vec<Event> {
    vec![Event::Key('x'), Event::Move(1, -1), Event::Idle]
}

fn write_raw(out: &mut Vec<u8>, body: &[u8]) -> Result<(), BoxError> {
    stateify::write_header(&mut *out, body.len() as u64, false)?;
    out.extend_from_slice(body);
    Ok(())
}

fn write_mixed(out: &mut Vec<u8>) -> Result<(), BoxError> {
    stateify::save(&mut *out, &"first record".to_string())?;
    write_raw(out, b"raw bytes between graphs")?;
    stateify::save(&mut *out, &vec![1u64, 300, u64::MAX])?;
    write_raw(out, &[])?;
    stateify::save(&mut *out, &events())?;
    let patterned: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8 & 0xf0).collect();
    write_raw(out, &patterned)?;
    stateify::save(&mut *out, &Sharing::build())?;
    Ok(())
}

/// Reads what `write_mixed` wrote; returns the description and the stream
/// saved again.
fn read_mixed(bytes: &[u8]) -> Result<(String, Vec<u8>), BoxError> {
    let mut cur = Cursor::new(bytes);
    let mut again = Vec::new();
    let mut d = String::new();
    let raw = |cur: &mut Cursor<&[u8]>, again: &mut Vec<u8>| -> Result<String, BoxError> {
        let b = read_raw(cur)?;
        write_raw(again, &b)?;
        Ok(format!(
            "raw record, {} bytes, blake3 {}\n",
            b.len(),
            blake3::hash(&b).to_hex()
        ))
    };
    d += &graph::<String>(&mut cur, |s| format!("{s:?}\n"), &mut again)?;
    d += &raw(&mut cur, &mut again)?;
    d += &graph::<Vec<u64>>(&mut cur, |v| format!("{v:?}\n"), &mut again)?;
    d += &raw(&mut cur, &mut again)?;
    d += &graph::<Vec<Event>>(&mut cur, |v| format!("{v:?}\n"), &mut again)?;
    d += &raw(&mut cur, &mut again)?;
    d += &graph(&mut cur, Sharing::describe, &mut again)?;
    expect_end(&cur, "stream")?;
    Ok((d, again))
}

// ---- statefiles ----

fn write_statefile(
    name: &str,
    key: Option<&[u8]>,
    chunk_size: usize,
    compression: statefile::Compression,
) -> Result<Files, BoxError> {
    let meta = BTreeMap::from([
        ("app".to_string(), "stateify golden corpus".to_string()),
        ("case".to_string(), name.to_string()),
    ]);
    let opts = statefile::Options {
        chunk_size,
        compression,
        threads: 2,
    };
    let mut w = statefile::Writer::with_options(Vec::new(), key, &meta, opts)?;
    let mut inner = Vec::new();
    write_mixed(&mut inner)?;
    w.write_all(&inner)?;
    let (bytes, _) = w.finish()?;
    Ok(one(name, bytes))
}

fn read_statefile(files: &Files, name: &str, key: Option<&[u8]>) -> Result<Loaded, BoxError> {
    let bytes = file(files, name)?;
    let mut r = statefile::Reader::new(Cursor::new(bytes), key)?;
    let h = r.header().clone();
    let mut d = format!(
        "statefile version {}.{} keyed {} compression {:?}\nmetadata {:?}\n",
        h.version.0, h.version.1, h.keyed, h.compression, h.metadata
    );
    let mut inner = Vec::new();
    r.read_to_end(&mut inner)?;
    r.finish()?;
    let (contents, again) = read_mixed(&inner)?;
    d += &contents;
    Ok(Loaded {
        description: d,
        streams: vec![Stream {
            file: format!("{name}.contents"),
            bytes: inner,
            reencoded: Some(again),
        }],
    })
}

// ---- page memory ----

/// Memory of every kind, with untouched pages, pages written with zeros,
/// data, a range with two references and a freed hole.
fn build_memory() -> Result<MemoryFile, BoxError> {
    let mf = MemoryFile::new(Default::default())?;
    let page = |start: u64, i: u64| FileRange {
        start: start + i * PAGE_SIZE,
        end: start + (i + 1) * PAGE_SIZE,
    };
    let alloc = |pages: u64, kind: MemoryKind, memcg: u32| {
        mf.allocate(pages * PAGE_SIZE, AllocOpts { kind, memcg })
    };
    let a = alloc(16, MemoryKind::Anonymous, 1)?;
    for i in 0..16 {
        match i % 4 {
            0 => {}
            1 => mf.with_slice_mut(page(a.start, i), |s| s.fill(0))?,
            _ => mf.with_slice_mut(page(a.start, i), |s| sandbox::fill_page(s, i))?,
        }
    }
    let freed = alloc(2, MemoryKind::Anonymous, 1)?;
    let b = alloc(8, MemoryKind::PageCache, 2)?;
    for i in 0..8 {
        mf.with_slice_mut(page(b.start, i), |s| sandbox::fill_page(s, 100 + i))?;
    }
    mf.inc_ref(FileRange {
        start: b.start,
        end: b.start + 2 * PAGE_SIZE,
    })?;
    alloc(4, MemoryKind::Tmpfs, 3)?;
    let d = alloc(2, MemoryKind::System, 0)?;
    mf.write_at(d.start + 100, b"a few bytes of system memory")?;
    mf.dec_ref(freed)?;
    Ok(mf)
}

/// Every allocated segment, with a digest of its contents.
fn describe_memory(mf: &MemoryFile) -> Result<String, BoxError> {
    let mut d = format!("memory file: {} bytes\n", mf.file_size());
    for (r, kind, memcg, refs) in mf.segments() {
        let digest = mf.with_slice(r, blake3::hash)?;
        d += &format!(
            "segment {:#x}..{:#x} {kind:?} memcg {memcg} refs {refs} blake3 {}\n",
            r.start,
            r.end,
            digest.to_hex()
        );
    }
    Ok(d)
}

fn eager() -> LoadOpts {
    LoadOpts {
        background: false,
        ..LoadOpts::default()
    }
}

fn write_pages_file() -> Result<Files, BoxError> {
    let mf = build_memory()?;
    let (mut meta, mut pages) = (Vec::new(), Vec::new());
    mf.save_to(&mut meta, Some(&mut pages), &Default::default())?;
    Ok(Files::from([
        ("pages.meta".to_string(), meta),
        ("pages.pages".to_string(), pages),
    ]))
}

fn read_pages_file(files: &Files) -> Result<Loaded, BoxError> {
    let meta = file(files, "pages.meta")?;
    let pages = file(files, "pages.pages")?.to_vec();
    let mut cur = Cursor::new(meta);
    let (mf, _) = MemoryFile::load_from(&mut cur, Some(Arc::new(pages)), &eager())?;
    expect_end(&cur, "pages.meta")?;
    Ok(Loaded {
        description: describe_memory(&mf)?,
        streams: vec![Stream {
            file: "pages.meta".into(),
            bytes: meta.to_vec(),
            reencoded: None,
        }],
    })
}

/// The layers of the chain entry: a full save of `build_memory`, then two
/// deltas (pages written, one zeroed, a range freed and another allocated).
fn write_pages_chain() -> Result<Files, BoxError> {
    let mf = build_memory()?;
    let mut files = Files::new();
    let mut save = |i: usize, incremental: bool| -> Result<(), BoxError> {
        let (mut meta, mut pages) = (Vec::new(), Vec::new());
        let opts = SaveOpts {
            incremental,
            ..SaveOpts::default()
        };
        mf.save_to(&mut meta, Some(&mut pages), &opts)?;
        files.insert(format!("chain.{i}.meta"), meta);
        files.insert(format!("chain.{i}.pages"), pages);
        Ok(())
    };
    save(0, false)?;
    mf.write_at(3 * PAGE_SIZE + 10, b"changed after the base")?;
    mf.write_at(6 * PAGE_SIZE, &[0; PAGE_SIZE as usize])?;
    save(1, true)?;
    let seg = mf.segments();
    let (last, ..) = seg.last().ok_or("no segments")?;
    mf.dec_ref(*last)?;
    let n = mf.allocate(3 * PAGE_SIZE, AllocOpts::default())?;
    mf.write_at(n.start + PAGE_SIZE, b"a page of the second delta")?;
    mf.write_at(7 * PAGE_SIZE + 4090, b"across a page boundary")?;
    save(2, true)?;
    Ok(files)
}

fn read_pages_chain(files: &Files) -> Result<Loaded, BoxError> {
    let mut layers = Vec::new();
    let mut description = String::new();
    let mut streams = Vec::new();
    for i in 0..3 {
        let meta = file(files, &format!("chain.{i}.meta"))?;
        let pages: Arc<dyn pgalloc::PageSource> =
            Arc::new(file(files, &format!("chain.{i}.pages"))?.to_vec());
        let l = pgalloc::read_layer(meta)?;
        description += &format!(
            "layer {}: parent {}, {} bytes changed, {} bytes of pages\n",
            l.layer,
            if l.parent.is_some() { "named" } else { "none" },
            l.changed_bytes,
            l.page_bytes
        );
        streams.push(Stream {
            file: format!("chain.{i}.meta"),
            bytes: meta.to_vec(),
            reencoded: None,
        });
        layers.push((Cursor::new(meta), pages));
    }
    let (mf, _) = MemoryFile::load_chain(layers.iter_mut().map(|(c, p)| (c, p.clone())), &eager())?;
    for (i, (cur, _)) in layers.iter().enumerate() {
        expect_end(cur, &format!("chain.{i}.meta"))?;
    }
    description += &describe_memory(&mf)?;
    Ok(Loaded {
        description,
        streams,
    })
}

fn write_pages_inline() -> Result<Files, BoxError> {
    let mf = build_memory()?;
    let mut meta = Vec::new();
    mf.save_to(&mut meta, None, &Default::default())?;
    Ok(one("pages-inline.stream", meta))
}

fn read_pages_inline(files: &Files) -> Result<Loaded, BoxError> {
    let bytes = file(files, "pages-inline.stream")?;
    let mut cur = Cursor::new(bytes);
    let (mf, _) = MemoryFile::load_from(&mut cur, None, &eager())?;
    expect_end(&cur, "pages-inline.stream")?;
    Ok(Loaded {
        description: describe_memory(&mf)?,
        streams: vec![Stream {
            file: "pages-inline.stream".into(),
            bytes: bytes.to_vec(),
            reencoded: None,
        }],
    })
}

// ---- the sandbox: a statefile (graph + page metadata) and a pages file ----

fn write_sandbox() -> Result<Files, BoxError> {
    let (sb, mem) = sandbox::build()?;
    let (mut page_meta, mut pages) = (Vec::new(), Vec::new());
    mem.save_to(&mut page_meta, Some(&mut pages), &Default::default())?;
    let meta = BTreeMap::from([("app".to_string(), "stateify golden sandbox".to_string())]);
    let mut w = statefile::Writer::new(Vec::new(), Some(KEY), &meta)?;
    stateify::save(&mut w, &sb)?;
    w.write_all(&page_meta)?;
    let (state, _) = w.finish()?;
    sb.stack.shutdown();
    Ok(Files::from([
        ("sandbox.state".to_string(), state),
        ("sandbox.pages".to_string(), pages),
    ]))
}

fn read_sandbox(files: &Files) -> Result<Loaded, BoxError> {
    use stateify_examples::timers::{ClockResource, FakeClock};
    let state = file(files, "sandbox.state")?;
    let pages = file(files, "sandbox.pages")?.to_vec();
    let mut r = statefile::Reader::new(Cursor::new(state), Some(KEY))?;
    let metadata = r.metadata().clone();
    // Read the contents whole first, to keep them for the printer.
    let mut inner = Vec::new();
    r.read_to_end(&mut inner)?;
    r.finish()?;
    let mut cur = Cursor::new(&inner[..]);
    let mut res = stateify::Resources::new();
    res.insert(ClockResource(FakeClock::starting_at(
        std::time::Duration::from_secs(100),
    )));
    let sb: sandbox::Sandbox = stateify::load_with(&mut cur, &mut res)?;
    let (mem, _) = MemoryFile::load_from(&mut cur, Some(Arc::new(pages)), &eager())?;
    expect_end(&cur, "sandbox.state")?;
    let description = format!(
        "metadata {metadata:?}\n{}{}",
        sandbox::describe(&sb, &mem)?,
        describe_memory(&mem)?
    );
    sb.stack.shutdown();
    Ok(Loaded {
        description,
        streams: vec![Stream {
            file: "sandbox.state.contents".into(),
            bytes: inner,
            reencoded: None,
        }],
    })
}

// ---- the table ----

fn read_evolution(files: &Files) -> Result<Loaded, BoxError> {
    // As the type that wrote it (re-encoded), then as the newer type.
    let mut loaded =
        read_graph::<Vec<model::old::Config>>(files, "evolution.graph", model::describe_debug)?;
    let newer: Vec<model::newer::Config> = stateify::from_slice(file(files, "evolution.graph")?)?;
    loaded.description = format!(
        "as written:\n{}as the newer type:\n{}",
        loaded.description,
        model::describe_debug(&newer)
    );
    Ok(loaded)
}

fn read_mixed_file(files: &Files) -> Result<Loaded, BoxError> {
    let bytes = file(files, "mixed.stream")?;
    let (description, again) = read_mixed(bytes)?;
    Ok(Loaded {
        description,
        streams: vec![Stream {
            file: "mixed.stream".into(),
            bytes: bytes.to_vec(),
            reencoded: Some(again),
        }],
    })
}

/// Every entry, by name. Names are never reused for another reading.
pub fn entries() -> Vec<Entry> {
    use statefile::Compression::{Lz4, Zstd};
    vec![
        Entry {
            name: "scalars",
            about: "every integer width and encoding, floats with NaN payloads and signed zeros, chars, strings",
            write: || write_graph("scalars.graph", &Scalars::build()),
            read: |f| read_graph(f, "scalars.graph", Scalars::describe),
        },
        Entry {
            name: "packed",
            about: "packed arrays of every number kind, byte arrays, a wrapped deque, plain struct arrays",
            write: || write_graph("packed.graph", &Packed::build()),
            read: |f| read_graph(f, "packed.graph", Packed::describe),
        },
        Entry {
            name: "compound",
            about: "options, tuples, arrays, enums of every variant kind, Result, std types, cells and locks",
            write: || write_graph("compound.graph", &Compound::build()),
            read: |f| read_graph(f, "compound.graph", Compound::describe),
        },
        Entry {
            name: "collections",
            about: "hash maps and sets (sorted by key), b-tree maps and sets, struct keys, nesting",
            write: || write_graph("collections.graph", &Collections::build()),
            read: |f| read_graph(f, "collections.graph", Collections::describe),
        },
        Entry {
            name: "sharing",
            about: "Rc/Arc sharing, Rc<RefCell>, Arc<Mutex>, Arc<RwLock>, Weak cycles, a forward Weak, dead Weaks",
            write: || write_graph("sharing.graph", &Sharing::build()),
            read: |f| read_graph(f, "sharing.graph", Sharing::describe),
        },
        Entry {
            name: "traitobj",
            about: "Box, Rc and Arc trait objects under registered names, sharing kept",
            write: || write_graph("traitobj.graph", &Shapes::build()),
            read: |f| read_graph(f, "traitobj.graph", Shapes::describe),
        },
        Entry {
            name: "evolution",
            about: "a type's first version, loaded as written and as the next version (field added with a default, renamed with an alias, dropped with ignore_unknown, enum variant added)",
            write: || write_graph("evolution.graph", &model::old::Config::build()),
            read: read_evolution,
        },
        Entry {
            name: "forward",
            about: "graph format 2: weak references that announce objects defined later (fd tables before their stack, players before their room)",
            write: || write_graph("forward.graph", &model::Forward::build()),
            read: |f| read_graph(f, "forward.graph", model::Forward::describe),
        },
        Entry {
            name: "outside",
            about: "graph format 2: an object announced by a weak reference and kept alive only outside the graph, its value after the root",
            write: || {
                let (v, _outside) = model::Outside::build();
                write_graph("outside.graph", &v)
            },
            read: |f| {
                // After the load nothing holds the announced stack: the
                // value saved again differs (its weak reference is dead).
                let mut l = read_graph(f, "outside.graph", model::Outside::describe)?;
                l.streams[0].reencoded = None;
                Ok(l)
            },
        },
        Entry {
            name: "serde",
            about: "serde types through the bridge: #[state(serde)] fields, Serde<T> elements and a #[state(postcard)] field; every serde data-model shape, rename/default/skip_serializing_if, internally, adjacently and untagged enums, a hash map in key order",
            write: || write_graph("serde.graph", &model::serde_types::SerdeFields::build()),
            read: |f| read_graph(f, "serde.graph", model::serde_types::SerdeFields::describe),
        },
        Entry {
            name: "mixed",
            about: "several graph records and raw records (one empty) in one stream",
            write: || {
                let mut out = Vec::new();
                write_mixed(&mut out)?;
                Ok(one("mixed.stream", out))
            },
            read: read_mixed_file,
        },
        Entry {
            name: "statefile-none",
            about: "statefile, no compression, no key, one chunk",
            write: || write_statefile("statefile-none.state", None, 1 << 20, Default::default()),
            read: |f| read_statefile(f, "statefile-none.state", None),
        },
        Entry {
            name: "statefile-keyed",
            about: "statefile, no compression, keyed, 1000-byte chunks",
            write: || write_statefile("statefile-keyed.state", Some(KEY), 1000, Default::default()),
            read: |f| read_statefile(f, "statefile-keyed.state", Some(KEY)),
        },
        Entry {
            name: "statefile-lz4",
            about: "statefile, lz4, keyed, 4 KiB chunks",
            write: || write_statefile("statefile-lz4.state", Some(KEY), 4096, Lz4),
            read: |f| read_statefile(f, "statefile-lz4.state", Some(KEY)),
        },
        Entry {
            name: "statefile-zstd",
            about: "statefile, zstd level 3, no key, 8 KiB chunks",
            write: || write_statefile("statefile-zstd.state", None, 8192, Zstd(3)),
            read: |f| read_statefile(f, "statefile-zstd.state", None),
        },
        Entry {
            name: "statefile-zstd-keyed",
            about: "statefile, zstd level 1, keyed, 333-byte chunks",
            write: || write_statefile("statefile-zstd-keyed.state", Some(KEY), 333, Zstd(1)),
            read: |f| read_statefile(f, "statefile-zstd-keyed.state", Some(KEY)),
        },
        Entry {
            name: "pages-file",
            about: "pgalloc metadata and a separate pages file: every memory kind, zero and untouched pages, two references, a freed hole",
            write: write_pages_file,
            read: read_pages_file,
        },
        Entry {
            name: "pages-inline",
            about: "the same memory with its pages inline, as raw records after the metadata",
            write: write_pages_inline,
            read: read_pages_inline,
        },
        Entry {
            name: "pages-chain",
            about: "incremental saves: a full pgalloc save and two deltas on it, each with its pages file (header version 2), loaded as a chain",
            write: write_pages_chain,
            read: read_pages_chain,
        },
        Entry {
            name: "sandbox",
            about: "a small sandbox checkpoint: keyed statefile of the graph and page metadata, and its pages file",
            write: write_sandbox,
            read: read_sandbox,
        },
    ]
}

// ---- sidecars ----

/// The text of a sidecar: what the files of an entry must load to.
pub fn sidecar(entry: &Entry, files: &Files, description: &str) -> String {
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    format!(
        "reader: {}\nabout: {}\nfiles: {}\ndigest: {}\n---\n{description}",
        entry.name,
        entry.about,
        names.join(" "),
        blake3::hash(description.as_bytes()).to_hex()
    )
}

/// A sidecar read back.
pub struct Expect {
    pub reader: String,
    pub files: Vec<String>,
    pub digest: String,
    pub description: String,
}

pub fn parse_sidecar(text: &str) -> Result<Expect, BoxError> {
    let (head, description) = text
        .split_once("\n---\n")
        .ok_or("sidecar without a `---` line")?;
    let mut fields = BTreeMap::new();
    for line in head.lines() {
        let (k, v) = line
            .split_once(": ")
            .ok_or_else(|| format!("sidecar line {line:?} is not `key: value`"))?;
        fields.insert(k, v);
    }
    let get = |k: &str| {
        fields
            .get(k)
            .map(|v| v.to_string())
            .ok_or_else(|| format!("sidecar without `{k}`"))
    };
    Ok(Expect {
        reader: get("reader")?,
        files: get("files")?.split(' ').map(String::from).collect(),
        digest: get("digest")?,
        description: description.to_string(),
    })
}

/// Reads the files a sidecar names from `dir`.
pub fn read_files(dir: &std::path::Path, names: &[String]) -> Result<Files, BoxError> {
    names
        .iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(n)).map_err(|e| format!("{n}: {e}"))?;
            Ok((n.clone(), bytes))
        })
        .collect()
}

/// The graph format version byte of the first graph record of a stream,
/// if it starts with one.
pub fn graph_version(stream: &[u8]) -> Option<u8> {
    let mut cur = Cursor::new(stream);
    let (_, object) = stateify::read_header(&mut cur).ok()?;
    if !object {
        return None;
    }
    cur.fill_buf().ok()?.first().copied()
}
