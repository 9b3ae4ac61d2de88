//! Executing one playbook step: a webhook or chat message through a configured destination (with its
//! retry budget), or a script from the script repository.
//!
//! Scripts run directly (no shell): the signal's values are substituted into the configured arguments in
//! one pass over the template ([`render_arg`]), each staying exactly one argument, so nothing in a signal
//! (a hostile user name, say) can inject a command, and a value is never expanded again. A value that
//! would start an argument with `-` is refused ([`render_args`]) unless the template puts it after a `--`
//! argument or inside an option of its own (`--user={user}`, `-u{user}`), so it cannot be taken as an
//! option. The script gets the signal as JSON on stdin, a minimal environment (none of Sentra's secrets)
//! and its own process group. The timeout covers everything, writing stdin included; when the script
//! exits or the timeout passes, the whole group is killed, children included. At most [`MAX_OUTPUT`]
//! bytes of stdout and of stderr are kept; the rest is read and discarded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sentra_schemas::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::definition::{Script, Step};
use crate::delivery::{Deliverer, Outcome};

/// Longest output kept per stream (stdout, stderr) and per step.
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

/// `{name}` placeholders (`ip`, `user`, `tenant`, `signal_id`, `signal`, `host`) replaced by the signal's
/// values in one pass over `arg`: text a value brings is never read as a placeholder. Other braces stay.
pub fn render_arg(arg: &str, s: &Signal) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let from = &rest[open..];
        let known = from
            .find('}')
            .and_then(|close| Some((close, placeholder(&from[1..close], s)?)));
        match known {
            Some((close, value)) => {
                out.push_str(value);
                rest = &from[close + 1..];
            }
            None => {
                out.push('{');
                rest = &from[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The signal's value for placeholder `name`, if it is one.
fn placeholder<'a>(name: &str, s: &'a Signal) -> Option<&'a str> {
    Some(match name {
        "ip" => s.ip.as_deref().unwrap_or(""),
        "user" => s.user.as_deref().unwrap_or(""),
        "tenant" => s.tenant.as_str(),
        "signal_id" => &s.id,
        "signal" => &s.signal,
        "host" => s.hosts.first().map_or("", String::as_str),
        _ => return None,
    })
}

/// Every argument rendered, or why the step must not run: an argument whose leading `-` comes from a
/// signal value (its template does not start with `-`) and that no `--` argument of the template precedes.
/// The script would read such a value (a user name `--delete-all`, say) as an option.
pub fn render_args(args: &[String], s: &Signal) -> Result<Vec<String>, String> {
    let mut options_ended = false;
    let mut out = Vec::with_capacity(args.len());
    for (n, template) in args.iter().enumerate() {
        let arg = render_arg(template, s);
        if arg.starts_with('-') && !template.starts_with('-') && !options_ended {
            return Err(format!(
                "argument {} would start with '-' from the signal's values and could be read as an option; \
                 put \"--\" before it in the step's args, or pass it as --option={template}",
                n + 1
            ));
        }
        options_ended |= template == "--";
        out.push(arg);
    }
    Ok(out)
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

/// How long the output readers may take after the script's process group is gone (a process that left
/// the group may still hold a pipe).
const DRAIN_GRACE: Duration = Duration::from_secs(1);

async fn run_script(dir: &Path, script: &Script, signal: &Signal) -> (bool, String) {
    let path = match script_path(dir, &script.path) {
        Ok(p) => p,
        Err(e) => return (false, e),
    };
    let args = match render_args(&script.args, signal) {
        Ok(a) => a,
        Err(e) => return (false, format!("not run: {e}")),
    };
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
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot start {}: {e}", script.path)),
    };
    let mut group = ProcessGroup(child.id());
    let json = serde_json::to_vec(signal).unwrap_or_default();
    let stdin = child.stdin.take().map(|mut stdin| {
        // A script that never reads its stdin must not hold the step past its timeout.
        tokio::spawn(async move {
            let _ = stdin.write_all(&json).await;
        })
    });
    let stdout = child
        .stdout
        .take()
        .map(|o| tokio::spawn(read_capped(o, MAX_OUTPUT)));
    let stderr = child
        .stderr
        .take()
        .map(|e| tokio::spawn(read_capped(e, MAX_OUTPUT)));
    let timeout = Duration::from_secs(script.timeout_secs.max(1));
    let status = tokio::time::timeout(timeout, child.wait()).await;
    group.kill();
    if status.is_err() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    if let Some(task) = stdin {
        task.abort();
    }
    let mut output = Vec::new();
    for task in [stdout, stderr].into_iter().flatten() {
        let abort = task.abort_handle();
        match tokio::time::timeout(DRAIN_GRACE, task).await {
            Ok(Ok(Ok(bytes))) => output.extend_from_slice(&bytes),
            _ => abort.abort(),
        }
    }
    let text = shorten(String::from_utf8_lossy(&output).into_owned());
    match status {
        Err(_) => (
            false,
            format!("killed after {} s (timeout): {text}", script.timeout_secs),
        ),
        Ok(Err(e)) => (false, format!("{}: {e}", script.path)),
        Ok(Ok(status)) => match status.code() {
            Some(0) => (true, text),
            Some(c) => (false, format!("exit code {c}: {text}")),
            None => (false, format!("killed by a signal: {text}")),
        },
    }
}

/// The script's process group (its id is the script's pid). Killed when the step ends, and on drop, so a
/// step cancelled at shutdown leaves no process behind either.
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    /// Kills every process left in the group; the group may already be gone.
    fn kill(&mut self) {
        let Some(pgid) = self.0.take().and_then(|g| libc::pid_t::try_from(g).ok()) else {
            return;
        };
        if pgid > 1 {
            // SAFETY: kill(2) takes plain integers; a negative pid addresses the process group.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads `reader` to its end, keeping the first `cap` bytes and discarding the rest as it arrives, so a
/// writer of endless output neither blocks on a full pipe nor fills memory.
pub async fn read_capped(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    cap: usize,
) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 8192];
    let mut more = false;
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        let room = cap - kept.len();
        kept.extend_from_slice(&chunk[..n.min(room)]);
        more |= n > room;
    }
    if more {
        kept.extend_from_slice(TRUNCATED.as_bytes());
    }
    Ok(kept)
}

/// Marks output cut at [`MAX_OUTPUT`].
const TRUNCATED: &str = "…(truncated)";

/// `text` cut to [`MAX_OUTPUT`] bytes at a character boundary, marked when cut.
fn shorten(mut text: String) -> String {
    if text.len() > MAX_OUTPUT + TRUNCATED.len() {
        let cut = (0..=MAX_OUTPUT)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push_str(TRUNCATED);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::signal;
    use std::os::unix::fs::PermissionsExt as _;

    /// A fresh script repository holding `body` as `s.sh`.
    fn repository(name: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sentra-steps-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("s.sh");
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn script(args: &[&str], timeout_secs: u64) -> Script {
        Script {
            path: "s.sh".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            timeout_secs,
        }
    }

    /// Runs the script, failing the test instead of hanging.
    async fn run(dir: &Path, s: &Script, signal: &Signal) -> (bool, String) {
        tokio::time::timeout(Duration::from_secs(20), run_script(dir, s, signal))
            .await
            .expect("the step hung past its timeout")
    }

    #[tokio::test]
    async fn a_large_signal_to_a_script_that_never_reads_stdin_ends_at_the_timeout() {
        let dir = repository("stdin", "sleep 30");
        let mut big = signal();
        big.narrative = "x".repeat(256 * 1024);
        let started = std::time::Instant::now();
        let (ok, out) = run(&dir, &script(&[], 1), &big).await;
        assert!(
            !ok && out.starts_with("killed after 1 s (timeout)"),
            "{out}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_timeout_kills_the_scripts_children_too() {
        let dir = repository("group", "sleep 60 &\necho $! > child.pid\nwait");
        let (ok, out) = run(&dir, &script(&[], 1), &signal()).await;
        assert!(
            !ok && out.starts_with("killed after 1 s (timeout)"),
            "{out}"
        );
        let pid = std::fs::read_to_string(dir.join("child.pid")).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        // Gone, or a zombie waiting for a parent that does not reap.
        std::thread::sleep(Duration::from_millis(200));
        let alive = std::fs::read_to_string(&stat).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        });
        assert!(
            !alive,
            "the script's child {} outlived the step",
            pid.trim()
        );
    }

    #[tokio::test]
    async fn endless_output_is_kept_to_the_cap_and_the_rest_drained() {
        let dir = repository(
            "output",
            "head -c 20000000 /dev/zero | tr '\\0' a\nhead -c 100000 /dev/zero | tr '\\0' b >&2",
        );
        let (ok, out) = run(&dir, &script(&[], 20), &signal()).await;
        assert!(ok, "{out}");
        assert_eq!(out.len(), MAX_OUTPUT + TRUNCATED.len());
        assert!(out.ends_with(TRUNCATED));

        let kept = read_capped(tokio::io::repeat(b'z').take(50_000_000), 10).await;
        assert_eq!(kept.unwrap(), format!("zzzzzzzzzz{TRUNCATED}").into_bytes());
        let short = read_capped(&b"abc"[..], 10).await.unwrap();
        assert_eq!(short, b"abc");
    }

    #[tokio::test]
    async fn a_value_starting_with_a_dash_is_never_taken_as_an_option() {
        let dir = repository("dash", "printf '%s|' \"$@\"");
        let mut hostile = signal();
        hostile.user = Some("--delete-all".into());
        let (ok, out) = run(&dir, &script(&["block", "{user}"], 5), &hostile).await;
        assert!(!ok, "{out}");
        assert!(
            out.starts_with("not run: argument 2 would start with '-'"),
            "{out}"
        );
        for (args, want) in [
            (&["block", "--", "{user}"][..], "block|--|--delete-all|"),
            (&["--user={user}"][..], "--user=--delete-all|"),
            (&["-u{user}"][..], "-u--delete-all|"),
        ] {
            let (ok, out) = run(&dir, &script(args, 5), &hostile).await;
            assert!(ok, "{args:?}: {out}");
            assert_eq!(out, want);
        }
    }

    #[test]
    fn placeholders_are_expanded_once_over_the_template_only() {
        let mut s = signal();
        s.ip = Some("{user}".into());
        s.user = Some("{tenant}{signal_id}".into());
        s.hosts = vec!["{ip}".into()];
        assert_eq!(render_arg("{ip}", &s), "{user}");
        assert_eq!(
            render_arg("u={user};h={host}", &s),
            "u={tenant}{signal_id};h={ip}"
        );
        assert_eq!(
            render_arg("{tenant}/{signal}/{signal_id}/{x}/{/}", &s),
            "acme/ssh_brute_force/abcdef012345/{x}/{/}"
        );
        assert_eq!(render_arg("{{ip}}", &s), "{{user}}");
    }
}
