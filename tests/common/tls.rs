//! An https server for the load engine's TLS tests, on loopback: a
//! self-signed certificate for `127.0.0.1` and `localhost` (its PEM
//! written to a file, for `--cacert`), blocking rustls on std sockets,
//! one thread per connection. `/ok` answers 200 as the plain server does.
//! Built to reset the handshake instead, it sends a TCP RST as soon as
//! the ClientHello arrives; built as a plain HTTP port, it answers the
//! ClientHello with `400 Bad Request` as nginx does.

use super::Listening;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct TlsServer {
    pub addr: SocketAddr,
    /// The server's certificate, PEM: a CA file that trusts it.
    pub ca_pem: PathBuf,
    listening: Listening,
    _dir: tempfile::TempDir,
}

/// What the server does with each connection.
#[derive(Clone, Copy, PartialEq)]
pub enum TlsMode {
    Serve,
    ResetInHandshake,
    PlainHttp,
}

impl TlsServer {
    pub fn start(mode: TlsMode) -> TlsServer {
        let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("self-signed certificate");
        let dir = tempfile::tempdir().unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, key.cert.pem()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![key.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
            )
            .unwrap();
        let config = Arc::new(config);
        let listening = Listening::start(move |conn| serve(conn, config.clone(), mode));
        TlsServer {
            addr: listening.addr,
            ca_pem,
            listening,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{}", self.addr, path)
    }

    pub fn accepted(&self) -> u64 {
        self.listening.accepted()
    }
}

fn serve(mut tcp: TcpStream, config: Arc<rustls::ServerConfig>, mode: TlsMode) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let mut hello = [0u8; 5];
    match mode {
        TlsMode::Serve => {}
        TlsMode::ResetInHandshake => {
            let _ = tcp.read(&mut hello);
            let s = socket2::Socket::from(tcp);
            let _ = s.set_linger(Some(Duration::ZERO));
            return;
        }
        TlsMode::PlainHttp => {
            let _ = tcp.read(&mut hello);
            let _ = tcp.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
    }
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tls.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            // A client that gave up on the handshake (untrusted
            // certificate) ends here.
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let body = "Hello from pod-tls version 2.0\n";
    let _ = if path == "/ok" {
        write!(
            tls,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nx-pod-name: pod-tls\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        write!(
            tls,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    };
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
