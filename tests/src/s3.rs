//! A real S3-protocol server for the tests and benches: `s3s-fs` (an S3
//! server over a directory, on the `s3s` protocol stack) on a loopback
//! port, in this process, and a TCP proxy in front of it that delays each
//! request or drops connections.
//!
//! One change to `s3s-fs`: it computes the MD5 of the whole object for the
//! ETag of every `GET`, ranged or not, which makes each 64 KiB read of a
//! 1 GiB pages object cost a 1 GiB hash. [`RangedGets`] serves `GET` from
//! the same files without that hash (the ETag is derived from the size and
//! the modification time), and passes every other operation to `s3s-fs`.
//!
//! The server runs on a runtime of its own; [`S3Server::stop`] shuts it
//! down, closing the listener and every connection, as a crashed server
//! would look to its clients.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;

/// The credentials the server accepts.
pub const ACCESS_KEY: &str = "stateify-test";
/// The secret of [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "stateify-test-secret";
/// The bucket every server starts with.
pub const BUCKET: &str = "checkpoints";

/// A running `s3s-fs` server.
pub struct S3Server {
    rt: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
    root: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server on a free loopback port, with bucket [`BUCKET`].
    pub fn start() -> io::Result<S3Server> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join(BUCKET))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let fs =
            s3s_fs::FileSystem::new(root.path()).map_err(|e| io::Error::other(format!("{e:?}")))?;
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(RangedGets {
                fs,
                root: root.path().to_path_buf(),
            });
            b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        rt.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                // As a real server does: a response's header and body,
                // written apart, must not wait for the client's delayed ACK.
                let _ = socket.set_nodelay(true);
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Ok(S3Server {
            rt: Some(rt),
            addr,
            root,
        })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory it stores buckets in.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The environment a client needs to reach it through `endpoint` (the
    /// server's address, or a proxy's in front of it): credentials,
    /// endpoint, region.
    pub fn env(endpoint: SocketAddr) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT", format!("http://{endpoint}")),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// An S3 client of bucket [`BUCKET`] reached through `endpoint`,
    /// configured directly (the environment of this process is shared by
    /// tests running at once), with the retries, timeouts and connector
    /// `Store::open_with` gives its own S3 clients.
    pub fn client(
        endpoint: SocketAddr,
        opts: &stateify_store::StoreOptions,
    ) -> stateify_store::Result<object_store::aws::AmazonS3> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey as K};
        let bad = |location: String, message: String| stateify_store::Error::Location {
            location,
            message,
        };
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_retry(opts.retry_config())
            .with_http_connector(stateify_store::RetryingConnector::default());
        for (key, value) in opts.client_config() {
            b = b.with_config(K::Client(key), value);
        }
        for (key, value) in S3Server::env(endpoint) {
            let key: K = key
                .to_ascii_lowercase()
                .parse()
                .map_err(|e| bad(key.into(), format!("{e}")))?;
            b = b.with_config(key, value);
        }
        b.build()
            .map_err(|e| bad(format!("http://{endpoint}"), e.to_string()))
    }

    /// An `s3://` store of bucket [`BUCKET`] under `prefix`, reached through
    /// `endpoint` ([`S3Server::client`]).
    pub fn store(
        endpoint: SocketAddr,
        prefix: &str,
        opts: stateify_store::StoreOptions,
    ) -> stateify_store::Result<stateify_store::Store> {
        let s3 = S3Server::client(endpoint, &opts)?;
        stateify_store::Store::from_object_store(
            Arc::new(s3),
            prefix,
            &format!("s3://{BUCKET}/{prefix}"),
            opts,
        )
    }

    /// The files of multipart uploads not completed or aborted.
    pub fn pending_uploads(&self) -> Vec<String> {
        std::fs::read_dir(self.root())
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.starts_with(".upload_id-"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The objects in the bucket under `prefix`, sorted.
    pub fn objects(&self, prefix: &str) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.root().join(BUCKET).join(prefix))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Stops the server: the listener and every connection close.
    pub fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy on loopback: each request (the client's first bytes after
/// an answer) waits `delay` before it is passed on, and the next `drop`
/// connections are closed as soon as they are accepted.
pub struct Proxy {
    addr: SocketAddr,
    delay_us: Arc<AtomicU64>,
    drop_next: Arc<AtomicU32>,
    stopped: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy to `target` adding `delay` to each request.
    pub fn start(target: SocketAddr, delay: Duration) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let p = Proxy {
            addr: listener.local_addr()?,
            delay_us: Arc::new(AtomicU64::new(delay.as_micros() as u64)),
            drop_next: Arc::new(AtomicU32::new(0)),
            stopped: Arc::new(AtomicBool::new(false)),
        };
        let (delay_us, drop_next, stopped) =
            (p.delay_us.clone(), p.drop_next.clone(), p.stopped.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                let Ok(client) = client else { continue };
                if drop_next
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok()
                {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let delay_us = delay_us.clone();
                // Whether the client's next bytes start a new request.
                let turn = Arc::new(AtomicBool::new(true));
                let (c2, s2, turn2) = (client.try_clone(), server.try_clone(), turn.clone());
                let (Ok(c2), Ok(s2)) = (c2, s2) else { continue };
                std::thread::spawn(move || {
                    pump(client, server, |_| {
                        if turn.swap(false, Ordering::AcqRel) {
                            let us = delay_us.load(Ordering::Relaxed);
                            std::thread::sleep(Duration::from_micros(us));
                        }
                    })
                });
                std::thread::spawn(move || pump(s2, c2, |_| turn2.store(true, Ordering::Release)));
            }
        });
        Ok(p)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the delay of later requests.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_us
            .store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    /// Closes the next `n` connections as soon as they are accepted.
    pub fn drop_connections(&self, n: u32) {
        self.drop_next.store(n, Ordering::Release);
    }

    /// How many of the connections [`Proxy::drop_connections`] named are
    /// still to come.
    pub fn connections_left_to_drop(&self) -> u32 {
        self.drop_next.load(Ordering::Acquire)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Release);
        // Wakes the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` to `to` until either side closes, calling `before` ahead
/// of each piece passed on.
fn pump(mut from: TcpStream, mut to: TcpStream, mut before: impl FnMut(usize)) {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                before(n);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// `s3s-fs` with a `GET` that does not hash the whole object (see the
/// module's documentation); the operations the checkpoint store uses are
/// passed on to `s3s-fs`.
pub struct RangedGets {
    fs: s3s_fs::FileSystem,
    root: std::path::PathBuf,
}

/// Passes operations on to `s3s-fs` (written out as `async_trait` expands
/// a method, since the attribute does not look inside a macro).
macro_rules! pass_on {
    ($($op:ident: $input:ident => $output:ident,)*) => {
        $(
            fn $op<'life0, 'async_trait>(
                &'life0 self,
                req: s3s::S3Request<s3s::dto::$input>,
            ) -> std::pin::Pin<
                Box<
                    dyn std::future::Future<
                            Output = s3s::S3Result<s3s::S3Response<s3s::dto::$output>>,
                        > + Send
                        + 'async_trait,
                >,
            >
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                s3s::S3::$op(&self.fs, req)
            }
        )*
    };
}

#[async_trait::async_trait]
impl s3s::S3 for RangedGets {
    pass_on! {
        create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
        upload_part: UploadPartInput => UploadPartOutput,
        complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput,
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput,
        put_object: PutObjectInput => PutObjectOutput,
        head_object: HeadObjectInput => HeadObjectOutput,
        delete_object: DeleteObjectInput => DeleteObjectOutput,
        list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
        create_bucket: CreateBucketInput => CreateBucketOutput,
        head_bucket: HeadBucketInput => HeadBucketOutput,
    }

    async fn get_object(
        &self,
        req: s3s::S3Request<s3s::dto::GetObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::GetObjectOutput>> {
        use s3s::{s3_error, S3ErrorCode};
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let input = req.input;
        let key = std::path::Path::new(&input.key);
        if input.bucket.contains(['/', '.'])
            || key.is_absolute()
            || key
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(s3_error!(InvalidArgument, "bad bucket or key"));
        }
        let path = self.root.join(&input.bucket).join(key);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| s3s::S3Error::new(S3ErrorCode::NoSuchKey))?;
        let meta = file
            .metadata()
            .await
            .map_err(|e| s3_error!(e, InternalError))?;
        let len = meta.len();
        let range = match &input.range {
            None => 0..len,
            Some(r) => r.check(len)?,
        };
        file.seek(io::SeekFrom::Start(range.start))
            .await
            .map_err(|e| s3_error!(e, InternalError))?;
        let modified = meta.modified().map_err(|e| s3_error!(e, InternalError))?;
        let nanos = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let body = tokio_util::io::ReaderStream::with_capacity(
            file.take(range.end - range.start),
            256 << 10,
        );
        let output = s3s::dto::GetObjectOutput {
            body: Some(s3s::dto::StreamingBlob::wrap(body)),
            content_length: Some((range.end - range.start) as i64),
            content_range: input.range.as_ref().map(|_| {
                format!(
                    "bytes {}-{}/{len}",
                    range.start,
                    range.end.saturating_sub(1)
                )
            }),
            last_modified: Some(s3s::dto::Timestamp::from(modified)),
            e_tag: Some(s3s::dto::ETag::Strong(format!("{len:x}-{nanos:x}"))),
            ..Default::default()
        };
        Ok(s3s::S3Response::new(output))
    }
}
