//! The GitHub workflows and the action can fail when they should: each
//! `run:` block is run as GitHub runs it (`bash --noprofile --norc -eo
//! pipefail FILE`), with stand-ins for `cargo`, `kubectl`, `docker`, `kind` and `baton` on
//! PATH, and a stand-in baton that returns the right verdict and then a
//! wrong one. actionlint and ShellCheck (scripts/lint.sh, in the test
//! command) check the same files statically.

use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Stand-ins: `kubectl`, `cargo`, `sudo`, `rustup`, `docker` and `kind`
/// log their arguments and succeed;
/// `baton` writes `summary.md` into its `-o` directory and exits with
/// `$STUB_BATON_EXIT`.
struct Stage {
    dir: tempfile::TempDir,
}

impl Stage {
    fn new() -> Stage {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.path().join("calls.log");
        let logger = format!(
            "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> '{}'\n",
            log.display()
        );
        for tool in ["kubectl", "cargo", "sudo", "rustup", "docker", "kind"] {
            write_exe(&bin.join(tool), &logger);
        }
        write_exe(
            &bin.join("baton"),
            &format!(
                "{logger}out=\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = -o ]; then out=$2; fi\n  shift\ndone\n\
                 mkdir -p \"$out\" && echo 'stub summary' > \"$out/summary.md\"\nexit \"$STUB_BATON_EXIT\"\n"
            ),
        );
        // The workspace as the steps see it: the repository's scripts,
        // profiles and manifests; their outputs stay in the stage.
        for d in ["scripts", "profiles", "deploy", "Cargo.toml"] {
            std::os::unix::fs::symlink(repo().join(d), dir.path().join(d)).unwrap();
        }
        // What the stand-in cargo would have built.
        let musl = dir.path().join("target/x86_64-unknown-linux-musl/release");
        std::fs::create_dir_all(&musl).unwrap();
        std::fs::write(musl.join("baton"), "").unwrap();
        for f in ["summary", "path", "output"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        Stage { dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.path(f)).unwrap_or_default()
    }

    /// Run `script` as GitHub runs a `run:` block.
    fn run(&self, script: &str, env: &BTreeMap<String, String>, baton_exit: i32) -> Output {
        let file = self.path("step.sh");
        std::fs::write(&file, script).unwrap();
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&file)
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("GITHUB_STEP_SUMMARY", self.path("summary"))
            .env("GITHUB_PATH", self.path("path"))
            .env("GITHUB_OUTPUT", self.path("output"))
            .env("GITHUB_ACTION_PATH", repo())
            .env("RUNNER_TEMP", self.dir.path())
            .env("STUB_BATON_EXIT", baton_exit.to_string())
            .envs(env)
            .output()
            .unwrap()
    }
}

fn write_exe(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn run_steps(workflow: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (_, job) in workflow["jobs"].as_mapping().unwrap() {
        for step in job["steps"].as_sequence().unwrap() {
            if let Some(run) = step["run"].as_str() {
                let name = step["name"].as_str().unwrap_or(run).to_string();
                out.push((name, run.to_string()));
            }
        }
    }
    out
}

#[test]
fn every_kind_step_fails_on_a_wrong_verdict_and_publishes_the_summary_either_way() {
    let workflow = yaml(&repo().join(".github/workflows/kind.yml"));
    let steps = run_steps(&workflow);
    let expect: Vec<&(String, String)> = steps
        .iter()
        .filter(|(_, run)| run.contains("expect-verdict.sh"))
        .collect();
    assert_eq!(
        expect.len(),
        3,
        "the two bundled profiles and the in-cluster one: {steps:?}"
    );
    for (name, run) in expect {
        // The expected exit code is the script's first argument.
        let expected: i32 = run
            .split_whitespace()
            .skip_while(|w| !w.ends_with("expect-verdict.sh"))
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        for (baton_exit, should_pass) in [(expected, true), (1 - expected, false), (3, false)] {
            let stage = Stage::new();
            let out = stage.run(run, &BTreeMap::new(), baton_exit);
            assert_eq!(
                out.status.success(),
                should_pass,
                "{name}: baton exited {baton_exit}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                stage.read("summary").contains("stub summary"),
                "{name}: the summary is published whatever the verdict"
            );
            assert!(
                stage.read("calls.log").contains("kubectl delete"),
                "{name}: the manifest is cleaned up whatever the verdict"
            );
        }
    }
    // Every other `run:` block runs with the stand-ins too.
    for (name, run) in steps
        .iter()
        .filter(|(_, r)| !r.contains("expect-verdict.sh"))
    {
        let stage = Stage::new();
        let out = stage.run(run, &BTreeMap::new(), 0);
        assert!(out.status.success(), "{name}: {out:?}");
    }
}

#[test]
fn the_action_publishes_the_summary_and_fails_the_step_unless_baton_passed() {
    let action = yaml(&repo().join("action.yml"));
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    let run_step = steps
        .iter()
        .find(|s| s["id"].as_str() == Some("run"))
        .expect("a step with id: run");
    let script = run_step["run"].as_str().unwrap();
    // The step's env, with the inputs it reads filled in.
    let inputs: BTreeMap<&str, &str> = [
        ("inputs.profile", "profiles/nginx-rolling-update.yaml"),
        (
            "inputs.args",
            "--context kind-kind --set target.url=http://x/",
        ),
        ("inputs.out", "run-dir"),
    ]
    .into();
    let env: BTreeMap<String, String> = run_step["env"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = v.as_str().unwrap();
            let key = v.trim_start_matches("${{").trim_end_matches("}}").trim();
            (
                k.as_str().unwrap().to_string(),
                inputs
                    .get(key)
                    .unwrap_or_else(|| panic!("unknown input {v}"))
                    .to_string(),
            )
        })
        .collect();

    for (code, passes) in [(0, true), (1, false), (2, false), (3, false)] {
        let stage = Stage::new();
        let out = stage.run(script, &env, code);
        assert_eq!(out.status.success(), passes, "baton exited {code}: {out:?}");
        assert_eq!(
            out.status.code(),
            Some(code),
            "the step ends with baton's code"
        );
        assert!(stage.read("summary").contains("stub summary"));
        let outputs = stage.read("output");
        assert!(outputs.contains(&format!("exit-code={code}")), "{outputs}");
        assert!(outputs.contains("report-dir=run-dir"), "{outputs}");
        let calls = stage.read("calls.log");
        assert!(
            calls.contains("baton run profiles/nginx-rolling-update.yaml -o run-dir --context kind-kind --set target.url=http://x/"),
            "{calls}"
        );
    }
}
