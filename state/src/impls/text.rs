//! OS strings: `PathBuf`, `OsString` and `CString`. Paths and OS strings
//! are text when they are valid UTF-8 (readable in `pretty` output) and
//! their raw bytes otherwise (Unix); a C string is its bytes without the
//! final nul.

use std::ffi::{CString, OsStr, OsString};
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::wire::Packed;
use crate::{Loader, Saver, Stateify};

fn save_os(v: &OsStr, s: &mut Saver) -> Result<()> {
    match v.to_str() {
        Some(text) => s.write_str(text),
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::ffi::OsStrExt;
                s.write_packed(Packed::U8, [v.as_bytes(), &[]]);
            }
            #[cfg(not(unix))]
            return Err(Error::custom("OS string is not valid Unicode"));
        }
    }
    Ok(())
}

fn load_os(l: &mut Loader) -> Result<OsString> {
    if let Some(bytes) = l.read_packed(Packed::U8)? {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            return Ok(OsStr::from_bytes(bytes).to_owned());
        }
        #[cfg(not(unix))]
        return String::from_utf8(bytes.to_vec())
            .map(OsString::from)
            .map_err(|_| Error::invalid("OS string is not valid Unicode"));
    }
    l.read_str().map(OsString::from)
}

impl Stateify for PathBuf {
    fn save(&self, s: &mut Saver) -> Result<()> {
        save_os(self.as_os_str(), s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        load_os(l).map(PathBuf::from)
    }
}

impl Stateify for OsString {
    fn save(&self, s: &mut Saver) -> Result<()> {
        save_os(self, s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        load_os(l)
    }
}

impl Stateify for CString {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.write_packed(Packed::U8, [self.as_bytes(), &[]]);
        Ok(())
    }
    fn load(l: &mut Loader) -> Result<Self> {
        let at = l.offset();
        let bytes = match l.read_packed(Packed::U8)? {
            Some(b) => b.to_vec(),
            None => u8::load_seq(l)?,
        };
        CString::new(bytes).map_err(|e| {
            Error::invalid(format!(
                "a C string holds a nul byte at {}",
                e.nul_position()
            ))
            .at(at)
        })
    }
}
