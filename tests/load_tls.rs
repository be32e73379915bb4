//! `baton load` against https targets on loopback: a fresh TLS handshake
//! per request, trust from `--cacert` or `--insecure`, and handshake
//! failures classified as `tls` (or by what the socket did) in the
//! connect phase.

mod common;

use assert_cmd::Command;
use common::tls::{TlsMode, TlsServer};
use common::{TestServer, read_requests, read_summary};

/// `baton load URL -n 40 --rate 400` plus `extra`; the exit code, the
/// rows of requests.csv and summary.json.
fn load(
    url: &str,
    extra: &[&str],
) -> (
    Option<i32>,
    Vec<std::collections::HashMap<String, String>>,
    serde_json::Value,
    String,
) {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::cargo_bin("baton")
        .unwrap()
        .args(["load", url, "--rate", "400", "-n", "40", "-q", "-o"])
        .arg(dir.path())
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    if o.status.code() == Some(2) {
        return (Some(2), vec![], serde_json::Value::Null, stderr);
    }
    (
        o.status.code(),
        read_requests(dir.path()),
        read_summary(dir.path()),
        stderr,
    )
}

#[test]
fn https_with_the_servers_ca_makes_one_handshake_per_request() {
    let server = TlsServer::start(TlsMode::Serve);
    let ca = server.ca_pem.to_str().unwrap().to_string();
    let (code, rows, summary, stderr) = load(
        &server.url("/ok"),
        &["--cacert", &ca, "--backend-from", "header:x-pod-name"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(rows.len(), 40);
    assert_eq!(summary["outcomes"]["ok"], 40);
    // No reuse: as many TCP connections (and handshakes) as requests.
    assert_eq!(server.accepted(), 40);
    for r in &rows {
        assert_eq!(r["outcome"], "ok");
        assert_eq!(r["backend"], "pod-tls");
        let connect: u64 = r["connect_us"].parse().unwrap();
        let ttfb: u64 = r["ttfb_us"].parse().unwrap();
        assert!(connect <= ttfb, "the handshake is in connect: {r:?}");
    }
}

#[test]
fn an_untrusted_certificate_is_a_tls_failure_and_insecure_accepts_it() {
    let server = TlsServer::start(TlsMode::Serve);
    let (code, rows, summary, stderr) = load(&server.url("/ok"), &[]);
    assert_eq!(code, Some(1), "the target failed every request: {stderr}");
    assert_eq!(rows.len(), 40);
    assert_eq!(summary["outcomes"]["tls"], 40);
    assert!(
        rows.iter()
            .all(|r| r["outcome"] == "tls" && r["phase"] == "connect"),
        "{:?}",
        rows[0]
    );

    let (code, _, summary, stderr) = load(&server.url("/ok"), &["--insecure"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["outcomes"]["ok"], 40);
}

#[test]
fn a_plain_http_answer_to_the_client_hello_is_a_tls_failure() {
    let server = TlsServer::start(TlsMode::PlainHttp);
    let (code, rows, _, stderr) = load(&server.url("/ok"), &["-k"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(rows.len(), 40);
    for r in &rows {
        assert_eq!(
            (r["outcome"].as_str(), r["phase"].as_str()),
            ("tls", "connect"),
            "{r:?}"
        );
    }
}

#[test]
fn a_handshake_nobody_answers_times_out_in_the_connect_phase() {
    // The plain test server waits for a request head that a ClientHello
    // never completes.
    let silent = TestServer::start();
    let url = format!("https://{}/ok", silent.addr);
    let (code, rows, _, stderr) = load(&url, &["-k", "--connect-timeout", "300ms"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(rows.len(), 40);
    for r in &rows {
        assert_eq!(
            (r["outcome"].as_str(), r["phase"].as_str()),
            ("connect_timeout", "connect"),
            "{r:?}"
        );
        assert!(r["total_us"].parse::<u64>().unwrap() < 1_000_000, "{r:?}");
    }
}

#[test]
fn a_reset_during_the_handshake_is_a_reset_in_the_connect_phase() {
    let server = TlsServer::start(TlsMode::ResetInHandshake);
    let (code, rows, summary, stderr) = load(&server.url("/ok"), &["-k"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(rows.len(), 40);
    assert_eq!(summary["outcomes"]["reset"], 40, "{:?}", rows[0]);
    assert!(rows.iter().all(|r| r["phase"] == "connect"));
}

#[test]
fn a_missing_or_broken_ca_file_exits_2_naming_it() {
    let (code, _, _, stderr) = load("https://127.0.0.1:9/", &["--cacert", "/nonexistent/ca.pem"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--cacert `/nonexistent/ca.pem`"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let (code, _, _, stderr) = load(
        "https://127.0.0.1:9/",
        &["--cacert", junk.to_str().unwrap()],
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("junk.pem") && stderr.contains("PEM"),
        "{stderr}"
    );
}
