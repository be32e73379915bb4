//! Profiles: everything a run needs, in one YAML file (DESIGN.md,
//! "Profiles"), parsed, overridden with `--set`, and validated before
//! anything touches a socket or the cluster.
//!
//! Unknown fields and bad values are errors naming the file, the line and
//! the field (`profiles/web.yaml:12:5: load.rat: unknown field ...`).
//! Every default is filled in here, so `profile.resolved.yaml` is the run
//! exactly as it ran.
//!
//! [`LoadedProfile::load_settings`] turns the target and load sections
//! into the load engine's input ([`load_input`]), checking what needs the
//! profile's directory (the CA file) as well.
//!
//! Not for: connecting to a cluster (`cluster::choice`) or running
//! anything.

pub mod load_input;
mod overrides;
mod schema;

pub use load_input::LoadSpec;
pub use overrides::{SetError, apply_set};
pub use schema::*;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// A syntax error, an unknown field or a bad value, where it is.
    #[error("{}{}: {field}: {message}", file.display(), location_text(*line, *column))]
    Invalid {
        file: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        /// The dotted path of the field, e.g. `load.rate`.
        field: String,
        message: String,
    },
    #[error("--set {0}")]
    Set(#[from] SetError),
    /// A value that parsed but does not make sense with the others.
    #[error("{}: {field}: {message}", file.display())]
    Check {
        file: PathBuf,
        field: String,
        message: String,
    },
}

fn location_text(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => " (after --set)".to_string(),
    }
}

/// A profile as loaded, with the directory relative paths resolve against.
#[derive(Clone, Debug)]
pub struct LoadedProfile {
    pub profile: Profile,
    pub file: PathBuf,
    /// The profile's own directory: `apply` files and sandbox manifests
    /// are relative to it.
    pub base_dir: PathBuf,
}

/// Read, override and validate a profile.
pub fn load(file: &Path, sets: &[String]) -> Result<LoadedProfile, ProfileError> {
    let text = std::fs::read_to_string(file).map_err(|source| ProfileError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let profile = parse(&text, file, sets)?;
    let base_dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    Ok(LoadedProfile {
        profile,
        file: file.to_path_buf(),
        base_dir,
    })
}

/// A run directory's `profile.resolved.yaml`: parsed as strictly as a
/// profile (unknown fields are errors), but not re-checked, since it ran
/// as it is and a later baton's stricter checks must not make an old run
/// directory unreadable.
pub fn read_resolved(file: &Path) -> Result<Profile, ProfileError> {
    let text = std::fs::read_to_string(file).map_err(|source| ProfileError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    from_yaml(&text, file)
}

/// [`load`] on text already read; `file` names it in errors.
pub fn parse(text: &str, file: &Path, sets: &[String]) -> Result<Profile, ProfileError> {
    // First the file as written, so errors carry its lines.
    let profile: Profile = from_yaml(text, file)?;
    let profile = if sets.is_empty() {
        profile
    } else {
        // Then the overrides, on the tree; errors name the --set path.
        let mut tree: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| invalid(file, "", &e))?;
        for set in sets {
            apply_set(&mut tree, set)?;
        }
        serde_path_to_error::deserialize(tree).map_err(|e| {
            let field = e.path().to_string();
            ProfileError::Invalid {
                file: file.to_path_buf(),
                line: None,
                column: None,
                field,
                message: e.into_inner().to_string(),
            }
        })?
    };
    profile
        .check()
        .map_err(|(field, message)| ProfileError::Check {
            file: file.to_path_buf(),
            field,
            message,
        })?;
    Ok(profile)
}

fn from_yaml(text: &str, file: &Path) -> Result<Profile, ProfileError> {
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        invalid(file, &field, e.inner())
    })
}

fn invalid(file: &Path, field: &str, e: &serde_norway::Error) -> ProfileError {
    let loc = e.location();
    // serde_norway appends " at line L column C" to its message; the
    // location is shown in front instead.
    let mut message = e.to_string();
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    // serde_norway may also name the field (or its parent) in front.
    if let Some((head, rest)) = message.split_once(": ")
        && !head.is_empty()
        && field.starts_with(head)
    {
        message = rest.to_string();
    }
    ProfileError::Invalid {
        file: file.to_path_buf(),
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
        field: if field.is_empty() || field == "." {
            "(top level)".to_string()
        } else {
            field.to_string()
        },
        message,
    }
}

/// Request headers whose values are not secrets, kept in a run
/// directory's resolved profile; every other header's value is redacted.
const PLAIN_HEADERS: &[&str] = &[
    "host",
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-type",
    "user-agent",
];

/// What a redacted header value reads.
pub const REDACTED: &str = "<redacted: pass --keep-secrets to keep it>";

impl Profile {
    /// The profile with every default filled in, as YAML.
    pub fn resolved_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// The profile as a run directory keeps it: header values other than
    /// plainly harmless ones (`Authorization`, `Cookie`, API keys, ...)
    /// replaced by [`REDACTED`], since run directories are shared as CI
    /// artifacts and attached to postmortems.
    pub fn redacted(&self) -> Profile {
        let mut p = self.clone();
        for step in &mut p.rollout.steps {
            if let crate::cluster::steps::Step::Exec(e) = step {
                for v in e.env.values_mut() {
                    *v = REDACTED.to_string();
                }
            }
        }
        for h in &mut p.target.headers {
            if let Some((name, _)) = h.split_once(':')
                && !PLAIN_HEADERS.contains(&name.trim().to_ascii_lowercase().as_str())
            {
                *h = format!("{}: {REDACTED}", name.trim());
            }
        }
        p
    }
}

#[cfg(test)]
mod tests;
