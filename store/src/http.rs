//! The HTTP client of the cloud stores: `object_store`'s own, with one
//! error classified so that it is retried.
//!
//! A server or load balancer that closes a connection as soon as it is
//! accepted fails the request sent on it in one of two ways, depending on
//! which comes first: the request written, then the close (hyper: "message
//! cut short"), or the close, then the request (hyper hands the request
//! back: "connection was not ready"). `object_store` 0.12 retries the
//! first and gives up at once on the second, which it files as an unknown
//! error. [`RetryingConnector`] files every request hyper *cancelled* as
//! interrupted instead: retried like a connection reset, and, like one,
//! only where the request is idempotent (a cancelled request may have been
//! sent, when the connection closed while it was in flight).

use std::error::Error as StdError;

use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};
use object_store::ClientOptions;

/// The [`HttpConnector`] of every cloud store [`Store::open`] builds:
/// `object_store`'s reqwest client, whose requests cancelled by hyper
/// (a connection closed before or while the request was on it) are retried
/// as interrupted ones. Give it to a builder's `with_http_connector` when
/// building an `ObjectStore` by hand for
/// [`Store::from_object_store`](crate::Store::from_object_store).
///
/// [`Store::open`]: crate::Store::open
#[derive(Debug, Default)]
pub struct RetryingConnector {
    inner: ReqwestConnector,
}

impl HttpConnector for RetryingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = self.inner.connect(options)?;
        Ok(HttpClient::new(Retrying { client }))
    }
}

#[derive(Debug)]
struct Retrying {
    client: HttpClient,
}

#[async_trait::async_trait]
impl HttpService for Retrying {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.client.execute(req).await.map_err(reclassify)
    }
}

/// `e`, as an interrupted request if it is an unknown error that hyper
/// raised by cancelling the request.
fn reclassify(e: HttpError) -> HttpError {
    if e.kind() == HttpErrorKind::Unknown && cancelled_by_hyper(&e) {
        HttpError::new(HttpErrorKind::Interrupted, e)
    } else {
        e
    }
}

/// Whether a [`hyper::Error`] in `e`'s chain of sources says the request
/// was cancelled.
fn cancelled_by_hyper(e: &(dyn StdError + 'static)) -> bool {
    std::iter::successors(Some(e), |&e| e.source()).any(|e| {
        e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error wrapping another, as reqwest and hyper-util wrap hyper's.
    #[derive(Debug, thiserror::Error)]
    #[error("client error")]
    struct Wrapper<E: StdError + 'static>(#[source] E);

    /// A real cancelled request: an HTTP/1 connection whose peer closed,
    /// and a request handed to it after hyper saw the close.
    fn not_ready() -> hyper::Error {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (ours, theirs) = tokio::io::duplex(64);
            drop(theirs);
            let io = hyper_util::rt::TokioIo::new(ours);
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake::<_, http_body_util::Empty<bytes::Bytes>>(io)
                    .await
                    .unwrap();
            // The connection ends on the peer's close.
            let _ = conn.await;
            let req = hyper::Request::new(http_body_util::Empty::new());
            sender.send_request(req).await.unwrap_err()
        })
    }

    #[test]
    fn cancelled_requests_are_interrupted_ones() {
        let hyper = not_ready();
        assert!(hyper.is_canceled(), "{hyper:?}");
        // Deep in the chain, as reqwest and hyper-util wrap it.
        let e = reclassify(HttpError::new(HttpErrorKind::Unknown, Wrapper(hyper)));
        assert_eq!(e.kind(), HttpErrorKind::Interrupted);
        // The original error is still the source, for the message.
        assert!(
            format!("{:?}", e.source().unwrap()).contains("Canceled"),
            "{e:?}"
        );
    }

    #[test]
    fn other_errors_keep_their_kind() {
        let io = std::io::Error::other("something else");
        let e = reclassify(HttpError::new(HttpErrorKind::Unknown, Wrapper(io)));
        assert_eq!(e.kind(), HttpErrorKind::Unknown);
        let e = reclassify(HttpError::new(
            HttpErrorKind::Decode,
            std::io::Error::other("bad body"),
        ));
        assert_eq!(e.kind(), HttpErrorKind::Decode);
    }
}
