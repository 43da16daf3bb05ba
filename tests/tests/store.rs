//! Checkpoints in object storage, against a real S3-protocol server
//! (`s3s-fs` on loopback, `stateify_tests::s3`): a checkpoint written
//! through multipart uploads and a manifest, restored with its pages read
//! by range in the background; failed and interrupted uploads leave
//! nothing visible; a server that stops mid-restore fails the accesses,
//! never hangs; dropped connections are retried; damage is detected.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgalloc::{AllocOpts, FileRange, LoadOpts, MemoryFile, MemoryFileOpts, SaveOpts, PAGE_SIZE};
use stateify_store::{Store, StoreOptions};
use stateify_tests::s3::{Proxy, S3Server, BUCKET};

const KEY: &[u8] = b"store test key";

/// Small parts and reads, so that a few MiB make many of each; few
/// retries, so that a dead server fails fast.
fn opts() -> StoreOptions {
    StoreOptions {
        part_size: 5 << 20,
        parts_in_flight: 2,
        read_size: 256 << 10,
        read_ahead: 3,
        page_readers: 4,
        page_read_size: 256 << 10,
        retries: 3,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        retry_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    }
}

/// A memory file of `mib` MiB, every page stamped with its offset.
fn memory(mib: u64) -> (MemoryFile, FileRange) {
    let mf = MemoryFile::new(MemoryFileOpts {
        chunk_size: 64 << 20,
        huge_pages: false,
        ..Default::default()
    })
    .unwrap();
    let r = mf.allocate(mib << 20, AllocOpts::default()).unwrap();
    for p in (r.start..r.end).step_by(PAGE_SIZE as usize) {
        mf.write_at(p, &(p ^ 0xfeed).to_le_bytes()).unwrap();
    }
    (mf, r)
}

/// Writes checkpoint `name`: a statefile (a graph, then the page metadata)
/// and the pages, from two threads as a program would.
fn checkpoint(
    store: &Store,
    name: &str,
    graph: &BTreeMap<String, u64>,
    mf: &MemoryFile,
) -> stateify_store::Manifest {
    let (_, manifest) = store
        .write_checkpoint(name, |state, pages, pages_name| {
            let meta = BTreeMap::from([(statefile::PAGES_KEY.to_string(), pages_name.to_string())]);
            let mut w = statefile::Writer::new(state, Some(KEY), &meta)?;
            let mut page_meta = Vec::new();
            std::thread::scope(|s| {
                let saver =
                    s.spawn(|| mf.save_to(&mut page_meta, Some(pages), &SaveOpts::default()));
                stateify::save(&mut w, graph)?;
                saver.join().unwrap()?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })?;
            w.write_all(&page_meta)?;
            w.finish()?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .unwrap();
    manifest
}

/// Restores checkpoint `name` with its pages in the background and checks
/// graph and pages.
fn restore_and_check(store: &Store, name: &str, graph: &BTreeMap<String, u64>, r: FileRange) {
    let cp = store.open_checkpoint(name).unwrap();
    let mut sr =
        statefile::Reader::new(BufReader::new(cp.state_reader().unwrap()), Some(KEY)).unwrap();
    assert_eq!(
        sr.metadata()[statefile::PAGES_KEY],
        cp.manifest().pages.name
    );
    let back: BTreeMap<String, u64> = stateify::load(&mut sr).unwrap();
    assert_eq!(&back, graph);
    let pages = cp.pages_source().unwrap();
    let lo = pages.load_opts(true);
    let pages = Arc::new(pages);
    let (mf, _) = MemoryFile::load_from(&mut sr, Some(pages.clone()), &lo).unwrap();
    sr.finish().unwrap();
    // Random accesses first (each waits for its unit), then everything.
    for i in [7u64, 1, 300, 42] {
        let p = r.start + (i * 37 % ((r.end - r.start) / PAGE_SIZE)) * PAGE_SIZE;
        let mut b = [0u8; 8];
        mf.read_at(p, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), p ^ 0xfeed);
    }
    mf.await_all().unwrap();
    for p in (r.start..r.end).step_by(PAGE_SIZE as usize) {
        let mut b = [0u8; 8];
        mf.read_at(p, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), p ^ 0xfeed, "page {p:#x}");
    }
    let (requests, bytes) = pages.requests();
    assert!(
        requests >= 2 && bytes >= r.end - r.start,
        "{requests} requests, {bytes} bytes"
    );
}

fn graph() -> BTreeMap<String, u64> {
    (0..1000).map(|i| (format!("key {i}"), i * i)).collect()
}

#[test]
fn s3_round_trip_replaces_the_previous_checkpoint() {
    let server = S3Server::start().unwrap();
    let store = S3Server::store(server.addr(), "jobs/a", opts()).unwrap();
    let (mf, r) = memory(12);
    let g = graph();
    let first = checkpoint(&store, "job", &g, &mf);
    // Multipart: the 12 MiB pages file went up in 5 MiB parts.
    assert!(first.pages.size > 12 << 20);
    let listed = server.objects("jobs/a");
    assert_eq!(
        listed,
        [first.manifest_names(), vec!["job.manifest".into()]].concat(),
    );
    restore_and_check(&store, "job", &g, r);

    // A second checkpoint replaces the first, whose objects go.
    mf.write_at(r.start, &(r.start ^ 0xfeed).to_le_bytes())
        .unwrap();
    let second = checkpoint(&store, "job", &g, &mf);
    assert_ne!(second.state.name, first.state.name);
    assert_eq!(
        server.objects("jobs/a"),
        [second.manifest_names(), vec!["job.manifest".into()]].concat()
    );
    assert!(server.pending_uploads().is_empty());
    restore_and_check(&store, "job", &g, r);
}

trait Names {
    fn manifest_names(&self) -> Vec<String>;
}

impl Names for stateify_store::Manifest {
    /// The pages and state objects, sorted as a listing is.
    fn manifest_names(&self) -> Vec<String> {
        let mut v = vec![self.pages.name.clone(), self.state.name.clone()];
        v.sort();
        v
    }
}

#[test]
fn memory_and_local_stores_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for location in [
        "memory://round-trip/some/prefix".to_string(),
        dir.path().join("cps").display().to_string(),
        format!("file://{}", dir.path().join("other").display()),
    ] {
        let store = Store::open_with(&location, opts()).unwrap();
        let (mf, r) = memory(3);
        checkpoint(&store, "m", &graph(), &mf);
        restore_and_check(&store, "m", &graph(), r);
    }
}

#[test]
fn a_failed_write_leaves_nothing() {
    let server = S3Server::start().unwrap();
    let store = S3Server::store(server.addr(), "p", opts()).unwrap();
    let e = store
        .write_checkpoint("job", |state, pages, _| {
            // Several parts of each are already up when the writer fails.
            let junk = vec![7u8; 11 << 20];
            state.write_all(&junk)?;
            pages.write_all(&junk)?;
            Err::<(), _>(std::io::Error::other("the program failed mid-checkpoint"))
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "the program failed mid-checkpoint");
    assert_eq!(server.objects("p"), Vec::<String>::new());
    assert_eq!(server.pending_uploads(), Vec::<String>::new());
    let e = store.open_checkpoint("job").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("no checkpoint \"job\" at s3://checkpoints/p"),
        "{e}"
    );
}

#[test]
fn a_server_stopped_mid_upload_leaves_no_checkpoint() {
    let mut server = S3Server::start().unwrap();
    let store = S3Server::store(server.addr(), "p", opts()).unwrap();
    let root = server.root().join(BUCKET).join("p");
    let t = Instant::now();
    let e = store
        .write_checkpoint("job", |state, pages, _| {
            let part = vec![1u8; 1 << 20];
            for i in 0..40 {
                if i == 12 {
                    server.stop();
                }
                state.write_all(&part)?;
                pages.write_all(&part)?;
            }
            Ok::<_, std::io::Error>(())
        })
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
    assert!(
        e.to_string().contains("uploading s3://checkpoints/p/job."),
        "{e}"
    );
    let names: Vec<String> = std::fs::read_dir(&root)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    assert!(!names.iter().any(|n| n.ends_with(".manifest")), "{names:?}");
}

#[test]
fn a_server_stopped_mid_restore_fails_the_accesses() {
    let mut server = S3Server::start().unwrap();
    let proxy = Proxy::start(server.addr(), Duration::from_millis(20)).unwrap();
    let store = S3Server::store(proxy.addr(), "p", opts()).unwrap();
    let (mf, r) = memory(16);
    let g = graph();
    checkpoint(&store, "job", &g, &mf);
    let cp = store.open_checkpoint("job").unwrap();
    let mut sr =
        statefile::Reader::new(BufReader::new(cp.state_reader().unwrap()), Some(KEY)).unwrap();
    let _: BTreeMap<String, u64> = stateify::load(&mut sr).unwrap();
    let pages = cp.pages_source().unwrap();
    let lo = pages.load_opts(true);
    let (back, _) = MemoryFile::load_from(&mut sr, Some(Arc::new(pages)), &lo).unwrap();
    // 16 MiB at 256 KiB a request, 4 at a time, 20 ms each: far from done.
    server.stop();
    let t = Instant::now();
    let e = back.await_all().unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
    assert!(e.to_string().contains("are unavailable"), "{e}");
    let last = r.end - PAGE_SIZE;
    let mut b = [0u8; 8];
    let e = back.read_at(last, &mut b).unwrap_err();
    assert!(e.to_string().contains("GET s3://checkpoints/p/job."), "{e}");
    let p = back.restore_progress().unwrap();
    assert!(p.done && p.bytes_failed > 0, "{p:?}");
}

#[test]
fn dropped_connections_are_retried_and_damage_is_found() {
    let server = S3Server::start().unwrap();
    let proxy = Proxy::start(server.addr(), Duration::ZERO).unwrap();
    let store = S3Server::store(proxy.addr(), "p", opts()).unwrap();
    let (mf, r) = memory(2);
    let g = graph();
    let m = checkpoint(&store, "job", &g, &mf);
    // The next 40 connections are each closed as soon as they are accepted;
    // the client retries every request they fail. A connection can close
    // before the request is handed to it ("connection was not ready") or
    // after it was written (a message cut short): both must be retried, so
    // many closes make both likely in every run. In about one run in 400
    // here a request on such a connection got no answer and no error until
    // its timeout (inside the HTTP client; not understood): a short request
    // timeout, within the retry timeout, lets it be retried too.
    proxy.drop_connections(40);
    let patient = StoreOptions {
        retries: 60,
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
        request_timeout: Duration::from_secs(2),
        retry_timeout: Duration::from_secs(30),
        ..opts()
    };
    let fresh = S3Server::store(proxy.addr(), "p", patient).unwrap();
    restore_and_check(&fresh, "job", &g, r);
    assert_eq!(proxy.connections_left_to_drop(), 0);

    // A statefile changed on the server: its digest no longer matches.
    let at = server.root().join(BUCKET).join("p").join(&m.state.name);
    let mut bytes = std::fs::read(&at).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&at, &bytes).unwrap();
    let cp = store.open_checkpoint("job").unwrap();
    let mut all = Vec::new();
    let e = cp
        .state_reader()
        .unwrap()
        .read_to_end(&mut all)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("BLAKE3 digest is not the one the manifest records"),
        "{e}"
    );
    // A pages file cut short is refused before any page is read.
    let at = server.root().join(BUCKET).join("p").join(&m.pages.name);
    let f = std::fs::OpenOptions::new().write(true).open(&at).unwrap();
    f.set_len(m.pages.size - 1).unwrap();
    let e = cp.pages_source().err().unwrap();
    assert!(e.to_string().contains("where the manifest records"), "{e}");
}

#[test]
fn pages_load_for_a_program_inside_an_async_runtime() {
    // A tokio application touching restored memory from a task: the
    // store's blocking reads must not trip over the caller's runtime.
    let server = S3Server::start().unwrap();
    // Slow, so that the touched page is still pending when it is touched.
    let proxy = Proxy::start(server.addr(), Duration::from_millis(20)).unwrap();
    let store = S3Server::store(proxy.addr(), "p", opts()).unwrap();
    let (mf, r) = memory(2);
    let g = graph();
    checkpoint(&store, "job", &g, &mf);
    let app = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    app.block_on(async move {
        let cp = store.open_checkpoint("job").unwrap();
        let mut sr =
            statefile::Reader::new(BufReader::new(cp.state_reader().unwrap()), Some(KEY)).unwrap();
        let back: BTreeMap<String, u64> = stateify::load(&mut sr).unwrap();
        assert_eq!(back, g);
        let pages = cp.pages_source().unwrap();
        let lo = LoadOpts {
            threads: 1,
            ..pages.load_opts(true)
        };
        let (mf, _) = MemoryFile::load_from(&mut sr, Some(Arc::new(pages)), &lo).unwrap();
        let last = r.end - PAGE_SIZE;
        let mut b = [0u8; 8];
        mf.read_at(last, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), last ^ 0xfeed);
        mf.await_all().unwrap();
        // The program's last handle on the store goes inside its runtime.
        drop((cp, store));
    });
}
