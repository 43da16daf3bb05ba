//! The compatibility promise: every file of every corpus version under
//! `tests/golden/` loads with today's code to what its sidecar says, typed
//! graphs of the current format version re-encode to the very same bytes,
//! and the type-free printer renders every stream (insta snapshots).

use std::collections::BTreeMap;

use stateify_tests::corpus::{self, Entry, Expect, Loaded};

struct Case {
    version: u32,
    name: String,
    expect: Expect,
    loaded: Result<Loaded, String>,
}

/// Every sidecar of every version, read with today's reader of its name.
fn cases() -> Vec<Case> {
    let entries: BTreeMap<&str, Entry> =
        corpus::entries().into_iter().map(|e| (e.name, e)).collect();
    let versions = stateify_tests::versions().expect("tests/golden/ is readable");
    assert!(
        !versions.is_empty(),
        "no corpus version under tests/golden/"
    );
    let mut out = Vec::new();
    for (version, dir) in versions {
        let mut named = Vec::new();
        let mut listing: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        listing.sort();
        for f in &listing {
            let Some(name) = f.strip_suffix(".expect") else {
                continue;
            };
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            let expect =
                corpus::parse_sidecar(&text).unwrap_or_else(|e| panic!("v{version}/{f}: {e}"));
            named.extend(expect.files.iter().cloned());
            named.push(f.clone());
            let entry = entries.get(expect.reader.as_str()).unwrap_or_else(|| {
                panic!(
                    "v{version}/{f}: no reader named {:?} today (readers are never removed)",
                    expect.reader
                )
            });
            let loaded = corpus::read_files(&dir, &expect.files)
                .and_then(|files| (entry.read)(&files))
                .map_err(|e| e.to_string());
            out.push(Case {
                version,
                name: name.to_string(),
                expect,
                loaded,
            });
        }
        named.sort();
        assert_eq!(
            listing, named,
            "v{version}: files no sidecar names, or named twice"
        );
    }
    out
}

#[test]
fn every_corpus_file_loads_to_what_its_sidecar_says() {
    let cases = cases();
    let mut failures = Vec::new();
    for c in &cases {
        let at = format!("v{}/{}", c.version, c.name);
        let digest = blake3::hash(c.expect.description.as_bytes())
            .to_hex()
            .to_string();
        if digest != c.expect.digest {
            failures.push(format!(
                "{at}: the sidecar's description does not match its digest"
            ));
        }
        match &c.loaded {
            Err(e) => failures.push(format!("{at}: does not load: {e}")),
            Ok(l) if l.description != c.expect.description => failures.push(format!(
                "{at}: loads to something else.\n--- expected\n{}\n--- today\n{}",
                c.expect.description, l.description
            )),
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The corpus covers what it says it covers.
    assert!(cases.len() >= 16, "only {} corpus entries", cases.len());
}

#[test]
fn typed_graphs_reencode_to_the_same_bytes_in_their_version() {
    let mut compared = 0;
    for c in cases() {
        let loaded = c
            .loaded
            .unwrap_or_else(|e| panic!("v{}/{}: {e}", c.version, c.name));
        for s in loaded.streams {
            let Some(again) = s.reencoded else { continue };
            // Today's saver writes the lowest version a graph needs: where
            // that is the file's version, the bytes must be the same.
            if corpus::graph_version(&s.bytes) != corpus::graph_version(&again) {
                continue;
            }
            assert!(
                again == s.bytes,
                "v{}/{}: saved again, {} bytes differ from the file's {} (first difference at byte {:?})",
                c.version,
                s.file,
                again.len(),
                s.bytes.len(),
                again.iter().zip(&s.bytes).position(|(a, b)| a != b)
            );
            compared += 1;
        }
    }
    assert!(compared >= 12, "only {compared} streams compared");
}

#[test]
fn the_printer_renders_every_stream() {
    for c in cases() {
        let loaded = c
            .loaded
            .unwrap_or_else(|e| panic!("v{}/{}: {e}", c.version, c.name));
        for s in loaded.streams {
            let text = stateify::pretty::to_string(&s.bytes)
                .unwrap_or_else(|e| panic!("v{}/{}: {e}", c.version, s.file));
            insta::assert_snapshot!(format!("v{}__{}", c.version, s.file), text);
        }
    }
}
