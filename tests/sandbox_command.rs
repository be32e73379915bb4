//! `baton sandbox` end to end: the built binary starts the simulator,
//! writes a kubeconfig kubectl can use, serves the seed scenario's pods
//! through its NodePort, and stops cleanly on Ctrl-C; a bad config is
//! refused with the file, line and field.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The built baton, with no KUBECONFIG from the environment: these runs
/// are on the simulator unless a test says otherwise.
fn baton() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("baton"));
    c.env_remove("KUBECONFIG").env_remove("GITHUB_ACTIONS");
    c
}

#[test]
fn sandbox_serves_the_seed_scenario_until_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = baton()
        .args(["sandbox", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    assert!(banner.contains("SIMULATOR"), "banner: {banner}");
    let yaml = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(yaml.contains("server: http://127.0.0.1:"), "{yaml}");
    let url = banner
        .lines()
        .find_map(|l| l.strip_prefix("service:     default/web-service -> "))
        .expect("the banner names the NodePort")
        .to_string();

    // The seed Deployment's pods come up and answer through the NodePort
    // (bounded wait: pods need their readiness probe to pass first).
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut answer = String::new();
    for _ in 0..100 {
        if let Ok(body) = get(&addr)
            && body.contains("Hello from web-server-")
        {
            answer = body;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answer.contains("version 1.27"), "answer: {answer:?}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn sandbox_with_an_ingress_port_serves_the_canary_example_through_its_ingress() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sandbox.yaml");
    let example = std::fs::read_to_string("deploy/examples/canary.yaml").unwrap();
    std::fs::write(&cfg, format!("ingress_port: 0\n---\n{example}")).unwrap();
    let mut child = baton()
        .args(["sandbox", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    let addr = banner
        .lines()
        .find_map(|l| l.strip_prefix("ingress:     http://"))
        .and_then(|l| l.split_once('/'))
        .map(|(addr, _)| addr.to_string())
        .unwrap_or_else(|| panic!("the banner names the ingress: {banner}"));
    // At canary-weight 0 every answer is v1's (bounded wait for the Pods).
    let mut answer = String::new();
    for _ in 0..100 {
        if let Ok(body) = get(&addr)
            && body.contains("Hello from web-v1-")
        {
            answer = body;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answer.contains("version v1"), "answer: {answer:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// A plain HTTP/1.0 GET over a fresh socket; the whole response as text.
fn get(addr: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: sandbox\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn a_bad_sandbox_config_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sandbox.yaml");
    std::fs::write(&cfg, "history: 100\npropagation_dealy: 1s\n").unwrap();
    let out = baton()
        .arg("sandbox")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sandbox.yaml:2"), "stderr: {err}");
    assert!(err.contains("propagation_dealy"), "stderr: {err}");
}
