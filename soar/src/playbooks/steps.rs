//! Executing one playbook step: a webhook or chat message through a configured destination (with its
//! retry budget), or a script from the script repository.
//!
//! Scripts run directly (no shell): the signal's values are substituted into the configured arguments,
//! each staying exactly one argument, so nothing in a signal (a hostile user name, say) can inject a
//! command. The script gets the signal as JSON on stdin, a minimal environment (none of Sentra's
//! secrets), and is killed at its timeout; its output is captured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sentra_schemas::Signal;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::definition::{Script, Step};
use crate::delivery::{Deliverer, Outcome};

/// Longest output kept per step.
const MAX_OUTPUT: usize = 16 * 1024;

/// Runs steps: the destinations by name and the script repository.
pub struct Executor {
    destinations: BTreeMap<String, Deliverer>,
    scripts: Option<PathBuf>,
}

impl Executor {
    /// An executor over `destinations` and the script repository `scripts` (none: script steps fail).
    pub fn new(destinations: Vec<Deliverer>, scripts: Option<PathBuf>) -> Self {
        Self {
            destinations: destinations
                .into_iter()
                .map(|d| (d.destination().name.clone(), d))
                .collect(),
            scripts,
        }
    }

    /// Runs `step` for `signal`: (succeeded, output).
    pub async fn run(
        &self,
        step: &Step,
        signal: &Signal,
        shutdown: &mut watch::Receiver<bool>,
    ) -> (bool, String) {
        let target = step.webhook.as_ref().or(step.notify.as_ref());
        if let Some(t) = target {
            let Some(d) = self.destinations.get(&t.destination) else {
                return (
                    false,
                    format!("destination {:?} is not configured", t.destination),
                );
            };
            return match d.deliver(signal, shutdown, |_| {}).await {
                Ok(Outcome::Delivered { attempts, status }) => (
                    true,
                    format!("delivered (HTTP {status}) after {attempts} attempt(s)"),
                ),
                Ok(Outcome::GaveUp { reason, .. }) => (false, reason),
                Err(e) => (false, e.to_string()),
            };
        }
        match (&step.script, &self.scripts) {
            (Some(s), Some(dir)) => run_script(dir, s, signal).await,
            (Some(_), None) => (
                false,
                "no script repository is configured (soar.scripts_dir)".into(),
            ),
            (None, _) => (false, "the step has nothing to do".into()),
        }
    }
}

/// `{name}` placeholders replaced by the signal's values.
pub fn render_arg(arg: &str, s: &Signal) -> String {
    arg.replace("{ip}", s.ip.as_deref().unwrap_or(""))
        .replace("{user}", s.user.as_deref().unwrap_or(""))
        .replace("{tenant}", s.tenant.as_str())
        .replace("{signal_id}", &s.id)
        .replace("{signal}", &s.signal)
        .replace("{host}", s.hosts.first().map_or("", String::as_str))
}

/// The script's path if it is a regular file inside `dir` (after resolving links).
fn script_path(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let root = dir
        .canonicalize()
        .map_err(|e| format!("script repository {}: {e}", dir.display()))?;
    let path = root
        .join(name)
        .canonicalize()
        .map_err(|e| format!("script {name}: {e}"))?;
    if !path.starts_with(&root) || !path.is_file() {
        return Err(format!(
            "script {name} is not a file inside the script repository"
        ));
    }
    Ok(path)
}

async fn run_script(dir: &Path, script: &Script, signal: &Signal) -> (bool, String) {
    let path = match script_path(dir, &script.path) {
        Ok(p) => p,
        Err(e) => return (false, e),
    };
    let args: Vec<String> = script.args.iter().map(|a| render_arg(a, signal)).collect();
    let child = tokio::process::Command::new(&path)
        .args(&args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("SENTRA_SIGNAL_ID", &signal.id)
        .env("SENTRA_TENANT", signal.tenant.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot start {}: {e}", script.path)),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let json = serde_json::to_vec(signal).unwrap_or_default();
        let _ = stdin.write_all(&json).await;
    }
    let timeout = Duration::from_secs(script.timeout_secs.max(1));
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => (
            false,
            format!("killed after {} s (timeout)", script.timeout_secs),
        ),
        Ok(Err(e)) => (false, format!("{}: {e}", script.path)),
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            if text.len() > MAX_OUTPUT {
                let cut = (0..=MAX_OUTPUT)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                text.truncate(cut);
                text.push_str("…(truncated)");
            }
            match out.status.code() {
                Some(0) => (true, text),
                Some(c) => (false, format!("exit code {c}: {text}")),
                None => (false, format!("killed by a signal: {text}")),
            }
        }
    }
}
