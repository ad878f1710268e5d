//! `.env` and `env_file:` files: `KEY=VALUE` lines, as Compose reads them.
//!
//! Blank lines and `#` comments are skipped, `export ` prefixes are allowed,
//! single-quoted values are literal, double-quoted ones take `\n`, `\t`,
//! `\"` and `\\` escapes, and an unquoted value ends at ` #`. A line with a
//! bare `KEY` (no `=`) names a variable whose value comes from the
//! environment, which callers resolve.

/// One parsed file: (key, value) in file order; `None` for a bare `KEY`.
pub type EnvLines = Vec<(String, Option<String>)>;

/// A line that is not `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: unexpected character in variable name {name:?}")]
pub struct DotenvError {
    /// 1-based line number.
    pub line: usize,
    /// What stood where a name should be.
    pub name: String,
}

/// Parses the text of an env file.
///
/// # Errors
/// [`DotenvError`] for a line whose key is not a variable name.
pub fn parse(text: &str) -> Result<EnvLines, DotenvError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (line.trim(), None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(DotenvError {
                line: i + 1,
                name: key.to_string(),
            });
        }
        out.push((key.to_string(), value.map(unquote)));
    }
    Ok(out)
}

fn unquote(v: &str) -> String {
    let v = v.trim_start();
    if let Some(body) = v.strip_prefix('\'') {
        return body
            .rfind('\'')
            .map_or(body, |end| &body[..end])
            .to_string();
    }
    if let Some(body) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                },
                c => out.push(c),
            }
        }
        return out;
    }
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    v.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_like_compose() {
        let text =
            "# comment\n\nA=1\nexport B = two words # note\nC='lit $x # y'\nD=\"a\\nb\"\nE=\nF\n";
        let got = parse(text).unwrap();
        let want: EnvLines = vec![
            ("A".into(), Some("1".into())),
            ("B".into(), Some("two words".into())),
            ("C".into(), Some("lit $x # y".into())),
            ("D".into(), Some("a\nb".into())),
            ("E".into(), Some(String::new())),
            ("F".into(), None),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_key_with_spaces_is_refused_with_its_line() {
        let err = parse("A=1\nNOT A KEY=2\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
