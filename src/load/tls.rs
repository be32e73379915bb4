//! TLS for `https://` targets: the client configuration, built once per
//! run, and the handshake on a connected socket.
//!
//! Trust comes from the system's certificate store plus any `--cacert`
//! file (a cluster's own CA, a test CA), or is switched off with
//! `--insecure` for self-signed endpoints. rustls with the ring provider,
//! the same stack the cluster client already uses.
//!
//! Not for: deciding what a handshake failure means for a request (see
//! `outcome::classify_io_error`: the TLS layer reports its failures as
//! InvalidData).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;

/// How to trust the target's certificate.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Extra CA certificates (PEM), on top of the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (for self-signed test endpoints).
    pub insecure: bool,
}

/// Bad TLS settings; the message names the flag or file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--cacert `{}`: {why}", path.display())]
    CaFile { path: PathBuf, why: String },
    #[error("TLS setup: {0}")]
    Setup(String),
    #[error(
        "URL `{url}`: no CA certificates to check the server against (none in the system store); \
         pass --cacert FILE or, for a test endpoint, --insecure"
    )]
    NoRoots { url: String },
}

/// What every TLS connection of a run shares.
#[derive(Clone)]
pub struct TlsTarget {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Check that `path` holds PEM CA certificates, as a run will need them.
pub fn check_ca_file(path: &Path) -> Result<(), TlsError> {
    read_cas(path).map(|_| ())
}

fn read_cas(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |why: String| TlsError::CaFile {
        path: path.to_path_buf(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(certs)
}

impl TlsTarget {
    /// The configuration for `host` (a DNS name or an IP address, as the
    /// URL has it).
    pub fn new(url: &str, host: &str, opts: &TlsOptions) -> Result<TlsTarget, TlsError> {
        let server_name = ServerName::try_from(host.to_string()).map_err(|e| {
            TlsError::Setup(format!("`{host}` is not a valid TLS server name: {e}"))
        })?;
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let mut config = if opts.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            // Unreadable entries in the system store are skipped, as
            // curl and kubectl do.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if let Some(path) = &opts.ca_file {
                for cert in read_cas(path)? {
                    roots.add(cert).map_err(|e| TlsError::CaFile {
                        path: path.clone(),
                        why: e.to_string(),
                    })?;
                }
            }
            if roots.is_empty() {
                return Err(TlsError::NoRoots { url: url.into() });
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsTarget {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// The TLS handshake over a connected socket.
    pub async fn handshake(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        self.connector
            .connect(self.server_name.clone(), stream)
            .await
    }
}

/// `--insecure`: any certificate is accepted; signatures are still
/// checked so the handshake itself is sound.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_or_not_pem_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let opts = TlsOptions {
            ca_file: Some(missing.clone()),
            insecure: false,
        };
        let e = TlsTarget::new("https://x/", "x", &opts).unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");

        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello\n").unwrap();
        let opts = TlsOptions {
            ca_file: Some(junk),
            insecure: false,
        };
        let e = TlsTarget::new("https://x/", "x", &opts).unwrap_err();
        assert!(
            e.to_string().contains("junk.pem") && e.to_string().contains("no PEM"),
            "{e}"
        );
    }

    #[test]
    fn insecure_needs_no_roots_and_ip_hosts_are_valid_names() {
        let opts = TlsOptions {
            ca_file: None,
            insecure: true,
        };
        assert!(TlsTarget::new("https://127.0.0.1/", "127.0.0.1", &opts).is_ok());
        assert!(TlsTarget::new("https://[::1]/", "::1", &opts).is_ok());
    }
}
