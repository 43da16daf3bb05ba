//! The manifest: the small object, written last, that makes a checkpoint
//! visible and names its statefile and pages objects (`docs/FORMAT.md`).

use std::fmt::Write as _;

use crate::error::{Error, Result};

/// The manifest of checkpoint `NAME` is the object `NAME` + this.
pub const MANIFEST_SUFFIX: &str = ".manifest";

/// The first line of a manifest.
const MAGIC: &str = "stateify-manifest 1";

/// A manifest is a few lines; anything longer is not one.
pub(crate) const MAX_MANIFEST: u64 = 64 << 10;

/// One object of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEntry {
    /// Its name beside the manifest.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The BLAKE3 digest of its bytes.
    pub blake3: [u8; 32],
}

/// What a checkpoint is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The statefile.
    pub state: ObjectEntry,
    /// The pages file.
    pub pages: ObjectEntry,
}

fn hex(d: &[u8; 32]) -> String {
    d.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut d = [0u8; 32];
    for (i, b) in d.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(d)
}

/// Whether `name` can be an object's name beside the manifest.
pub(crate) fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\0', ' ', '\n', '\r', '\t'])
}

impl Manifest {
    /// Its bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("{MAGIC}\n");
        for (key, o) in [("state", &self.state), ("pages", &self.pages)] {
            let _ = writeln!(s, "{key} {} {} {}", o.name, o.size, hex(&o.blake3));
        }
        s.into_bytes()
    }

    /// Parses a manifest; `object` names it in errors.
    pub fn parse(bytes: &[u8], object: &str) -> Result<Manifest> {
        let bad = |line: usize, message: String| Error::Corrupt {
            object: object.to_string(),
            message: if line == 0 {
                message
            } else {
                format!("line {line}: {message}")
            },
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|e| bad(0, format!("not a manifest: not UTF-8 ({e})")))?;
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, MAGIC)) => {}
            Some((_, l)) if l.starts_with("stateify-manifest ") => {
                return Err(bad(
                    1,
                    format!("{l:?}: a manifest version this build does not know ({MAGIC:?} is)"),
                ))
            }
            _ => return Err(bad(0, format!("not a manifest (no {MAGIC:?} line)"))),
        }
        let (mut state, mut pages) = (None, None);
        for (n, line) in lines {
            let fields: Vec<&str> = line.split(' ').collect();
            let [key, name, size, digest] = fields[..] else {
                return Err(bad(n, format!("{line:?}: expected KEY NAME SIZE BLAKE3")));
            };
            let slot = match key {
                "state" => &mut state,
                "pages" => &mut pages,
                _ => return Err(bad(n, format!("unknown key {key:?}"))),
            };
            if slot.is_some() {
                return Err(bad(n, format!("{key} given twice")));
            }
            if !plain_name(name) {
                return Err(bad(n, format!("{name:?} is not a plain object name")));
            }
            let size = size
                .parse()
                .map_err(|e| bad(n, format!("size {size:?}: {e}")))?;
            let blake3 = unhex(digest)
                .ok_or_else(|| bad(n, format!("digest {digest:?}: not 64 hex digits")))?;
            *slot = Some(ObjectEntry {
                name: name.to_string(),
                size,
                blake3,
            });
        }
        let missing = |key: &str| bad(0, format!("no {key} line"));
        Ok(Manifest {
            state: state.ok_or_else(|| missing("state"))?,
            pages: pages.ok_or_else(|| missing("pages"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            state: ObjectEntry {
                name: "job.1a-2-0.state".into(),
                size: 1234,
                blake3: *blake3::hash(b"state").as_bytes(),
            },
            pages: ObjectEntry {
                name: "job.1a-2-0.pages".into(),
                size: 1 << 33,
                blake3: *blake3::hash(b"pages").as_bytes(),
            },
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        let bytes = m.encode();
        assert!(bytes.starts_with(b"stateify-manifest 1\nstate job.1a-2-0.state 1234 "));
        assert_eq!(Manifest::parse(&bytes, "m").unwrap(), m);
    }

    #[test]
    fn every_prefix_and_flip_is_an_error_or_a_manifest() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            // Cut before the last line's end: a line is missing or short.
            if n < bytes.len() - 1 {
                let e = Manifest::parse(&bytes[..n], "m").unwrap_err();
                assert!(e.to_string().starts_with("m: "), "{e}");
            }
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[n] ^= 1 << bit;
                // A flip may still parse (a digit of the size); never a panic.
                let _ = Manifest::parse(&b, "m");
            }
        }
    }

    #[test]
    fn errors_name_the_line() {
        let cases: [(&str, &str); 6] = [
            ("", "m: not a manifest (no \"stateify-manifest 1\" line)"),
            ("stateify-manifest 2\n", "m: line 1: \"stateify-manifest 2\": a manifest version this build does not know (\"stateify-manifest 1\" is)"),
            ("stateify-manifest 1\nstate a 1\n", "m: line 2: \"state a 1\": expected KEY NAME SIZE BLAKE3"),
            ("stateify-manifest 1\nstate ../a 1 00\n", "m: line 2: \"../a\" is not a plain object name"),
            ("stateify-manifest 1\nstate a x 00\n", "m: line 2: size \"x\": invalid digit found in string"),
            ("stateify-manifest 1\nstate a 1 00\n", "m: line 2: digest \"00\": not 64 hex digits"),
        ];
        for (text, want) in cases {
            assert_eq!(
                Manifest::parse(text.as_bytes(), "m")
                    .unwrap_err()
                    .to_string(),
                want
            );
        }
        let only_state = format!("stateify-manifest 1\nstate a 1 {}\n", "0".repeat(64));
        assert_eq!(
            Manifest::parse(only_state.as_bytes(), "m")
                .unwrap_err()
                .to_string(),
            "m: no pages line"
        );
    }
}
