//! A `stateify mount` process for the tests and the mount benchmark:
//! started, waited for until the mount is up, unmounted (SIGTERM) when
//! dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Whether this process can mount FUSE filesystems (`/dev/fuse` opens and
/// it is root, which a mount without `fusermount` needs); prints why not.
pub fn fuse_usable() -> bool {
    let ok = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_ok()
        && nix::unistd::geteuid().is_root();
    if !ok {
        eprintln!("skipped: /dev/fuse cannot be opened, or not root (mount(2) needs it)");
    }
    ok
}

/// Whether something is mounted at `mp`.
pub fn is_mounted(mp: &Path) -> bool {
    let mp = mp.canonicalize().unwrap_or(mp.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(mp.to_str().unwrap()))
}

/// A running `stateify mount`.
pub struct Mounted {
    pub child: Child,
    pub dir: PathBuf,
    /// What the command printed before the mount appeared.
    pub banner: String,
}

impl Mounted {
    /// Runs `bin ARGS DIR` and waits for its banner ("mounted …"); panics
    /// if it exits first. Later messages (EIO reports) go to our stderr.
    pub fn start(bin: &Path, args: &[&str], dir: &Path) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        let mut child = Command::new(bin)
            .args(args)
            .arg(dir)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut banner = String::new();
        while !banner.contains("mounted") {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                panic!("mount exited ({status}): {banner}");
            }
            banner += &line;
        }
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::stderr()));
        assert!(is_mounted(dir), "{banner}");
        Mounted {
            child,
            dir: dir.to_path_buf(),
            banner,
        }
    }

    /// A path inside the mount.
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p.trim_start_matches('/'))
    }

    /// SIGTERM, then the exit status (within 10 s).
    pub fn stop(&mut self) -> ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let started = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.stop();
        }
        if is_mounted(&self.dir) {
            let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
