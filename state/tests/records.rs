//! Several graphs and raw records on one stream; `load` consumes exactly one
//! graph record; raw records can be skipped without decoding.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

#[test]
fn graphs_and_raw_records_interleave() {
    let mut out = Vec::new();
    stateify::save(&mut out, &String::from("first")).unwrap();
    stateify::write_header(&mut out, 5, false).unwrap();
    out.extend_from_slice(b"pages");
    let m: BTreeMap<u32, String> = [(1, "one".into())].into_iter().collect();
    let stats = stateify::save(&mut out, &m).unwrap();
    assert_eq!(stats.bytes as usize, stateify::to_vec(&m).unwrap().len());
    stateify::write_header(&mut out, 0, false).unwrap();
    stateify::save(&mut out, &vec![1u64, 2, 3]).unwrap();

    // A tiny buffer makes the reader take the slow header path too.
    for cap in [1, 3, 64, 1 << 16] {
        let mut r = BufReader::with_capacity(cap, &out[..]);
        assert_eq!(stateify::load::<String, _>(&mut r).unwrap(), "first");
        // A raw record is refused by load...
        if cap >= 10 {
            assert!(stateify::load::<String, _>(&mut r).is_err());
        }
        let (len, object) = stateify::read_header(&mut r).unwrap();
        assert_eq!((len, object), (5, false));
        let mut raw = vec![0; len as usize];
        r.read_exact(&mut raw).unwrap();
        assert_eq!(raw, b"pages");
        assert_eq!(
            stateify::load::<BTreeMap<u32, String>, _>(&mut r).unwrap(),
            m
        );
        let (len, object) = stateify::read_header(&mut r).unwrap();
        assert_eq!((len, object), (0, false));
        stateify::skip_record(&mut r, len).unwrap();
        assert_eq!(
            stateify::load::<Vec<u64>, _>(&mut r).unwrap(),
            vec![1, 2, 3]
        );
        assert!(r.fill_buf().unwrap().is_empty());
        assert!(stateify::load::<u8, _>(&mut r).is_err(), "no more records");
    }
}

#[test]
fn any_record_can_be_skipped_without_decoding() {
    let mut out = Vec::new();
    for i in 0..5u32 {
        stateify::save(&mut out, &vec![i; i as usize]).unwrap();
    }
    let mut r = &out[..];
    let mut n = 0;
    while !r.is_empty() {
        let (len, object) = stateify::read_header(&mut r).unwrap();
        assert!(object);
        stateify::skip_record(&mut r, len).unwrap();
        n += 1;
    }
    assert_eq!(n, 5);
    let text = stateify::pretty::to_string(&out).unwrap();
    assert_eq!(text.matches("graph #").count(), 5);
}

#[test]
fn from_slice_rejects_raw_records_and_trailing_bytes() {
    let mut raw = Vec::new();
    stateify::write_header(&mut raw, 1, false).unwrap();
    raw.push(0);
    assert!(stateify::from_slice::<u8>(&raw).is_err());
    let mut two = stateify::to_vec(&1u8).unwrap();
    two.push(0);
    let err = stateify::from_slice::<u8>(&two).unwrap_err();
    assert!(err.to_string().contains("after the graph record"), "{err}");
}

#[test]
fn new_buffers_start_at_the_last_size_and_give_back_the_excess() {
    let big = vec![7u32; 1 << 20];
    let first = stateify::to_vec(&big).unwrap();
    let again = stateify::to_vec(&big).unwrap();
    assert_eq!(again, first);
    // Grown by doubling, the buffer would hold 8 MiB for these 4 MiB.
    let (len, cap) = (again.len(), again.capacity());
    assert!(
        cap <= len + len / 8 + 64,
        "the same graph again starts with room for it: {len} bytes in {cap}"
    );
    let small = stateify::to_vec(&5u8).unwrap();
    assert!(
        small.capacity() < 4096,
        "a small save after a big one keeps {} bytes",
        small.capacity()
    );
    assert_eq!(stateify::from_slice::<u8>(&small).unwrap(), 5);
}
