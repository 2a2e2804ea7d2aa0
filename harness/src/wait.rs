//! Waiting on a condition with a deadline: tests poll, they never sleep a fixed time.

use std::future::Future;
use std::time::{Duration, Instant};

/// Poll `check` until it returns `Some`, or panic with `what` after `timeout`. Polls back
/// off from 5 ms to 100 ms so fast conditions are seen fast and slow ones cost little.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(5);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}
