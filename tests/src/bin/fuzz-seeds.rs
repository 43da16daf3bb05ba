//! `cargo run -p stateify-tests --bin fuzz-seeds`: writes the seed inputs
//! of every fuzz target under `fuzz/corpus/<target>/seed-*`, from the
//! newest compatibility corpus version (shaped the way each target reads
//! its input: see `stateify_tests::fuzz`). Seeds already there are
//! replaced; inputs the fuzzer found are left alone.

use std::path::Path;

use stateify_tests::fuzz::join;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let golden = stateify_tests::golden_dir();
    let newest = (1..)
        .map(|v| golden.join(format!("v{v}")))
        .take_while(|p| p.is_dir())
        .last()
        .ok_or("no corpus version")?;
    let read = |name: &str| std::fs::read(newest.join(name));
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for (i, g) in stateify_tests::fuzz::GRAPH_ENTRIES.iter().enumerate() {
        let bytes = read(&format!("{g}.graph"))?;
        let mut input = vec![i as u8];
        input.extend_from_slice(&bytes);
        seeds.push(("graph", g.to_string(), input));
        seeds.push(("pretty", g.to_string(), bytes));
    }
    for s in ["mixed.stream", "pages-inline.stream", "pages.meta"] {
        seeds.push(("records", s.into(), read(s)?));
        seeds.push(("pretty", s.into(), read(s)?));
    }
    for (s, keyed) in [
        ("statefile-none.state", false),
        ("statefile-keyed.state", true),
        ("statefile-lz4.state", true),
        ("statefile-zstd.state", false),
        ("statefile-zstd-keyed.state", true),
    ] {
        let mut input = vec![u8::from(keyed)];
        input.extend_from_slice(&read(s)?);
        seeds.push(("statefile", s.into(), input));
    }
    let mut inline = vec![0u8];
    inline.extend_from_slice(&read("pages-inline.stream")?);
    seeds.push(("pages", "inline".into(), inline));
    let mut file = vec![1u8];
    file.extend_from_slice(&join(&read("pages.meta")?, &read("pages.pages")?));
    seeds.push(("pages", "file".into(), file));
    let mut sandbox = vec![2u8];
    sandbox.extend_from_slice(&join(&read("sandbox.state")?, &read("sandbox.pages")?));
    seeds.push(("pages", "sandbox".into(), sandbox));
    for e in std::fs::read_dir(&newest)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x != "expect") {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            seeds.push(("cli", name, std::fs::read(&p)?));
        }
    }
    let mut total = 0;
    for (target, name, bytes) in &seeds {
        let dir = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
        total += bytes.len();
    }
    println!(
        "{} seeds, {total} bytes, from {}",
        seeds.len(),
        newest.display()
    );
    Ok(())
}
