//! The `stateify` CLI's reading of checkpoints, as a library: input
//! detection and record walking (`input`) and rendering (`render`), used by
//! the binary and by the fuzz target over the CLI's input surface.

pub mod input;
pub mod render;

/// Everything the CLI does with a file it is given, on `data`: detect its
/// kind, open it (a statefile without a key, then with `key`), walk every
/// record, decode each graph and render it as text and JSON, and check the
/// end. For the fuzz target; errors are the expected outcome and dropped.
pub fn fuzz_input(data: &[u8], key: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "stateify-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = input::kind_of(&path);
    for key in [None, Some(key)] {
        let Ok(mut inp) = input::Input::open(&path, key) else {
            continue;
        };
        inp.hash_raw = true;
        let mut ok = true;
        while let Ok(Some(r)) = inp.next_record() {
            if let Some(body) = &r.body {
                match stateify::value::decode(body, 4096) {
                    Ok(g) => {
                        let mut text = String::new();
                        render::text(&g.root, &mut text, 0);
                        let _ = render::json(&g.root);
                    }
                    Err(_) => ok = false,
                }
            }
        }
        if ok {
            let _ = inp.finish();
        }
    }
    let _ = std::fs::remove_file(&path);
}
