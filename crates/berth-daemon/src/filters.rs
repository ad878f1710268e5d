//! The Engine API's `filters` query parameter: a JSON object mapping a filter name to
//! its values, either `{"name":{"value":true}}` (current clients) or
//! `{"name":["value"]}` (API < 1.22 clients and some libraries).

use std::collections::{BTreeMap, BTreeSet};

use crate::DaemonError;

/// Parsed filters: name → set of values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, BTreeSet<String>>);

impl Filters {
    /// Parses the query value; empty means no filters.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] for JSON of another shape.
    pub fn parse(json: &str) -> Result<Self, DaemonError> {
        if json.trim().is_empty() {
            return Ok(Filters::default());
        }
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| DaemonError::invalid(format!("invalid filter: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| DaemonError::invalid("invalid filter: not a JSON object"))?;
        let mut out = BTreeMap::new();
        for (name, values) in obj {
            let set: BTreeSet<String> = match values {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, v)| v.as_bool() != Some(false))
                    .map(|(k, _)| k.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => return Err(DaemonError::invalid(format!("invalid filter '{name}'"))),
            };
            out.insert(name.clone(), set);
        }
        Ok(Filters(out))
    }

    /// Fails on any filter name outside `allowed`, with Docker's message.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] naming the first unknown filter.
    pub fn validate(&self, allowed: &[&str]) -> Result<(), DaemonError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(DaemonError::invalid(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    /// Whether a filter name is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The values of a filter (empty when absent).
    pub fn get(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.get(name).into_iter().flatten().map(String::as_str)
    }

    /// A boolean filter: `None` when absent.
    ///
    /// # Errors
    /// A value other than true/false/1/0, in Docker's words.
    pub fn get_bool(&self, name: &str) -> Result<Option<bool>, DaemonError> {
        let Some(values) = self.0.get(name) else {
            return Ok(None);
        };
        let mut result = None;
        for v in values {
            let b = match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(DaemonError::invalid(format!("invalid filter '{name}={v}'"))),
            };
            result = Some(result.unwrap_or(false) || b);
        }
        Ok(result)
    }

    /// Docker's `label` filter semantics: every value (`key` or `key=value`) must match
    /// `labels`.
    pub fn match_labels(&self, name: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.get(name).all(|want| match want.split_once('=') {
            Some((k, v)) => labels.and_then(|l| l.get(k)).is_some_and(|have| have == v),
            None => labels.is_some_and(|l| l.contains_key(want)),
        })
    }
}

/// Parses a `since`/`until` value (unix time, RFC 3339, or a duration ago).
///
/// # Errors
/// `InvalidArgument` in Docker's words.
pub fn parse_time(value: &str) -> Result<chrono::DateTime<chrono::Utc>, DaemonError> {
    crate::images::parse_timestamp(value)
}

/// A time as Go's RFC3339Nano prints it.
pub fn go_time(t: chrono::DateTime<chrono::Utc>) -> String {
    crate::images::go_time(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_shapes() {
        let a = Filters::parse(r#"{"dangling":{"true":true},"label":{"a=b":true}}"#).unwrap();
        let b = Filters::parse(r#"{"dangling":["true"],"label":["a=b"]}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get_bool("dangling").unwrap(), Some(true));
        assert!(a.validate(&["dangling"]).is_err());
        assert!(Filters::parse("[1]").is_err());
    }

    #[test]
    fn label_matching() {
        let f = Filters::parse(r#"{"label":["a","b=2"]}"#).unwrap();
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        assert!(!f.match_labels("label", Some(&l)));
        l.insert("b".to_string(), "2".to_string());
        assert!(f.match_labels("label", Some(&l)));
        assert!(!f.match_labels("label", None));
    }
}
