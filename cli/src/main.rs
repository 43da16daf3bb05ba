//! `stateify`: inspect checkpoints — statefiles, plain record streams and
//! pages files. Exit codes: 0 success, 1 `diff` found differences, 2 an
//! unreadable, corrupt or wrongly keyed file (or a bad path).
//!
//! This file holds the arguments and what every command shares; the
//! commands are in `inspect` (info, verify), `browse` (print, ls, cat,
//! stats), `diff` and `mount`, over the path model of `paths` and the reading of
//! `stateify_cli::input`.

mod browse;
mod chain;
mod diff;
mod inspect;
mod mount;
mod paths;
mod remote;

use stateify_cli::input;
use stateify_cli::render;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use input::{Failure, Input, Result};
use serde_json::json;

/// Graphs nested deeper than this are refused (the tree is dropped
/// recursively).
const MAX_DEPTH: usize = 4096;

#[derive(Parser)]
#[command(
    name = "stateify",
    version,
    about = "Inspect stateify checkpoints",
    after_help = "FILE may be a URL: s3://BUCKET/PREFIX/NAME (also gs://, az://, file://), \
                  NAME a checkpoint written by stateify-store or any object. Credentials \
                  and endpoints come from the usual environment variables (AWS_ACCESS_KEY_ID, \
                  AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT, ...)."
)]
struct Cli {
    /// Output JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// The key of a keyed statefile (the file's bytes are the key).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Format, compression, chunks, sizes and metadata (no key needed).
    Info { file: PathBuf },
    /// Full integrity check: every MAC, every record, every graph.
    Verify { file: PathBuf },
    /// Every record: graphs with type and field names, raw records summarized.
    Print { file: PathBuf },
    /// The graph as a tree of paths: /RECORD/field/index/key...
    Ls {
        file: PathBuf,
        #[arg(default_value = "/")]
        path: String,
        /// With type and size.
        #[arg(short = 'l')]
        long: bool,
    },
    /// The value at a path.
    Cat { file: PathBuf, path: String },
    /// Per type: count, encoded bytes, share of the file.
    Stats {
        file: PathBuf,
        /// How many types to show.
        #[arg(long, default_value_t = 20)]
        top: usize,
    },
    /// Structural differences by path; exit code 1 when they differ.
    Diff { a: PathBuf, b: PathBuf },
    /// Write the chain of incremental checkpoints FILE ends as one full
    /// checkpoint NAME beside it (NAME.state and a new pages file).
    Squash { file: PathBuf, name: String },
    /// Mount the checkpoint read-only at MOUNTPOINT (FUSE) until
    /// interrupted or unmounted: records, objects, metadata, pages as files.
    Mount {
        file: PathBuf,
        mountpoint: PathBuf,
        /// The pages file, when the statefile does not name it.
        #[arg(long, value_name = "FILE")]
        pages: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(Failure(msg)) => {
            if cli.json {
                println!("{}", json!({ "error": msg }));
            }
            eprintln!("stateify: {msg}");
            ExitCode::from(2)
        }
    }
}

fn open(cli: &Cli, file: &Path) -> Result<Input> {
    let key = input::read_key(cli.key_file.as_deref())?;
    Input::open(file, key.as_deref())
}

fn at(file: &Path) -> impl Fn(Failure) -> Failure + '_ {
    move |Failure(m)| Failure(format!("{}: {m}", file.display()))
}

/// Runs `f` on `file` as a file on this machine (a URL's object fetched
/// first); errors name `file` as given.
fn on(file: &Path, f: impl FnOnce(&Path) -> Result<u8>) -> Result<u8> {
    let local = remote::local(file).map_err(at(file))?;
    f(&local.path).map_err(at(file))
}

fn run(cli: &Cli) -> Result<u8> {
    match &cli.cmd {
        Cmd::Info { file } => on(file, |f| inspect::info(cli, f)),
        Cmd::Verify { file } => on(file, |f| inspect::verify(cli, f)),
        Cmd::Print { file } => on(file, |f| browse::print(cli, f)),
        Cmd::Ls { file, path, long } => on(file, |f| browse::ls(cli, f, path, *long)),
        Cmd::Cat { file, path } => on(file, |f| browse::cat(cli, f, path)),
        Cmd::Stats { file, top } => on(file, |f| browse::stats(cli, f, *top)),
        Cmd::Squash { file, name } => chain::squash(cli, file, name).map_err(at(file)),
        Cmd::Diff { a, b } => {
            let (la, lb) = (
                remote::local(a).map_err(at(a))?,
                remote::local(b).map_err(at(b))?,
            );
            diff::diff(cli, &la.path, &lb.path)
        }
        Cmd::Mount {
            file,
            mountpoint,
            pages,
        } => mount::mount(cli, file, mountpoint, pages.as_deref()),
    }
}

fn emit(cli: &Cli, text: String, j: serde_json::Value) -> Result<u8> {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        print!("{text}");
    }
    Ok(0)
}

fn graph_error(r: &input::Record, e: stateify::Error) -> Failure {
    Failure(format!("record {} at byte {}: {e}", r.index, r.offset))
}
