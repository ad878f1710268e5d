//! Variable interpolation in compose files, as the Compose Specification
//! defines it: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alternative}`, `${VAR+alternative}`
//! and `$$` for a literal dollar.
//!
//! Interpolation runs on the raw YAML values of one file before anything is
//! merged or typed, so a substituted value goes through the same parsing as a
//! literal one (`ports: ["${PORT}:80"]`). Defaults may themselves hold
//! variables (`${A:-${B}}`), which Compose also allows.

use std::collections::BTreeMap;

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${VAR:?msg}` / `${VAR?msg}` with the variable unset (or empty).
    #[error("required variable {name} is missing a value: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The text after `?`.
        message: String,
    },
    /// `${` without its `}` or with a name that is not one.
    #[error(
        "invalid interpolation format for {text:?}; you may need to escape any $ with another $"
    )]
    Syntax {
        /// The string as written.
        text: String,
    },
}

/// Where variables come from: the process environment over the `.env` file.
pub type Environment = BTreeMap<String, String>;

/// Replaces every variable reference in `text`.
///
/// # Errors
/// [`InterpolateError::Required`] for a required variable that is unset,
/// [`InterpolateError::Syntax`] for an unterminated or malformed `${...}`.
pub fn interpolate(text: &str, env: &Environment) -> Result<String, InterpolateError> {
    let syntax = || InterpolateError::Syntax {
        text: text.to_string(),
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = matching_brace(r).ok_or_else(syntax)?;
            out.push_str(&braced(&r[..end], env, text)?);
            rest = &r[end + 1..];
        } else {
            let len = rest
                .char_indices()
                .find(|(j, c)| {
                    !(c.is_ascii_alphanumeric() || *c == '_') || (*j == 0 && c.is_ascii_digit())
                })
                .map_or(rest.len(), |(j, _)| j);
            if len == 0 {
                // A lone `$` before a non-name character stays, as in Compose.
                out.push('$');
            } else {
                out.push_str(env.get(&rest[..len]).map_or("", String::as_str));
                rest = &rest[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${`, counting nested `${...}`.
fn matching_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of one `${...}` body.
fn braced(body: &str, env: &Environment, text: &str) -> Result<String, InterpolateError> {
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let name = &body[..name_len];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(InterpolateError::Syntax {
            text: text.to_string(),
        });
    }
    let op = &body[name_len..];
    let value = env.get(name);
    let set = value.is_some();
    let non_empty = value.is_some_and(|v| !v.is_empty());
    let own = || value.cloned().unwrap_or_default();
    let nested = |arg: &str| interpolate(arg, env);
    let required = |arg: &str| -> Result<String, InterpolateError> {
        Err(InterpolateError::Required {
            name: name.to_string(),
            message: nested(arg)?,
        })
    };
    if op.is_empty() {
        return Ok(own());
    }
    if let Some(arg) = op.strip_prefix(":-") {
        return if non_empty { Ok(own()) } else { nested(arg) };
    }
    if let Some(arg) = op.strip_prefix(":?") {
        return if non_empty { Ok(own()) } else { required(arg) };
    }
    if let Some(arg) = op.strip_prefix(":+") {
        return if non_empty {
            nested(arg)
        } else {
            Ok(String::new())
        };
    }
    if let Some(arg) = op.strip_prefix('-') {
        return if set { Ok(own()) } else { nested(arg) };
    }
    if let Some(arg) = op.strip_prefix('?') {
        return if set { Ok(own()) } else { required(arg) };
    }
    if let Some(arg) = op.strip_prefix('+') {
        return if set { nested(arg) } else { Ok(String::new()) };
    }
    Err(InterpolateError::Syntax {
        text: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        [("A", "a"), ("EMPTY", ""), ("PORT", "8080")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_and_braced_variables_are_replaced() {
        let e = env();
        assert_eq!(interpolate("x$A-y", &e).unwrap(), "xa-y");
        assert_eq!(interpolate("${PORT}:80", &e).unwrap(), "8080:80");
        assert_eq!(interpolate("$UNSET.", &e).unwrap(), ".");
        assert_eq!(interpolate("cost $$5 $", &e).unwrap(), "cost $5 $");
    }

    #[test]
    fn defaults_distinguish_unset_from_empty() {
        let e = env();
        assert_eq!(interpolate("${EMPTY:-d}", &e).unwrap(), "d");
        assert_eq!(interpolate("${EMPTY-d}", &e).unwrap(), "");
        assert_eq!(interpolate("${UNSET-d}", &e).unwrap(), "d");
        assert_eq!(interpolate("${UNSET:-${A}x}", &e).unwrap(), "ax");
        assert_eq!(interpolate("${A:+alt}", &e).unwrap(), "alt");
        assert_eq!(interpolate("${EMPTY:+alt}", &e).unwrap(), "");
        assert_eq!(interpolate("${EMPTY+alt}", &e).unwrap(), "alt");
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        let e = env();
        assert_eq!(
            interpolate("${UNSET:?set it please}", &e).unwrap_err(),
            InterpolateError::Required {
                name: "UNSET".into(),
                message: "set it please".into()
            }
        );
        assert!(interpolate("${EMPTY:?no}", &e).is_err());
        assert_eq!(interpolate("${EMPTY?no}", &e).unwrap(), "");
        assert_eq!(interpolate("${A:?no}", &e).unwrap(), "a");
    }

    #[test]
    fn malformed_references_are_syntax_errors() {
        let e = env();
        assert!(matches!(
            interpolate("${A", &e),
            Err(InterpolateError::Syntax { .. })
        ));
        assert!(matches!(
            interpolate("${}", &e),
            Err(InterpolateError::Syntax { .. })
        ));
        assert!(matches!(
            interpolate("${A%x}", &e),
            Err(InterpolateError::Syntax { .. })
        ));
    }
}
