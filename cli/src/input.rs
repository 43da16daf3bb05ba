//! Opening a checkpoint: a statefile, a plain record stream, or a pages
//! file, and walking its records one at a time (graph bodies are read into
//! memory one by one; raw records are skipped without being read in).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// What kind of file it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Statefile,
    Stream,
    Pages,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Statefile => "statefile",
            Kind::Stream => "record stream",
            Kind::Pages => "pages file",
        }
    }
}

/// A failure: its message; `main` prints it and exits with code 2.
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Failure>;

/// One record of the stream.
pub struct Record {
    pub index: usize,
    /// Offset of its header in the (decoded) stream.
    pub offset: u64,
    pub len: u64,
    /// The body of a graph record; `None` for a raw record (skipped).
    pub body: Option<Vec<u8>>,
    /// A raw record's BLAKE3, when the input hashes raw records.
    pub raw_hash: Option<[u8; 32]>,
}

/// A file that advances a progress bar as it is read (the bar draws only on
/// a terminal, to stderr, and only for files worth waiting for).
pub struct Progress {
    inner: File,
    bar: indicatif::ProgressBar,
}

impl Progress {
    fn open(path: &Path) -> io::Result<Progress> {
        let inner = File::open(path)?;
        let len = inner.metadata()?.len();
        let bar = if len >= 64 << 20 {
            indicatif::ProgressBar::new(len)
        } else {
            indicatif::ProgressBar::hidden()
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(path.display().to_string());
        Ok(Progress { inner, bar })
    }
}

impl Read for Progress {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Where the records come from.
enum Source {
    Statefile(Box<statefile::Reader<BufReader<Progress>>>),
    Plain(BufReader<Progress>),
}

pub struct Input {
    pub kind: Kind,
    /// Hash raw records as they stream past (for `diff`).
    pub hash_raw: bool,
    /// Copy raw records' bodies here as they stream past (for `mount`).
    pub raw_to: Option<Box<dyn io::Write>>,
    source: Source,
    offset: u64,
    index: usize,
}

/// Whether the file is a sequence of records whose headers chain exactly
/// to its end. Bodies are seeked over, not read.
fn is_record_stream(path: &Path) -> io::Result<bool> {
    let mut r = BufReader::new(File::open(path)?);
    let size = r.get_ref().metadata()?.len();
    let mut records = 0;
    loop {
        if r.fill_buf()?.is_empty() {
            return Ok(records > 0);
        }
        let Ok((len, _)) = stateify::read_header(&mut r) else {
            return Ok(false);
        };
        let end = r.stream_position()?.saturating_add(len);
        if end > size {
            return Ok(false);
        }
        r.seek(SeekFrom::Start(end))?;
        records += 1;
    }
}

/// The encoded length of a record header.
fn header_len(len: u64, object: bool) -> u64 {
    let v = if object {
        len | stateify::OBJECT_FLAG
    } else {
        len
    };
    u64::from((64 - v.leading_zeros()).div_ceil(7).max(1))
}

/// Reads the whole key file (its bytes are the key).
pub fn read_key(path: Option<&Path>) -> Result<Option<Vec<u8>>> {
    match path {
        None => Ok(None),
        Some(p) => std::fs::read(p)
            .map(Some)
            .map_err(|e| Failure(format!("key file {}: {e}", p.display()))),
    }
}

/// What the file at `path` is, from its first bytes (and, for a record
/// stream, from its headers chaining to its end). Anything else is refused.
pub fn kind_of(path: &Path) -> Result<Kind> {
    let mut magic = [0u8; 8];
    let mut f = File::open(path)?;
    let size = f.metadata()?.len();
    let n = f.read(&mut magic)?;
    if n == 8 && magic == statefile::MAGIC {
        return Ok(Kind::Statefile);
    }
    if n == 8 && magic == pgalloc::PAGES_MAGIC {
        return Ok(Kind::Pages);
    }
    if is_record_stream(path)? {
        return Ok(Kind::Stream);
    }
    // Pages files from before checkpoint ids have no header: whole pages.
    if size > 0 && size % 4096 == 0 {
        return Ok(Kind::Pages);
    }
    Err(Failure(format!(
        "not a checkpoint: neither a statefile, a record stream nor a pages file ({size} bytes)"
    )))
}

impl Input {
    pub fn open(path: &Path, key: Option<&[u8]>) -> Result<Input> {
        let kind = kind_of(path)?;
        if kind == Kind::Pages {
            return Err(Failure(
                "not a statefile or a record stream (a pages file? `stateify info` describes it)"
                    .into(),
            ));
        }
        let file = BufReader::new(Progress::open(path)?);
        let source = match kind {
            Kind::Statefile => match statefile::Reader::new(file, key) {
                Ok(r) => Source::Statefile(Box::new(r)),
                Err(statefile::Error::KeyRequired) => {
                    return Err(Failure(
                        "the file is protected by a key; pass --key-file".into(),
                    ))
                }
                Err(e @ statefile::Error::WrongKey) if key.is_some_and(|k| k.ends_with(b"\n")) => {
                    return Err(Failure(format!(
                        "{e} (the key file ends in a newline, which is part of the key: \
                         was the key written without one, as with `printf` or `echo -n`?)"
                    )))
                }
                Err(e) => return Err(e.into()),
            },
            _ => Source::Plain(file),
        };
        Ok(Input {
            kind,
            hash_raw: false,
            raw_to: None,
            source,
            offset: 0,
            index: 0,
        })
    }

    fn stream(&mut self) -> &mut dyn BufRead {
        match &mut self.source {
            Source::Statefile(r) => r,
            Source::Plain(r) => r,
        }
    }

    /// The next record, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        if self.stream().fill_buf()?.is_empty() {
            return Ok(None);
        }
        let offset = self.offset;
        let (len, object) = stateify::read_header(&mut *self.stream())
            .map_err(|e| Failure(format!("record {} at byte {offset}: {e}", self.index)))?;
        let mut raw_hash = None;
        let body = if object {
            let mut body = Vec::new();
            let got = (&mut *self.stream()).take(len).read_to_end(&mut body)?;
            if got as u64 != len {
                return Err(Failure(format!(
                    "record {} at byte {offset}: truncated ({got} of {len} bytes)",
                    self.index
                )));
            }
            Some(body)
        } else {
            let mut hasher = blake3::Hasher::new();
            let got = if let Some(mut to) = self.raw_to.take() {
                let got = io::copy(&mut (&mut *self.stream()).take(len), &mut to);
                self.raw_to = Some(to);
                got?
            } else if self.hash_raw {
                io::copy(&mut (&mut *self.stream()).take(len), &mut hasher)?
            } else {
                io::copy(&mut (&mut *self.stream()).take(len), &mut io::sink())?
            };
            raw_hash = self.hash_raw.then(|| *hasher.finalize().as_bytes());
            if got != len {
                return Err(Failure(format!(
                    "record {} at byte {offset}: truncated ({got} of {len} bytes)",
                    self.index
                )));
            }
            None
        };
        self.offset += header_len(len, object) + len;
        let r = Record {
            index: self.index,
            offset,
            len,
            body,
            raw_hash,
        };
        self.index += 1;
        Ok(Some(r))
    }

    /// A statefile's metadata (empty for a record stream).
    pub fn metadata(&self) -> std::collections::BTreeMap<String, String> {
        match &self.source {
            Source::Statefile(r) => r.metadata().clone(),
            Source::Plain(_) => Default::default(),
        }
    }

    /// After the last record: a statefile's end chunk must verify.
    pub fn finish(self) -> Result<()> {
        if let Source::Statefile(r) = self.source {
            r.finish()?;
        }
        Ok(())
    }
}
