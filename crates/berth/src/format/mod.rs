//! Output formatting shared by all commands: Go-template `--format`s with
//! docker's functions and table directive, an aligning tab writer like Go's,
//! go-units sizes and durations, and raw JSON re-indenting for `inspect`.
//!
//! Commands build rows as template values (`template::row`) with docker's
//! field names and hand them with their column titles to
//! [`template::RowFormatter`]; nothing else in the CLI prints tables.

pub(crate) mod json;
pub(crate) mod tabwriter;
pub(crate) mod template;
pub(crate) mod units;

/// docker's `formatter.TruncateID`: drop the algorithm prefix, keep 12 characters.
pub(crate) fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    id.chars().take(12).collect()
}

/// docker's `formatter.Ellipsis`: cut to `max` characters, the last being "…".
pub(crate) fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let chars: Vec<char> = s.chars().collect();
    if max == 1 {
        return chars.first().map(|c| c.to_string()).unwrap_or_default();
    }
    if chars.len() <= max {
        return s.to_string();
    }
    let mut out: String = chars[..max - 1].iter().collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_id_drops_algorithm_and_keeps_twelve() {
        assert_eq!(truncate_id("sha256:8430d8a2bfbe499bf930"), "8430d8a2bfbe");
        assert_eq!(truncate_id("abc"), "abc");
    }

    #[test]
    fn ellipsis_cuts_with_trailing_dots() {
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abc", 4), "abc");
    }
}
