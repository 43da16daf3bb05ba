//! Creating a checkpoint file atomically: write a temporary file beside the
//! target, fsync it, rename it over the target, fsync the directory. A crash
//! or a write error (ENOSPC included) never leaves a partial file under the
//! target name; the temporary file is removed on error.

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// Creates `path` with the bytes `write` produces, atomically. Returns what
/// `write` returned.
pub fn create_atomic<T, E>(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<File>) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<io::Error>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut w = io::BufWriter::new(File::create(&tmp)?);
        let v = write(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()?;
        Ok(v)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
