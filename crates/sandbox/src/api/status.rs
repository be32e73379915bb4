//! API errors as Kubernetes `Status` objects (kind Status, status Failure,
//! reason, code), the way clients such as kube-rs and kubectl decode them.

use serde_json::{Value, json};

use super::resources::ResourceDef;
use crate::store::StoreError;

/// A failed request, answered with a `Status` body and its HTTP code.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    /// Kubernetes' `StatusReason`, e.g. `NotFound`.
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn not_found_path(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    pub fn method_not_allowed(verb: &str, res: &ResourceDef) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method on the requested resource ({verb} {})",
                res.qualified()
            ),
        )
    }

    pub fn not_found(res: &ResourceDef, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", res.qualified()),
        )
        .with_details(res, name)
    }

    pub fn invalid(res: &ResourceDef, name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {message}", res.kind_qualified()),
        )
        .with_details(res, name)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    fn with_details(mut self, res: &ResourceDef, name: &str) -> Self {
        let mut d = json!({"name": name, "kind": res.plural});
        if !res.group.is_empty() {
            d["group"] = res.group.into();
        }
        self.details = Some(d);
        self
    }

    /// Maps a store error for `res`/`name`.
    pub fn from_store(e: StoreError, res: &ResourceDef, name: &str) -> Self {
        match e {
            StoreError::NotFound { .. } => Self::not_found(res, name),
            StoreError::AlreadyExists { .. } => Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", res.qualified()),
            )
            .with_details(res, name),
            StoreError::Conflict { .. } => Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    res.qualified()
                ),
            )
            .with_details(res, name),
            StoreError::Gone { rv, oldest } => {
                Self::gone(format!("too old resource version: {rv} ({oldest})"))
            }
            StoreError::Invalid(m) => Self::invalid(res, name, m),
            StoreError::Serde(e) => Self::bad_request(format!("the object does not fit its type: {e}")),
        }
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}
