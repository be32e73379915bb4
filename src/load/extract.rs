//! Who answered and with which version: a header's value, or the first
//! capture group of a regex over the response body.
//!
//! Mirrors the profile's `backend_from` / `version_from`. Values are
//! interned so a million records naming three pods hold three strings.

use regex::bytes::Regex;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

/// Where to find a value in a response.
#[derive(Clone, Debug)]
pub enum Extractor {
    Header(http::HeaderName),
    /// The first capture group (or the whole match, without groups).
    BodyRegex(Regex),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExtractorError {
    #[error("expected `header:NAME` or `body:REGEX`, got `{0}`")]
    Form(String),
    #[error("`{0}` is not a valid header name")]
    Header(String),
    #[error("invalid regex: {0}")]
    Regex(String),
}

impl FromStr for Extractor {
    type Err = ExtractorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(name) = s.strip_prefix("header:") {
            http::HeaderName::from_str(name.trim())
                .map(Extractor::Header)
                .map_err(|_| ExtractorError::Header(name.to_string()))
        } else if let Some(re) = s.strip_prefix("body:") {
            Extractor::body_regex(re)
        } else {
            Err(ExtractorError::Form(s.to_string()))
        }
    }
}

impl Extractor {
    pub fn body_regex(re: &str) -> Result<Self, ExtractorError> {
        Regex::new(re)
            .map(Extractor::BodyRegex)
            .map_err(|e| ExtractorError::Regex(e.to_string()))
    }

    pub fn needs_body(&self) -> bool {
        matches!(self, Extractor::BodyRegex(_))
    }

    /// The raw value, if the response has one.
    pub fn find<'a>(&self, headers: &'a http::HeaderMap, body: &'a [u8]) -> Option<&'a [u8]> {
        match self {
            Extractor::Header(name) => headers.get(name).map(|v| v.as_bytes()),
            Extractor::BodyRegex(re) => {
                let caps = re.captures(body)?;
                caps.get(1).or_else(|| caps.get(0)).map(|m| m.as_bytes())
            }
        }
    }
}

/// Interns extracted values. Bounded: past `limit` distinct values, new
/// ones are still returned, just not remembered.
#[derive(Debug)]
pub struct Interner {
    seen: HashMap<Box<[u8]>, Arc<str>>,
    limit: usize,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            seen: HashMap::new(),
            limit: 4096,
        }
    }
}

impl Interner {
    pub fn intern(&mut self, raw: &[u8]) -> Arc<str> {
        if let Some(v) = self.seen.get(raw) {
            return v.clone();
        }
        let v: Arc<str> = Arc::from(String::from_utf8_lossy(raw).as_ref());
        if self.seen.len() < self.limit {
            self.seen.insert(raw.into(), v.clone());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_extractor_reads_the_named_header() {
        let e: Extractor = "header:x-pod-name".parse().unwrap();
        let mut h = http::HeaderMap::new();
        h.insert("x-pod-name", "web-7f9-abc".parse().unwrap());
        assert_eq!(e.find(&h, b""), Some(&b"web-7f9-abc"[..]));
        assert!(!e.needs_body());
    }

    #[test]
    fn body_regex_takes_the_first_group() {
        let e: Extractor = r"body:version (\S+)".parse().unwrap();
        let h = http::HeaderMap::new();
        assert_eq!(
            e.find(&h, b"Hello from web-1 version 1.28\n"),
            Some(&b"1.28"[..])
        );
        assert_eq!(e.find(&h, b"nothing here"), None);
        assert!(e.needs_body());
    }

    #[test]
    fn malformed_specs_are_rejected_with_the_reason() {
        assert!(matches!(
            "x-pod-name".parse::<Extractor>(),
            Err(ExtractorError::Form(_))
        ));
        assert!(matches!(
            "header:bad name".parse::<Extractor>(),
            Err(ExtractorError::Header(_))
        ));
        assert!(matches!(
            "body:(".parse::<Extractor>(),
            Err(ExtractorError::Regex(_))
        ));
    }

    #[test]
    fn interner_shares_one_string_per_value() {
        let mut i = Interner::default();
        let a = i.intern(b"pod-a");
        let b = i.intern(b"pod-a");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*i.intern(b"pod-b"), "pod-b");
    }
}
