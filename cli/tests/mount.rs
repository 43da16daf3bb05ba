//! `stateify mount` through a real FUSE mount: the corpus sandbox
//! checkpoint (keyed statefile and its pages file) read with `find`, `cat`
//! and `readlink`; `diff -r` of two mounted checkpoints against the CLI's
//! `diff`; refusals at mount; EIO on a damaged page with the mount staying
//! up; and a clean unmount on SIGTERM.
//!
//! Needs `/dev/fuse` and the right to mount (CI runs as root); each test
//! prints why and passes where that is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use stateify::value::{decode, Value};
use stateify_tests::mount::{fuse_usable, is_mounted, Mounted};

const KEY: &[u8] = b"stateify golden corpus key";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_stateify"))
}

/// A scratch directory, or `None` (the test passes, the reason printed)
/// where FUSE cannot be used.
fn scratch() -> Option<tempfile::TempDir> {
    fuse_usable().then(|| tempfile::tempdir().unwrap())
}

/// The corpus key, as a key file in `tmp`.
fn key_file(tmp: &tempfile::TempDir) -> PathBuf {
    let key = tmp.path().join("key");
    std::fs::write(&key, KEY).unwrap();
    key
}

fn corpus(name: &str) -> PathBuf {
    stateify_tests::golden_dir().join("v6").join(name)
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// The entries the layout gives a value: itself, a `.type` per directory,
/// its children; a reference is one link (its object is counted under
/// `/objects`).
fn entries(v: &Value<'_>) -> usize {
    match v {
        Value::Some(x) | Value::Dyn { value: x, .. } => entries(x),
        Value::Variant { value, .. } if **value != Value::Unit => entries(value),
        Value::Object { .. } | Value::Ref(_) | Value::Weak(_) | Value::WeakDead => 1,
        Value::Struct { .. } | Value::Seq(_) | Value::Tuple(_) | Value::Map(_) => {
            2 + v.children().iter().map(|(_, c)| entries(c)).sum::<usize>()
        }
        _ => 1,
    }
}

/// Every shared object's value in a decoded graph, by id.
fn objects<'a, 'de>(v: &'a Value<'de>, out: &mut BTreeMap<u64, &'a Value<'de>>) {
    match v {
        Value::Object { id, value, .. } => {
            out.insert(*id, value);
            objects(value, out);
        }
        Value::Some(x) | Value::Weak(x) | Value::Dyn { value: x, .. } => objects(x, out),
        Value::Variant { value, .. } => objects(value, out),
        _ => {
            for (_, c) in v.children() {
                objects(c, out);
            }
        }
    }
}

#[test]
fn the_sandbox_checkpoint_as_files() {
    let Some(tmp) = scratch() else { return };
    let key = key_file(&tmp);
    let state = corpus("sandbox.state");
    let pages = corpus("sandbox.pages");
    let mut m = Mounted::start(
        bin(),
        &[
            "--key-file",
            key.to_str().unwrap(),
            "mount",
            "--pages",
            pages.to_str().unwrap(),
            state.to_str().unwrap(),
        ],
        &tmp.path().join("mnt"),
    );
    assert!(m.banner.contains("2 records"), "{}", m.banner);

    // `find` sees exactly the layout of the decoded graphs.
    let mut want = 1 + 1 + 1 + 1; // the root, /objects, /objects/0, /metadata
    let mut inp = stateify_cli::input::Input::open(&state, Some(KEY)).unwrap();
    let meta = inp.metadata();
    want += meta.len();
    while let Some(r) = inp.next_record().unwrap() {
        let body = r.body.unwrap();
        let g = decode(&body, 4096).unwrap();
        want += entries(&g.root);
        let mut objs = BTreeMap::new();
        objects(&g.root, &mut objs);
        for d in &g.deferred {
            objects(d, &mut objs);
        }
        want += objs.values().map(|v| entries(v)).sum::<usize>();
    }
    want += 1 + 4; // /pages and its four segments
    let found = sh(&format!("find {} | wc -l", m.dir.display()));
    assert_eq!(found.trim(), want.to_string());

    // Values, types, links.
    let read = |p: &str| std::fs::read_to_string(m.path(p)).unwrap();
    assert_eq!(read("/0/.type"), "sandbox::Sandbox\n");
    assert_eq!(read("/metadata/app"), "stateify golden sandbox\n");
    let init = std::fs::read_link(m.path("/0/init")).unwrap();
    assert_eq!(init, Path::new("../objects/0/11"));
    assert_eq!(read("/0/init/name"), "init\n", "read through the link");
    assert_eq!(read("/0/init/cwd"), "/home/task1\n");
    assert_eq!(read("/0/init/pid"), "1\n");
    // A link deeper down climbs back to the root.
    let fd = std::fs::read_link(m.path("/objects/0/11/fds/0")).unwrap();
    assert!(fd.starts_with("../../../../objects/0"), "{fd:?}");
    assert!(std::fs::read_dir(m.path("/objects/0/11/fds/0")).is_ok());
    let ty = xattr(&m.path("/0/tasks"));
    assert_eq!(ty, read("/0/tasks/.type").trim_end());

    // The page segments read as the memory saved (digests from the corpus).
    assert_eq!(check_segments(&m, "sandbox.expect"), 4);

    assert!(m.stop().success());
    assert!(!is_mounted(&m.dir), "a stale mount after SIGTERM");
}

/// Reads every segment the corpus entry's sidecar lists from `/pages` and
/// checks its BLAKE3; returns how many.
fn check_segments(m: &Mounted, expect: &str) -> usize {
    let expect = std::fs::read_to_string(corpus(expect)).unwrap();
    let mut checked = 0;
    for line in expect.lines().filter(|l| l.starts_with("segment ")) {
        let w: Vec<&str> = line.split(' ').collect();
        let (start, end) = w[1].split_once("..").unwrap();
        let name = format!("{}-{}", &start[2..], &end[2..]);
        let bytes = std::fs::read(m.path(&format!("/pages/{name}"))).unwrap();
        let got = blake3::hash(&bytes);
        assert_eq!(got.to_hex().as_str(), *w.last().unwrap(), "{name}");
        checked += 1;
    }
    let listed = std::fs::read_dir(m.path("/pages")).unwrap().count();
    assert_eq!(listed, checked, "segments listed");
    checked
}

#[test]
fn pages_saved_inline_and_in_a_pages_file_read_as_the_memory() {
    let Some(tmp) = scratch() else { return };
    let inline = corpus("pages-inline.stream");
    let m = Mounted::start(
        bin(),
        &["mount", inline.to_str().unwrap()],
        &tmp.path().join("a"),
    );
    assert_eq!(check_segments(&m, "pages-inline.expect"), 5);
    // The raw records after the metadata are the blocks, as files too.
    let stream = std::fs::read(&inline).unwrap();
    let (mut rest, mut raw) = (&stream[..], 0);
    for i in 0.. {
        if rest.is_empty() {
            break;
        }
        let (len, object, h) = stateify::decode_header(rest).unwrap();
        let body = &rest[h..h + len as usize];
        if !object {
            assert_eq!(
                std::fs::read(m.path(&format!("/{i}"))).unwrap(),
                body,
                "/{i}"
            );
            raw += 1;
        }
        rest = &rest[h + len as usize..];
    }
    assert!(raw >= 2, "{raw} raw records");
    let (meta, pages) = (corpus("pages.meta"), corpus("pages.pages"));
    let args = [
        "mount",
        "--pages",
        pages.to_str().unwrap(),
        meta.to_str().unwrap(),
    ];
    let m = Mounted::start(bin(), &args, &tmp.path().join("b"));
    assert_eq!(check_segments(&m, "pages-file.expect"), 5);
}

fn xattr(path: &Path) -> String {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let name = c"user.stateify.type";
    let mut buf = [0u8; 256];
    // SAFETY: both strings are NUL-terminated and `buf` is writable for its
    // length.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert!(n >= 0, "getxattr: {}", std::io::Error::last_os_error());
    String::from_utf8(buf[..n as usize].to_vec()).unwrap()
}

/// A checkpoint of plain data (no shared objects: `diff -r` shows each
/// difference at the one path the CLI's `diff` gives it).
fn data(v: u64, extra: bool) -> Vec<u8> {
    let mut m = BTreeMap::from([("kept".to_string(), 1u64), ("changed".to_string(), v)]);
    if extra {
        m.insert("added/key".into(), 9);
    }
    let list: Vec<String> = (0..3 + extra as usize)
        .map(|i| format!("item {i}"))
        .collect();
    stateify::to_vec(&(m, list, "same".to_string())).unwrap()
}

#[test]
fn diff_r_of_two_mounts_matches_the_cli_diff() {
    let Some(tmp) = scratch() else { return };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::write(&a, data(2, false)).unwrap();
    std::fs::write(&b, data(3, true)).unwrap();
    let ma = Mounted::start(
        bin(),
        &["mount", a.to_str().unwrap()],
        &tmp.path().join("ma"),
    );
    let mb = Mounted::start(
        bin(),
        &["mount", b.to_str().unwrap()],
        &tmp.path().join("mb"),
    );
    let out = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(&ma.dir)
        .arg(&mb.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let (pa, pb) = (ma.dir.to_str().unwrap(), mb.dir.to_str().unwrap());
    let mut by_mount: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Only in ") {
            let (dir, name) = rest.split_once(": ").unwrap();
            let dir = dir.strip_prefix(pa).or(dir.strip_prefix(pb)).unwrap();
            // The escaped file name is the CLI's path component unescaped.
            by_mount.push(format!("{dir}/{}", name.replace("%2F", "/")));
        } else if line.starts_with("diff ") {
            let last = line.rsplit(' ').next().unwrap();
            by_mount.push(last.strip_prefix(pb).unwrap().to_string());
        }
    }
    by_mount.sort();
    let cli = Command::new(bin())
        .arg("diff")
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(cli.status.code(), Some(1));
    let mut by_cli: Vec<String> = String::from_utf8(cli.stdout)
        .unwrap()
        .lines()
        .map(|l| l[2..].split_once(": ").unwrap().0.to_string())
        .collect();
    by_cli.sort();
    assert_eq!(by_mount, by_cli, "diff -r:\n{text}");
    assert_eq!(by_cli.len(), 3, "{by_cli:?}");
}

#[test]
fn damaged_checkpoints_are_refused_and_damaged_pages_give_eio() {
    let Some(tmp) = scratch() else { return };
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let key = key_file(&tmp);
    let run = |args: &[&str]| {
        let out = Command::new(bin()).args(args).arg(&mnt).output().unwrap();
        assert!(!is_mounted(&mnt));
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    // A flipped byte in the statefile: refused before anything is mounted.
    let mut state = std::fs::read(corpus("sandbox.state")).unwrap();
    let mid = state.len() / 2;
    state[mid] ^= 1;
    let bad = tmp.path().join("bad.state");
    std::fs::write(&bad, &state).unwrap();
    let (code, err) = run(&[
        "--key-file",
        key.to_str().unwrap(),
        "mount",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bad.state"), "{err}");
    // The wrong key.
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, b"nope").unwrap();
    let state = corpus("sandbox.state");
    let (code, err) = run(&[
        "--key-file",
        wrong.to_str().unwrap(),
        "mount",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    // A pages file of the wrong length.
    let mut pages = std::fs::read(corpus("sandbox.pages")).unwrap();
    let short = tmp.path().join("short.pages");
    std::fs::write(&short, &pages[..pages.len() - 4096]).unwrap();
    let args = |p: &Path| {
        vec![
            "--key-file".to_string(),
            key.to_str().unwrap().into(),
            "mount".into(),
            "--pages".into(),
            p.to_str().unwrap().into(),
            state.to_str().unwrap().into(),
        ]
    };
    let a: Vec<String> = args(&short);
    let (code, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("pages"), "{err}");

    // A flipped byte in one page: the mount comes up, the read of that
    // segment fails with EIO, and the rest still reads.
    let last = pages.len() - 1;
    pages[last] ^= 0x40;
    let flipped = tmp.path().join("flipped.pages");
    std::fs::write(&flipped, &pages).unwrap();
    let a: Vec<String> = args(&flipped);
    let m = Mounted::start(
        bin(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &mnt,
    );
    let e = std::fs::read(m.path("/pages/c000-10000")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert_eq!(
        std::fs::read(m.path("/pages/0-4000")).unwrap().len(),
        0x4000
    );
    assert_eq!(
        std::fs::read_to_string(m.path("/0/init/name")).unwrap(),
        "init\n"
    );
}

#[test]
fn without_fuse_access_the_mount_fails_clearly() {
    // An unprivileged user cannot open /dev/fuse (mode 0600 here).
    if !fuse_usable() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    std::fs::write(&file, data(1, false)).unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    for p in [tmp.path(), &file, &mnt] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin().to_str().unwrap(),
            "mount",
        ])
        .arg(&file)
        .arg(&mnt)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    if std::fs::metadata("/dev/fuse")
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o006 != 0)
        .unwrap_or(false)
    {
        eprintln!("skipped: /dev/fuse is open to everyone here");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("FUSE is not available: /dev/fuse"), "{err}");
}

#[test]
fn long_sequences_and_maps_list_whole_and_look_up_by_name() {
    let Some(tmp) = scratch() else { return };
    let file = tmp.path().join("big");
    // 5,000 strings (read by window from marks), a map of 700 entries
    // whose keys need escaping, and a packed array (a raw file).
    let list: Vec<String> = (0..5000).map(|i| format!("s{i}")).collect();
    let map: BTreeMap<String, u32> = (0..700).map(|i| (format!("k/{i}"), i)).collect();
    let packed: Vec<u32> = vec![1, 2, 0xdead_beef];
    std::fs::write(&file, stateify::to_vec(&(list, map, packed)).unwrap()).unwrap();
    let m = Mounted::start(
        bin(),
        &["mount", file.to_str().unwrap()],
        &tmp.path().join("mnt"),
    );
    let names = |p: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(m.path(p))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let mut want: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
    want.push(".type".into());
    want.sort();
    assert_eq!(names("/0/0"), want);
    let mut want: Vec<String> = (0..700).map(|i| format!("k%2F{i}")).collect();
    want.push(".type".into());
    want.sort();
    assert_eq!(names("/0/1"), want);
    let read = |p: &str| std::fs::read_to_string(m.path(p)).unwrap();
    for i in [0, 63, 64, 255, 256, 4095, 4999] {
        assert_eq!(read(&format!("/0/0/{i}")), format!("s{i}\n"));
    }
    assert_eq!(read("/0/1/k%2F699"), "699\n");
    assert_eq!(read("/0/0/.type"), "seq\n");
    // Only canonical indices in range name entries.
    for bad in ["5000", "007", "-1", "x"] {
        assert!(
            std::fs::metadata(m.path(&format!("/0/0/{bad}"))).is_err(),
            "{bad}"
        );
    }
    // Keys too long for a file name are cut (whole characters) and told
    // apart by position; a long string reads whole through many reads.
    let long_keys: BTreeMap<String, u8> = [("k".repeat(2000), 1), ("k".repeat(2001), 2)].into();
    let big = "x".repeat(3 << 20);
    let file2 = tmp.path().join("long");
    std::fs::write(&file2, stateify::to_vec(&(long_keys, big.clone())).unwrap()).unwrap();
    let m2 = Mounted::start(
        bin(),
        &["mount", file2.to_str().unwrap()],
        &tmp.path().join("mnt2"),
    );
    let keys: Vec<String> = std::fs::read_dir(m2.path("/0/0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != ".type")
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in &keys {
        assert!(k.len() <= 255 && k.starts_with("kkk"), "{k}");
        let v = std::fs::read_to_string(m2.path(&format!("/0/0/{k}"))).unwrap();
        assert!(v == "1\n" || v == "2\n", "{v}");
    }
    assert_eq!(
        std::fs::read_to_string(m2.path("/0/1")).unwrap(),
        big + "\n"
    );
    let raw = std::fs::read(m.path("/0/2")).unwrap();
    assert_eq!(
        raw,
        [1u32, 2, 0xdead_beef]
            .iter()
            .flat_map(|n| n.to_le_bytes())
            .collect::<Vec<_>>()
    );
}
