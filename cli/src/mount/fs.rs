//! The filesystem: inodes over the checkpoint's records, values, shared
//! objects, metadata and page segments, answered from the lazy index.
//!
//! Inode numbers are handed out on lookup and taken back when the kernel
//! forgets them, so the table holds what the kernel caches, not the graph.
//! A directory's listing is built when it is first read and kept for the
//! few directories read last.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    FileAttr, FileType, Filesystem, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyXattr,
    Request, FUSE_ROOT_ID,
};
use stateify::value::{Kind, Link, Loc, Marks, Node, Value};

use super::checkpoint::Checkpoint;

/// How long the kernel may cache what we answer: the checkpoint never
/// changes under the mount.
const TTL: Duration = Duration::from_secs(3600);
/// Directory listings kept.
const LISTINGS: usize = 8;
/// The extended attribute naming a value's type.
const TYPE_XATTR: &str = "user.stateify.type";

/// What an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Ino {
    Root,
    /// A value of graph record `.0` (`/N` is its root).
    Val(usize, Loc),
    /// The `.type` file of a value directory.
    Type(usize, Loc),
    /// A raw record's bytes.
    Raw(usize),
    Objects,
    /// `/objects/N`: the shared objects of graph record N.
    ObjectsOf(usize),
    Meta,
    MetaEntry(usize),
    Pages,
    Segment(usize),
}

struct Entry {
    ino: Ino,
    /// Path components below the root (`/0/x` is 2): relative links
    /// climb this many levels less one.
    depth: usize,
    /// Lookups the kernel has not forgotten.
    lookups: u64,
}

/// A directory's entries.
#[derive(Clone)]
enum Listing {
    /// Every entry, named (the fixed directories, structs and maps, whose
    /// entries are found by name).
    Named(Arc<Named>),
    /// A sequence or tuple: `.type`, then entries named by index, read a
    /// window at a time from the nearest mark (the offset of every
    /// [`MARK`]th child), so a million elements cost 16 KiB of marks.
    Indexed {
        r: usize,
        loc: Loc,
        len: usize,
        marks: Arc<Marks>,
    },
}

/// A named listing: name, inode, file type; and each name's place.
struct Named {
    entries: Vec<(String, Ino, FileType)>,
    by_name: HashMap<String, usize>,
}

/// The longest name given to the kernel (Linux's `NAME_MAX`).
const NAME_MAX: usize = 255;

/// Names unique within a directory and short enough for the kernel: a
/// repeated name (keys that render alike) gets `~i` (its position) added,
/// a name over [`NAME_MAX`] bytes is cut (at a character boundary) before
/// it; the first free name wins.
fn unique_names(names: Vec<(String, Ino, FileType)>) -> Named {
    let mut by_name = HashMap::with_capacity(names.len());
    let mut entries = Vec::with_capacity(names.len());
    for (i, (mut name, ino, kind)) in names.into_iter().enumerate() {
        if name.len() > NAME_MAX || by_name.contains_key(&name) {
            let tag = format!("~{i}");
            let mut cut = name.len().min(NAME_MAX - tag.len());
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            name.truncate(cut);
            name.push_str(&tag);
            // `~i` is unique among the renamed; a plain name equal to it
            // (a key spelled `a~3`) gets another round.
            while by_name.contains_key(&name) {
                name.push('~');
            }
        }
        by_name.insert(name.clone(), entries.len());
        entries.push((name, ino, kind));
    }
    Named { entries, by_name }
}

/// One mark per this many children of a sequence.
const MARK: usize = 64;
/// Children decoded per step of a directory read.
const WINDOW: usize = 256;

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::Leaf => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Link => FileType::Symlink,
    }
}

pub(crate) struct Fs {
    ck: Checkpoint,
    entries: HashMap<u64, Entry>,
    ids: HashMap<Ino, u64>,
    next: u64,
    listings: VecDeque<(Ino, Listing)>,
    uid: u32,
    gid: u32,
}

/// A file's bytes: borrowed from the mapped checkpoint where they are
/// there (a string with a newline after it), or made.
enum Content {
    Mapped(&'static [u8], bool),
    Made(Vec<u8>),
}

impl Content {
    /// A value's text as a file: a string as itself, a packed array as its
    /// raw little-endian bytes, anything else as its rendering; text ends
    /// in a newline.
    fn of(v: &Value<'static>) -> Content {
        match v {
            Value::Packed(_, b) => Content::Mapped(b, false),
            Value::Str(s) => Content::Mapped(s.as_bytes(), true),
            v => Content::Made(format!("{}\n", v.scalar_text()).into_bytes()),
        }
    }

    fn text(s: String) -> Content {
        Content::Made(format!("{s}\n").into_bytes())
    }

    fn len(&self) -> usize {
        match self {
            Content::Mapped(b, newline) => b.len() + *newline as usize,
            Content::Made(v) => v.len(),
        }
    }

    /// Bytes `offset..offset + size`, cut at the end: a copy of the window
    /// only, whatever the file's size.
    fn window(&self, offset: usize, size: usize) -> Cow<'_, [u8]> {
        let start = offset.min(self.len());
        let end = start.saturating_add(size).min(self.len());
        match self {
            Content::Mapped(b, true) if end > b.len() => {
                let mut w = b[start.min(b.len())..].to_vec();
                w.push(b'\n');
                Cow::Owned(w)
            }
            Content::Mapped(b, _) => Cow::Borrowed(&b[start..end]),
            Content::Made(v) => Cow::Borrowed(&v[start..end]),
        }
    }
}

/// A name as a path component: `/`, NUL and `%` escaped as `%2F`, `%00`
/// and `%25`, a leading `.` as `%2E` (so no name is `.`, `..` or
/// `.type`), and the empty name as `%`.
pub(crate) fn file_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '/' => out.push_str("%2F"),
            '\0' => out.push_str("%00"),
            '%' => out.push_str("%25"),
            '.' if i == 0 => out.push_str("%2E"),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    out
}

impl Fs {
    pub(crate) fn new(ck: Checkpoint) -> Fs {
        let mut fs = Fs {
            ck,
            entries: HashMap::new(),
            ids: HashMap::new(),
            next: FUSE_ROOT_ID + 1,
            listings: VecDeque::new(),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        };
        fs.entries.insert(
            FUSE_ROOT_ID,
            Entry {
                ino: Ino::Root,
                depth: 0,
                lookups: 1,
            },
        );
        fs.ids.insert(Ino::Root, FUSE_ROOT_ID);
        fs
    }

    /// The number of `ino`, made if needed, counting one lookup.
    fn remember(&mut self, ino: Ino, depth: usize) -> u64 {
        if let Some(&id) = self.ids.get(&ino) {
            if let Some(e) = self.entries.get_mut(&id) {
                e.lookups += 1;
            }
            return id;
        }
        let id = self.next;
        self.next += 1;
        self.ids.insert(ino, id);
        self.entries.insert(
            id,
            Entry {
                ino,
                depth,
                lookups: 1,
            },
        );
        id
    }

    fn graph(&self, r: usize) -> Option<&stateify::value::Lazy<'static>> {
        self.ck.records.get(r).and_then(|r| r.graph.as_ref())
    }

    /// Asks graph record `r`'s index about the value at `loc`; an error
    /// names both.
    fn ask<T>(
        &self,
        r: usize,
        loc: Loc,
        f: impl FnOnce(&stateify::value::Lazy<'static>) -> stateify::Result<T>,
    ) -> Result<T, String> {
        let g = self.graph(r).ok_or("not a graph record")?;
        f(g).map_err(|e| format!("record {r}, value at {loc:?}: {e}"))
    }

    fn node(&self, r: usize, loc: Loc) -> Result<Node<'static>, String> {
        self.ask(r, loc, |g| g.node(loc))
    }

    fn kind(&self, ino: Ino) -> Result<FileType, String> {
        Ok(match ino {
            Ino::Root | Ino::Objects | Ino::ObjectsOf(_) | Ino::Meta | Ino::Pages => {
                FileType::Directory
            }
            Ino::Val(r, loc) => file_type(self.ask(r, loc, |g| g.kind(loc))?),
            Ino::Type(..) | Ino::Raw(_) | Ino::MetaEntry(_) | Ino::Segment(_) => {
                FileType::RegularFile
            }
        })
    }

    /// The type name of a value, for `.type` and the xattr.
    fn type_name(&self, r: usize, loc: Loc) -> Result<String, String> {
        Ok(match self.node(r, loc)? {
            Node::Dir { ty, .. } => ty,
            Node::Leaf(v) => v.type_name(),
            Node::Link(Link::Object { id, weak }) => {
                format!("{}#{id}", if weak { "weak " } else { "" })
            }
            Node::Link(Link::DeadWeak) => "weak (dead)".into(),
        })
    }

    /// A file's bytes (not a page segment's, which are read by range).
    fn content(&self, ino: Ino) -> Result<Content, String> {
        match ino {
            Ino::Val(r, loc) => match self.node(r, loc)? {
                Node::Leaf(v) => Ok(Content::of(&v)),
                _ => Err("not a file".into()),
            },
            Ino::Type(r, loc) => Ok(Content::text(self.type_name(r, loc)?)),
            Ino::Raw(r) => Ok(Content::Mapped(self.ck.records[r].body, false)),
            Ino::MetaEntry(i) => Ok(Content::text(self.ck.metadata[i].1.clone())),
            _ => Err("not a file".into()),
        }
    }

    /// A symlink's target: the object under `/objects`, relative to the
    /// link's directory.
    fn target(&self, ino: Ino, depth: usize) -> Result<String, String> {
        let Ino::Val(r, loc) = ino else {
            return Err("not a link".into());
        };
        match self.node(r, loc)? {
            Node::Link(Link::Object { id, .. }) => Ok(format!(
                "{}objects/{r}/{id}",
                "../".repeat(depth.saturating_sub(1))
            )),
            Node::Link(Link::DeadWeak) => Ok("(dead weak)".into()),
            _ => Err("not a link".into()),
        }
    }

    fn attr(&self, id: u64) -> Result<FileAttr, String> {
        let e = self.entries.get(&id).ok_or("unknown inode")?;
        let kind = self.kind(e.ino)?;
        let (size, perm, nlink) = match kind {
            // 1: "unknown" to tools that count subdirectories by links.
            FileType::Directory => (0, 0o555, 1),
            FileType::Symlink => (self.target(e.ino, e.depth)?.len() as u64, 0o777, 1),
            _ => match e.ino {
                Ino::Segment(i) => {
                    let s = self.segments()[i];
                    (s.end - s.start, 0o444, 1)
                }
                ino => (self.content(ino)?.len() as u64, 0o444, 1),
            },
        };
        let t = SystemTime::UNIX_EPOCH;
        Ok(FileAttr {
            ino: id,
            size,
            blocks: size.div_ceil(512),
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn segments(&self) -> &[pgalloc::SavedSegment] {
        self.ck.pages.as_ref().map_or(&[], |p| p.segments())
    }

    /// The graph records that define shared objects (`/objects/N`).
    fn with_objects(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.ck.records.len()).filter(|&r| self.graph(r).is_some_and(|g| g.objects() > 0))
    }

    /// The entries of a directory (without `.` and `..`).
    fn list(&mut self, dir: Ino) -> Result<Listing, String> {
        if let Some(i) = self.listings.iter().position(|(d, _)| *d == dir) {
            let hit = self.listings.remove(i).expect("found above");
            self.listings.push_front(hit.clone());
            return Ok(hit.1);
        }
        let named: Vec<(String, Ino)> = match dir {
            Ino::Root => {
                let mut v: Vec<(String, Ino)> = (0..self.ck.records.len())
                    .map(|r| {
                        let ino = match self.graph(r) {
                            Some(g) => Ino::Val(r, g.root()),
                            None => Ino::Raw(r),
                        };
                        (r.to_string(), ino)
                    })
                    .collect();
                if self.with_objects().next().is_some() {
                    v.push(("objects".into(), Ino::Objects));
                }
                if !self.ck.metadata.is_empty() {
                    v.push(("metadata".into(), Ino::Meta));
                }
                if self.ck.pages.is_some() {
                    v.push(("pages".into(), Ino::Pages));
                }
                v
            }
            Ino::Objects => self
                .with_objects()
                .map(|r| (r.to_string(), Ino::ObjectsOf(r)))
                .collect(),
            Ino::ObjectsOf(r) => {
                let g = self.graph(r).ok_or("not a graph record")?;
                (0..g.objects())
                    .filter_map(|id| g.object(id).map(|loc| (id.to_string(), Ino::Val(r, loc))))
                    .collect()
            }
            Ino::Meta => (0..self.ck.metadata.len())
                .map(|i| (file_name(&self.ck.metadata[i].0), Ino::MetaEntry(i)))
                .collect(),
            Ino::Pages => self
                .segments()
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("{:x}-{:x}", s.start, s.end), Ino::Segment(i)))
                .collect(),
            Ino::Val(r, loc) => {
                if let Node::Dir {
                    len, indexed: true, ..
                } = self.node(r, loc)?
                {
                    let marks = Arc::new(self.ask(r, loc, |g| g.marks(loc, MARK))?);
                    return Ok(self.keep(dir, Listing::Indexed { r, loc, len, marks }));
                }
                let mut v = vec![(
                    ".type".to_string(),
                    Ino::Type(r, loc),
                    FileType::RegularFile,
                )];
                for c in self.ask(r, loc, |g| g.children(loc))? {
                    let name = file_name(&c.name.to_string());
                    v.push((name, Ino::Val(r, c.loc), file_type(c.kind)));
                }
                return Ok(self.keep(dir, Listing::Named(Arc::new(unique_names(v)))));
            }
            _ => return Err("not a directory".into()),
        };
        let mut entries = Vec::with_capacity(named.len());
        for (name, ino) in named {
            let kind = self.kind(ino)?;
            entries.push((name, ino, kind));
        }
        Ok(self.keep(dir, Listing::Named(Arc::new(unique_names(entries)))))
    }

    /// Keeps a listing among the last read.
    fn keep(&mut self, dir: Ino, listing: Listing) -> Listing {
        self.listings.push_front((dir, listing.clone()));
        self.listings.truncate(LISTINGS);
        listing
    }

    /// Children `first..first + max` of an indexed listing, as entries.
    fn window(
        &self,
        l: &Listing,
        first: usize,
        max: usize,
    ) -> Result<Vec<(String, Ino, FileType)>, String> {
        let Listing::Indexed { r, loc, marks, .. } = l else {
            return Err("not a sequence".into());
        };
        let kids = self.ask(*r, *loc, |g| g.children_from(*loc, first, max, Some(marks)))?;
        Ok(kids
            .into_iter()
            .map(|c| (c.name.to_string(), Ino::Val(*r, c.loc), file_type(c.kind)))
            .collect())
    }

    /// The entry named `name` of a directory.
    fn find(&mut self, dir: Ino, name: &OsStr) -> Result<Option<Ino>, String> {
        let listing = self.list(dir)?;
        match &listing {
            Listing::Named(v) => Ok(name
                .to_str()
                .and_then(|n| v.by_name.get(n))
                .map(|&i| v.entries[i].1)),
            Listing::Indexed { r, loc, len, .. } => {
                if name == ".type" {
                    return Ok(Some(Ino::Type(*r, *loc)));
                }
                // Only the canonical spelling of an index in range.
                let i = name
                    .to_str()
                    .and_then(|n| n.parse::<usize>().ok().filter(|i| i.to_string() == n));
                match i {
                    Some(i) if i < *len => Ok(self.window(&listing, i, 1)?.pop().map(|e| e.1)),
                    _ => Ok(None),
                }
            }
        }
    }

    /// Takes back `n` lookups of inode `id`, dropping it at none.
    fn forget_one(&mut self, id: u64, n: u64) {
        if id == FUSE_ROOT_ID {
            return;
        }
        if let Some(e) = self.entries.get_mut(&id) {
            e.lookups = e.lookups.saturating_sub(n);
            if e.lookups == 0 {
                let gone = e.ino;
                self.entries.remove(&id);
                self.ids.remove(&gone);
            }
        }
    }

    fn entry(&self, id: u64) -> Option<(Ino, usize)> {
        self.entries.get(&id).map(|e| (e.ino, e.depth))
    }
}

/// Reports a failure to read the checkpoint (the mount stays up).
fn failed(what: &str, e: &str) -> i32 {
    eprintln!("stateify mount: {what}: {e}");
    libc::EIO
}

impl Filesystem for Fs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let Some((dir, depth)) = self.entry(parent) else {
            return reply.error(libc::ENOENT);
        };
        let ino = match self.find(dir, name) {
            Ok(Some(ino)) => ino,
            Ok(None) => return reply.error(libc::ENOENT),
            Err(e) if e == "not a directory" => return reply.error(libc::ENOTDIR),
            Err(e) => return reply.error(failed("lookup", &e)),
        };
        let id = self.remember(ino, depth + 1);
        match self.attr(id) {
            Ok(a) => reply.entry(&TTL, &a, 0),
            Err(e) => {
                // The kernel will not forget what it was not given.
                self.forget_one(id, 1);
                reply.error(failed("lookup", &e))
            }
        }
    }

    fn forget(&mut self, _req: &Request<'_>, ino: u64, nlookup: u64) {
        self.forget_one(ino, nlookup);
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.attr(ino) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(failed("getattr", &e)),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        let Some((node, depth)) = self.entry(ino) else {
            return reply.error(libc::ENOENT);
        };
        match self.target(node, depth) {
            Ok(t) => reply.data(t.as_bytes()),
            Err(e) => reply.error(failed("readlink", &e)),
        }
    }

    #[allow(clippy::too_many_arguments)] // the trait's signature
    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock: Option<u64>,
        reply: ReplyData,
    ) {
        let Some((node, _)) = self.entry(ino) else {
            return reply.error(libc::ENOENT);
        };
        let offset = offset.max(0) as u64;
        if let Ino::Segment(i) = node {
            let s = self.segments()[i];
            let len = (size as u64).min((s.end - s.start).saturating_sub(offset)) as usize;
            let mut buf = vec![0u8; len];
            let pages = self.ck.pages.as_ref().expect("a segment has pages");
            return match pages.read_at(s.start + offset, &mut buf) {
                Ok(n) => reply.data(&buf[..n]),
                Err(e) => reply.error(failed(
                    &format!("pages {:x}-{:x} at offset {offset}", s.start, s.end),
                    &e.to_string(),
                )),
            };
        }
        match self.content(node) {
            Ok(c) => reply.data(&c.window(offset as usize, size as usize)),
            Err(e) => reply.error(failed("read", &e)),
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let Some((dir, _)) = self.entry(ino) else {
            return reply.error(libc::ENOENT);
        };
        let listing = match self.list(dir) {
            Ok(l) => l,
            Err(e) => return reply.error(failed("readdir", &e)),
        };
        // Entry i (from 0: `.`, `..`, then the listing) has offset i + 1.
        let mut next = offset.max(0) as usize;
        let shown = |ids: &HashMap<Ino, u64>, child: &Ino| {
            // Inode numbers here are only shown (`ls -i`); a lookup gives
            // the real one. Never 0, which readers skip.
            ids.get(child).copied().unwrap_or(u64::MAX)
        };
        while next < 2 {
            let name = if next == 0 { "." } else { ".." };
            if reply.add(ino, next as i64 + 1, FileType::Directory, name) {
                return reply.ok();
            }
            next += 1;
        }
        match &listing {
            Listing::Named(v) => {
                for (i, (name, child, kind)) in v.entries.iter().enumerate().skip(next - 2) {
                    if reply.add(shown(&self.ids, child), i as i64 + 3, *kind, name) {
                        break;
                    }
                }
            }
            Listing::Indexed { r, loc, len, .. } => {
                if next == 2 {
                    let t = shown(&self.ids, &Ino::Type(*r, *loc));
                    if reply.add(t, 3, FileType::RegularFile, ".type") {
                        return reply.ok();
                    }
                    next += 1;
                }
                // Child k is entry k + 3.
                let mut k = next - 3;
                'fill: while k < *len {
                    let window = match self.window(&listing, k, WINDOW) {
                        Ok(w) => w,
                        Err(e) => return reply.error(failed("readdir", &e)),
                    };
                    for (name, child, kind) in &window {
                        if reply.add(shown(&self.ids, child), k as i64 + 4, *kind, name) {
                            break 'fill;
                        }
                        k += 1;
                    }
                }
            }
        }
        reply.ok();
    }

    fn getxattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        name: &OsStr,
        size: u32,
        reply: ReplyXattr,
    ) {
        let value = match self.entry(ino) {
            Some((Ino::Val(r, loc), _)) if name == TYPE_XATTR => self.type_name(r, loc),
            Some(_) => return reply.error(libc::ENODATA),
            None => return reply.error(libc::ENOENT),
        };
        match value {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() <= size as usize => reply.data(v.as_bytes()),
            Ok(_) => reply.error(libc::ERANGE),
            Err(e) => reply.error(failed("getxattr", &e)),
        }
    }

    fn listxattr(&mut self, _req: &Request<'_>, ino: u64, size: u32, reply: ReplyXattr) {
        let names: &[u8] = match self.entry(ino) {
            Some((Ino::Val(..), _)) => b"user.stateify.type\0",
            Some(_) => b"",
            None => return reply.error(libc::ENOENT),
        };
        if size == 0 {
            reply.size(names.len() as u32);
        } else if names.len() <= size as usize {
            reply.data(names);
        } else {
            reply.error(libc::ERANGE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_short_and_whole_characters() {
        let long = "é".repeat(200); // 400 bytes
        let names = ["a", "a", "a~1", &long, &long, "b"];
        let entries = names
            .iter()
            .map(|n| (n.to_string(), Ino::Root, FileType::RegularFile))
            .collect();
        let named = unique_names(entries);
        let got: Vec<&str> = named.entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(&got[..3], ["a", "a~1", "a~1~2"]);
        assert_eq!(got[5], "b");
        for (i, n) in got.iter().enumerate() {
            assert!(n.len() <= NAME_MAX, "{n}");
            assert_eq!(named.by_name[*n], i);
        }
        assert!(got[3].starts_with("éé") && got[3].ends_with("~3"));
        assert_ne!(got[3], got[4]);
        assert_eq!(named.by_name.len(), names.len());
    }

    #[test]
    fn escaped_names_never_collide_with_dot_entries() {
        assert_eq!(file_name("a/b%c"), "a%2Fb%25c");
        assert_eq!(file_name(".type"), "%2Etype");
        assert_eq!(file_name(".."), "%2E.");
        assert_eq!(file_name(""), "%");
        assert_eq!(file_name("x\0y"), "x%00y");
    }
}
