//! The std types beyond the basics: each round-trips, shows in `pretty` as
//! snapshotted, and refuses what it cannot represent with an error.
#![allow(clippy::type_complexity, unused_imports)] // `common` exports a macro this file does not use

mod common;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, LinkedList};
use std::ffi::{CString, OsString};
use std::marker::PhantomData;
use std::num::{NonZeroI64, NonZeroU128, NonZeroU32, NonZeroU8, Saturating, Wrapping};
use std::ops::Bound;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::round_trip;
use stateify::{Loader, Saver, Stateify};

fn show<T: Stateify + ?Sized>(v: &T) -> String {
    stateify::pretty::to_string(&stateify::to_vec(v).unwrap()).unwrap()
}

#[test]
fn numbers() {
    let v = (
        NonZeroU8::new(7).unwrap(),
        NonZeroU32::new(u32::MAX).unwrap(),
        NonZeroI64::new(-3).unwrap(),
        NonZeroU128::new(u128::MAX).unwrap(),
        Wrapping(250u8),
        Saturating(-5i16),
        Reverse(9u64),
        [Ordering::Less, Ordering::Equal, Ordering::Greater],
    );
    round_trip(&v);
    insta::assert_snapshot!("numbers", show(&v));
    // The wrappers are the number itself on the wire.
    assert_eq!(
        stateify::to_vec(&Wrapping(5u32)).unwrap(),
        stateify::to_vec(&5u32).unwrap()
    );
    assert_eq!(
        stateify::to_vec(&NonZeroU32::new(5).unwrap()).unwrap(),
        stateify::to_vec(&5u32).unwrap()
    );
}

#[test]
fn nonzero_refuses_zero() {
    let bytes = stateify::to_vec(&(1u32, 0u32)).unwrap();
    let err = stateify::from_slice::<(NonZeroU32, NonZeroU32)>(&bytes).unwrap_err();
    insta::assert_snapshot!("nonzero_zero", err);
}

#[test]
fn ranges_and_bounds() {
    let v = (
        3u32..9,
        -2i64..=2,
        (5u8..),
        (..4u16),
        (..=4u16),
        ..,
        [Bound::Included(1u8), Bound::Excluded(2), Bound::Unbounded],
    );
    // Not every range type has `PartialEq`: compare by `Debug`.
    let bytes = stateify::to_vec(&v).unwrap();
    let back: (
        std::ops::Range<u32>,
        std::ops::RangeInclusive<i64>,
        std::ops::RangeFrom<u8>,
        std::ops::RangeTo<u16>,
        std::ops::RangeToInclusive<u16>,
        std::ops::RangeFull,
        [Bound<u8>; 3],
    ) = stateify::from_slice(&bytes).unwrap();
    assert_eq!(format!("{back:?}"), format!("{v:?}"));
    insta::assert_snapshot!("ranges", show(&v));
}

#[test]
fn containers() {
    let mut heap = BinaryHeap::new();
    for x in [5u32, 1, 8, 3, 9, 2, 7] {
        heap.push(x);
    }
    heap.pop();
    let list: LinkedList<String> = ["a", "b"].into_iter().map(String::from).collect();
    let set = OnceCell::new();
    set.set(4u8).unwrap();
    let lock = OnceLock::new();
    lock.set("x".to_string()).unwrap();
    let v = (heap, list, set, OnceCell::<u8>::new(), lock);
    let bytes = stateify::to_vec(&v).unwrap();
    let back: (
        BinaryHeap<u32>,
        LinkedList<String>,
        OnceCell<u8>,
        OnceCell<u8>,
        OnceLock<String>,
    ) = stateify::from_slice(&bytes).unwrap();
    // The heap's array comes back as it was, so pops come in the same order.
    assert_eq!(back.0.as_slice(), v.0.as_slice());
    assert_eq!(back.0.into_sorted_vec(), vec![1, 2, 3, 5, 7, 8]);
    assert_eq!(back.1, v.1);
    assert_eq!((back.2.get(), back.3.get()), (Some(&4), None));
    assert_eq!(back.4.get().map(String::as_str), Some("x"));
    // A heap is written like the `Vec` of its array.
    assert_eq!(
        stateify::to_vec(&v.0).unwrap(),
        stateify::to_vec(&v.0.as_slice().to_vec()).unwrap()
    );
    insta::assert_snapshot!("containers", show(&v));
}

#[test]
fn strings_and_slices_behind_pointers() {
    let name: Rc<str> = Rc::from("shared name");
    let items: Arc<[u16]> = Arc::from(vec![1u16, 2, 3]);
    let boxed: Box<str> = "boxed".into();
    let slice: Box<[String]> = vec!["s".to_string()].into_boxed_slice();
    let v = (name.clone(), name, items.clone(), items, boxed, slice);
    let bytes = stateify::to_vec(&v).unwrap();
    type Back = (
        Rc<str>,
        Rc<str>,
        Arc<[u16]>,
        Arc<[u16]>,
        Box<str>,
        Box<[String]>,
    );
    let back: Back = stateify::from_slice(&bytes).unwrap();
    assert!(Rc::ptr_eq(&back.0, &back.1), "Rc<str> sharing is kept");
    assert!(Arc::ptr_eq(&back.2, &back.3), "Arc<[T]> sharing is kept");
    assert_eq!(&*back.0, "shared name");
    assert_eq!(&*back.2, &[1, 2, 3]);
    assert_eq!((&*back.4, &*back.5), ("boxed", &["s".to_string()][..]));
    insta::assert_snapshot!("pointers", show(&v));
    // `Box<str>` keeps the bytes of a `String`, `Box<[T]>` those of a `Vec`.
    assert_eq!(
        stateify::to_vec(&v.4).unwrap(),
        stateify::to_vec(&"boxed".to_string()).unwrap()
    );
}

#[test]
fn cows_and_os_strings() {
    type Strings<'a> = (
        Cow<'a, str>,
        Cow<'a, str>,
        Cow<'a, [u32]>,
        OsString,
        CString,
        PhantomData<u8>,
    );
    let v: Strings = (
        Cow::Borrowed("borrowed"),
        Cow::Owned("owned".into()),
        Cow::Borrowed(&[1, 2]),
        OsString::from("os"),
        CString::new("c string").unwrap(),
        PhantomData,
    );
    let back: Strings = stateify::from_slice(&stateify::to_vec(&v).unwrap()).unwrap();
    assert_eq!(back, v);
    assert!(matches!(back.0, Cow::Owned(_)), "loads owned");
    insta::assert_snapshot!("cows_os_strings", show(&v));
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        round_trip(&OsString::from_vec(vec![0x66, 0xff, 0x80]));
    }
}

#[test]
fn c_string_refuses_a_nul() {
    let bytes = stateify::to_vec(&b"ab\0c".to_vec()).unwrap();
    let err = stateify::from_slice::<CString>(&bytes).unwrap_err();
    insta::assert_snapshot!("c_string_nul", err);
}

#[test]
fn system_time_is_the_wall_clock() {
    let times = [
        UNIX_EPOCH + Duration::new(1_780_000_000, 123_456_789),
        UNIX_EPOCH,
        UNIX_EPOCH - Duration::new(1, 250_000_000),
        UNIX_EPOCH - Duration::from_secs(86_400),
    ];
    round_trip(&times);
    insta::assert_snapshot!("system_time", show(&times));
    // The extremes of `secs` are times this platform holds (Linux keeps
    // i64 seconds); nanoseconds of a second or more are refused.
    for secs in [i64::MAX, i64::MIN] {
        let t: SystemTime = stateify::from_slice(&raw_time(secs, 999_999_999)).unwrap();
        round_trip(&t);
    }
    let err = stateify::from_slice::<SystemTime>(&raw_time(0, 1_000_000_000)).unwrap_err();
    insta::assert_snapshot!("system_time_bad_nanos", err);
}

/// The bytes of a `SystemTime { secs, nanos }` with any values.
fn raw_time(secs: i64, nanos: u32) -> Vec<u8> {
    struct Raw(i64, u32);
    impl Stateify for Raw {
        fn save(&self, s: &mut Saver) -> stateify::Result<()> {
            s.save_struct("SystemTime", &["secs", "nanos"], |s| {
                s.field("secs", &self.0)?;
                s.field("nanos", &self.1)
            })
        }
        fn load(_: &mut Loader) -> stateify::Result<Self> {
            unreachable!("only saved")
        }
    }
    stateify::to_vec(&Raw(secs, nanos)).unwrap()
}

#[test]
fn instant_is_relative_to_the_checkpoint() {
    let now = Instant::now();
    let deadline = now + Duration::from_secs(5);
    let started = now - Duration::from_millis(1500);
    let bytes = stateify::to_vec(&(deadline, started)).unwrap();
    // Let time pass between save and load, as between two processes.
    std::thread::sleep(Duration::from_millis(30));
    let before_load = Instant::now();
    let (d, s): (Instant, Instant) = stateify::from_slice(&bytes).unwrap();
    let after_load = Instant::now();
    // The distance between the two is kept to the nanosecond: they share
    // one "now" on each side.
    assert_eq!(d - s, Duration::from_millis(6500));
    // Relative to the load, the deadline is still about 5 s ahead: not the
    // 30 ms less it would be if the absolute instant were kept.
    assert!(d >= before_load + Duration::from_secs(5) - Duration::from_millis(10));
    assert!(d <= after_load + Duration::from_secs(5));
    // The stream holds the offset from the save's now, in nanoseconds.
    let text = show(&deadline);
    assert!(text.contains("Instant {\n  nanos_from_save: 49"), "{text}");
}

#[test]
fn hand_written_clocks_share_the_save_now() {
    // `Saver::now` is fixed at first use: two reads in one save agree.
    struct Two;
    impl Stateify for Two {
        fn save(&self, s: &mut Saver) -> stateify::Result<()> {
            let a = s.now();
            std::thread::sleep(Duration::from_millis(2));
            let b = s.now();
            s.write_bool(a == b);
            Ok(())
        }
        fn load(l: &mut Loader) -> stateify::Result<Self> {
            let a = l.now();
            std::thread::sleep(Duration::from_millis(2));
            assert_eq!(a, l.now());
            assert!(l.read_bool()?, "the save's two reads of now differed");
            Ok(Two)
        }
    }
    let bytes = stateify::to_vec(&Two).unwrap();
    stateify::from_slice::<Two>(&bytes).unwrap();
}
