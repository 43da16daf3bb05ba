//! Large buffers: ask the kernel for transparent huge pages before the first
//! touch. Filling fresh 4 KiB pages costs a fault each (≈1.8 GB/s on our
//! machines); with `THP = madvise` a 2 MiB page faults 512× less often.
//! Even then the first touch of fresh memory is bound by the kernel clearing
//! pages on one core (a 64 MiB fill: ≈13 ms), so very large copies into
//! fresh memory are split across a few threads, each faulting its own part.

use std::mem::MaybeUninit;
use std::sync::{Mutex, OnceLock};

/// Buffers at least this large get the advice.
pub(crate) const HUGE_THRESHOLD: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;
const PAGE: usize = 4096;

/// Advises huge pages for the whole allocation of `v` (before filling its
/// spare capacity).
///
/// The advice covers the allocation rounded out to whole 4 KiB pages, not
/// just the spare part: advice on part of a mapping splits it in two, and
/// glibc's `realloc` can then no longer `mremap` the buffer (EFAULT) and
/// falls back to copying it into a fresh mapping, faulting 4 KiB pages — a
/// growing 34 MB encoding took 13,000 faults and a 32 MB copy that way.
pub(crate) fn advise_spare(v: &mut Vec<u8>) {
    if v.capacity() - v.len() < HUGE_THRESHOLD {
        return;
    }
    let start = v.as_mut_ptr() as usize;
    let end = start + v.capacity();
    advise_pages(start & !(PAGE - 1), end.next_multiple_of(PAGE));
}

/// Advises huge pages for a buffer about to be filled (zeroed by `calloc`
/// and not yet touched, typically).
pub(crate) fn advise_slice(s: &mut [u8]) {
    advise_range(s.as_mut_ptr() as usize, s.len());
}

/// Advises huge pages for the spare capacity of any vector about to be filled.
pub(crate) fn advise_vec<T>(v: &mut Vec<T>) {
    let spare = v.spare_capacity_mut();
    advise_range(spare.as_mut_ptr() as usize, std::mem::size_of_val(spare));
}

fn advise_range(start: usize, len: usize) {
    if len < HUGE_THRESHOLD {
        return;
    }
    let end = start + len;
    let aligned_start = start.next_multiple_of(HUGE_PAGE);
    let aligned_end = end & !(HUGE_PAGE - 1);
    if aligned_end > aligned_start {
        advise_pages(aligned_start, aligned_end);
    }
}

/// `madvise(MADV_HUGEPAGE)` over the page-aligned range `start..end`.
fn advise_pages(start: usize, end: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: callers pass page-aligned bounds of (or rounded out from) an
    // allocation they own; MADV_HUGEPAGE changes only how the kernel backs
    // the pages — never their contents, protection or validity — so advice
    // that reaches into a neighbouring allocation's page is harmless too.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, end);
}

/// Appends `src` to `out`, advising huge pages first when the append is
/// large, and copying on several threads when it is very large.
pub(crate) fn extend_large(out: &mut Vec<u8>, src: &[u8]) {
    if out.capacity() - out.len() < src.len() {
        out.reserve(src.len());
        advise_spare(out);
    }
    let len = out.len();
    copy_to_uninit(&mut out.spare_capacity_mut()[..src.len()], src);
    // SAFETY: `copy_to_uninit` initialised the `src.len()` bytes of spare
    // capacity after `len`.
    unsafe { out.set_len(len + src.len()) };
}

/// Copies at least this many bytes on several threads.
pub(crate) const PARALLEL_COPY: usize = 16 << 20;

/// Threads a large copy may use: this process's share of the machine,
/// at most four (more only contend for the same memory bandwidth).
fn copy_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    })
}

/// Copies `src` into the uninitialised `dst` of the same length; every
/// byte of `dst` is initialised afterwards.
pub(crate) fn copy_to_uninit(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    split_copy(dst, src, copy_threads(), |d, s| {
        assert_eq!(d.len(), s.len());
        // SAFETY: `d` and `s` are distinct slices (one exclusive, one
        // shared) of the same length, and `MaybeUninit<u8>` has the layout
        // of `u8`; writing initialised bytes into `MaybeUninit` is always valid.
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), d.as_mut_ptr().cast::<u8>(), s.len()) }
    });
}

/// Copies `src` into `dst` (same length).
pub(crate) fn copy(dst: &mut [u8], src: &[u8]) {
    split_copy(dst, src, copy_threads(), <[u8]>::copy_from_slice);
}

/// One part of a split copy, until a thread takes it.
type CopyJob<'a, D> = Mutex<Option<(&'a mut [D], &'a [u8])>>;

/// Runs `copy` over `dst`/`src` whole, or, from [`PARALLEL_COPY`] bytes on,
/// over parts of whole huge pages on up to `threads` threads, this one
/// included. Each part is a job that the first thread to reach it
/// takes: this thread, after starting the others, takes every job still
/// waiting, so the copy is complete when this returns even if no thread
/// could be started.
fn split_copy<D: Send>(dst: &mut [D], src: &[u8], threads: usize, copy: fn(&mut [D], &[u8])) {
    assert_eq!(dst.len(), src.len(), "copy between slices of one length");
    if src.len() < PARALLEL_COPY || threads < 2 {
        copy(dst, src);
        return;
    }
    let part = src.len().div_ceil(threads).next_multiple_of(HUGE_PAGE);
    let jobs: Vec<CopyJob<D>> = dst
        .chunks_mut(part)
        .zip(src.chunks(part))
        .map(|job| Mutex::new(Some(job)))
        .collect();
    let run = |job: &CopyJob<D>| {
        // A poisoned lock means a copy panicked, which `copy` never does
        // for equal lengths; the scope re-raises that panic anyway.
        let taken = job.lock().ok().and_then(|mut j| j.take());
        if let Some((d, s)) = taken {
            copy(d, s);
        }
    };
    std::thread::scope(|scope| {
        for job in &jobs[1..] {
            // Not starting is fine: this thread takes the job below.
            let _ = std::thread::Builder::new()
                .name("stateify-copy".into())
                .spawn_scoped(scope, move || run(job));
        }
        for job in &jobs {
            run(job);
        }
    });
}

/// Stack left below which deep recursion moves to a new segment.
const RED_ZONE: usize = 128 * 1024;
/// Size of each new stack segment (address space; pages are committed as
/// they are touched).
const STACK_SEGMENT: usize = 32 << 20;

/// Runs `f`, on a new stack segment when this one is nearly used up, so
/// that recursion as deep as the data (a million-long `Rc` chain, a
/// depth-first walk through 200,000 nodes) cannot overflow the stack.
///
/// A new segment is advised to use huge pages before its first touch. A
/// deep save or load walks hundreds of MB of fresh stack that `stacker`
/// maps for it each time; on 4 KiB pages that was 43,000 page faults per
/// load of G2, a sixth of its samples in `perf`.
///
/// The check at every level reads the current stack's limit from a
/// thread-local of this module ([`STACK_LIMIT`]) and compares it with the
/// address of a local: no call. `stacker::remaining_stack` made two calls
/// and a lazily initialised thread-local read per check, a million times
/// per save of G2; the saving is 1.6% of that save's instructions.
#[inline]
pub(crate) fn grow_stack<R>(f: impl FnOnce() -> R) -> R {
    if stack_left() >= RED_ZONE {
        f()
    } else {
        grow_slow(f)
    }
}

/// Not known yet: the first check finds it.
const UNKNOWN_LIMIT: usize = usize::MAX;

thread_local! {
    /// The lowest address the current stack segment may use, as `stacker`
    /// reports it; [`UNKNOWN_LIMIT`] until the first check that comes up
    /// short asks it.
    static STACK_LIMIT: std::cell::Cell<usize> = const { std::cell::Cell::new(UNKNOWN_LIMIT) };
}

/// Bytes of stack left below the caller, as far as [`STACK_LIMIT`] knows
/// (0 while it is unknown, which sends the caller to [`grow_slow`]).
#[inline(always)]
fn stack_left() -> usize {
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    sp.saturating_sub(STACK_LIMIT.get())
}

/// A limit above every stack: each check moves to a new segment.
const ALWAYS_GROW: usize = usize::MAX - 1;

/// The limit `stacker` knows for the current segment; when it cannot tell
/// (a thread whose stack it cannot find), every check moves to a segment
/// of its own, where it can.
fn stacker_limit() -> usize {
    let sp = stack_address();
    stacker::remaining_stack().map_or(ALWAYS_GROW, |left| sp.saturating_sub(left))
}

/// Runs `f` on a new segment; first learns the limit if it is unknown,
/// and runs `f` right here if that shows enough stack left. The limit of
/// the segment left is put back when `f` returns or panics.
#[cold]
fn grow_slow<R>(f: impl FnOnce() -> R) -> R {
    if STACK_LIMIT.get() == UNKNOWN_LIMIT {
        STACK_LIMIT.set(stacker_limit());
        if stack_left() >= RED_ZONE {
            return f();
        }
    }
    let _outer = RestoreLimit(STACK_LIMIT.get());
    stacker::grow(STACK_SEGMENT, || {
        let limit = stacker_limit();
        STACK_LIMIT.set(limit);
        advise_stack_above(limit);
        f()
    })
}

/// Puts a stack limit back when dropped (a return or a panic).
struct RestoreLimit(usize);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        STACK_LIMIT.set(self.0);
    }
}

/// Advises huge pages for the part of the current stack segment below the
/// caller's frame: from the segment's `limit` up to 64 KiB below here,
/// whole huge pages only (nothing when the limit is not known).
#[cold]
fn advise_stack_above(limit: usize) {
    let top = stack_address().saturating_sub(64 << 10);
    if limit != ALWAYS_GROW && top > limit {
        advise_range(limit, top - limit);
    }
}

/// An address in the current stack frame.
#[inline(never)]
fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Asks the cache for the line holding `*p` ahead of its use. A hint only:
/// it reads nothing the program sees and cannot fault.
#[inline(always)]
pub(crate) fn prefetch<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: `prefetch` needs SSE, which every x86_64 CPU has, and
        // it is a hint: any address, even an invalid one, is allowed and
        // nothing is read or written.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_extend_keeps_bytes() {
        let src: Vec<u8> = (0..(9 << 20)).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = vec![1u8, 2, 3];
        super::extend_large(&mut out, &src);
        assert_eq!(&out[..3], &[1, 2, 3]);
        assert_eq!(&out[3..], &src[..]);
        let mut zeroed = vec![0u8; 9 << 20];
        super::advise_slice(&mut zeroed);
        zeroed.copy_from_slice(&src);
        assert_eq!(zeroed, src);
    }

    /// Copies past the parallel threshold, in parts that do not divide the
    /// length evenly, on more threads than parts and on one.
    #[test]
    fn split_copies_are_complete_and_in_place() {
        let len = super::PARALLEL_COPY + 3 * super::HUGE_PAGE + 12_345;
        let src: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
        for threads in [1, 2, 3, 16] {
            let mut dst = vec![0u8; len];
            super::split_copy(&mut dst, &src, threads, <[u8]>::copy_from_slice);
            assert!(dst == src, "{threads} threads");
        }
        let mut out = vec![7u8];
        super::extend_large(&mut out, &src);
        assert_eq!(out.len(), len + 1);
        assert!(out[0] == 7 && out[1..] == src[..]);
        let mut spare: Vec<u8> = Vec::with_capacity(len);
        super::copy_to_uninit(&mut spare.spare_capacity_mut()[..len], &src);
        // SAFETY: copy_to_uninit initialised all `len` bytes.
        unsafe { spare.set_len(len) };
        assert!(spare == src);
    }

    /// A panic deep in the recursion unwinds through every segment back to
    /// the caller, and the limit is the caller's stack's again: deep
    /// recursion afterwards still moves to new segments.
    #[test]
    fn a_panic_on_a_segment_restores_the_limit() {
        fn boom(n: u32) -> u32 {
            let frame = [n as u8; 512];
            if n == 0 {
                panic!("bottom reached");
            }
            super::grow_stack(|| boom(n - 1)) + std::hint::black_box(&frame)[0] as u32
        }
        // A shallow use learns this thread's own limit.
        super::grow_stack(|| ());
        let own = super::STACK_LIMIT.get();
        assert_ne!(own, super::UNKNOWN_LIMIT);
        let err = std::panic::catch_unwind(|| boom(100_000)).unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"bottom reached"));
        assert_eq!(super::STACK_LIMIT.get(), own);
        std::thread::spawn(|| {
            assert_eq!(super::STACK_LIMIT.get(), super::UNKNOWN_LIMIT);
            assert_eq!(boom_free(100_000), 100_000);
        })
        .join()
        .unwrap();
        fn boom_free(n: u32) -> u32 {
            let frame = [1u8; 512];
            if n == 0 {
                return 0;
            }
            super::grow_stack(|| boom_free(n - 1)) + std::hint::black_box(&frame)[0] as u32
        }
    }

    /// Recursion through 100 MB of frames, far past the main stack, on
    /// segments advised to use huge pages: every level comes back.
    #[test]
    fn deep_recursion_grows_the_stack() {
        fn down(n: u32) -> u64 {
            let frame = [n as u8; 512];
            if n == 0 {
                return 0;
            }
            let below = super::grow_stack(|| down(n - 1));
            below + std::hint::black_box(&frame)[0] as u64 % 2
        }
        let n = 200_000;
        assert_eq!(
            down(n),
            (0..=n).filter(|i| (*i as u8) % 2 == 1).count() as u64
        );
    }
}
