//! Opening a store from a URL or a path.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};

use crate::error::{Error, Result};
use crate::http::RetryingConnector;

/// How a [`Store`] moves bytes. The defaults suit a cloud store; tests and
/// benches shrink or grow them.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Size of an upload part (S3 wants at least 5 MiB but for the last).
    pub part_size: usize,
    /// Upload parts in flight per object: memory is bounded by about
    /// `part_size × (parts_in_flight + 1)` per object being written.
    pub parts_in_flight: usize,
    /// Size of one ranged read when an object is streamed in.
    pub read_size: usize,
    /// Ranged reads in flight ahead of the reader when an object is
    /// streamed in.
    pub read_ahead: usize,
    /// Threads reading pages in a restore from a store (requests in
    /// flight): [`RemotePages::load_opts`](crate::RemotePages::load_opts).
    /// More, or larger reads, raise the throughput and the wait of a page
    /// the program touches while a read holding it is in flight: with
    /// 5 ms per request, 16 × 1 MiB restored 479 MB/s with a first-touch
    /// p99 of 40 ms, 8 × 512 KiB 431 MB/s and 18.5 ms (`store-bench`).
    pub page_readers: usize,
    /// Largest ranged read of pages; adjacent blocks are merged up to it.
    pub page_read_size: usize,
    /// Attempts after the first, for a request of an HTTP store that fails
    /// transiently (a connection error, a timeout, a 5xx or 429 answer, a
    /// body cut short); an answer that will not change (404, 403, 412, …)
    /// is not retried. The HTTP client of `object_store` does the retrying
    /// (through [`RetryingConnector`](crate::RetryingConnector)).
    pub retries: usize,
    /// The first wait before a retry; it doubles each time, up to
    /// `max_backoff`.
    pub backoff: Duration,
    /// The longest wait before a retry.
    pub max_backoff: Duration,
    /// No retry starts later than this after the request's first attempt.
    pub retry_timeout: Duration,
    /// Timeout of one request (HTTP stores). Keep it well below
    /// `retry_timeout`: a request that neither answers nor fails is retried
    /// only if its timeout ends it before then (and it is idempotent).
    pub request_timeout: Duration,
    /// Timeout of a connection attempt (HTTP stores).
    pub connect_timeout: Duration,
}

impl StoreOptions {
    /// The settings of an HTTP store's client that come from these
    /// options, as `object_store` client keys: the request and connect
    /// timeouts. [`Store::open`] applies them to every cloud builder; apply
    /// them, with [`retry_config`](Self::retry_config) and a
    /// [`RetryingConnector`], to a builder made by hand for
    /// [`Store::from_object_store`].
    pub fn client_config(&self) -> [(ClientConfigKey, String); 2] {
        let millis = |d: Duration| format!("{}ms", d.as_millis());
        [
            (ClientConfigKey::Timeout, millis(self.request_timeout)),
            (
                ClientConfigKey::ConnectTimeout,
                millis(self.connect_timeout),
            ),
        ]
    }

    /// The retry policy of an HTTP store's client, from these options.
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self.backoff,
                max_backoff: self.max_backoff,
                base: 2.0,
            },
            max_retries: self.retries,
            retry_timeout: self.retry_timeout,
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            part_size: 8 << 20,
            parts_in_flight: 4,
            read_size: 8 << 20,
            read_ahead: 4,
            page_readers: 8,
            page_read_size: 512 << 10,
            retries: 5,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            retry_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A place checkpoints are written to and read from: a store and a prefix
/// in it. Cheap to clone; blocking API (it owns a small async runtime).
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    pub url: String,
    pub opts: StoreOptions,
    /// Always `Some` until the store is dropped.
    rt: Option<tokio::runtime::Runtime>,
}

impl Inner {
    /// The store's runtime.
    pub fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt
            .as_ref()
            .expect("the runtime lives as long as the store")
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped inside another runtime (the last `Store` of an async
        // program), a runtime may not wait for its threads: let them go.
        if let Some(rt) = self.rt.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                rt.shutdown_background();
            }
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.inner.url)
            .finish()
    }
}

/// `memory://NAME` stores, shared by every `Store` of this process.
fn memory_store(name: &str) -> Arc<InMemory> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    stores.entry(name.to_string()).or_default().clone()
}

fn location_error(location: &str, message: String) -> Error {
    Error::Location {
        location: location.to_string(),
        message,
    }
}

/// Whether `s` is a URL (`scheme://…`) rather than a local path.
pub fn is_url(s: &str) -> bool {
    match s.split_once("://") {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

impl Store {
    /// Opens `location` with the default options: a URL (`s3://bucket/prefix`,
    /// `gs://`, `az://`, `memory://name/prefix`, `file:///dir`) or a local
    /// directory's path.
    pub fn open(location: &str) -> Result<Store> {
        Store::open_with(location, StoreOptions::default())
    }

    /// Opens `location` with `opts`.
    pub fn open_with(location: &str, opts: StoreOptions) -> Result<Store> {
        if !is_url(location) {
            return Store::local(location, std::path::Path::new(location), opts);
        }
        let bad = |message: String| location_error(location, message);
        let url = url::Url::parse(location).map_err(|e| bad(e.to_string()))?;
        // A memory store's "host" names the store; an S3 URL's names the
        // bucket: the path is the prefix in both.
        let prefix = url.path().trim_matches('/').to_string();
        // Each cloud builder, from the environment and the URL, with
        // this store's retries, timeouts and connector.
        macro_rules! cloud {
            ($builder:ty, $key:ident) => {{
                let mut b = <$builder>::from_env()
                    .with_url(location)
                    .with_retry(opts.retry_config())
                    .with_http_connector(RetryingConnector::default());
                for (key, value) in opts.client_config() {
                    b = b.with_config($key::Client(key), value);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }};
        }
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
        use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "s3" | "s3a" => cloud!(AmazonS3Builder, AmazonS3ConfigKey),
            "gs" => cloud!(GoogleCloudStorageBuilder, GoogleConfigKey),
            "az" | "adl" | "azure" | "abfs" | "abfss" => {
                cloud!(MicrosoftAzureBuilder, AzureConfigKey)
            }
            "memory" => memory_store(url.host_str().unwrap_or("")),
            "file" => {
                let dir = url
                    .to_file_path()
                    .map_err(|()| bad("not a local path".into()))?;
                return Store::local(location, &dir, opts);
            }
            other => {
                return Err(bad(format!(
                    "unknown scheme {other:?} (s3, gs, az, memory, file, or a path)"
                )))
            }
        };
        Store::new(store, &prefix, location.to_string(), opts)
    }

    /// A local directory (created if missing) as a store.
    fn local(location: &str, dir: &std::path::Path, opts: StoreOptions) -> Result<Store> {
        let bad = |message: String| location_error(location, message);
        std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| bad(e.to_string()))?;
        Store::new(Arc::new(fs), "", location.to_string(), opts)
    }

    /// A store over any [`ObjectStore`] (for one built by hand), with
    /// checkpoints under `prefix`.
    pub fn from_object_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        display: &str,
        opts: StoreOptions,
    ) -> Result<Store> {
        Store::new(store, prefix, display.to_string(), opts)
    }

    fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        url: String,
        opts: StoreOptions,
    ) -> Result<Store> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stateify-store")
            .enable_all()
            .build()?;
        let prefix = Path::parse(prefix).map_err(|e| location_error(&url, e.to_string()))?;
        Ok(Store {
            inner: Arc::new(Inner {
                store,
                prefix,
                url,
                opts,
                rt: Some(rt),
            }),
        })
    }

    /// The location it was opened with.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The options it was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.opts
    }

    /// The object `name` under the prefix.
    pub(crate) fn path(&self, name: &str) -> Path {
        self.inner.prefix.child(name)
    }

    /// Object `name`'s URL, as messages name it: the store's URL and the
    /// name.
    pub fn object_url(&self, name: &str) -> String {
        format!("{}/{name}", self.inner.url.trim_end_matches('/'))
    }

    /// The size of object `name` under the prefix.
    pub fn size(&self, name: &str) -> Result<u64> {
        let path = self.path(name);
        let what = || format!("HEAD {}", self.object_url(name));
        self.request(what, self.inner.store.head(&path))
            .map(|m| m.size)
    }

    /// Runs request `f` and waits for it; `what` names it in the error.
    pub(crate) fn request<T: Send>(
        &self,
        what: impl FnOnce() -> String,
        f: impl std::future::Future<Output = object_store::Result<T>> + Send,
    ) -> Result<T> {
        self.block_on(f).map_err(|source| Error::Request {
            what: what(),
            source,
        })
    }

    /// Runs `f` on the store's runtime and waits for it. From inside
    /// another async runtime (a program thread of a tokio application
    /// touching a page not yet restored), where blocking is not allowed, it
    /// waits on a thread of its own.
    pub(crate) fn block_on<F>(&self, f: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.inner.rt().block_on(f);
        }
        std::thread::scope(|s| {
            s.spawn(|| self.inner.rt().block_on(f))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}
