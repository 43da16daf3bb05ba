//! The one error type of the crate.
//!
//! A load error carries *where* it happened: the path from the root
//! (`root.stack.endpoints[3].timer`) and the byte offset inside the graph
//! record. The path is built bottom-up while the error propagates, so the
//! success path pays nothing for it: each struct field, sequence element or
//! map entry that sees an error passing through prepends its own segment.

use std::fmt;

/// What went wrong, without the where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The underlying reader or writer failed. The message includes the
    /// I/O error's, so it is not also given as `source()` (an error-chain
    /// printer would show it twice).
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// The input ended in the middle of a value or record.
    #[error("unexpected end of input")]
    Truncated,
    /// The stream holds a different kind of value than the type expects.
    #[error("expected {expected}, found {found}")]
    Mismatch {
        /// What the Rust type wanted.
        expected: String,
        /// What the stream holds.
        found: String,
    },
    /// The stream is malformed (bad tag, bad UTF-8, a length larger than the input...).
    #[error("{0}")]
    Invalid(String),
    /// Nesting deeper than the configured limit.
    #[error("nesting deeper than the limit of {0} levels")]
    DepthLimit(usize),
    /// Owned values nested deeper than the configured limit.
    #[error(
        "owned values (Box, Vec, maps, structs) nested deeper than {0} levels; \
         raise LoadOptions::max_owned_depth if the thread stack can drop them"
    )]
    OwnedDepthLimit(usize),
    /// A field the type needs is not in the stream.
    #[error(
        "type `{ty}` has no field `{field}` in the stream (added since the stream was \
         written: give it #[state(default)]; renamed: #[state(alias = \"old name\")])"
    )]
    MissingField {
        /// The type's name.
        ty: String,
        /// The missing field.
        field: String,
    },
    /// The stream has a field the type does not know.
    #[error(
        "the stream's `{ty}` has a field `{field}` the type lacks (removed since: \
         #[state(ignore_unknown)] on the type skips it; renamed: \
         #[state(alias = \"{field}\")] on the new field)"
    )]
    UnknownField {
        /// The type's name.
        ty: String,
        /// The unknown field.
        field: String,
    },
    /// A strong `Rc`/`Arc` cycle: the object refers strongly to itself through
    /// its own fields, so it cannot be rebuilt (use a `Weak` back-edge).
    #[error(
        "strong reference cycle to object #{0}, which is still being built; use a Weak back-edge"
    )]
    StrongCycle(u64),
    /// A `RefCell` was mutably borrowed, or a `Mutex`/`RwLock` poisoned, at save time.
    #[error("{0}")]
    Unavailable(String),
    /// A hook or custom code reported an error.
    #[error("{0}")]
    Custom(String),
}

/// One step of the path from the root to where an error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A struct field (or enum variant) by name.
    Field(String),
    /// A sequence element by index.
    Index(u64),
    /// A map entry, rendered key.
    Key(String),
    /// The inside of a shared object, by its id in the graph.
    Object(u64),
}

struct Inner {
    kind: ErrorKind,
    /// Innermost segment first (built while unwinding).
    rev_path: Vec<Segment>,
    offset: Option<u64>,
    /// Set on the serde bridge's internal request to run a value's
    /// `Serialize` again, with the struct type that asked.
    #[cfg(feature = "serde")]
    relayout: Option<&'static str>,
}

/// The error of every stateify operation: what went wrong, the path from the
/// root, and (for loads) the byte offset in the graph record.
///
/// ```
/// let err = stateify::from_slice::<u32>(b"garbage").unwrap_err();
/// assert!(err.to_string().contains("byte"));
/// ```
pub struct Error(Box<Inner>);

impl Error {
    /// An error with a message, for hooks and custom field functions.
    pub fn custom(msg: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Custom(msg.to_string()))
    }

    /// An error of the given kind with no location yet.
    pub fn new(kind: ErrorKind) -> Self {
        Error(Box::new(Inner {
            kind,
            rev_path: Vec::new(),
            offset: None,
            #[cfg(feature = "serde")]
            relayout: None,
        }))
    }

    /// The serde bridge's request to run the value being written again,
    /// now that struct `ty`'s field list is known (see `serde/ser.rs`).
    #[cfg(feature = "serde")]
    pub(crate) fn relayout(ty: &'static str) -> Self {
        let mut e = Self::custom(format!(
            "internal: the serde bridge must run the Serialize of `{ty}` again; \
             a Serialize impl that replaces the errors of its fields stops it"
        ));
        e.0.relayout = Some(ty);
        e
    }

    #[cfg(feature = "serde")]
    pub(crate) fn is_relayout(&self) -> bool {
        self.0.relayout.is_some()
    }

    #[cfg(feature = "serde")]
    pub(crate) fn relayout_type(&self) -> Option<&'static str> {
        self.0.relayout
    }

    pub(crate) fn invalid(msg: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Invalid(msg.to_string()))
    }

    pub(crate) fn mismatch(expected: impl fmt::Display, found: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Mismatch {
            expected: expected.to_string(),
            found: found.to_string(),
        })
    }

    /// A fixed-size array met a sequence of another length.
    #[cold]
    pub(crate) fn wrong_length(want: usize, n: usize, at: u64) -> Self {
        Self::mismatch(format!("array of {want}"), format!("{n} elements")).at(at)
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The byte offset in the graph record (header included) where a load failed.
    pub fn offset(&self) -> Option<u64> {
        self.0.offset
    }

    /// The path from the root, outermost segment first.
    pub fn path(&self) -> Vec<Segment> {
        self.0.rev_path.iter().rev().cloned().collect()
    }

    /// The path rendered as `root.a.b[3]["key"]`.
    pub fn path_string(&self) -> String {
        let mut s = String::from("root");
        for seg in self.0.rev_path.iter().rev() {
            match seg {
                Segment::Field(f) => {
                    s.push('.');
                    s.push_str(f);
                }
                Segment::Index(i) => s.push_str(&format!("[{i}]")),
                Segment::Key(k) => s.push_str(&format!("[{k}]")),
                Segment::Object(_) => {}
            }
        }
        s
    }

    /// Sets the offset if none is set yet (the innermost position wins).
    pub(crate) fn at(mut self, offset: u64) -> Self {
        if self.0.offset.is_none() {
            self.0.offset = Some(offset);
        }
        self
    }

    /// Prepends a segment (called while the error travels towards the root).
    pub fn in_segment(mut self, seg: Segment) -> Self {
        self.0.rev_path.push(seg);
        self
    }

    /// Prepends a field segment.
    pub fn in_field(self, name: &str) -> Self {
        self.in_segment(Segment::Field(name.to_owned()))
    }

    /// Prepends an index segment.
    pub fn in_index(self, i: u64) -> Self {
        self.in_segment(Segment::Index(i))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ErrorKind::Io(e) = &self.0.kind {
            // The reader failed, not the stream: a container's own error (a
            // statefile's MAC, its truncation…) says where in its file, and
            // an offset in the record would only confuse. The path says how
            // far the load had come.
            match e.get_ref() {
                Some(inner) => write!(f, "{inner}")?,
                None => write!(f, "I/O error: {e}")?,
            }
            if !self.0.rev_path.is_empty() {
                write!(f, " (while loading {})", self.path_string())?;
            }
            return Ok(());
        }
        write!(f, "{}: {}", self.path_string(), self.0.kind)?;
        if let Some(off) = self.0.offset {
            write!(f, " at byte {off}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// No `source()`: every message already says what its cause said (the
/// I/O error is in the text; [`ErrorKind::Io`] holds it for matching).
impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return Self::new(ErrorKind::Truncated);
        }
        Self::new(ErrorKind::Io(e))
    }
}

impl From<std::io::Error> for ErrorKind {
    fn from(e: std::io::Error) -> Self {
        ErrorKind::Io(e)
    }
}

impl From<ErrorKind> for Error {
    fn from(k: ErrorKind) -> Self {
        Self::new(k)
    }
}

#[cfg(feature = "serde")]
impl ::serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::custom(msg)
    }
}

#[cfg(feature = "serde")]
impl ::serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::custom(msg)
    }

    fn missing_field(field: &'static str) -> Self {
        Error::custom(format!(
            "missing field `{field}` (a stream from before the field: give it #[serde(default)])"
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error::custom(format!(
            "unknown field `{field}`, expected one of {expected:?} \
             (drop #[serde(deny_unknown_fields)] to skip it, or add #[serde(alias)])"
        ))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_rendered_outermost_first() {
        let e = Error::mismatch("u64", "string")
            .at(1234)
            .in_field("timer")
            .in_index(3)
            .in_field("endpoints")
            .in_field("stack")
            .at(5);
        assert_eq!(
            e.to_string(),
            "root.stack.endpoints[3].timer: expected u64, found string at byte 1234"
        );
        assert_eq!(e.offset(), Some(1234));
        assert_eq!(e.path()[0], Segment::Field("stack".into()));
    }

    #[test]
    fn io_eof_becomes_truncated() {
        let e: Error = std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into();
        assert!(matches!(e.kind(), ErrorKind::Truncated));
    }
}
