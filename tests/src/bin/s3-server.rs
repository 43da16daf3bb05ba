//! A local S3-protocol server (`s3s-fs` over a temporary directory) for
//! trying `sandbox migrate` and the CLI's URLs by hand:
//!
//! ```text
//! cargo run -p stateify-tests --bin s3-server -- [--delay-ms N]
//! ```
//!
//! It prints the environment a client needs (`AWS_ENDPOINT`, keys, …) and
//! serves bucket `checkpoints` until it is stopped. `--delay-ms` puts a
//! proxy in front of it that delays every request, as a distant store would.

use std::time::Duration;

use stateify_tests::s3::{Proxy, S3Server, BUCKET};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut delay = Duration::ZERO;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--delay-ms" => {
                let ms: u64 = args.next().ok_or("--delay-ms needs a value")?.parse()?;
                delay = Duration::from_millis(ms);
            }
            other => return Err(format!("unknown argument {other} (--delay-ms N)").into()),
        }
    }
    let server = S3Server::start()?;
    let proxy = (!delay.is_zero())
        .then(|| Proxy::start(server.addr(), delay))
        .transpose()?;
    let endpoint = proxy.as_ref().map_or(server.addr(), Proxy::addr);
    eprintln!(
        "s3-server: bucket {BUCKET:?} at http://{endpoint}{} (files in {}); in another shell:",
        if delay.is_zero() {
            String::new()
        } else {
            format!(", {delay:?} per request")
        },
        server.root().display()
    );
    for (k, v) in S3Server::env(endpoint) {
        println!("export {k}={v}");
    }
    eprintln!(
        "then, for instance: cargo run --release --bin sandbox -- migrate --to s3://{BUCKET}/demo"
    );
    loop {
        std::thread::park();
    }
}
