//! Write tracking of raw mappings: userfaultfd write-protection in async
//! mode (`UFFD_FEATURE_WP_ASYNC`, Linux 6.7), read back and re-armed with
//! one `PAGEMAP_SCAN` ioctl on `/proc/self/pagemap`.
//!
//! A `MemoryFile` registers each chunk as it maps it, but protects pages
//! only from the first raw pointer on: until then its API bitmap is exact,
//! and no write takes a protection fault.
//!
//! After [`WriteTracker::protect`], the first write to each page of a
//! registered mapping (through any pointer, by any thread) clears that
//! page's write-protection inside the kernel's fault path, with no message
//! and no handler thread. [`WriteTracker::take_written`] then lists the
//! pages whose protection is gone and protects them again in the same walk,
//! so a write that races with it is either in this list or in the next.
//!
//! "Written" is what `PAGEMAP_SCAN` calls it: a page mapped here without
//! its write-protect bit. A page faulted in after the last protection (a
//! hole written, or read) has none, so it counts too: at worst a page only
//! read is taken as changed, and a delta records it as zero or saves it
//! again. Unmapped pages need no marker (`UFFD_FEATURE_WP_UNPOPULATED`
//! would cost a page-table entry for every page of every new chunk, about
//! 0.8 ms per 64 MiB), and the file is only ever written through these
//! mappings.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::range::FileRange;

/// `_IOWR(ty, nr, size)` of `<asm-generic/ioctl.h>`.
const fn iowr(ty: u64, nr: u64, size: u64) -> u64 {
    (3 << 30) | (size << 16) | (ty << 8) | nr
}

const UFFD_API: u64 = 0xaa;
const UFFDIO_API: u64 = iowr(0xaa, 0x3f, 24);
const UFFDIO_REGISTER: u64 = iowr(0xaa, 0x00, 32);
const UFFDIO_WRITEPROTECT: u64 = iowr(0xaa, 0x06, 24);
const UFFD_FEATURE_WP_HUGETLBFS_SHMEM: u64 = 1 << 12;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
const UFFDIO_REGISTER_MODE_WP: u64 = 2;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1;

const PAGEMAP_SCAN: u64 = iowr(b'f' as u64, 16, 96);
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
const PAGE_IS_WRITTEN: u64 = 1 << 1;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioWriteprotect {
    range: UffdioRange,
    mode: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// Regions returned per `PAGEMAP_SCAN` call.
const REGIONS: usize = 512;

/// A userfaultfd in async write-protect mode, and the pagemap file its
/// written pages are read from.
#[derive(Debug)]
pub(crate) struct WriteTracker {
    uffd: OwnedFd,
    pagemap: File,
}

fn ioctl<T>(fd: &impl AsRawFd, req: u64, arg: &mut T) -> std::io::Result<libc::c_int> {
    // SAFETY: every request used here takes a pointer to the `#[repr(C)]`
    // struct of its size (encoded in `req`), which `arg` is; the kernel
    // reads and writes only that struct (and, for PAGEMAP_SCAN, the region
    // vector the struct points at, which the caller keeps alive).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl WriteTracker {
    /// A tracker, or why this kernel or process cannot have one (no
    /// userfaultfd, not permitted, or no async write-protection of shmem).
    pub(crate) fn new() -> std::io::Result<WriteTracker> {
        // SAFETY: the userfaultfd syscall takes only flags and returns a new
        // descriptor (or -1), which is owned here from then on.
        let fd =
            unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nothing else owns.
        let uffd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        let want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
        let mut api = UffdioApi {
            api: UFFD_API,
            features: want,
            ioctls: 0,
        };
        ioctl(&uffd, UFFDIO_API, &mut api)?;
        if api.features & want != want {
            return Err(std::io::Error::other(
                "userfaultfd lacks async write-protection of shmem",
            ));
        }
        let pagemap = File::open("/proc/self/pagemap")?;
        Ok(WriteTracker { uffd, pagemap })
    }

    /// Registers the mapping at `addr` (`len` bytes) for write-protection.
    pub(crate) fn register(&self, addr: usize, len: u64) -> std::io::Result<()> {
        let mut reg = UffdioRegister {
            range: UffdioRange {
                start: addr as u64,
                len,
            },
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        ioctl(&self.uffd, UFFDIO_REGISTER, &mut reg).map(drop)
    }

    /// Write-protects `len` bytes at `addr` (inside a registered mapping):
    /// the next write to each page is recorded.
    pub(crate) fn protect(&self, addr: usize, len: u64) -> std::io::Result<()> {
        let mut wp = UffdioWriteprotect {
            range: UffdioRange {
                start: addr as u64,
                len,
            },
            mode: UFFDIO_WRITEPROTECT_MODE_WP,
        };
        ioctl(&self.uffd, UFFDIO_WRITEPROTECT, &mut wp).map(drop)
    }

    /// The pages of `len` bytes at `addr` written since they were last
    /// protected, as offsets from `addr`; protects them again in the same
    /// walk.
    pub(crate) fn take_written(
        &self,
        addr: usize,
        len: u64,
        out: &mut Vec<FileRange>,
        base: u64,
    ) -> std::io::Result<()> {
        let end = addr as u64 + len;
        let mut at = addr as u64;
        let mut regions = vec![PageRegion::default(); REGIONS];
        while at < end {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                start: at,
                end,
                walk_end: 0,
                vec: regions.as_mut_ptr() as u64,
                vec_len: REGIONS as u64,
                max_pages: 0,
                category_inverted: 0,
                category_mask: PAGE_IS_WRITTEN,
                category_anyof_mask: 0,
                return_mask: PAGE_IS_WRITTEN,
            };
            let n = ioctl(&self.pagemap, PAGEMAP_SCAN, &mut arg)? as usize;
            for r in &regions[..n.min(REGIONS)] {
                let r = FileRange {
                    start: base + (r.start - addr as u64),
                    end: base + (r.end - addr as u64),
                };
                match out.last_mut() {
                    Some(last) if last.end == r.start => last.end = r.end,
                    _ => out.push(r),
                }
            }
            if arg.walk_end <= at {
                break;
            }
            at = arg.walk_end;
        }
        Ok(())
    }
}
