//! The profile's `target` and `load` sections as the load engine's input
//! ([`LoadSpec`]), checked before any cluster is touched: the extractors
//! compile, the CA file reads as PEM certificates, the headers parse.
//! What is left to know is the URL when the profile leaves it to the
//! sandbox (its Service's NodePort), and where the records go.
//!
//! Not for: running the load (`load`) or choosing the cluster
//! (`cluster::choice`).

use super::{LoadedProfile, ProfileError};
use crate::load::client::StatusSet;
use crate::load::plan::{self, LoadInput, LoadPlan, PlanError};
use crate::load::tls::{self, TlsOptions};
use std::path::Path;
use std::time::Duration;

/// A profile's load, everything but the URL and the output folder.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    input: LoadInput,
}

impl LoadedProfile {
    /// The profile's load as the engine takes it; the error names the
    /// profile file and the field.
    pub fn load_settings(&self) -> Result<LoadSpec, ProfileError> {
        let p = &self.profile;
        let check = |field: &str, message: String| ProfileError::Check {
            file: self.file.clone(),
            field: field.to_string(),
            message,
        };
        let extractor = |spec: &Option<super::ExtractorSpec>, field: &str| {
            spec.as_ref()
                .map(|s| s.compile())
                .transpose()
                .map_err(|e| check(field, e))
        };
        for h in &p.target.headers {
            plan::parse_header(h)
                .map_err(|_| check("target.headers", format!("`{h}`: expected `Name: value`")))?;
        }
        for ip in &p.load.source_ips {
            plan::check_source_ip(*ip).map_err(|why| check("load.source_ips", why))?;
        }
        let ca_file = p.target.ca_file.as_ref().map(|f| self.base_dir.join(f));
        if let Some(path) = &ca_file {
            tls::check_ca_file(path).map_err(|e| match e {
                tls::TlsError::CaFile { path, why } => {
                    check("target.ca_file", format!("{}: {why}", path.display()))
                }
                other => check("target.ca_file", other.to_string()),
            })?;
        }
        Ok(LoadSpec {
            input: LoadInput {
                url: String::new(),
                rate: p.load.rate,
                concurrency: p.load.concurrency,
                requests: None,
                duration: None,
                timeout: p.load.timeout,
                connect_timeout: p.load.connect_timeout,
                keepalive: p.load.keepalive,
                headers: p.target.headers.clone(),
                method: "GET".into(),
                // Statuses are checked to be 100..600 when parsed.
                expect_status: Some(StatusSet(
                    p.target.expect_status.iter().map(|&s| (s, s)).collect(),
                )),
                backend_from: extractor(&p.target.backend_from, "target.backend_from")?,
                version_from: extractor(&p.target.version_from, "target.version_from")?,
                source_ips: p.load.source_ips.clone(),
                out_dir: Default::default(),
                workers: None,
                tls: TlsOptions {
                    ca_file,
                    insecure: p.target.insecure_skip_tls_verify,
                },
                open_files: None,
            },
        })
    }
}

impl LoadSpec {
    /// The plan for `url`, recording into `out_dir`, stopped by its caller
    /// (`bound` is only a safety net: the status line does not show it as
    /// the run's length). `open_files` is the limit the run will have.
    pub fn plan(
        &self,
        url: &str,
        out_dir: &Path,
        bound: Duration,
        open_files: Option<u64>,
    ) -> Result<LoadPlan, PlanError> {
        let mut input = self.input.clone();
        input.url = url.to_string();
        input.out_dir = out_dir.to_path_buf();
        input.duration = Some(bound);
        input.open_files = open_files;
        let mut plan = LoadPlan::build(input)?;
        plan.duration_is_bound = true;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use crate::profile;
    use std::path::Path;

    fn loaded(extra_target: &str) -> profile::LoadedProfile {
        let text = format!(
            "name: t\nsandbox: {{}}\ntarget: {{service: web{extra_target}}}\nrollout: {{deployment: web, steps: [{{sleep: 1s}}]}}\n"
        );
        profile::LoadedProfile {
            profile: profile::parse(&text, Path::new("p.yaml"), &[]).unwrap(),
            file: "p.yaml".into(),
            base_dir: std::env::temp_dir(),
        }
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = loaded(&format!(", ca_file: {}", ca.display()))
            .load_settings()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.yaml: target.ca_file: "), "{e}");
        let e = loaded(", ca_file: /nonexistent/ca.pem")
            .load_settings()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("target.ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn a_header_without_a_colon_is_refused_naming_the_field() {
        let e = loaded(", headers: ['Authorization Bearer x']")
            .load_settings()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("target.headers") && e.contains("Name: value"),
            "{e}"
        );
    }

    #[test]
    fn a_valid_profile_plans_a_load_against_the_url_it_is_given() {
        let spec = loaded("").load_settings().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let plan = spec
            .plan(
                "http://127.0.0.1:8080/x",
                dir.path(),
                std::time::Duration::from_secs(5),
                None,
            )
            .unwrap();
        assert_eq!(plan.url, "http://127.0.0.1:8080/x");
        assert!(plan.duration_is_bound);
        assert_eq!(plan.template.addr.port(), 8080);
    }
}
