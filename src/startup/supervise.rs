//! A background task that must not die quietly: when the scanner panics, the process
//! stops (in-flight requests finish) and exits non-zero, so its supervisor restarts it,
//! instead of serving `/readyz` 200 with no scanner behind `/metrics`.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runs `task`. If it panics, logs it, sets `stop` (every listener drains and stops) and
/// yields the panic's message; a task that returns yields `Ok`.
pub(crate) fn supervise(
    what: &'static str,
    task: impl Future<Output = ()> + Send + 'static,
    stop: Arc<watch::Sender<bool>>,
) -> JoinHandle<Result<(), String>> {
    let task = tokio::spawn(task);
    tokio::spawn(async move {
        match task.await {
            Ok(()) => Ok(()),
            Err(e) if e.is_panic() => {
                let message = format!("the {what} panicked: {}", panic_text(e.into_panic()));
                tracing::error!(
                    "{message}; stopping so the supervisor restarts syncwatch (exit status 1)"
                );
                let _ = stop.send(true);
                Err(message)
            }
            Err(e) => Err(format!("the {what} was cancelled: {e}")),
        }
    })
}

fn panic_text(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload
            .downcast::<&'static str>()
            .map_or_else(|_| "a non-text panic".to_owned(), |text| (*text).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_stops_everything_and_is_reported() {
        let (stop, mut stopped) = watch::channel(false);
        let stop = Arc::new(stop);
        let outcome = supervise(
            "scanner",
            async { panic!("overflow in a cut-off: {}", 42) },
            stop.clone(),
        )
        .await
        .unwrap();
        assert_eq!(
            outcome,
            Err("the scanner panicked: overflow in a cut-off: 42".to_owned())
        );
        assert!(*stopped.borrow_and_update(), "the stop signal was sent");
    }

    #[tokio::test]
    async fn a_task_that_returns_stops_nothing() {
        let (stop, stopped) = watch::channel(false);
        let outcome = supervise("scanner", async {}, Arc::new(stop))
            .await
            .unwrap();
        assert_eq!(outcome, Ok(()));
        assert!(!*stopped.borrow());
    }
}
