//! Ctrl-C and SIGTERM as a shutdown signal for the commands that run until stopped.

use anyhow::Result;
use tokio::sync::watch;

/// Runs `f` on a new runtime, with Ctrl-C/SIGTERM turned into its shutdown signal.
pub fn with_shutdown<T>(f: impl AsyncFnOnce(watch::Receiver<bool>) -> Result<T>) -> Result<T> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            signal().await;
            let _ = tx.send(true);
        });
        f(rx).await
    })
}

/// Waits for Ctrl-C or SIGTERM.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
