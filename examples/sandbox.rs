//! The main job: a toy sandbox — tasks with fd tables, a netstack with real
//! listening sockets, timers, shared objects with cycles, trait-object file
//! descriptions — plus a `MemoryFile` of application memory, checkpointed in
//! one process and restored in another.
//!
//! ```text
//! sandbox demo [--dir DIR] [--memory-mib N] [--eager]
//! sandbox checkpoint --dir DIR [--memory-mib N]     (prints the expectations)
//! sandbox migrate --to URL [--memory-mib N] [--eager]
//! sandbox restore (--dir DIR [--name NAME] | --from URL) [--eager] [--expect-graph H --expect-memory H --ports P,P]
//! ```
//!
//! `demo` builds the sandbox, serves a TCP client, checkpoints the object
//! graph into a statefile and the pages into a pages file (in parallel,
//! each file created atomically), then changes about 1% of the memory and
//! some of the graph and takes an *incremental* checkpoint on it
//! (`sandbox-1`: the whole graph, and only the pages changed since the
//! first). It shuts the sandbox down, restores the chain in a child process
//! (pages in the background unless `--eager`, each from the newest layer
//! that holds it) and checks that everything came back: the graph (a
//! digest of its contents and sharing), the memory (a checksum through the
//! restored `MemoryFile`), a new TCP client served on the same port, timers
//! firing on time. Files go to a temporary directory removed at the end,
//! unless `--dir` is given. `checkpoint` takes the first, full checkpoint
//! only.
//!
//! `migrate --to URL` does the same through an object store
//! (`stateify_store`: `s3://bucket/prefix` with the usual `AWS_*`
//! environment variables, `file:///dir`, …): the checkpoint is uploaded,
//! and the child process restores from the store with its pages read by
//! range, in the background, as the program touches them.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgalloc::{
    AllocOpts, FileRange, LoadOpts, MemoryFile, MemoryFileOpts, MemoryKind, PageSource, SaveOpts,
    PAGE_SIZE,
};
use stateify::{AsAny, Stateify};
use stateify_examples::netstack::{self, Endpoint, Stack};
use stateify_examples::timers::{ClockResource, SystemClock, TimerWheel};

// ---- the sandbox model ---------------------------------------------------

/// An open file description, shared between fd tables (and tasks).
trait FileDescription: AsAny {
    /// What it is, for the digest.
    fn describe(&self) -> String;
}

#[derive(Stateify)]
struct Pipe {
    buffer: RefCell<VecDeque<u8>>,
    readers: u32,
    writers: u32,
}

#[derive(Stateify)]
struct RegularFile {
    path: PathBuf,
    offset: RefCell<u64>,
    /// Its contents live in the memory file.
    data: (u64, u64),
}

#[derive(Stateify)]
struct SocketFile {
    endpoint: Arc<Endpoint>,
}

impl FileDescription for Pipe {
    fn describe(&self) -> String {
        format!(
            "pipe r{} w{} {:?}",
            self.readers,
            self.writers,
            self.buffer.borrow()
        )
    }
}

impl FileDescription for RegularFile {
    fn describe(&self) -> String {
        format!(
            "file {} @{} {:?}",
            self.path.display(),
            self.offset.borrow(),
            self.data
        )
    }
}

impl FileDescription for SocketFile {
    fn describe(&self) -> String {
        let tcp = self.endpoint.tcp.lock().unwrap_or_else(|e| e.into_inner());
        format!("socket #{} {:?}", self.endpoint.id, *tcp)
    }
}

stateify::register_dyn!(dyn FileDescription {
    "Pipe" => Pipe,
    "RegularFile" => RegularFile,
    "SocketFile" => SocketFile,
});

#[derive(Stateify)]
struct Task {
    pid: u32,
    name: String,
    parent: Weak<RefCell<Task>>,
    children: Vec<Rc<RefCell<Task>>>,
    fds: BTreeMap<i32, Rc<dyn FileDescription>>,
    /// The task's memory: ranges of the sandbox's memory file.
    memory: Vec<(u64, u64)>,
    cwd: PathBuf,
}

#[derive(Stateify)]
struct Sandbox {
    init: Rc<RefCell<Task>>,
    /// Every task by pid: the same nodes as the tree.
    tasks: BTreeMap<u32, Rc<RefCell<Task>>>,
    /// After the tasks: the save reaches each endpoint through a task's fd
    /// table first, and its `Weak` to this stack, which owns it, before the
    /// stack itself. The stack is announced there and built once its
    /// endpoints are (ARCHITECTURE.md, "Construction order").
    stack: Arc<Stack>,
    timers: TimerWheel,
    /// Saved beside the graph, into the pages file.
    #[state(nosave)]
    memory: Option<MemoryFile>,
}

const TASKS: u32 = 8;

fn fill_page(page: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for w in page.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
    }
}

/// A free loopback port below the kernel's ephemeral range, for a listener
/// that a restore re-binds. A port the kernel hands out (`bind` to port 0)
/// comes from the range it also gives every outgoing connection, so between
/// checkpoint and restore any client on the host could take it; below the
/// range only another explicit `bind` can.
fn port_to_keep() -> Result<u16, Box<dyn std::error::Error>> {
    const LOW: u16 = 10_000;
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok();
    let ephemeral_low: u16 = range
        .as_deref()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    if ephemeral_low < LOW + 1_000 {
        // Next to no room below the range: let the kernel choose.
        return Ok(0);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut x = ((u64::from(std::process::id()) << 32) ^ nanos) | 1;
    for _ in 0..64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = LOW + (x % u64::from(ephemeral_low - LOW)) as u16;
        if std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(format!("no free port in {LOW}..{ephemeral_low} after 64 tries").into())
}

/// Builds the sandbox; `memory_mib` of application memory, a quarter of it
/// never touched, a quarter written with zeros, half with data.
fn build(memory_mib: u64) -> Result<Sandbox, Box<dyn std::error::Error>> {
    let mem = MemoryFile::new(MemoryFileOpts::default())?;
    let stack = Stack::new();
    let listeners = [
        stack.listen(port_to_keep()?)?,
        stack.listen(port_to_keep()?)?,
    ];
    let mut timers = TimerWheel::new(SystemClock::shared());
    timers.oneshot("alarm", Duration::from_millis(1500));
    timers.periodic("tick", Duration::from_millis(50));

    let per_task = (memory_mib << 20) / TASKS as u64;
    let shared_pipe: Rc<dyn FileDescription> = Rc::new(Pipe {
        buffer: RefCell::new(
            b"queued between init and its children"
                .iter()
                .copied()
                .collect(),
        ),
        readers: TASKS - 1,
        writers: 1,
    });
    let mut tasks: BTreeMap<u32, Rc<RefCell<Task>>> = BTreeMap::new();
    for pid in 1..=TASKS {
        let parent = if pid == 1 {
            Weak::new()
        } else {
            Rc::downgrade(&tasks[&1])
        };
        let mut memory = Vec::new();
        let mut left = per_task;
        while left > 0 {
            let len = left.min(4 << 20);
            let kind = if pid % 2 == 0 {
                MemoryKind::Anonymous
            } else {
                MemoryKind::PageCache
            };
            let r = mem.allocate(len, AllocOpts { kind, memcg: pid })?;
            for p in 0..len / PAGE_SIZE {
                let page = FileRange {
                    start: r.start + p * PAGE_SIZE,
                    end: r.start + (p + 1) * PAGE_SIZE,
                };
                match p % 4 {
                    0 => {}
                    1 => mem.with_slice_mut(page, |s| s.fill(0))?,
                    _ => mem.with_slice_mut(page, |s| fill_page(s, page.start ^ pid as u64))?,
                }
            }
            memory.push((r.start, r.end));
            left -= len;
        }
        let mut fds: BTreeMap<i32, Rc<dyn FileDescription>> = BTreeMap::new();
        fds.insert(0, shared_pipe.clone());
        fds.insert(
            3,
            Rc::new(RegularFile {
                path: format!("/home/task{pid}/data").into(),
                offset: RefCell::new(pid as u64 * 100),
                data: memory[0],
            }),
        );
        let sock: Rc<dyn FileDescription> = Rc::new(SocketFile {
            endpoint: if pid <= 2 {
                listeners[pid as usize - 1].clone()
            } else {
                stack.connected(40000 + pid as u16, "10.0.0.9:80".parse()?, pid * 1000)
            },
        });
        fds.insert(4, sock.clone());
        fds.insert(5, sock); // dup(4)
        let task = Rc::new(RefCell::new(Task {
            pid,
            name: if pid == 1 {
                "init".into()
            } else {
                format!("worker-{pid}")
            },
            parent: parent.clone(),
            children: Vec::new(),
            fds,
            memory,
            cwd: format!("/home/task{pid}").into(),
        }));
        if let Some(p) = parent.upgrade() {
            p.borrow_mut().children.push(task.clone());
        }
        tasks.insert(pid, task);
    }
    Ok(Sandbox {
        init: tasks[&1].clone(),
        tasks,
        stack,
        timers,
        memory: Some(mem),
    })
}

/// A digest of everything the graph holds that does not depend on time:
/// tasks, their tree, fd tables with sharing (descriptions numbered in
/// first-seen order), the netstack, the timers' names and periods.
fn graph_digest(sb: &Sandbox) -> String {
    let mut h = blake3::Hasher::new();
    let mut seen: HashMap<*const (), usize> = HashMap::new();
    let mut line = |s: String| {
        h.update(s.as_bytes());
        h.update(b"\n");
    };
    for (pid, t) in &sb.tasks {
        let t = t.borrow();
        let parent = t.parent.upgrade().map(|p| p.borrow().pid);
        let children: Vec<u32> = t.children.iter().map(|c| c.borrow().pid).collect();
        line(format!(
            "task {pid} {} parent {parent:?} children {children:?} cwd {} memory {:?}",
            t.name,
            t.cwd.display(),
            t.memory
        ));
        for (fd, d) in &t.fds {
            let n = seen.len();
            let id = *seen.entry(Rc::as_ptr(d) as *const ()).or_insert(n);
            line(format!("  fd {fd} -> #{id} {}", d.describe()));
        }
    }
    line(format!(
        "init is task 1: {}",
        Rc::ptr_eq(&sb.init, &sb.tasks[&1])
    ));
    for nic in &sb.stack.nics {
        line(format!("nic {nic:?}"));
    }
    for r in &sb.stack.routes {
        let shared = sb.stack.nics.iter().position(|n| Arc::ptr_eq(n, &r.nic));
        line(format!("route {}/{} via nic #{shared:?}", r.dest, r.prefix));
    }
    for (id, ep) in sb
        .stack
        .endpoints
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let back = ep
            .stack
            .upgrade()
            .is_some_and(|s| Arc::ptr_eq(&s, &sb.stack));
        line(format!("endpoint {id} back-pointer {back}"));
    }
    for t in &sb.timers.timers {
        line(format!("timer {} {:?}", t.name, t.period));
    }
    h.finalize().to_hex().to_string()
}

/// A checksum of every task's memory, read through the memory file (which
/// waits for pages still being restored).
fn memory_digest(sb: &Sandbox) -> Result<String, pgalloc::Error> {
    let mut h = blake3::Hasher::new();
    let mem = sb
        .memory
        .as_ref()
        .ok_or(pgalloc::Error::Corrupt("no memory".into()))?;
    for t in sb.tasks.values() {
        for &(start, end) in &t.borrow().memory {
            mem.with_slice(FileRange { start, end }, |s| {
                h.update(s);
            })?;
        }
    }
    Ok(h.finalize().to_hex().to_string())
}

// ---- checkpoint and restore -----------------------------------------------

const KEY: &[u8] = b"stateify sandbox demo key";

/// The checkpoint's name in its directory: `sandbox.state` and the pages
/// file it names (`statefile::write_pair`).
const NAME: &str = "sandbox";

/// The incremental checkpoint `demo` takes on `NAME`.
const DELTA: &str = "sandbox-1";

/// After the first checkpoint: every 100th page of the tasks' memory
/// rewritten (about 1%), init's working directory changed, and task 2 given
/// a new descriptor sharing task 3's socket. Returns the pages written,
/// and the tasks' pages in all.
fn change(sb: &Sandbox) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let mem = sb.memory.as_ref().ok_or("the sandbox has no memory file")?;
    let (mut pages, mut all) = (0, 0);
    for t in sb.tasks.values() {
        for &(start, end) in &t.borrow().memory {
            all += (end - start) / PAGE_SIZE;
            let mut at = start + 37 * PAGE_SIZE;
            while at < end {
                let page = FileRange {
                    start: at,
                    end: at + PAGE_SIZE,
                };
                mem.with_slice_mut(page, |s| fill_page(s, at ^ 0xde17a))?;
                pages += 1;
                at += 100 * PAGE_SIZE;
            }
        }
    }
    sb.init.borrow_mut().cwd = "/srv/after-the-first-checkpoint".into();
    let sock = sb.tasks[&3].borrow().fds[&4].clone();
    sb.tasks[&2].borrow_mut().fds.insert(9, sock);
    Ok((pages, all))
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

fn gbps(b: u64, d: Duration) -> f64 {
    b as f64 / d.as_secs_f64().max(1e-9) / 1e9
}

/// Writes the checkpoint crash-consistently (`statefile::write_pair`): the
/// pages file (on a second thread) and the statefile with the graph and the
/// page metadata, which names the pages file; a kill at any moment leaves
/// the previous checkpoint or this one. The statefile's metadata also
/// records the graph and memory digests, which a restore checks.
///
/// With a `parent` (another checkpoint of this sandbox in `dir`, the last
/// one taken), the checkpoint is incremental: its pages file holds only the
/// pages changed since, and its metadata names the parent.
fn checkpoint(
    sb: &Sandbox,
    dir: &Path,
    name: &str,
    parent: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let (graph, pages) = statefile::write_pair(dir, name, |state_out, pages_out, pages_name| {
        write_checkpoint(sb, state_out, pages_out, pages_name, parent)
    })?;
    let took = t.elapsed();
    let p = statefile::find_pair(dir, name)?;
    let state_len = std::fs::metadata(&p.state)?.len();
    report_checkpoint(&graph, &pages, state_len, took);
    println!(
        "            files: {} ({} bytes, keyed MAC), {} ({:.1} MiB)",
        p.state.display(),
        state_len,
        p.pages.display(),
        mib(std::fs::metadata(&p.pages)?.len())
    );
    Ok(())
}

/// Writes the checkpoint into an object store (`stateify_store`): the two
/// files stream out as multipart uploads, and the manifest written last
/// makes the checkpoint visible.
fn checkpoint_to_store(sb: &Sandbox, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = stateify_store::Store::open(url)?;
    let t = Instant::now();
    let ((graph, pages), manifest) =
        store.write_checkpoint(NAME, |state_out, pages_out, pages_name| {
            write_checkpoint(sb, state_out, pages_out, pages_name, None)
        })?;
    let took = t.elapsed();
    report_checkpoint(&graph, &pages, manifest.state.size, took);
    println!(
        "            objects in {url}: {}.manifest, {} ({} bytes, keyed MAC), {} ({:.1} MiB)",
        NAME,
        manifest.state.name,
        manifest.state.size,
        manifest.pages.name,
        mib(manifest.pages.size)
    );
    Ok(())
}

/// The checkpoint's bytes: the statefile into `state_out`, the pages into
/// `pages_out` (on a second thread), the pages file's name in the
/// statefile's metadata, and the parent's name for an incremental one.
fn write_checkpoint(
    sb: &Sandbox,
    state_out: &mut dyn Write,
    pages_out: &mut (dyn Write + Send),
    pages_name: &str,
    parent: Option<&str>,
) -> Result<(stateify::SaveStats, pgalloc::SaveStats), Box<dyn std::error::Error>> {
    let mem = sb.memory.as_ref().ok_or("the sandbox has no memory file")?;
    let mut page_meta = Vec::new();
    let mut meta = BTreeMap::from([
        ("app".to_string(), "stateify sandbox demo".to_string()),
        (statefile::PAGES_KEY.to_string(), pages_name.to_string()),
        ("graph_digest".to_string(), graph_digest(sb)),
    ]);
    if let Some(p) = parent {
        meta.insert(statefile::PARENT_KEY.to_string(), p.to_string());
    }
    let opts = SaveOpts {
        incremental: parent.is_some(),
        ..SaveOpts::default()
    };
    let mut w = statefile::Writer::new(state_out, Some(KEY), &meta)?;
    let (graph, pages) = std::thread::scope(|s| {
        let pages = s.spawn(|| mem.save_to(&mut page_meta, Some(pages_out), &opts));
        let graph = stateify::save(&mut w, sb);
        let pages = pages.join().map_err(|_| "the page saver panicked")?;
        Ok::<_, Box<dyn std::error::Error>>((graph?, pages?))
    })?;
    w.write_all(&page_meta)?;
    // The memory's digest, read after the save (reading pages never
    // touched would commit them: the save's scan finds them holes).
    stateify::save(&mut w, &memory_digest(sb)?)?;
    w.finish()?;
    Ok((graph, pages))
}

fn report_checkpoint(
    graph: &stateify::SaveStats,
    pages: &pgalloc::SaveStats,
    state_len: u64,
    took: Duration,
) {
    if pages.layer > 0 {
        println!(
            "incremental checkpoint (delta {} on the last one, changes found by {:?}): graph of {} objects, {} bytes; pages {:.2} MiB written of {:.2} MiB changed, {:.1} MiB allocated; {:.1?}",
            pages.layer,
            pages.tracking,
            graph.objects,
            graph.bytes,
            mib(pages.bytes_written),
            mib(pages.changed_bytes),
            mib(pages.allocated_bytes),
            took,
        );
        return;
    }
    println!(
        "checkpoint: graph of {} objects, {} bytes; pages {:.1} MiB written of {:.1} MiB allocated ({:.1} MiB of zero pages skipped, {:.1} MiB never touched); {:.1?}, {:.2} GB/s",
        graph.objects,
        graph.bytes,
        mib(pages.bytes_written),
        mib(pages.allocated_bytes),
        mib(pages.zero_bytes),
        mib(pages.allocated_bytes - pages.bytes_scanned),
        took,
        gbps(pages.bytes_written + state_len, took),
    );
}

struct Expect {
    graph: Option<String>,
    memory: Option<String>,
    ports: Vec<u16>,
}

/// Where a checkpoint is: a local directory and its name there, or an
/// object store's URL.
enum Location {
    Dir(PathBuf, String),
    Store(String),
}

/// The statefile (streamed), the pages (read at offsets), the load options
/// that suit them, how each is named in messages, and the checkpoints below
/// an incremental one (oldest first).
type Opened = (
    Box<dyn std::io::Read>,
    Arc<dyn PageSource>,
    LoadOpts,
    String,
    String,
    Vec<statefile::Pair>,
);

fn open(from: &Location, eager: bool) -> Result<Opened, Box<dyn std::error::Error>> {
    Ok(match from {
        Location::Dir(dir, name) => {
            let mut chain =
                statefile::find_chain(dir, name).map_err(|e| format!("{}: {e}", dir.display()))?;
            let p = chain.pop().ok_or("an empty chain")?;
            let state = File::open(&p.state).map_err(|e| format!("{}: {e}", p.state.display()))?;
            let pages = File::open(&p.pages).map_err(|e| format!("{}: {e}", p.pages.display()))?;
            let opts = LoadOpts {
                background: !eager,
                ..LoadOpts::default()
            };
            (
                Box::new(state),
                Arc::new(pages),
                opts,
                p.state.display().to_string(),
                p.pages.display().to_string(),
                chain,
            )
        }
        Location::Store(url) => {
            let cp = stateify_store::Store::open(url)?.open_checkpoint(NAME)?;
            let pages = cp.pages_source()?;
            let opts = pages.load_opts(!eager);
            let (m, store) = (cp.manifest(), cp.store());
            let labels = (
                store.object_url(&m.state.name),
                store.object_url(&m.pages.name),
            );
            (
                Box::new(cp.state_reader()?),
                Arc::new(pages),
                opts,
                labels.0,
                labels.1,
                Vec::new(),
            )
        }
    })
}

/// The next record of `r`, a graph record, header included, as bytes.
/// The buffer grows with what is read, so a lying length cannot make it
/// allocate more than the stream holds.
fn read_graph_record(r: &mut impl std::io::BufRead) -> Result<Vec<u8>, stateify::Error> {
    use std::io::Read;
    let (len, object) = stateify::read_header(&mut *r)?;
    if !object {
        return Err(stateify::Error::custom(format!(
            "expected a graph record, found a raw record of {len} bytes"
        )));
    }
    let mut bytes = Vec::new();
    stateify::write_header(&mut bytes, len, true)?;
    let head = bytes.len();
    r.take(len).read_to_end(&mut bytes)?;
    if (bytes.len() - head) as u64 != len {
        return Err(stateify::Error::custom(format!(
            "truncated: the graph record holds {} of its {len} bytes",
            bytes.len() - head
        )));
    }
    Ok(bytes)
}

/// Restores the sandbox from `from` and checks it against `expect`.
///
/// The whole statefile is read and checked (its MAC, its end chunk) and the
/// pages file opened and matched to it before the graph is decoded, so a
/// damaged checkpoint fails before any load hook runs.
fn restore(
    from: &Location,
    eager: bool,
    expect: &Expect,
) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let (state, pages, opts, state_name, pages_name, below) = open(from, eager)?;
    let mut r = statefile::Reader::new(BufReader::new(state), Some(KEY))
        .map_err(|e| format!("{state_name}: {e}"))?;
    // What this checkpoint saved, unless the caller says otherwise.
    let recorded = |key: &str| r.metadata().get(key).cloned();
    let expect = Expect {
        graph: expect.graph.clone().or_else(|| recorded("graph_digest")),
        memory: expect.memory.clone(),
        ports: expect.ports.clone(),
    };
    // The graph record's bytes, decoded only once the whole statefile has
    // been read and its end chunk checked: decoding runs the load hooks,
    // which re-bind ports and start timers, and a damaged checkpoint must
    // fail before any of that happens.
    let graph =
        read_graph_record(&mut r).map_err(|e| format!("{state_name}: object graph: {e}"))?;
    // The page metadata of each checkpoint below, after its graph.
    let mut lower = Vec::new();
    for p in &below {
        let at = |e: &dyn std::fmt::Display| format!("{}: {e}", p.state.display());
        let file: Box<dyn std::io::Read> = Box::new(File::open(&p.state).map_err(|e| at(&e))?);
        let mut rd = statefile::Reader::new(BufReader::new(file), Some(KEY)).map_err(|e| at(&e))?;
        let (len, _) = stateify::read_header(&mut rd).map_err(|e| at(&e))?;
        stateify::skip_record(&mut rd, len).map_err(|e| at(&e))?;
        let pages = File::open(&p.pages).map_err(|e| format!("{}: {e}", p.pages.display()))?;
        lower.push((rd, Arc::new(pages) as Arc<dyn PageSource>));
    }
    let layers = lower
        .iter_mut()
        .map(|(rd, p)| (rd, p.clone()))
        .chain(std::iter::once((&mut r, pages)));
    let (mem, loaded) =
        MemoryFile::load_chain(layers, &opts).map_err(|e| format!("{pages_name}: pages: {e}"))?;
    if loaded.layers > 1 {
        println!(
            "restore: memory from a chain of {} checkpoints ({}), each page from the newest that holds it",
            loaded.layers,
            below
                .iter()
                .map(|p| p.state.display().to_string())
                .chain([state_name.clone()])
                .collect::<Vec<_>>()
                .join(" <- ")
        );
    }
    // The memory digest the checkpoint recorded, unless the caller gave one.
    let recorded: String =
        stateify::load(&mut r).map_err(|e| format!("{state_name}: memory digest: {e}"))?;
    let expect = Expect {
        memory: expect.memory.or(Some(recorded)),
        ..expect
    };
    // The rest of the statefile: its end chunk proves nothing was cut off.
    r.finish().map_err(|e| format!("{state_name}: {e}"))?;
    let checked = t.elapsed();
    let mut res = stateify::Resources::new();
    res.insert(ClockResource(SystemClock::shared()));
    let mut sb: Sandbox = stateify::load_with(&graph[..], &mut res)
        .map_err(|e| format!("{state_name}: object graph: {e}"))?;
    let graph_time = t.elapsed() - checked;
    sb.memory = Some(mem);
    let runnable = t.elapsed();
    println!(
        "restore ({}, pid {}): runnable after {:.1?} (graph {:.1?}, listeners re-bound on {:?})",
        if eager {
            "eager"
        } else {
            "pages in the background"
        },
        std::process::id(),
        runnable,
        graph_time,
        sb.stack.listening_ports(),
    );

    // The checks.
    let graph = graph_digest(&sb);
    check(
        "graph digest",
        expect.graph.as_deref().is_none_or(|g| g == graph),
        &graph,
    )?;
    let t = Instant::now();
    let mem = sb.memory.as_ref().ok_or("no memory")?;
    // Reading all memory waits for the background restore: show its
    // progress (on a terminal only).
    let finished = std::sync::atomic::AtomicBool::new(false);
    let memory = std::thread::scope(|s| {
        s.spawn(|| show_restore_progress(mem, &finished));
        let m = memory_digest(&sb);
        finished.store(true, std::sync::atomic::Ordering::Release);
        m
    })?;
    mem.await_all()?;
    if let Some(pr) = mem.restore_progress() {
        println!(
            "            pages: {:.1} MiB loaded at {:.2} GB/s; {} accesses waited ({:.1?} in all, longest {:.1?})",
            mib(pr.bytes_loaded),
            pr.mb_per_s() / 1e3,
            pr.waiters_served,
            pr.time_waited,
            pr.longest_wait,
        );
    }
    check(
        &format!("memory checksum after {:.1?}", t.elapsed()),
        expect.memory.as_deref().is_none_or(|m| m == memory),
        &memory,
    )?;
    for &port in &expect.ports {
        // The count of connections served came back with the endpoint.
        let before = sb
            .stack
            .ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&port)
            .and_then(|ep| ep.upgrade())
            .map(|ep| ep.served.load(std::sync::atomic::Ordering::Acquire))
            .ok_or(format!("port {port} is not listening after the restore"))?;
        let reply = netstack::call(port).map_err(|e| format!("connecting to port {port}: {e}"))?;
        check(
            &format!("port {port} re-bound and serving: {reply:?}"),
            reply == netstack::greeting(port, before + 1),
            &reply,
        )?;
    }
    let t = Instant::now();
    let mut fired = Vec::new();
    while !fired.iter().any(|n| n == "alarm") && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
        fired.extend(sb.timers.poll());
    }
    let ticks = fired.iter().filter(|n| *n == "tick").count();
    check(
        &format!(
            "timers: alarm fired {:.0?} after restore, tick {ticks} times",
            t.elapsed()
        ),
        fired.iter().any(|n| n == "alarm") && ticks > 0,
        "",
    )?;
    sb.stack.shutdown();
    Ok(())
}

/// A progress bar of the background page restore, until it is done or
/// `finished` is set; drawn to stderr when it is a terminal.
fn show_restore_progress(mem: &MemoryFile, finished: &std::sync::atomic::AtomicBool) {
    let Some(p) = mem.restore_progress() else {
        return;
    };
    let bar = indicatif::ProgressBar::new(p.bytes_total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "restoring pages [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    while let Some(p) = mem.restore_progress() {
        bar.set_position(p.bytes_loaded);
        if p.done || finished.load(std::sync::atomic::Ordering::Acquire) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bar.finish_and_clear();
}

fn check(what: &str, ok: bool, detail: &str) -> Result<(), String> {
    if ok {
        println!("  ok  {what}");
        Ok(())
    } else {
        Err(format!("check failed: {what} ({detail})"))
    }
}

// ---- command line ------------------------------------------------------------

struct Args {
    cmd: String,
    dir: Option<PathBuf>,
    /// The checkpoint to restore in `--dir` (default `sandbox`).
    name: Option<String>,
    /// An object store's URL: `migrate --to`, `restore --from`.
    url: Option<String>,
    memory_mib: u64,
    eager: bool,
    expect: Expect,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().unwrap_or_else(|| "demo".into());
    let mut a = Args {
        cmd,
        dir: None,
        name: None,
        url: None,
        memory_mib: 256,
        eager: false,
        expect: Expect {
            graph: None,
            memory: None,
            ports: Vec::new(),
        },
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => a.dir = Some(value()?.into()),
            "--name" => a.name = Some(value()?),
            "--to" | "--from" => a.url = Some(value()?),
            "--memory-mib" => {
                a.memory_mib = value()?.parse().map_err(|e| format!("--memory-mib: {e}"))?
            }
            "--eager" => a.eager = true,
            "--expect-graph" => a.expect.graph = Some(value()?),
            "--expect-memory" => a.expect.memory = Some(value()?),
            "--ports" => {
                a.expect.ports = value()?
                    .split(',')
                    .map(|p| p.parse().map_err(|e| format!("--ports: {e}")))
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    match args.cmd.as_str() {
        "demo" | "checkpoint" | "migrate" => {
            let tmp;
            let to = match (&args.dir, &args.url) {
                (_, Some(url)) if args.cmd == "migrate" => Location::Store(url.clone()),
                _ if args.cmd == "migrate" => return Err("migrate needs --to URL".into()),
                (Some(d), _) => {
                    std::fs::create_dir_all(d)?;
                    Location::Dir(d.clone(), NAME.into())
                }
                (None, _) if args.cmd == "demo" => {
                    tmp = tempfile::tempdir()?;
                    Location::Dir(tmp.path().to_path_buf(), NAME.into())
                }
                (None, _) => return Err("checkpoint needs --dir".into()),
            };
            let sb = build(args.memory_mib)?;
            let port = sb.stack.listening_ports()[0];
            let reply = netstack::call(port)?;
            println!("sandbox: {TASKS} tasks, {} MiB of memory, listening on {:?}; a client got {reply:?}", args.memory_mib, sb.stack.listening_ports());
            match &to {
                Location::Dir(dir, name) => {
                    checkpoint(&sb, dir, name, None)?;
                    if args.cmd == "demo" {
                        let (changed, all) = change(&sb)?;
                        println!(
                            "changed: {changed} of {all} pages of memory ({:.1}%), init's working directory, a descriptor of task 2",
                            100.0 * changed as f64 / all.max(1) as f64
                        );
                        checkpoint(&sb, dir, DELTA, Some(name))?;
                    }
                }
                Location::Store(url) => checkpoint_to_store(&sb, url)?,
            }
            let graph = graph_digest(&sb);
            let memory = memory_digest(&sb)?;
            let ports: Vec<String> = sb
                .stack
                .listening_ports()
                .iter()
                .map(|p| p.to_string())
                .collect();
            // The sandbox goes away: its ports are free for the restore.
            sb.stack.shutdown();
            drop(sb);
            let mut restore = Command::new(std::env::current_exe()?);
            match &to {
                Location::Dir(dir, name) => {
                    let top = if args.cmd == "demo" { DELTA } else { name };
                    restore
                        .arg("restore")
                        .arg("--dir")
                        .arg(dir)
                        .args(["--name", top])
                }
                Location::Store(url) => restore.args(["restore", "--from", url]),
            };
            restore.args([
                "--expect-graph",
                &graph,
                "--expect-memory",
                &memory,
                "--ports",
                &ports.join(","),
            ]);
            if args.eager {
                restore.arg("--eager");
            }
            if args.cmd == "checkpoint" {
                println!("restore with: {restore:?}");
                return Ok(());
            }
            let status = restore.status()?;
            if !status.success() {
                return Err(format!("the restore process failed ({status})").into());
            }
            println!("sandbox restored in another process: OK");
            Ok(())
        }
        "restore" => {
            let from = match (args.dir, args.url) {
                (_, Some(url)) => Location::Store(url),
                (Some(dir), None) => Location::Dir(dir, args.name.unwrap_or_else(|| NAME.into())),
                (None, None) => return Err("restore needs --dir DIR or --from URL".into()),
            };
            restore(&from, args.eager, &args.expect)
        }
        other => {
            Err(format!("unknown command {other} (demo, checkpoint, migrate, restore)").into())
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox: {e}");
            ExitCode::from(2)
        }
    }
}
