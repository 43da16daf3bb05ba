//! The CLI on checkpoints given by URL, in a real S3-protocol server
//! (`s3s-fs` on loopback): the statefile is fetched, the pages file it
//! names is read in the store; damage and absence are clear errors.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output};

use pgalloc::{AllocOpts, MemoryFile, MemoryFileOpts, SaveOpts, PAGE_SIZE};
use stateify_store::{Store, StoreOptions};
use stateify_tests::s3::{S3Server, BUCKET};

const KEY: &[u8] = b"remote cli key";

/// Checkpoint `name`: a graph of `n` numbers and 1 MiB of stamped pages.
fn write(store: &Store, name: &str, n: u64) -> stateify_store::Manifest {
    let mf = MemoryFile::new(MemoryFileOpts::default()).unwrap();
    let r = mf.allocate(1 << 20, AllocOpts::default()).unwrap();
    for p in (r.start..r.end).step_by(PAGE_SIZE as usize) {
        mf.write_at(p, &p.to_le_bytes()).unwrap();
    }
    let graph: Vec<String> = (0..n).map(|i| format!("n{}", i * i)).collect();
    store
        .write_checkpoint(name, |state, pages, pages_name| {
            let meta = BTreeMap::from([(statefile::PAGES_KEY.to_string(), pages_name.to_string())]);
            let mut w = statefile::Writer::new(state, Some(KEY), &meta)?;
            let mut page_meta = Vec::new();
            mf.save_to(&mut page_meta, Some(pages), &SaveOpts::default())?;
            stateify::save(&mut w, &graph)?;
            w.write_all(&page_meta)?;
            w.finish()?;
            Ok::<_, Box<dyn std::error::Error>>(())
        })
        .unwrap()
        .1
}

struct Cli {
    env: Vec<(&'static str, String)>,
    key: tempfile::NamedTempFile,
}

impl Cli {
    fn run(&self, args: &[&str]) -> (Output, String) {
        let o = Command::new(env!("CARGO_BIN_EXE_stateify"))
            .arg("--key-file")
            .arg(self.key.path())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o, text)
    }
}

#[test]
fn commands_take_urls() {
    let server = S3Server::start().unwrap();
    let store = S3Server::store(server.addr(), "cli", StoreOptions::default()).unwrap();
    let a = write(&store, "a", 5);
    write(&store, "b", 6);
    let mut key = tempfile::NamedTempFile::new().unwrap();
    key.write_all(KEY).unwrap();
    let cli = Cli {
        env: S3Server::env(server.addr()),
        key,
    };
    let url = |name: &str| format!("s3://{BUCKET}/cli/{name}");
    let pages_url = url(&a.pages.name);

    let (o, t) = cli.run(&["info", &url("a")]);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains(&format!("pages file: {pages_url} (checkpoint ")),
        "{t}"
    );
    assert!(t.contains("pair: matches"), "{t}");

    let (o, t) = cli.run(&["verify", &url("a")]);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains(&format!("pages file {pages_url} (checkpoint "))
            && t.contains("verified every piece against its BLAKE3 digest"),
        "{t}"
    );

    let (o, t) = cli.run(&["cat", &url("a"), "/0/3"]);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.trim(), "\"n9\"");
    // The statefile object itself, without its manifest, is a file too.
    let (o, t) = cli.run(&["ls", &url(&a.state.name), "/0"]);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.lines().count(), 5, "{t}");

    let (o, t) = cli.run(&["diff", &url("a"), &url("b")]);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("+ /0/5: \"n25\""), "{t}");
    let (o, t) = cli.run(&["diff", &url("a"), &url("a")]);
    assert_eq!(o.status.code(), Some(0), "{t}");

    let (o, t) = cli.run(&["stats", &url("b")]);
    assert!(o.status.success(), "{t}");

    // Absent: a clear error, exit 2.
    let (o, t) = cli.run(&["info", &url("nothing")]);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains(&format!(
            "no checkpoint (nothing.manifest) or object \"nothing\" at s3://{BUCKET}/cli"
        )),
        "{t}"
    );

    // A page changed in the store: verify names the object and the place.
    let on_disk = server.root().join(BUCKET).join("cli").join(&a.pages.name);
    let mut bytes = std::fs::read(&on_disk).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x40;
    std::fs::write(&on_disk, &bytes).unwrap();
    let (o, t) = cli.run(&["verify", &url("a")]);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains(&pages_url) && t.contains("digest"), "{t}");
}
