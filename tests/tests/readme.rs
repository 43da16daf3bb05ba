//! Every Rust snippet of the README, compiled and run in the context it
//! leaves out (the `?` needs a function, the statefile snippet a path, a key
//! and a graph), and a check that each README snippet appears here as it is
//! written there (up to whitespace), so the two cannot drift apart.

use std::collections::BTreeMap;
use std::error::Error;
use std::fs::File;
use std::sync::Arc;

type TestResult = Result<(), Box<dyn Error>>;

#[test]
fn use_section() -> TestResult {
    use stateify::Stateify;
    use std::{
        cell::RefCell,
        rc::{Rc, Weak},
    };

    #[derive(Stateify)]
    #[state(after_load)] // calls AfterLoad::after_load once the fields are loaded
    struct Node {
        name: String,
        parent: Weak<RefCell<Node>>,  // back-edges come back live
        kids: Vec<Rc<RefCell<Node>>>, // shared pointers stay shared
        #[state(nosave)] // not saved: loads as Default (or `default = "fn"`),
        kid_count: usize, // then the hook sets it
    }
    impl stateify::AfterLoad for Node {
        fn after_load(&mut self, _: &mut stateify::LoadContext) -> Result<(), stateify::Error> {
            self.kid_count = self.kids.len();
            Ok(())
        }
    }

    let root = Rc::new(RefCell::new(Node {
        name: "root".into(),
        parent: Weak::new(),
        kids: vec![],
        kid_count: 0,
    }));
    let kid = Rc::new(RefCell::new(Node {
        name: "kid".into(),
        parent: Rc::downgrade(&root),
        kids: vec![],
        kid_count: 0,
    }));
    root.borrow_mut().kids.push(kid);

    let bytes = stateify::to_vec(&root)?; // or stateify::save(writer, &root)
    let back: Rc<RefCell<Node>> = stateify::from_slice(&bytes)?; // or stateify::load(reader)
    assert_eq!(back.borrow().kid_count, 1);
    println!("{}", stateify::pretty::to_string(&bytes)?); // any stream, no Rust types needed

    // What the snippet does not check itself.
    let kid = back.borrow().kids[0].clone();
    assert!(Rc::ptr_eq(&kid.borrow().parent.upgrade().unwrap(), &back));
    assert_eq!(
        (back.borrow().name.as_str(), kid.borrow().name.as_str()),
        ("root", "kid")
    );
    Ok(())
}

mod as_u128 {
    use stateify::{Error, Loader, Saver, Stateify};
    pub fn save(v: &uuid::Uuid, s: &mut Saver) -> Result<(), Error> {
        v.as_u128().save(s)
    }
    pub fn load(l: &mut Loader) -> Result<uuid::Uuid, Error> {
        u128::load(l).map(uuid::Uuid::from_u128)
    }
}

#[derive(stateify::Stateify)]
struct Session {
    #[state(with = "as_u128")]
    id: uuid::Uuid,
    started: std::time::Instant, // saved relative to the checkpoint: see below
}

#[test]
fn with_module_for_a_foreign_type() -> TestResult {
    let s = Session {
        id: uuid::Uuid::from_u128(0x1234_5678_9abc_def0),
        started: std::time::Instant::now() - std::time::Duration::from_secs(60),
    };
    let back: Session = stateify::from_slice(&stateify::to_vec(&s)?)?;
    assert_eq!(back.id, s.id);
    let age = back.started.elapsed();
    assert!(age >= std::time::Duration::from_secs(60), "{age:?}");
    assert!(age < std::time::Duration::from_secs(70), "{age:?}");
    Ok(())
}

#[test]
fn statefile_section() -> TestResult {
    #[derive(stateify::Stateify, Debug, PartialEq)]
    struct Graph {
        nodes: Vec<String>,
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("graph.state");
    let key: &[u8] = b"a key";
    let graph = Graph {
        nodes: vec!["a".into(), "b".into()],
    };

    let metadata = BTreeMap::from([("app".to_string(), "demo".to_string())]);
    let mut w = statefile::Writer::new(File::create(&path)?, Some(key), &metadata)?;
    stateify::save(&mut w, &graph)?;
    w.finish()?;
    let mut r = statefile::Reader::new(File::open(&path)?, Some(key))?; // r: BufRead
    let back: Graph = stateify::load(&mut r)?;

    assert_eq!(back, graph);
    Ok(())
}

#[test]
fn page_memory_section() -> TestResult {
    let mut meta = Vec::new(); // any Write: a file, a statefile record…
    let mut pages_file = tempfile::tempfile()?; // read back by the restore
    let mf = pgalloc::MemoryFile::new(Default::default())?;
    let r = mf.allocate(1 << 20, Default::default())?;
    mf.write_at(r.start, b"application memory")?;
    mf.save_to(&mut meta, Some(&mut pages_file), &Default::default())?;
    // Eager; or `LoadOpts { background: true, .. }` to return at once and stream
    // the pages in while the program runs (accesses wait for what they touch).
    let (restored, stats) =
        pgalloc::MemoryFile::load_from(&meta[..], Some(Arc::new(pages_file)), &Default::default())?;
    assert!(stats.verified); // every 64 KiB of pages checked against its BLAKE3 digest
    let mut back = [0u8; 18];
    restored.read_at(r.start, &mut back)?;
    assert_eq!(&back, b"application memory");
    Ok(())
}

#[test]
fn incremental_section() -> TestResult {
    use pgalloc::SaveOpts;
    let mf = pgalloc::MemoryFile::new(Default::default())?;
    let r = mf.allocate(64 << 20, Default::default())?;
    mf.write_at(r.start, &vec![7u8; 64 << 20])?;
    let (mut base_meta, mut base_pages) = (Vec::new(), Vec::new());
    mf.save_to(&mut base_meta, Some(&mut base_pages), &Default::default())?;
    mf.write_at(r.start + 4096, b"one page changed")?;
    let (mut delta_meta, mut delta_pages) = (Vec::new(), Vec::new());
    let delta = SaveOpts {
        incremental: true,
        ..Default::default()
    };
    let stats = mf.save_to(&mut delta_meta, Some(&mut delta_pages), &delta)?;
    assert_eq!(stats.bytes_written, 4096); // of 64 MiB
    let chain: Vec<(&[u8], Arc<dyn pgalloc::PageSource>)> = vec![
        (&base_meta[..], Arc::new(base_pages)),
        (&delta_meta[..], Arc::new(delta_pages)),
    ];
    let (restored, _) = pgalloc::MemoryFile::load_chain(chain, &Default::default())?;
    let mut back = [0u8; 16];
    restored.read_at(r.start + 4096, &mut back)?;
    assert_eq!(&back, b"one page changed");
    Ok(())
}

#[test]
fn object_storage_section() -> TestResult {
    use std::io::{BufReader, Write};
    #[derive(stateify::Stateify, Debug, PartialEq)]
    struct Graph {
        nodes: Vec<String>,
    }
    let url = "memory://readme/checkpoints";
    let key: &[u8] = b"a key";
    let graph = Graph {
        nodes: vec!["a".into(), "b".into()],
    };
    let mf = pgalloc::MemoryFile::new(Default::default())?;
    let at = mf.allocate(1 << 20, Default::default())?;
    mf.write_at(at.start, b"application memory")?;

    let store = stateify_store::Store::open(url)?; // s3://bucket/prefix (AWS_* variables), file:///dir, …
    let (_, manifest) = store.write_checkpoint("job", |state, pages, pages_name| {
        // Two `Write`s streaming out as multipart uploads (bounded memory):
        // write them as two local files, from two threads if you like.
        let meta = BTreeMap::from([(statefile::PAGES_KEY.to_string(), pages_name.to_string())]);
        let mut w = statefile::Writer::new(state, Some(key), &meta)?;
        let mut page_meta = Vec::new();
        mf.save_to(&mut page_meta, Some(pages), &Default::default())?;
        stateify::save(&mut w, &graph)?;
        w.write_all(&page_meta)?;
        w.finish()?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?; // visible now: its manifest was written last

    // Elsewhere:
    let cp = store.open_checkpoint("job")?;
    let mut r = statefile::Reader::new(BufReader::new(cp.state_reader()?), Some(key))?;
    let back: Graph = stateify::load(&mut r)?;
    let pages = cp.pages_source()?; // a pgalloc::PageSource of ranged GETs
    let opts = pages.load_opts(true); // in the background, 8 requests in flight
    let (mem, _) = pgalloc::MemoryFile::load_from(&mut r, Some(Arc::new(pages)), &opts)?;

    assert_eq!(back, graph);
    assert_eq!(cp.manifest(), &manifest);
    let mut bytes = [0u8; 18];
    mem.read_at(at.start, &mut bytes)?;
    assert_eq!(&bytes, b"application memory");
    Ok(())
}

/// The text without whitespace or trailing commas: rustfmt moves comments,
/// breaks lines and adds commas where it breaks them.
fn squeeze(s: &str) -> String {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    t.replace(",}", "}").replace(",)", ")").replace(",]", "]")
}

#[test]
fn every_readme_snippet_is_compiled_here() {
    let readme = include_str!("../../README.md");
    let here = squeeze(include_str!("readme.rs"));
    let mut snippets = 0;
    let mut rest = readme;
    while let Some(start) = rest.find("```rust\n") {
        let body = &rest[start + 8..];
        let end = body
            .find("```")
            .expect("an unclosed code block in README.md");
        let snippet = &body[..end];
        assert!(
            here.contains(&squeeze(snippet)),
            "this README snippet is not in tests/tests/readme.rs as written:\n{snippet}"
        );
        snippets += 1;
        rest = &body[end + 3..];
    }
    assert_eq!(
        snippets, 6,
        "README.md has a Rust snippet this file does not know"
    );
}
