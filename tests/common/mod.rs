//! A misbehaving HTTP server for the load engine's tests, on loopback.
//!
//! The path picks the behaviour, so one server covers every outcome:
//! `/ok`, `/503`, `/reset-body` (headers, part of the body, then RST),
//! `/short-body` (part of the body, then FIN), `/close` (read the request,
//! close without answering), `/reset` (read the request, RST), `/hang`
//! (read the request, answer nothing for 10 s). It counts accepted
//! connections and requests, so tests can check one connection per
//! request. Blocking std sockets, one thread per connection: simple and
//! plenty for test-sized loads.
#![allow(dead_code)]

pub mod browser;
pub mod relay;
pub mod tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A loopback listener that hands each accepted connection to `handle`
/// on a thread of its own, counts the connections, and stops when
/// dropped. The plain and the TLS test servers are both this.
pub struct Listening {
    pub addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Listening {
    pub fn start(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Listening {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (accepted.clone(), stop.clone());
        let handle = Arc::new(handle);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                a.fetch_add(1, Ordering::Relaxed);
                let handle = handle.clone();
                std::thread::spawn(move || handle(conn));
            }
        });
        Listening {
            addr,
            accepted,
            stop,
        }
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// The client addresses connections came from.
    pub peers: Arc<std::sync::Mutex<std::collections::BTreeSet<std::net::IpAddr>>>,
    requests: Arc<AtomicU64>,
    listening: Listening,
}

impl TestServer {
    pub fn start() -> TestServer {
        let requests = Arc::new(AtomicU64::new(0));
        let peers = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        let (r, p) = (requests.clone(), peers.clone());
        let listening = Listening::start(move |conn| {
            if let Ok(peer) = conn.peer_addr() {
                p.lock().unwrap().insert(peer.ip());
            }
            serve(conn, &r)
        });
        TestServer {
            addr: listening.addr,
            peers,
            requests,
            listening,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn accepted(&self) -> u64 {
        self.listening.accepted()
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// A loopback port nothing listens on.
pub fn refused_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Read one request head; `None` when the peer closed first.
fn read_head(conn: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn rst(conn: TcpStream) {
    let s = socket2::Socket::from(conn);
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

fn serve(mut conn: TcpStream, requests: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(15)));
    loop {
        let Some(head) = read_head(&mut conn) else {
            return;
        };
        requests.fetch_add(1, Ordering::Relaxed);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let close = head.to_ascii_lowercase().contains("connection: close");
        let conn_hdr = if close { "close" } else { "keep-alive" };
        match path.as_str() {
            "/ok" => {
                let body = "Hello from pod-a version 1.28\n";
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nx-pod-name: pod-a\r\nConnection: {conn_hdr}\r\n\r\n{body}",
                    body.len()
                );
                if close {
                    return;
                }
            }
            "/503" => {
                let _ = write!(
                    conn,
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                return;
            }
            "/reset-body" => {
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789"
                );
                let _ = conn.flush();
                std::thread::sleep(Duration::from_millis(20));
                return rst(conn);
            }
            "/short-body" => {
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789"
                );
                return;
            }
            "/close" => return,
            "/reset" => return rst(conn),
            "/hang" => {
                std::thread::sleep(Duration::from_secs(10));
                return;
            }
            _ => {
                let _ = write!(
                    conn,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                return;
            }
        }
    }
}

/// The rows of a run's `requests.csv`, as string maps.
pub fn read_requests(dir: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    read_csv(&dir.join("requests.csv"))
}

/// Every row of a CSV file as column name → value.
pub fn read_csv(path: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("{} is readable: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|row| {
            let row = row.expect("a well-formed CSV row");
            headers
                .iter()
                .map(String::from)
                .zip(row.iter().map(String::from))
                .collect()
        })
        .collect()
}

pub fn read_summary(dir: &std::path::Path) -> serde_json::Value {
    read_json(&dir.join("summary.json"))
}

/// A JSON file, parsed.
pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} is readable: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is JSON: {e}", path.display()))
}

/// A copy of a directory tree (a fixture run directory, to re-render).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The built baton, with no KUBECONFIG from the environment: these runs
/// are on the simulator unless a test says otherwise.
pub fn baton() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("baton"));
    c.env_remove("KUBECONFIG").env_remove("GITHUB_ACTIONS");
    c
}

/// `baton run PROFILE` on the cluster of `kubeconfig`, quiet, into `out`;
/// stderr kept for the assertions' messages.
pub fn spawn_run(
    profile: &std::path::Path,
    kubeconfig: &std::path::Path,
    out: &std::path::Path,
) -> std::process::Child {
    baton()
        .arg("run")
        .arg(profile)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-q", "-o"])
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}
