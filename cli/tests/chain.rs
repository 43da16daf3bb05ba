//! Chains of incremental checkpoints through the CLI: `info` shows where a
//! statefile stands, `verify` checks every layer and each delta's parent,
//! `squash` writes one full checkpoint that loads to the same memory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use pgalloc::{AllocOpts, MemoryFile, MemoryFileOpts, PageSource, SaveOpts, PAGE_SIZE};

fn stateify(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_stateify"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

/// Checkpoint `name` in `dir`: a graph, the memory's page metadata (a
/// delta when `parent` is given), and a pages file; keyed.
fn checkpoint(dir: &Path, name: &str, mf: &MemoryFile, parent: Option<&str>) {
    statefile::write_pair(dir, name, |state, pages, pages_name| {
        let mut meta = BTreeMap::from([(statefile::PAGES_KEY.to_string(), pages_name.to_string())]);
        if let Some(p) = parent {
            meta.insert(statefile::PARENT_KEY.into(), p.into());
        }
        let mut page_meta = Vec::new();
        let opts = SaveOpts {
            incremental: parent.is_some(),
            ..SaveOpts::default()
        };
        mf.save_to(&mut page_meta, Some(pages), &opts).unwrap();
        let mut w = statefile::Writer::new(&mut *state, Some(b"k"), &meta)?;
        stateify::save(&mut w, &format!("graph of {name}")).unwrap();
        w.write_all(&page_meta)?;
        w.finish()?;
        Ok::<_, statefile::Error>(())
    })
    .unwrap();
}

#[test]
fn info_verify_and_squash_follow_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("key"), b"k").unwrap();
    let key = d.join("key");
    let key = key.to_str().unwrap();
    let mf = MemoryFile::new(MemoryFileOpts {
        chunk_size: 16 << 20,
        ..Default::default()
    })
    .unwrap();
    let r = mf.allocate(64 * PAGE_SIZE, AllocOpts::default()).unwrap();
    for p in 0..64 {
        mf.write_at(r.start + p * PAGE_SIZE, &[p as u8 + 1; 64])
            .unwrap();
    }
    checkpoint(d, "cp", &mf, None);
    mf.write_at(r.start + 5 * PAGE_SIZE, &[0xee; 64]).unwrap();
    checkpoint(d, "cp-1", &mf, Some("cp"));
    mf.write_at(r.start + 6 * PAGE_SIZE, &[0xdd; 64]).unwrap();
    checkpoint(d, "cp-2", &mf, Some("cp-1"));
    let top = d.join("cp-2.state");
    let top = top.to_str().unwrap();

    let (code, out) = stateify(&["--key-file", key, "info", top]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("delta 2 ") && out.contains("0.00 MiB changed"),
        "{out}"
    );
    assert!(out.contains("chain: 3 layers, oldest first"), "{out}");

    let (code, out) = stateify(&["--key-file", key, "verify", top]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("chain: 3 layers, each delta's parent checked by digest"),
        "{out}"
    );
    assert!(out.contains("cp.state: full checkpoint"), "{out}");
    let (code, out) = stateify(&["--json", "--key-file", key, "verify", top]);
    assert_eq!(code, 0, "{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["chain"].as_array().unwrap().len(), 3);
    assert_eq!(j["chain"][2]["layer"], 2);

    // Squashed: one full checkpoint of the same memory.
    let (code, out) = stateify(&["--key-file", key, "squash", top, "flat"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("squashed 3 checkpoints"), "{out}");
    let flat = d.join("flat.state");
    let (code, out) = stateify(&["--key-file", key, "verify", flat.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("chain:"), "{out}");
    let pair = statefile::find_pair(d, "flat").unwrap();
    let mut rd = statefile::Reader::new(
        std::io::BufReader::new(std::fs::File::open(&pair.state).unwrap()),
        Some(b"k"),
    )
    .unwrap();
    let graph: String = stateify::load(&mut rd).unwrap();
    assert_eq!(graph, "graph of cp-2");
    assert_eq!(rd.metadata().get(statefile::PARENT_KEY), None);
    let pages: Arc<dyn PageSource> = Arc::new(std::fs::File::open(&pair.pages).unwrap());
    let (back, _) = MemoryFile::load_from(&mut rd, Some(pages), &Default::default()).unwrap();
    let (mut a, mut b) = (vec![0u8; r.len() as usize], vec![0u8; r.len() as usize]);
    mf.read_at(r.start, &mut a).unwrap();
    back.read_at(r.start, &mut b).unwrap();
    assert!(a == b, "the squashed memory differs");

    // Mounted, the delta shows its chain's memory, as the squashed file.
    if stateify_tests::mount::fuse_usable() {
        let bin = Path::new(env!("CARGO_BIN_EXE_stateify"));
        let pages_of = |state: &str, mp: &str| {
            let mut m = stateify_tests::mount::Mounted::start(
                bin,
                &["--key-file", key, "mount", state],
                &d.join(mp),
            );
            let dir = m.path("/pages");
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            let bytes: Vec<u8> = names
                .iter()
                .flat_map(|n| std::fs::read(dir.join(n)).unwrap())
                .collect();
            assert!(m.stop().success());
            bytes
        };
        let chain = pages_of(top, "m1");
        assert_eq!(chain.len() as u64, r.end - r.start, "one segment");
        assert!(chain == a, "the mounted chain is not the memory");
        assert!(pages_of(flat.to_str().unwrap(), "m2") == chain);
    }

    // A damaged page in a lower layer's pages file, then a base taken
    // again (the delta's parent gone), then a missing parent.
    let base_pages = statefile::find_pair(d, "cp").unwrap().pages;
    let good = std::fs::read(&base_pages).unwrap();
    let mut bad = good.clone();
    bad[4096 + 100] ^= 1;
    std::fs::write(&base_pages, &bad).unwrap();
    let (code, out) = stateify(&["--key-file", key, "verify", top]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("cp.state: pages file") && out.contains("BLAKE3"),
        "{out}"
    );
    std::fs::write(&base_pages, &good).unwrap();
    checkpoint(d, "cp", &mf, None);
    let (code, out) = stateify(&["--key-file", key, "verify", top]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("checkpoint chain: layer 1's parent is"),
        "{out}"
    );
    std::fs::remove_file(d.join("cp.state")).unwrap();
    let (code, out) = stateify(&["--key-file", key, "verify", top]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("parent checkpoint \"cp\""), "{out}");
    // Nothing to squash in a full checkpoint.
    let (code, out) = stateify(&["--key-file", key, "squash", flat.to_str().unwrap(), "x"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("nothing to squash"), "{out}");
}
