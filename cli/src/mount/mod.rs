//! `stateify mount`: a checkpoint as a read-only filesystem.
//!
//! Layout (see the README): `/N` is record N (a graph's root value, or a
//! raw record's bytes); a struct is a directory of its fields, a sequence
//! of numbered entries, a map of entries named by key; scalars are text
//! files ending in a newline, strings their text, byte strings and packed
//! arrays raw files; every directory has a `.type` file, and every value
//! the xattr `user.stateify.type`. Each shared object lives once under
//! `/objects/N/ID`, and every `Rc`/`Arc`/`Weak` to it (the place where it
//! is written included) is a relative symlink there; a dead `Weak` is a
//! dangling link to `(dead weak)`. `/metadata/KEY` holds a statefile's
//! metadata and `/pages/START-END` each saved memory segment, readable at
//! its offsets (unsaved pages read as zeros, each piece checked against its
//! digest when read).
//!
//! At mount the whole file is read once: every chunk MAC is checked (with
//! `--key-file`, against the key), every graph is checked and indexed, and
//! a pages file's header and length are checked. Values are decoded when
//! they are read.

mod checkpoint;
mod fs;

use std::path::Path;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::input::{Failure, Result};
use crate::Cli;

pub(crate) fn mount(cli: &Cli, file: &Path, mountpoint: &Path, pages: Option<&Path>) -> Result<u8> {
    if !mountpoint.is_dir() {
        return Err(Failure(format!(
            "mount point {}: not a directory",
            mountpoint.display()
        )));
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Err(Failure(format!(
            "FUSE is not available: /dev/fuse: {e} (is the fuse module loaded, and may this user open the device?)"
        )));
    }
    // A URL's statefile is fetched once FUSE is known to be there.
    let local = crate::remote::local(file).map_err(crate::at(file))?;
    let ck = checkpoint::Checkpoint::open(cli, &local.path, pages).map_err(crate::at(file))?;
    let summary = format!(
        "{} records, {} bytes, checked and indexed in {:.1} ms",
        ck.records.len(),
        ck.bytes,
        ck.open_time.as_secs_f64() * 1e3
    );
    // Before the mount, so a signal sent as soon as it appears is seen.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let options = [
        fuser::MountOption::RO,
        fuser::MountOption::FSName("stateify".into()),
        fuser::MountOption::Subtype("stateify".into()),
    ];
    let mut session = fuser::Session::new(fs::Fs::new(ck), mountpoint, &options)
        .map_err(|e| Failure(format!("mount at {}: {e}", mountpoint.display())))?;
    let worker = std::thread::spawn(move || session.run());
    eprintln!(
        "stateify: mounted {} at {} ({summary}); unmount with Ctrl-C, SIGTERM or `umount {}`",
        file.display(),
        mountpoint.display(),
        mountpoint.display()
    );
    // Until a signal, or until the session ends (an outside `umount`).
    while !worker.is_finished() {
        if signals.pending().next().is_some() {
            // A lazy unmount succeeds even while a shell sits inside the
            // mount, so no stale mount is left behind; the session then
            // ends.
            nix::mount::umount2(mountpoint, nix::mount::MntFlags::MNT_DETACH)
                .map_err(|e| Failure(format!("unmount {}: {e}", mountpoint.display())))?;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    match worker.join() {
        Ok(Ok(())) => Ok(0),
        Ok(Err(e)) => Err(Failure(format!("the FUSE session ended: {e}"))),
        Err(_) => Err(Failure("the FUSE session panicked".into())),
    }
}
