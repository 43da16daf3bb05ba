//! The `stateify` binary on checkpoints built with the examples' netstack
//! and timer wheel, as a plain record stream and as a keyed statefile, and
//! on hand-damaged files. Text and JSON outputs are insta snapshots.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use stateify_examples::netstack::Stack;
use stateify_examples::timers::{FakeClock, TimerWheel};

/// What the examples save: a stack (no real sockets, so the bytes do not
/// depend on ports), timers on a fake clock, and a raw page record.
fn checkpoint_records(seq: u32) -> Vec<u8> {
    let stack = Stack::new();
    stack.connected(40000, "10.0.0.9:80".parse().unwrap(), seq);
    stack.connected(40001, "10.0.0.7:443".parse().unwrap(), 77);
    let clock = FakeClock::starting_at(Duration::from_secs(5));
    let mut timers = TimerWheel::new(clock);
    timers.oneshot("alarm", Duration::from_millis(1500));
    timers.periodic("tick", Duration::from_millis(50));
    let mut out = Vec::new();
    stateify::save(&mut out, &stack).unwrap();
    stateify::save(&mut out, &timers).unwrap();
    stateify::write_header(&mut out, 4096, false).unwrap();
    out.extend(std::iter::repeat_n(0xa5u8, 4096));
    out
}

struct Files {
    _dir: tempfile::TempDir,
    stream: PathBuf,
    state: PathBuf,
    other: PathBuf,
    key: PathBuf,
    wrong_key: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("stream"), checkpoint_records(1000)).unwrap();
    std::fs::write(p("other"), checkpoint_records(1001)).unwrap();
    std::fs::write(p("key"), b"secret").unwrap();
    std::fs::write(p("wrong"), b"not the key").unwrap();
    let meta = BTreeMap::from([("app".to_string(), "cli test".to_string())]);
    let mut w = statefile::Writer::new(Vec::new(), Some(b"secret"), &meta).unwrap();
    w.write_all(&checkpoint_records(1000)).unwrap();
    std::fs::write(p("state"), w.finish().unwrap().0).unwrap();
    Files {
        stream: p("stream"),
        state: p("state"),
        other: p("other"),
        key: p("key"),
        wrong_key: p("wrong"),
        _dir: dir,
    }
}

/// Runs the binary: (exit code, stdout, stderr), with the temporary
/// directory and the statefile's timestamp masked.
fn run(args: &[&str], dir: &Path) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_stateify"))
        .args(args)
        .output()
        .unwrap();
    let mask = |s: &[u8]| {
        String::from_utf8_lossy(s)
            .replace(dir.to_str().unwrap(), "$DIR")
            .lines()
            .map(|l| {
                if l.contains("_timestamp") {
                    l.split("_timestamp").next().unwrap_or("").to_string() + "_timestamp <masked>"
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    (
        o.status.code().unwrap_or(-1),
        mask(&o.stdout),
        mask(&o.stderr),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn text_outputs() {
    let f = files();
    let d = f._dir.path();
    let k = s(&f.key);
    for (name, args) in [
        ("info_stream", vec!["info", s(&f.stream)]),
        ("info_statefile", vec!["info", s(&f.state)]),
        ("print", vec!["print", s(&f.stream)]),
        ("ls_root", vec!["--key-file", k, "ls", "-l", s(&f.state)]),
        (
            "ls_endpoint",
            vec!["ls", "-l", s(&f.stream), "/0/endpoints/1"],
        ),
        ("cat_tcp", vec!["cat", s(&f.stream), "/0/endpoints/1/tcp"]),
        ("cat_route", vec!["cat", s(&f.stream), "/0/routes/0"]),
        ("stats", vec!["stats", s(&f.stream), "--top", "5"]),
        ("verify", vec!["--key-file", k, "verify", s(&f.state)]),
    ] {
        let (code, out, err) = run(&args, d);
        assert_eq!(code, 0, "{name}: {err}");
        insta::assert_snapshot!(name, out);
    }
}

#[test]
fn json_outputs() {
    let f = files();
    let d = f._dir.path();
    for (name, args) in [
        ("json_info", vec!["--json", "info", s(&f.stream)]),
        ("json_ls", vec!["--json", "ls", s(&f.stream), "/1"]),
        ("json_cat", vec!["--json", "cat", s(&f.stream), "/0/nics/1"]),
        (
            "json_stats",
            vec!["--json", "stats", s(&f.stream), "--top", "3"],
        ),
        (
            "json_diff",
            vec!["--json", "diff", s(&f.stream), s(&f.other)],
        ),
    ] {
        let (code, out, err) = run(&args, d);
        assert!(code == 0 || name == "json_diff", "{name}: {err}");
        let parsed: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        insta::assert_snapshot!(name, serde_json::to_string_pretty(&parsed).unwrap());
    }
}

#[test]
fn diff_exit_codes() {
    let f = files();
    let d = f._dir.path();
    let (code, out, _) = run(&["diff", s(&f.stream), s(&f.other)], d);
    assert_eq!(code, 1);
    insta::assert_snapshot!("diff", out);
    let (code, out, _) = run(&["diff", s(&f.stream), s(&f.stream)], d);
    assert_eq!((code, out.as_str()), (0, ""));
    // A statefile and the stream it holds are the same checkpoint.
    let (code, _, err) = run(
        &["--key-file", s(&f.key), "diff", s(&f.state), s(&f.stream)],
        d,
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn damaged_and_wrongly_keyed_files_exit_2_with_a_message() {
    let f = files();
    let d = f._dir.path();
    let good = std::fs::read(&f.state).unwrap();
    let bad = d.join("bad");
    let k = s(&f.key);
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let cases: Vec<(&str, Vec<u8>, Vec<&str>, &str)> = vec![
        (
            "flipped byte",
            flipped,
            vec!["--key-file", k, "verify"],
            "tampered",
        ),
        (
            "truncated",
            good[..good.len() - 20].to_vec(),
            vec!["--key-file", k, "verify"],
            "truncated",
        ),
        ("no key", good.clone(), vec!["print"], "pass --key-file"),
        (
            "wrong key",
            good.clone(),
            vec!["--key-file", s(&f.wrong_key), "print"],
            "wrong key",
        ),
        (
            "bad path",
            good.clone(),
            vec!["--key-file", k, "cat"],
            "no \"nope\"",
        ),
        ("empty", Vec::new(), vec!["print"], "not a checkpoint"),
    ];
    for (what, bytes, mut args, expect) in cases {
        std::fs::write(&bad, &bytes).unwrap();
        args.push(s(&bad));
        if what == "bad path" {
            args.push("/0/nope");
        }
        let (code, out, err) = run(&args, d);
        assert_eq!(code, 2, "{what}: {out} {err}");
        assert!(
            err.contains(expect),
            "{what}: expected {expect:?} in {err:?}"
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

/// A game whose shared room is written first under a player, then reached
/// again from the room list, where a user would look for it.
fn game(motd: &str) -> Vec<u8> {
    use std::cell::RefCell;
    use std::rc::Rc;
    #[derive(stateify::Stateify)]
    struct Room {
        motd: String,
    }
    #[derive(stateify::Stateify)]
    struct Player {
        name: String,
        room: Rc<RefCell<Room>>,
    }
    #[derive(stateify::Stateify)]
    struct Game {
        players: Vec<Player>,
        rooms: Vec<Rc<RefCell<Room>>>,
    }
    let lobby = Rc::new(RefCell::new(Room { motd: motd.into() }));
    let g = Game {
        players: vec![
            Player {
                name: "ann".into(),
                room: lobby.clone(),
            },
            Player {
                name: "bob".into(),
                room: lobby.clone(),
            },
        ],
        rooms: vec![lobby],
    };
    stateify::to_vec(&g).unwrap()
}

#[test]
fn first_hour_rough_edges() {
    let f = files();
    let d = f._dir.path();
    let p = |n: &str| d.join(n);
    std::fs::write(p("notes.txt"), b"just some text 18\n").unwrap();
    std::fs::write(p("key-nl"), b"secret\n").unwrap();
    std::fs::write(p("game-a"), game("welcome")).unwrap();
    std::fs::write(p("game-b"), game("closed tonight")).unwrap();
    let mut messages = String::new();
    for (what, args, code) in [
        // An unknown file is refused, not called a pages file.
        ("unknown file", vec!["info", s(&p("notes.txt"))], 2),
        // A key file with a newline gets a hint.
        (
            "key with a newline",
            vec!["--key-file", s(&p("key-nl")), "print", s(&f.state)],
            2,
        ),
        // A missing key file is named as the key file.
        (
            "missing key file",
            vec!["--key-file", s(&p("nokey")), "print", s(&f.state)],
            2,
        ),
        // A bad path keeps its record number.
        ("bad path", vec!["ls", s(&f.stream), "/0/endpoints/7"], 2),
        // diff says which file needs the key, and names a missing file once.
        (
            "diff without key",
            vec!["diff", s(&f.stream), s(&f.state)],
            2,
        ),
        (
            "diff missing file",
            vec!["diff", s(&f.stream), s(&p("nofile.state"))],
            2,
        ),
        // A change inside a shared object shows where the user reaches it.
        (
            "diff of a shared object",
            vec!["diff", s(&p("game-a")), s(&p("game-b"))],
            1,
        ),
        (
            "ls of one entry",
            vec!["ls", "-l", s(&p("game-a")), "/0"],
            0,
        ),
    ] {
        let (got, out, err) = run(&args, d);
        assert_eq!(got, code, "{what}: {out} {err}");
        messages.push_str(&format!("{what} (exit {got}):\n{out}{err}\n"));
    }
    insta::assert_snapshot!("first_hour", messages);
}
