//! The worker's script calls in flight (one or two), polled in order.
//!
//! `FuturesUnordered` wakes its own task whenever it has polled all of its
//! futures and none was ready. With one or two calls in flight that happens
//! after every call the loop starts: the loop task is rescheduled at once,
//! on a multi-thread runtime often on another thread, which cost about two
//! futex calls per job at concurrency 1. With this few futures, polling each
//! on every wake costs nothing, and nothing is rescheduled.

use std::future::{poll_fn, Future};
use std::task::Poll;

use futures::future::BoxFuture;

pub(crate) struct InFlight<T> {
    futures: Vec<BoxFuture<'static, T>>,
}

impl<T> InFlight<T> {
    pub(crate) fn new() -> Self {
        InFlight {
            futures: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.futures.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.futures.is_empty()
    }

    pub(crate) fn push(&mut self, future: BoxFuture<'static, T>) {
        self.futures.push(future);
    }

    /// The output of the first ready future, oldest first; pending while
    /// none is ready, `None` when there are none.
    pub(crate) fn next(&mut self) -> impl Future<Output = Option<T>> + '_ {
        poll_fn(move |cx| {
            if self.futures.is_empty() {
                return Poll::Ready(None);
            }
            for i in 0..self.futures.len() {
                if let Poll::Ready(output) = self.futures[i].as_mut().poll(cx) {
                    drop(self.futures.remove(i));
                    return Poll::Ready(Some(output));
                }
            }
            Poll::Pending
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::FutureExt as _;

    use super::*;

    #[tokio::test]
    async fn yields_outputs_as_futures_finish() {
        let mut calls = InFlight::new();
        assert_eq!(calls.next().await, None);
        calls.push(
            async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                1
            }
            .boxed(),
        );
        calls.push(async { 2 }.boxed());
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls.next().await,
            Some(2),
            "a ready call is not held up by an older pending one"
        );
        assert_eq!(calls.next().await, Some(1));
        assert!(calls.is_empty());
    }
}
