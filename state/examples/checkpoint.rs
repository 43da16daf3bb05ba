//! The main job, for now: build a live object graph (shared `Rc`s, `Weak`
//! parent pointers, maps, a bulk buffer, a hook-restored counter), save it to
//! a checkpoint file, restore it **in a child process**, and print what came
//! back.
//!
//! `cargo run --release -p stateify --example checkpoint`

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::rc::{Rc, Weak};
use std::time::Instant;

use stateify::{AfterLoad, Error, LoadContext, Stateify};

/// A directory in a toy filesystem: children shared, parent weak.
#[derive(Stateify)]
struct Dir {
    name: String,
    parent: Weak<RefCell<Dir>>,
    children: Vec<Rc<RefCell<Dir>>>,
    files: HashMap<String, Rc<Vec<u8>>>,
}

/// The whole "program state".
#[derive(Stateify)]
#[state(after_load)]
struct World {
    root: Rc<RefCell<Dir>>,
    /// Every directory by path (shares the tree's nodes).
    index: HashMap<String, Rc<RefCell<Dir>>>,
    /// Application memory stand-in: saved as one packed array.
    heap: Vec<u8>,
    /// Not saved: rebuilt by `after_load` from the index.
    #[state(nosave)]
    dir_count: usize,
}

impl AfterLoad for World {
    fn after_load(&mut self, _: &mut LoadContext) -> Result<(), Error> {
        self.dir_count = self.index.len();
        Ok(())
    }
}

fn build() -> World {
    let root = Rc::new(RefCell::new(Dir {
        name: "/".into(),
        parent: Weak::new(),
        children: vec![],
        files: HashMap::new(),
    }));
    let mut index = HashMap::from([("/".to_string(), root.clone())]);
    let shared_blob = Rc::new(b"shared by every home directory".to_vec());
    for u in 0..1000 {
        let home = Rc::new(RefCell::new(Dir {
            name: format!("user{u}"),
            parent: Rc::downgrade(&root),
            children: vec![],
            files: HashMap::from([
                (".profile".to_string(), shared_blob.clone()),
                (
                    "notes.txt".to_string(),
                    Rc::new(format!("notes of {u}").into_bytes()),
                ),
            ]),
        }));
        root.borrow_mut().children.push(home.clone());
        index.insert(format!("/user{u}"), home);
    }
    let heap: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    World {
        dir_count: index.len(),
        root,
        index,
        heap,
    }
}

fn checksum(w: &World) -> u64 {
    w.heap.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

fn restore(path: &Path, expected_sum: &str) -> Result<(), Error> {
    let t = Instant::now();
    let file = std::fs::File::open(path)?;
    let w: World = stateify::load(BufReader::with_capacity(1 << 20, file))?;
    let elapsed = t.elapsed();
    let root = w.root.borrow();
    let home = root.children[7].borrow();
    let parent_ok = Rc::ptr_eq(
        &home
            .parent
            .upgrade()
            .ok_or_else(|| Error::custom("dead parent"))?,
        &w.root,
    );
    let shared_ok = Rc::ptr_eq(
        &home.files[".profile"],
        &root.children[8].borrow().files[".profile"],
    );
    let index_ok = Rc::ptr_eq(&w.index["/user7"], &root.children[7]);
    println!(
        "  [child pid {}] restored in {elapsed:.2?}",
        std::process::id()
    );
    println!("  dirs (counted by after_load): {}", w.dir_count);
    println!("  /user7 parent is / (Weak upgraded):  {parent_ok}");
    println!("  .profile shared across homes:        {shared_ok}");
    println!("  index and tree share nodes:          {index_ok}");
    println!("  heap checksum: {:016x}", checksum(&w));
    let sum_ok = format!("{:016x}", checksum(&w)) == expected_sum;
    println!("  heap checksum matches the parent's:  {sum_ok}");
    if parent_ok && shared_ok && index_ok && sum_ok && w.dir_count == 1001 {
        Ok(())
    } else {
        Err(Error::custom("restored graph differs"))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "restore" {
        return Ok(restore(Path::new(&args[2]), &args[3])?);
    }
    let world = build();
    let dir = std::env::temp_dir().join(format!("stateify-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("world.ckpt");
    let t = Instant::now();
    let mut out = BufWriter::new(std::fs::File::create(&path)?);
    let stats = stateify::save(&mut out, &world)?;
    out.flush()?;
    let elapsed = t.elapsed();
    println!(
        "[parent pid {}] saved {} ({} bytes, {} shared objects) in {elapsed:.2?}",
        std::process::id(),
        path.display(),
        stats.bytes,
        stats.objects
    );
    let sum = format!("{:016x}", checksum(&world));
    println!("  heap checksum: {sum}");
    let status = Command::new(std::env::current_exe()?)
        .arg("restore")
        .arg(&path)
        .arg(&sum)
        .status()?;
    std::fs::remove_dir_all(&dir)?;
    if !status.success() {
        return Err("restore in the child process failed".into());
    }
    println!("checkpoint restored in another process: OK");
    Ok(())
}
