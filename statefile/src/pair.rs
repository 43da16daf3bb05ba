//! A checkpoint of two files, a statefile and its pages file, written so
//! that a crash at any moment leaves either the previous checkpoint or the
//! new one, never a mix.
//!
//! The pages file goes under a name of its own, `NAME.UNIQUE.pages`, and is
//! made durable first; the statefile, whose metadata names it (key
//! [`PAGES_KEY`]), is renamed over `NAME.state` last: that rename is the
//! commit. Until then `NAME.state` still names the previous pages file,
//! which is only removed after the commit, with any other orphans.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The statefile metadata key that names the pages file.
pub const PAGES_KEY: &str = "pages";

/// The statefile metadata key of an incremental checkpoint that names its
/// parent: another checkpoint in the same directory (its `NAME`).
pub const PARENT_KEY: &str = "parent";

/// The longest chain [`find_chain`] follows.
pub const MAX_CHAIN: usize = 4096;

/// The files of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// `NAME.state`.
    pub state: PathBuf,
    /// The pages file it names.
    pub pages: PathBuf,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
        return Err(invalid(format!(
            "checkpoint name {name:?}: a plain file name, not starting with '.'"
        )));
    }
    Ok(())
}

/// A name for a new pages file of checkpoint `name` that no file in `dir`
/// has.
fn unique_pages_name(dir: &Path, name: &str) -> io::Result<String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for n in 0u32.. {
        let candidate = format!("{name}.{nanos:x}-{:x}-{n}.pages", std::process::id());
        if !dir.join(&candidate).exists() {
            return Ok(candidate);
        }
    }
    Err(io::Error::other("no free pages file name"))
}

/// Writes checkpoint `name` into `dir`, crash-consistently. `write` gets the
/// statefile's writer, the pages file's writer and the pages file's name
/// (to record in the statefile's metadata under [`PAGES_KEY`]); it may write
/// both at once, from two threads. On error nothing changes in `dir`.
pub fn write_pair<T, E>(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut BufWriter<File>, &mut BufWriter<File>, &str) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<io::Error>,
{
    check_name(name)?;
    let pages_name = unique_pages_name(dir, name)?;
    let pid = std::process::id();
    let state_tmp = dir.join(format!(".{name}.state.tmp-{pid}"));
    let pages_tmp = dir.join(format!(".{pages_name}.tmp-{pid}"));
    let pages_path = dir.join(&pages_name);
    let mut committed = false;
    let result = (|| {
        let mut state = BufWriter::new(File::create(&state_tmp)?);
        let mut pages = BufWriter::new(File::create(&pages_tmp)?);
        let v = write(&mut state, &mut pages, &pages_name)?;
        for w in [state, pages] {
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
        }
        let d = File::open(dir)?;
        // The pages first, durable under their final name...
        fs::rename(&pages_tmp, &pages_path)?;
        d.sync_all()?;
        // ...then the statefile that names them: the commit.
        fs::rename(&state_tmp, dir.join(format!("{name}.state")))?;
        committed = true;
        d.sync_all()?;
        Ok(v)
    })();
    if !committed {
        let _ = fs::remove_file(&state_tmp);
        let _ = fs::remove_file(&pages_tmp);
        let _ = fs::remove_file(&pages_path);
        return result;
    }
    // Committed: the pages files of older checkpoints (and of writes that
    // crashed before their commit) are orphans now.
    remove_orphans(dir, name, &pages_name)?;
    result
}

/// Removes the pages files of checkpoint `name` other than `keep`, and the
/// temporary files of writes that died before their commit (one writer per
/// checkpoint name at a time).
fn remove_orphans(dir: &Path, name: &str, keep: &str) -> io::Result<()> {
    let prefix = format!("{name}.");
    let tmp_prefix = format!(".{name}.");
    for e in fs::read_dir(dir)? {
        let file = e?.file_name();
        let Some(f) = file.to_str() else { continue };
        // `NAME.UNIQUE.pages`, UNIQUE without a dot: the pages of another
        // checkpoint whose name starts with `NAME.` (a delta `NAME.1`, say)
        // are not this one's orphans.
        let orphan = f
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".pages"))
            .is_some_and(|unique| !unique.contains('.'))
            && f != keep;
        let dead_tmp = f.starts_with(&tmp_prefix) && f.contains(".tmp-");
        if orphan || dead_tmp {
            fs::remove_file(dir.join(f))?;
        }
    }
    File::open(dir)?.sync_all()
}

/// The files of checkpoint `name` in `dir`: `NAME.state` and the pages file
/// its metadata names (read from the header, which needs no key; whether
/// the pages file belongs to this statefile is checked when it is loaded).
pub fn find_pair(dir: &Path, name: &str) -> crate::Result<Pair> {
    find_pair_and_header(dir, name).map(|(pair, _)| pair)
}

/// `find_pair`, and the statefile's header it read.
fn find_pair_and_header(dir: &Path, name: &str) -> crate::Result<(Pair, crate::Header)> {
    check_name(name)?;
    let state = dir.join(format!("{name}.state"));
    let header = crate::read_header(io::BufReader::new(File::open(&state)?))?;
    let pages = header.metadata.get(PAGES_KEY).ok_or_else(|| {
        invalid(format!(
            "{}: its metadata names no pages file (key {PAGES_KEY:?})",
            state.display()
        ))
    })?;
    let ok = pages.starts_with(&format!("{name}."))
        && pages.ends_with(".pages")
        && !pages.contains(['/', '\0']);
    if !ok {
        return Err(invalid(format!(
            "{}: pages file name {pages:?} is not one of checkpoint {name:?}",
            state.display()
        ))
        .into());
    }
    let pair = Pair {
        pages: dir.join(pages),
        state,
    };
    Ok((pair, header))
}

/// The checkpoints of the chain that ends with `name` in `dir`, oldest
/// first: `name`, its parent (metadata key [`PARENT_KEY`]), the parent's
/// parent, … down to a checkpoint that names none. Only file names are
/// followed; whether each layer is its parent's delta is checked when the
/// pages load. A missing parent, a loop, or a chain over [`MAX_CHAIN`]
/// layers is an error that names the statefile at fault.
pub fn find_chain(dir: &Path, name: &str) -> crate::Result<Vec<Pair>> {
    let mut chain = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut next = Some(name.to_string());
    while let Some(n) = next {
        if !names.insert(n.clone()) || chain.len() >= MAX_CHAIN {
            let last: &Pair = chain.last().expect("the first name is new");
            return Err(invalid(format!(
                "{}: its chain of parents loops or passes {MAX_CHAIN} checkpoints at {n:?}",
                last.state.display()
            ))
            .into());
        }
        let (pair, header) = find_pair_and_header(dir, &n).map_err(|e| match chain.last() {
            Some(child) => crate::Error::from(invalid(format!(
                "{}: parent checkpoint {n:?}: {e}",
                child.state.display()
            ))),
            None => e,
        })?;
        next = header.metadata.get(PARENT_KEY).cloned();
        if let Some(p) = &next {
            check_name(p).map_err(|e| invalid(format!("{}: {e}", pair.state.display())))?;
        }
        chain.push(pair);
    }
    chain.reverse();
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Writes checkpoint `name` naming `parent`.
    fn layer(d: &Path, name: &str, parent: Option<&str>) {
        write_pair(d, name, |s, p, pages_name| {
            p.write_all(b"pages")?;
            let mut meta =
                std::collections::BTreeMap::from([(PAGES_KEY.into(), pages_name.into())]);
            if let Some(parent) = parent {
                meta.insert(PARENT_KEY.into(), parent.into());
            }
            crate::Writer::new(&mut *s, None, &meta)?.finish()?;
            Ok::<_, crate::Error>(())
        })
        .unwrap();
    }

    #[test]
    fn writing_a_checkpoint_keeps_the_pages_of_one_named_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        layer(d, "cp", None);
        layer(d, "cp.1", Some("cp"));
        layer(d, "cp", None);
        let delta = find_pair(d, "cp.1").unwrap();
        assert!(delta.pages.exists(), "{:?}", names(d));
        assert_eq!(names(d).len(), 4, "{:?}", names(d));
    }

    #[test]
    fn a_chain_is_found_by_its_parents_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        layer(d, "cp", None);
        layer(d, "cp-1", Some("cp"));
        layer(d, "cp-2", Some("cp-1"));
        let chain = find_chain(d, "cp-2").unwrap();
        let states: Vec<_> = chain.iter().map(|p| p.state.clone()).collect();
        assert_eq!(
            states,
            ["cp", "cp-1", "cp-2"].map(|n| d.join(format!("{n}.state")))
        );
        assert_eq!(find_chain(d, "cp").unwrap().len(), 1);
        // A missing parent names the child that wants it.
        layer(d, "lost-1", Some("lost"));
        let e = find_chain(d, "lost-1").unwrap_err().to_string();
        assert!(
            e.contains("lost-1.state: parent checkpoint \"lost\""),
            "{e}"
        );
        // A loop.
        layer(d, "a", Some("b"));
        layer(d, "b", Some("a"));
        let e = find_chain(d, "a").unwrap_err().to_string();
        assert!(e.contains("loops"), "{e}");
        // A parent that is not a plain name.
        layer(d, "x", Some("../etc"));
        assert!(find_chain(d, "x").is_err());
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_new_pair_replaces_the_old_and_its_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // What a write that crashed before its commit leaves.
        fs::write(d.join("cp.dead-1.pages"), b"orphan").unwrap();
        fs::write(d.join(".cp.state.tmp-1"), b"half").unwrap();
        fs::write(d.join(".cp.dead-2.pages.tmp-1"), b"half").unwrap();
        for round in 0..2u8 {
            write_pair(d, "cp", |state, pages, pages_name| {
                pages.write_all(&[round; 100])?;
                state.write_all(pages_name.as_bytes())?;
                Ok::<_, io::Error>(())
            })
            .unwrap();
            let files = names(d);
            assert_eq!(files.len(), 2, "{files:?}");
            let state = fs::read_to_string(d.join("cp.state")).unwrap();
            assert!(files.contains(&state), "{files:?} {state}");
            assert_eq!(fs::read(d.join(&state)).unwrap(), [round; 100]);
        }
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_pair(d, "cp", |s, p, _| {
            s.write_all(b"old")?;
            p.write_all(b"old pages")
        })
        .unwrap();
        let before = names(d);
        let r = write_pair(d, "cp", |s, p, _| {
            s.write_all(b"new")?;
            p.write_all(b"new pages")?;
            Err::<(), _>(io::Error::other("disk full"))
        });
        assert!(r.is_err());
        assert_eq!(names(d), before);
        assert_eq!(fs::read(d.join("cp.state")).unwrap(), b"old");
    }

    #[test]
    fn the_statefile_names_its_pages_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write = |pages_key: Option<&str>| {
            write_pair(d, "cp", |s, p, pages_name| {
                p.write_all(b"pages")?;
                let name = pages_key.unwrap_or(pages_name);
                let meta = std::collections::BTreeMap::from([(PAGES_KEY.into(), name.into())]);
                let w = crate::Writer::new(&mut *s, None, &meta)?;
                w.finish()?;
                Ok::<_, crate::Error>(pages_name.to_string())
            })
        };
        let pages_name = write(None).unwrap();
        let pair = find_pair(d, "cp").unwrap();
        assert_eq!(pair.state, d.join("cp.state"));
        assert_eq!(pair.pages, d.join(pages_name));
        assert_eq!(fs::read(&pair.pages).unwrap(), b"pages");
        // A statefile that names a file outside its checkpoint is refused.
        for bad in ["../etc/passwd", "other.x.pages", "cp.x.state"] {
            write(Some(bad)).unwrap();
            let e = find_pair(d, "cp").unwrap_err();
            assert!(
                e.to_string().contains("is not one of checkpoint"),
                "{bad}: {e}"
            );
        }
        assert!(find_pair(&d.join("missing"), "cp").is_err());
    }

    #[test]
    fn names_must_be_plain() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "../x", ".hidden", "a/b"] {
            let r = write_pair(dir.path(), bad, |_, _, _| Ok::<_, io::Error>(()));
            assert!(r.is_err(), "{bad:?}");
        }
    }
}
