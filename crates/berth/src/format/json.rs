//! Re-indenting raw JSON the way Go's `json.Indent` does.
//!
//! `docker inspect` prints the daemon's bytes re-indented, not re-encoded:
//! key order and string escapes stay exactly as the daemon sent them, which
//! a parse-and-serialize round trip through `serde_json` would not keep.

/// Re-indents `src` with `indent` per level; insignificant whitespace is
/// dropped, empty arrays and objects stay `[]` / `{}`.
pub(crate) fn indent(src: &[u8], indent: &str) -> String {
    let mut out = Vec::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // After an opening bracket we delay the newline until we know it is not empty.
    let mut pending_open = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        for _ in 0..depth {
            out.extend_from_slice(indent.as_bytes());
        }
    };
    for &b in src {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        if b.is_ascii_whitespace() {
            continue;
        }
        if pending_open {
            pending_open = false;
            if b == b']' || b == b'}' {
                depth -= 1;
                out.push(b);
                continue;
            }
            newline(&mut out, depth);
        }
        match b {
            b'"' => {
                in_string = true;
                out.push(b);
            }
            b'[' | b'{' => {
                out.push(b);
                depth += 1;
                pending_open = true;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(&mut out, depth);
            }
            b':' => {
                out.extend_from_slice(b": ");
            }
            _ => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes insignificant whitespace (`json.Compact`).
pub(crate) fn compact(src: &[u8]) -> String {
    let mut out = Vec::with_capacity(src.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in src {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !b.is_ascii_whitespace() {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indent_matches_go_json_indent() {
        let src =
            br#"[{"Id":"sha256:ab","RepoTags":["a:1"],"Empty":[],"Obj":{},"S":"x, {y}: \"z\""}
]"#;
        let want = "[\n    {\n        \"Id\": \"sha256:ab\",\n        \"RepoTags\": [\n            \"a:1\"\n        ],\n        \"Empty\": [],\n        \"Obj\": {},\n        \"S\": \"x, {y}: \\\"z\\\"\"\n    }\n]";
        assert_eq!(indent(src, "    "), want);
    }

    #[test]
    fn indent_keeps_daemon_escapes() {
        assert_eq!(
            indent(br#"{"a":"\u003c"}"#, "  "),
            "{\n  \"a\": \"\\u003c\"\n}"
        );
    }

    #[test]
    fn compact_drops_whitespace_outside_strings() {
        assert_eq!(compact(b"[ {\"a\" : \"b c\"}\n ]"), "[{\"a\":\"b c\"}]");
    }
}
