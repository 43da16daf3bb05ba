//! The crate's error.

use std::io;

/// A failure of the store or of what it holds.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The location could not be understood or opened.
    #[error("{location}: {message}")]
    Location {
        /// The location as given.
        location: String,
        /// What is wrong with it.
        message: String,
    },
    /// A request failed (after the retries, where it was retried).
    #[error("{what}: {source}")]
    Request {
        /// The request: its operation, object and range.
        what: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// No checkpoint of that name.
    #[error("no checkpoint {name:?} at {url} (no object {manifest})")]
    NotFound {
        /// The checkpoint's name.
        name: String,
        /// The store's location.
        url: String,
        /// The manifest that was looked for.
        manifest: String,
    },
    /// A manifest that does not parse, or an object that does not match it.
    #[error("{object}: {message}")]
    Corrupt {
        /// The object.
        object: String,
        /// What is wrong.
        message: String,
    },
    /// An I/O error, such as one from the writer of a checkpoint.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Error {
    /// Whether the store said there is no such object (or checkpoint).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::NotFound { .. }
                | Error::Request {
                    source: object_store::Error::NotFound { .. },
                    ..
                }
        )
    }
}

/// The crate's result.
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
            Error::Corrupt { .. } => io::Error::new(io::ErrorKind::InvalidData, e),
            Error::Location { .. } => io::Error::new(io::ErrorKind::InvalidInput, e),
            Error::Request { ref source, .. } => {
                let kind = match source {
                    object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
                    object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. } => {
                        io::ErrorKind::PermissionDenied
                    }
                    _ => io::ErrorKind::Other,
                };
                io::Error::new(kind, e)
            }
        }
    }
}
