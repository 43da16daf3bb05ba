//! What a user sees when a load goes wrong at the container level: a
//! statefile or pages file handed to the record-stream readers, and a cut
//! statefile read through `stateify::load`.

use std::collections::BTreeMap;

fn statefile_of(value: &Vec<String>) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = statefile::Writer::new(&mut buf, Some(b"k"), &BTreeMap::new()).unwrap();
    stateify::save(&mut w, value).unwrap();
    w.finish().unwrap();
    buf
}

#[test]
fn a_statefile_is_named_and_the_way_to_read_it_given() {
    let file = statefile_of(&vec!["a".into()]);
    let err = stateify::from_slice::<Vec<String>>(&file).unwrap_err();
    insta::assert_snapshot!("statefile_to_from_slice", err);
    let err = stateify::load::<Vec<String>, _>(&file[..]).unwrap_err();
    assert_eq!(
        err.to_string(),
        stateify::from_slice::<Vec<String>>(&file)
            .unwrap_err()
            .to_string()
    );
}

#[test]
fn a_pages_file_is_named() {
    let mf = pgalloc::MemoryFile::new(Default::default()).unwrap();
    let r = mf.allocate(4096, Default::default()).unwrap();
    mf.write_at(r.start, b"x").unwrap();
    let (mut meta, mut pages) = (Vec::new(), Vec::new());
    mf.save_to(&mut meta, Some(&mut pages), &Default::default())
        .unwrap();
    let err = stateify::from_slice::<Vec<String>>(&pages).unwrap_err();
    insta::assert_snapshot!("pages_to_from_slice", err);
}

#[test]
fn the_container_magics_are_the_ones_stateify_knows() {
    // stateify recognises the two files by their first bytes without
    // depending on either crate: the constants must agree.
    for magic in [statefile::MAGIC, pgalloc::PAGES_MAGIC] {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&[0; 64]);
        let err = stateify::from_slice::<u8>(&bytes).unwrap_err().to_string();
        assert!(err.contains("expected a graph record, found a"), "{err}");
        assert!(!err.contains("raw record"), "{err}");
    }
}

#[test]
fn a_cut_statefile_says_which_file_byte() {
    let value: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let file = statefile_of(&value);
    let cut = &file[..file.len() / 2];
    let mut r = statefile::Reader::new(cut, Some(b"k")).unwrap();
    let err = stateify::load::<Vec<String>, _>(&mut r).unwrap_err();
    // The statefile's own message, not wrapped in `root: I/O error:`.
    let text = err.to_string();
    assert!(
        text.starts_with(
            "statefile truncated: the file ends before its end chunk (reading file byte "
        ),
        "{text}"
    );
    assert!(!text.contains("root: I/O error"), "{text}");
    insta::assert_snapshot!("cut_statefile", text);
}
