//! A minimal executor for `async fn` handlers.
//!
//! A WASI p2 guest is single-threaded and every host call it can make through this SDK is
//! synchronous, so a future is always either ready or waiting on another future in the same task.
//! Polling until ready is therefore enough; there is nothing to park on.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Runs `future` to completion on the current thread.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(NoopWake));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::block_on;

    #[test]
    fn runs_nested_futures_to_completion() {
        async fn double(x: u32) -> u32 {
            x * 2
        }
        assert_eq!(block_on(async { double(double(3).await).await }), 12);
    }

    #[test]
    fn repolls_a_future_that_is_pending_once() {
        let mut polled = false;
        let value = block_on(std::future::poll_fn(|_| {
            if polled {
                std::task::Poll::Ready(7)
            } else {
                polled = true;
                std::task::Poll::Pending
            }
        }));
        assert_eq!(value, 7);
    }
}
