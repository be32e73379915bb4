//! The `exec` step: the team's own deploy command (`helm upgrade`,
//! `kubectl apply -k`, `argocd app sync`, a script) as a rollout step.
//!
//! The command runs in the profile's directory with the run's cluster
//! exported as kubectl and helm read it ([`ExecEnv`]): `KUBECONFIG` names
//! a kubeconfig written for the run whose current context is the run's,
//! with the run's namespace (0600, removed when the run ends);
//! `HELM_KUBECONTEXT` and `HELM_NAMESPACE` say the same to helm, and
//! `BATON_NAMESPACE` / `BATON_DEPLOYMENT` to scripts. Its stdout and
//! stderr go line by line to `steps/N.log` and, the first lines of each,
//! onto the timeline; its exit code is the step's outcome. A command
//! that outlives its `timeout`, or a run that is interrupted, is killed
//! with its whole process group.
//!
//! Not for: knowing what the command changed (the watches see that).

use crate::rundir::STEPS_DIR;
use kube::config::Kubeconfig;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

/// Lines of a command's output shown on the timeline (all are in the
/// log).
pub const TIMELINE_LINES: usize = 40;

/// The cluster as the command sees it.
#[derive(Debug)]
pub struct ExecEnv {
    /// The kubeconfig written for the run; `None` where there is none to
    /// write (in-cluster credentials: the command finds them as baton did).
    kubeconfig: Option<tempfile::TempPath>,
    context: Option<String>,
    namespace: String,
    deployment: String,
}

impl ExecEnv {
    /// From the kubeconfig the run uses (`source`, else `KUBECONFIG` or
    /// `~/.kube/config`), with `context` (else its current one) made
    /// current and given `namespace`.
    pub fn prepare(
        source: Option<&Path>,
        context: Option<&str>,
        namespace: &str,
        deployment: &str,
    ) -> Result<ExecEnv, String> {
        let read = match source {
            Some(path) => Kubeconfig::read_from(path)
                .map(Some)
                .map_err(|e| format!("reading {}: {e}", path.display()))?,
            None => Kubeconfig::read().ok(),
        };
        let (kubeconfig, context) = match read {
            None => (None, context.map(str::to_string)),
            Some(mut kc) => {
                let chosen = context
                    .map(str::to_string)
                    .or_else(|| kc.current_context.clone())
                    .ok_or("the kubeconfig has no current context: pass --context")?;
                let entry = kc
                    .contexts
                    .iter_mut()
                    .find(|c| c.name == chosen)
                    .ok_or_else(|| format!("the kubeconfig has no context {chosen:?}"))?;
                entry.context.get_or_insert_with(Default::default).namespace =
                    Some(namespace.to_string());
                kc.current_context = Some(chosen.clone());
                let text = serde_norway::to_string(&kc).map_err(|e| e.to_string())?;
                // Created 0600: it holds the cluster's credentials.
                let mut file = tempfile::Builder::new()
                    .prefix("baton-kubeconfig-")
                    .tempfile()
                    .map_err(|e| format!("writing a kubeconfig for exec steps: {e}"))?;
                file.write_all(text.as_bytes())
                    .and_then(|()| file.flush())
                    .map_err(|e| format!("writing a kubeconfig for exec steps: {e}"))?;
                (Some(file.into_temp_path()), Some(chosen))
            }
        };
        Ok(ExecEnv {
            kubeconfig,
            context,
            namespace: namespace.to_string(),
            deployment: deployment.to_string(),
        })
    }

    /// The variables the command gets, besides baton's own environment.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        if let Some(k) = &self.kubeconfig {
            v.insert("KUBECONFIG".into(), k.display().to_string());
        }
        if let Some(c) = &self.context {
            v.insert("HELM_KUBECONTEXT".into(), c.clone());
        }
        v.insert("HELM_NAMESPACE".into(), self.namespace.clone());
        v.insert("BATON_NAMESPACE".into(), self.namespace.clone());
        v.insert("BATON_DEPLOYMENT".into(), self.deployment.clone());
        v
    }
}

/// Where a step's output goes: `DIR/steps/N.log`.
pub fn log_path(run_dir: &Path, index: usize) -> PathBuf {
    run_dir.join(STEPS_DIR).join(format!("{index}.log"))
}

/// The executable `command[0]` names, found as the step will find it (a
/// path relative to the profile's directory, or on `PATH`).
pub fn find(program: &str, base_dir: &Path) -> Result<PathBuf, String> {
    which::which_in(program, std::env::var_os("PATH"), base_dir).map_err(|_| {
        format!(
            "`{program}` is not an executable on PATH or in {}",
            base_dir.display()
        )
    })
}

/// One line of the command's output, as it came.
pub struct Line {
    pub stderr: bool,
    pub text: String,
}

/// How the command ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ExecEnd {
    Exited(i32),
    /// Killed by a signal (not baton's).
    Signalled,
    TimedOut,
    Cancelled,
}

/// Run `command` in `dir` with `vars`, calling `on_line` for every line
/// of its output (in the order read), until it exits, `timeout` passes or
/// `cancel` fires.
pub async fn run(
    command: &[String],
    dir: &Path,
    vars: &BTreeMap<String, String>,
    timeout: Duration,
    cancel: &CancellationToken,
    mut on_line: impl FnMut(Line),
) -> Result<ExecEnd, String> {
    let (program, args) = command.split_first().ok_or("an empty command")?;
    tracing::info!(command = ?command, dir = %dir.display(), "exec");
    let mut child = tokio::process::Command::new(find(program, dir)?)
        .args(args)
        .current_dir(dir)
        .envs(vars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout or Ctrl-C ends everything it
        // started (helm's kubectl, a script's children), not just itself.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    // Dropped before the command ended (a timeout, Ctrl-C, the run's
    // deadline dropping this future): its whole group is killed.
    let mut guard = GroupGuard(child.id());
    let mut out = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut err = BufReader::new(child.stderr.take().expect("piped")).lines();
    let (mut out_open, mut err_open) = (true, true);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let end = loop {
        tokio::select! {
            line = out.next_line(), if out_open => match line {
                Ok(Some(text)) => on_line(Line { stderr: false, text }),
                _ => out_open = false,
            },
            line = err.next_line(), if err_open => match line {
                Ok(Some(text)) => on_line(Line { stderr: true, text }),
                _ => err_open = false,
            },
            status = child.wait(), if !out_open && !err_open => {
                let status = status.map_err(|e| format!("waiting for `{program}`: {e}"))?;
                break match status.code() {
                    Some(code) => ExecEnd::Exited(code),
                    None => ExecEnd::Signalled,
                };
            }
            _ = &mut deadline => break ExecEnd::TimedOut,
            _ = cancel.cancelled() => break ExecEnd::Cancelled,
        }
    };
    if matches!(end, ExecEnd::TimedOut | ExecEnd::Cancelled) {
        guard.kill();
        let _ = child.wait().await;
    }
    // Reaped: its process group id may be reused from here on.
    guard.0 = None;
    Ok(end)
}

/// Kills the command's process group when dropped while armed.
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn kill(&self) {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        if let Some(pid) = self.0 {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    async fn collect(command: &[String], timeout: Duration) -> (ExecEnd, Vec<(bool, String)>) {
        let mut lines = Vec::new();
        let end = run(
            command,
            Path::new("."),
            &BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
            timeout,
            &CancellationToken::new(),
            |l| lines.push((l.stderr, l.text)),
        )
        .await
        .unwrap();
        (end, lines)
    }

    #[tokio::test]
    async fn output_lines_come_from_both_streams_and_the_exit_code_is_kept() {
        let (end, lines) = collect(
            &sh("echo \"$GREETING\"; echo oops >&2; exit 3"),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(end, ExecEnd::Exited(3));
        assert!(lines.contains(&(false, "hello".into())), "{lines:?}");
        assert!(lines.contains(&(true, "oops".into())), "{lines:?}");
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed_with_its_children() {
        let started = std::time::Instant::now();
        let (end, _) = collect(&sh("sleep 30 & sleep 30"), Duration::from_millis(200)).await;
        assert_eq!(end, ExecEnd::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_missing_program_is_named() {
        let e = run(
            &["no-such-deploy-tool".into()],
            Path::new("."),
            &BTreeMap::new(),
            Duration::from_secs(1),
            &CancellationToken::new(),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(e.contains("no-such-deploy-tool"), "{e}");
    }

    #[test]
    fn the_kubeconfig_for_commands_has_the_runs_context_and_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("config");
        std::fs::write(
            &source,
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c\n  cluster: {server: 'https://10.0.0.1'}\n\
             contexts:\n- name: a\n  context: {cluster: c, user: u}\n- name: b\n  context: {cluster: c, user: u, namespace: other}\n\
             users:\n- name: u\n  user: {token: t}\n",
        )
        .unwrap();
        let env = ExecEnv::prepare(Some(&source), Some("b"), "shop", "web").unwrap();
        let vars = env.vars();
        assert_eq!(vars["HELM_KUBECONTEXT"], "b");
        assert_eq!(vars["HELM_NAMESPACE"], "shop");
        assert_eq!(vars["BATON_DEPLOYMENT"], "web");
        let kc = Kubeconfig::read_from(&vars["KUBECONFIG"]).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("b"));
        let b = kc.contexts.iter().find(|c| c.name == "b").unwrap();
        assert_eq!(
            b.context.as_ref().unwrap().namespace.as_deref(),
            Some("shop")
        );
        let path = PathBuf::from(&vars["KUBECONFIG"]);
        drop(env);
        assert!(!path.exists(), "removed with the run");
        let e = ExecEnv::prepare(Some(&source), Some("nope"), "shop", "web").unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }
}
