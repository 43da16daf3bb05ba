//! A small sandbox for the corpus, in the shape of the main job's
//! (`examples/sandbox.rs`): tasks in a tree with `Weak` parents, fd tables
//! of shared trait objects, the examples' netstack and timer wheel, and a
//! `MemoryFile` of task memory saved beside the graph. It has no listening
//! sockets (a restore would re-bind a fixed port) and runs on a fake clock,
//! so loading it anywhere gives the same value. Frozen like `model`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use pgalloc::{AllocOpts, FileRange, MemoryFile, MemoryKind, PAGE_SIZE};
use stateify::{AsAny, Stateify};
use stateify_examples::netstack::{Endpoint, Stack};
use stateify_examples::timers::{FakeClock, TimerWheel};

use crate::corpus::BoxError;

pub trait FileDescription: AsAny {
    fn describe(&self) -> String;
}

#[derive(Stateify)]
#[state(type_name = "sandbox::Pipe")]
pub struct Pipe {
    pub buffer: RefCell<VecDeque<u8>>,
    pub readers: u32,
    pub writers: u32,
}

#[derive(Stateify)]
#[state(type_name = "sandbox::RegularFile")]
pub struct RegularFile {
    pub path: PathBuf,
    pub offset: RefCell<u64>,
    pub data: (u64, u64),
}

#[derive(Stateify)]
#[state(type_name = "sandbox::SocketFile")]
pub struct SocketFile {
    pub endpoint: Arc<Endpoint>,
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
    "sandbox::Pipe" => Pipe,
    "sandbox::RegularFile" => RegularFile,
    "sandbox::SocketFile" => SocketFile,
});

#[derive(Stateify)]
#[state(type_name = "sandbox::Task")]
pub struct Task {
    pub pid: u32,
    pub name: String,
    pub parent: Weak<RefCell<Task>>,
    pub children: Vec<Rc<RefCell<Task>>>,
    pub fds: BTreeMap<i32, Rc<dyn FileDescription>>,
    pub memory: Vec<(u64, u64)>,
    pub cwd: PathBuf,
}

#[derive(Stateify)]
#[state(type_name = "sandbox::Sandbox")]
pub struct Sandbox {
    pub stack: Arc<Stack>,
    pub timers: TimerWheel,
    pub init: Rc<RefCell<Task>>,
    pub tasks: BTreeMap<u32, Rc<RefCell<Task>>>,
}

pub const TASKS: u32 = 4;
const PAGES_PER_TASK: u64 = 4;

/// Deterministic page contents.
pub fn fill_page(page: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for w in page.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
    }
}

/// The sandbox and its memory: per task one page never touched, one
/// written with zeros, two with data.
pub fn build() -> Result<(Sandbox, MemoryFile), BoxError> {
    let mem = MemoryFile::new(Default::default())?;
    let stack = Stack::new();
    let clock = FakeClock::starting_at(Duration::from_secs(5));
    let mut timers = TimerWheel::new(clock.clone());
    timers.oneshot("alarm", Duration::from_millis(1500));
    timers.periodic("tick", Duration::from_millis(50));
    clock.advance(Duration::from_millis(20));

    let shared_pipe: Rc<dyn FileDescription> = Rc::new(Pipe {
        buffer: RefCell::new(b"queued".iter().copied().collect()),
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
        let kind = if pid % 2 == 0 {
            MemoryKind::Anonymous
        } else {
            MemoryKind::PageCache
        };
        let r = mem.allocate(PAGES_PER_TASK * PAGE_SIZE, AllocOpts { kind, memcg: pid })?;
        for p in 0..PAGES_PER_TASK {
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
        let mut fds: BTreeMap<i32, Rc<dyn FileDescription>> = BTreeMap::new();
        fds.insert(0, shared_pipe.clone());
        fds.insert(
            3,
            Rc::new(RegularFile {
                path: format!("/home/task{pid}/data").into(),
                offset: RefCell::new(pid as u64 * 100),
                data: (r.start, r.end),
            }),
        );
        let sock: Rc<dyn FileDescription> = Rc::new(SocketFile {
            endpoint: stack.connected(40000 + pid as u16, ([10, 0, 0, 9], 80).into(), pid * 1000),
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
            memory: vec![(r.start, r.end)],
            cwd: format!("/home/task{pid}").into(),
        }));
        if let Some(p) = parent.upgrade() {
            p.borrow_mut().children.push(task.clone());
        }
        tasks.insert(pid, task);
    }
    let sb = Sandbox {
        init: tasks[&1].clone(),
        tasks,
        stack,
        timers,
    };
    Ok((sb, mem))
}

/// Everything the graph holds, with sharing (descriptions numbered in
/// first-seen order) and the task memory read through `mem`.
pub fn describe(sb: &Sandbox, mem: &MemoryFile) -> Result<String, BoxError> {
    let mut out = String::new();
    let mut seen: HashMap<*const (), usize> = HashMap::new();
    for (pid, t) in &sb.tasks {
        let t = t.borrow();
        let parent = t.parent.upgrade().map(|p| p.borrow().pid);
        let children: Vec<u32> = t.children.iter().map(|c| c.borrow().pid).collect();
        out += &format!(
            "task {pid} {} parent {parent:?} children {children:?} cwd {} memory {:?}\n",
            t.name,
            t.cwd.display(),
            t.memory
        );
        for &(start, end) in &t.memory {
            let digest = mem.with_slice(FileRange { start, end }, blake3::hash)?;
            out += &format!("  memory {start:#x}..{end:#x} blake3 {}\n", digest.to_hex());
        }
        for (fd, d) in &t.fds {
            let n = seen.len();
            let id = *seen.entry(Rc::as_ptr(d) as *const ()).or_insert(n);
            out += &format!("  fd {fd} -> #{id} {}\n", d.describe());
        }
    }
    out += &format!(
        "init is task 1: {}\n",
        sb.tasks.get(&1).is_some_and(|t| Rc::ptr_eq(&sb.init, t))
    );
    for nic in &sb.stack.nics {
        out += &format!("nic {nic:?}\n");
    }
    for r in &sb.stack.routes {
        let shared = sb.stack.nics.iter().position(|n| Arc::ptr_eq(n, &r.nic));
        out += &format!("route {}/{} via nic #{shared:?}\n", r.dest, r.prefix);
    }
    let endpoints = sb.stack.endpoints.lock().unwrap_or_else(|e| e.into_inner());
    for (id, ep) in endpoints.iter() {
        let back = ep
            .stack
            .upgrade()
            .is_some_and(|s| Arc::ptr_eq(&s, &sb.stack));
        out += &format!("endpoint {id} back-pointer {back}\n");
    }
    for t in &sb.timers.timers {
        out += &format!(
            "timer {} period {:?} remaining {:?}\n",
            t.name,
            t.period,
            sb.timers.remaining(&t.name)
        );
    }
    Ok(out)
}
