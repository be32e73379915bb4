//! Chooses and connects to a cluster the way kubectl does: an explicit
//! kubeconfig file, else `KUBECONFIG`, else `~/.kube/config`, else the
//! in-cluster service account; `--context` and `--namespace` override.

use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("cannot find a cluster: {0} (pass --kubeconfig, set KUBECONFIG, or run inside a Pod)")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("cannot build a client: {0}")]
    Client(#[source] kube::Error),
}

/// A connected client and the namespace to work in.
pub struct Cluster {
    pub client: kube::Client,
    pub namespace: String,
    /// The API server's URL, for messages about reaching it.
    pub server: String,
}

/// kube-rs retries 429, 503 and 504 by itself, up to 15 times with a
/// backoff growing to minutes. baton wants what the API server said: a
/// budget's refusal of an eviction is a fact of the run (the `drain`
/// step shows and retries it on its own schedule), and an API server
/// answering 503 is one baton cannot see (its liveness probe must know
/// at once, not after retries). Every wait in baton has its own loop.
pub fn no_silent_retry(mut config: kube::Config) -> kube::Config {
    config.default_retry = false;
    config
}

pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    namespace: Option<&str>,
) -> Result<Cluster, ConnectError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let err = |source| ConnectError::Kubeconfig {
                path: path.to_path_buf(),
                source,
            };
            let kc = Kubeconfig::read_from(path).map_err(err)?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(err)?
        }
        None if context.is_some() => {
            kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| ConnectError::Kubeconfig {
                    path: std::env::var_os("KUBECONFIG")
                        .map_or("~/.kube/config".into(), PathBuf::from),
                    source: e,
                })?
        }
        None => kube::Config::infer().await.map_err(ConnectError::Infer)?,
    };
    let namespace = namespace
        .map(str::to_string)
        .unwrap_or_else(|| config.default_namespace.clone());
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(no_silent_retry(config)).map_err(ConnectError::Client)?;
    Ok(Cluster {
        client,
        namespace,
        server,
    })
}
