//! One deadline per request to the API server, over its headers and its body.

use http::Request;
use std::time::Duration;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bounds each request to the API server, headers and body, by one deadline. kube-rs's read
/// timeout restarts with every byte, so an answer trickled a byte at a time would never end.
#[derive(Clone, Copy)]
pub(super) struct DeadlineLayer(pub(super) Duration);

#[derive(Clone)]
pub(super) struct DeadlineService<S> {
    inner: S,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("no complete answer within {0:?} (--request-timeout)")]
pub(super) struct TimedOut(pub(super) Duration);

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            timeout: self.0,
        }
    }
}

impl<S, B> tower::Service<Request<kube::client::Body>> for DeadlineService<S>
where
    S: tower::Service<Request<kube::client::Body>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<DeadlineBody<B>>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let timeout = self.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let sent = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout_at(deadline, sent).await {
                Err(_) => Err(Box::new(TimedOut(timeout)) as BoxError),
                Ok(Err(e)) => Err(e.into()),
                Ok(Ok(resp)) => Ok(resp.map(|body| DeadlineBody {
                    body: Box::pin(body),
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                    timeout,
                })),
            }
        })
    }
}

/// A response body that fails once the request's deadline passes.
pub struct DeadlineBody<B> {
    body: std::pin::Pin<Box<B>>,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(Some(Err(Box::new(TimedOut(self.timeout)))));
        }
        self.body
            .as_mut()
            .poll_frame(cx)
            .map(|frame| frame.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
