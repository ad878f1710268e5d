//! Stage one: Dockerfile text to raw instructions (keyword, flags, argument words).
//!
//! This stage knows the line syntax only: parser directives at the top, comments,
//! line continuations (a trailing escape character), the JSON (exec) form, heredoc
//! bodies, and how each keyword splits its arguments. It does not know what a flag
//! means or how many arguments an instruction takes; that is [`crate::instruction`].
//! Splitting the stages the way BuildKit does keeps each one small enough to check
//! against Docker line by line, and lets ONBUILD triggers be re-parsed later with the
//! very same code.

use serde::Serialize;

use crate::error::{ParseError, ParseErrorKind};
use crate::lex::{NoVars, ShellLex};

/// The parser directives found at the top of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Directives {
    /// `# syntax=` (kept, not acted on: berth has one front end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syntax: Option<String>,
    /// `# check=` (kept, not acted on: berth does not lint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// The escape character, `\` unless `# escape=` says `` ` ``.
    pub escape: char,
}

/// A heredoc body attached to RUN, COPY or ADD (`<<EOF … EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (`EOF`).
    pub name: String,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 when none.
    pub fd: u32,
    /// False when the delimiter was quoted: the body is then taken literally.
    pub expand: bool,
    /// `<<-EOF`: leading tabs are stripped from the body lines and the delimiter.
    pub chomp: bool,
    /// The body, each line with its newline, without the delimiter line.
    pub content: String,
}

/// One instruction as the line syntax sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawInstruction {
    /// The keyword as written (`run`, `RUN`, …).
    pub keyword: String,
    /// `--name=value` words before the arguments.
    pub flags: Vec<String>,
    /// The argument words, split the way this keyword splits them.
    pub args: Vec<String>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// For ONBUILD: the trigger instruction.
    pub sub: Option<Box<RawInstruction>>,
    /// Heredoc bodies, in the order their markers appear.
    pub heredocs: Vec<Heredoc>,
    /// The logical line after continuations were joined and comments dropped.
    pub original: String,
    /// 1-based line where the instruction starts.
    pub start_line: usize,
    /// 1-based line where it ends (heredoc bodies included).
    pub end_line: usize,
}

/// The result of stage one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedText {
    /// Parser directives.
    pub directives: Directives,
    /// The instructions in file order.
    pub instructions: Vec<RawInstruction>,
    /// Docker's warnings (empty continuation lines).
    pub warnings: Vec<String>,
}

const VALID_DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

struct DirectiveParser {
    done: bool,
    directives: Directives,
    seen: Vec<String>,
}

impl DirectiveParser {
    /// Looks at one line while directives may still appear; any other line ends them.
    fn line(&mut self, line: &str) -> Result<bool, ParseErrorKind> {
        if self.done {
            return Ok(false);
        }
        let Some((key, value)) = directive_match(line) else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_ascii_lowercase();
        if !VALID_DIRECTIVES.contains(&key.as_str()) {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(ParseErrorKind::DuplicateDirective(key));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => match value {
                "\\" => self.directives.escape = '\\',
                "`" => self.directives.escape = '`',
                other => return Err(ParseErrorKind::InvalidEscape(other.to_string())),
            },
            "syntax" => self.directives.syntax = Some(value.to_string()),
            _ => self.directives.check = Some(value.to_string()),
        }
        Ok(true)
    }
}

/// `#\s*key\s*=\s*value\s*` with key `[a-zA-Z][a-zA-Z0-9]*`.
fn directive_match(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some((key, value))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Strips a trailing continuation (escape character plus blanks) if there is one;
/// the bool is true when the logical line ends here. A doubled escape is not one.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// Parses Dockerfile text into raw instructions.
///
/// # Errors
/// [`ParseError`] with the line for a repeated or invalid directive, an unterminated
/// heredoc, a JSON array of non-strings, a malformed ENV/LABEL, or a file with no
/// instructions.
pub fn parse_text(text: &str) -> Result<ParsedText, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut dp = DirectiveParser {
        done: false,
        directives: Directives {
            escape: '\\',
            ..Directives::default()
        },
        seen: Vec::new(),
    };
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0;
    let at = |line: usize| move |kind| ParseError { line, kind };
    while i < lines.len() {
        let first = trim_newline(lines[i]).trim_start();
        dp.line(first).map_err(at(i + 1))?;
        i += 1;
        let start_line = i;
        let escape = dp.directives.escape;
        let first = if is_comment(first) { "" } else { first };
        let (first, mut eol) = trim_continuation(first, escape);
        if eol && first.is_empty() {
            continue;
        }
        let mut buf = first.to_string();
        let mut empty_continuation = false;
        while !eol && i < lines.len() {
            let raw = trim_newline(lines[i]);
            dp.line(raw).map_err(at(i + 1))?;
            i += 1;
            if is_comment(raw) {
                continue;
            }
            if raw.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, end) = trim_continuation(raw, escape);
            buf.push_str(part);
            eol = end;
        }
        if empty_continuation {
            warnings.push(format!("Empty continuation line found in: {buf}"));
        }
        let mut node = node_from_line(&buf, escape).map_err(at(start_line))?;
        node.start_line = start_line;
        let heredoc_keyword = node.sub.as_deref().unwrap_or(&node);
        let heredoc_capable = matches!(
            heredoc_keyword.keyword.to_ascii_lowercase().as_str(),
            "run" | "copy" | "add"
        ) && !heredoc_keyword.json;
        if heredoc_capable && buf.contains("<<") {
            for mut doc in heredocs_from_line(&buf).map_err(at(start_line))? {
                let mut terminated = false;
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(raw);
                }
                if !terminated {
                    return Err(ParseError {
                        line: start_line,
                        kind: ParseErrorKind::UnterminatedHeredoc,
                    });
                }
                node.heredocs.push(doc);
            }
        }
        node.end_line = i;
        out.push(node);
    }
    if out.is_empty() {
        return Err(ParseError {
            line: lines.len(),
            kind: ParseErrorKind::NoInstructions,
        });
    }
    Ok(ParsedText {
        directives: dp.directives,
        instructions: out,
        warnings,
    })
}

fn node_from_line(line: &str, escape: char) -> Result<RawInstruction, ParseErrorKind> {
    let trimmed = line.trim();
    let (keyword, rest) = match trimmed.find([' ', '\t', '\x0b', '\x0c', '\r']) {
        Some(p) => (
            &trimmed[..p],
            trimmed[p..].trim_start_matches([' ', '\t', '\x0b', '\x0c', '\r']),
        ),
        None => (trimmed, ""),
    };
    let (rest, flags) = extract_flags(rest, escape);
    let rest = rest.trim();
    let mut node = RawInstruction {
        keyword: keyword.to_string(),
        flags,
        args: Vec::new(),
        json: false,
        sub: None,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
    };
    match keyword.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => {
            (node.args, node.json) = match parse_json(rest)? {
                Some(a) => (a, true),
                None => (split_whitespace(rest), false),
            }
        }
        "cmd" | "entrypoint" | "run" | "shell" if !rest.is_empty() => {
            (node.args, node.json) = match parse_json(rest)? {
                Some(a) => (a, true),
                None => (vec![rest.to_string()], false),
            }
        }
        "arg" => node.args = parse_words(rest, escape),
        "env" => node.args = parse_name_val(rest, "ENV", escape)?,
        "label" => node.args = parse_name_val(rest, "LABEL", escape)?,
        "expose" | "from" => node.args = split_whitespace(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" if !rest.is_empty() => {
            node.args = vec![rest.to_string()];
        }
        "healthcheck" => {
            let (typ, cmd) = match rest.find(char::is_whitespace) {
                Some(p) => (&rest[..p], rest[p..].trim_start()),
                None => (rest, ""),
            };
            if !typ.is_empty() {
                node.args.push(typ.to_string());
                if !cmd.is_empty() {
                    match parse_json(cmd)? {
                        Some(a) => {
                            node.args.extend(a);
                            node.json = true;
                        }
                        None => node.args.push(cmd.to_string()),
                    }
                }
            }
        }
        "onbuild" if !rest.is_empty() => {
            let child = node_from_line(rest, escape)?;
            node.args.push(child.keyword.clone());
            node.args.extend(child.args.iter().cloned());
            node.json = child.json;
            node.sub = Some(Box::new(child));
        }
        _ => {}
    }
    Ok(node)
}

fn split_whitespace(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split([' ', '\t', '\x0b', '\x0c', '\r'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The exec form: `Ok(None)` when `rest` is not a JSON array (then it is shell form).
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, ParseErrorKind> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(rest)
    else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ParseErrorKind::NotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Docker's builder-flag scan: leading `--` words, with quotes and escapes, up to the
/// first word that is not a flag or a bare `--`.
fn extract_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    let mut words = Vec::new();
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut k = 0;
    loop {
        while k < chars.len() && chars[k].1.is_whitespace() {
            k += 1;
        }
        if k >= chars.len() {
            return ("", words);
        }
        let starts_flag = chars[k].1 == '-' && chars.get(k + 1).map(|c| c.1) == Some('-');
        if !starts_flag {
            return (&line[chars[k].0..], words);
        }
        let mut word = String::new();
        let mut blank_ok = false;
        let mut quote: Option<char> = None;
        while k < chars.len() {
            let ch = chars[k].1;
            if let Some(q) = quote {
                if ch == q {
                    quote = None;
                } else if ch == escape {
                    k += 1;
                    if k == chars.len() {
                        break;
                    }
                    word.push(chars[k].1);
                } else {
                    word.push(ch);
                }
                k += 1;
                continue;
            }
            if ch.is_whitespace() {
                break;
            }
            if ch == '\'' || ch == '"' {
                quote = Some(ch);
                blank_ok = true;
            } else if ch == escape {
                // A trailing escape is dropped, as in Docker.
                if k + 1 < chars.len() {
                    k += 1;
                    word.push(chars[k].1);
                }
            } else {
                word.push(ch);
            }
            k += 1;
        }
        if word == "--" {
            let rest_at = chars.get(k).map_or(line.len(), |c| c.0);
            return (&line[rest_at..], words);
        }
        if blank_ok || !word.is_empty() {
            words.push(word);
        }
    }
}

/// Splits at unquoted whitespace, keeping quotes and escapes in the words (they are
/// removed later, when the words are expanded).
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut it = rest.chars().peekable();
    while let Some(ch) = it.next() {
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            if ch == escape && q != '\'' {
                match it.next() {
                    None => break,
                    Some(n) => {
                        word.push(ch);
                        word.push(n);
                        continue;
                    }
                }
            }
            word.push(ch);
            continue;
        }
        if ch.is_whitespace() {
            if in_word && (blank_ok || !word.is_empty()) {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        in_word = true;
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
        }
        if ch == escape {
            match it.next() {
                None => continue,
                Some(n) => {
                    word.push(ch);
                    word.push(n);
                    continue;
                }
            }
        }
        word.push(ch);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// ENV and LABEL: `k=v k2=v2` or the legacy `k v…`; the result is flat triples of
/// key, value and separator (`=` or empty for the legacy form).
fn parse_name_val(
    rest: &str,
    instruction: &'static str,
    escape: char,
) -> Result<Vec<String>, ParseErrorKind> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let parts = split_whitespace_n2(rest);
        let [k, v] = parts.as_slice() else {
            return Err(ParseErrorKind::TwoArguments(instruction));
        };
        return Ok(vec![k.to_string(), v.to_string(), String::new()]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ParseErrorKind::MissingEquals(w));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

fn split_whitespace_n2(s: &str) -> Vec<&str> {
    let ws = [' ', '\t', '\x0b', '\x0c', '\r'];
    match s.find(ws) {
        Some(p) => vec![&s[..p], s[p..].trim_start_matches(ws)],
        None => vec![s],
    }
}

/// Finds the heredoc markers on a RUN/COPY/ADD line.
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ParseErrorKind> {
    let mut lex = ShellLex::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset = true;
    // Docker ignores lexing errors here: such a line simply has no heredocs.
    let words = lex.process_words(line, &NoVars).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(doc) = parse_heredoc(&w)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Recognises one word as a heredoc marker: `[n]<<[-]NAME`, NAME possibly quoted.
///
/// # Errors
/// A lexing error in the delimiter.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, ParseErrorKind> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = if digits == 0 {
        0
    } else {
        word[..digits].parse().unwrap_or(0)
    };
    let mut lex = ShellLex::new('\\');
    lex.skip_unset = true;
    let words = lex
        .process_words(rest, &NoVars)
        .map_err(ParseErrorKind::Lex)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    lex.raw_quotes = true;
    let raw = lex
        .process_words(rest, &NoVars)
        .map_err(ParseErrorKind::Lex)?;
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = raw.first().is_some_and(|r| quotes(r) == quotes(name));
    Ok(Some(Heredoc {
        name: name.clone(),
        fd,
        expand,
        chomp,
        content: String::new(),
    }))
}

/// Removes leading tabs from each line of a `<<-` heredoc body.
pub fn chomp_heredoc(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ParsedText {
        parse_text(s).unwrap()
    }

    #[test]
    fn continuation_joins_lines_and_skips_comments_and_blank_lines() {
        let p = parse("RUN a \\\n# note\n  b \\\n\n  c\nCMD x\n");
        assert_eq!(p.instructions[0].args, ["a   b   c"]);
        assert_eq!(p.instructions[0].start_line, 1);
        assert_eq!(p.instructions[0].end_line, 5);
        assert_eq!(p.instructions[1].start_line, 6);
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn escape_directive_switches_to_backtick() {
        let p = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  /w\n");
        assert_eq!(p.directives.escape, '`');
        assert_eq!(p.instructions[1].args, ["dir c:\\   /w"]);
    }

    #[test]
    fn directives_end_at_the_first_other_line() {
        let p = parse("# syntax=docker/dockerfile:1\n# check=skip=all\n\n# escape=`\nFROM x\n");
        assert_eq!(p.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(p.directives.check.as_deref(), Some("skip=all"));
        assert_eq!(p.directives.escape, '\\');
    }

    #[test]
    fn doubled_escape_is_not_a_continuation() {
        let p = parse("RUN echo \\\\\nCMD x\n");
        assert_eq!(p.instructions.len(), 2);
    }

    #[test]
    fn flag_ending_in_escape_does_not_overrun() {
        let (rest, flags) = extract_flags("--a=b\\", '\\');
        assert_eq!((rest, flags), ("", vec!["--a=b".to_string()]));
    }

    #[test]
    fn flags_are_split_off_with_quotes() {
        let p = parse("COPY --from=build --chown=\"a b\" src /dst\n");
        assert_eq!(p.instructions[0].flags, ["--from=build", "--chown=a b"]);
        assert_eq!(p.instructions[0].args, ["src", "/dst"]);
    }

    #[test]
    fn heredocs_several_on_one_line() {
        let p = parse("RUN <<A cat /dev/stdin - <<-'B'\nline a\nA\n\tline b\n\tB\nCMD x\n");
        let run = &p.instructions[0];
        assert_eq!(run.heredocs.len(), 2);
        assert_eq!(run.heredocs[0].name, "A");
        assert_eq!(run.heredocs[0].content, "line a\n");
        assert!(run.heredocs[0].expand);
        assert_eq!(run.heredocs[1].name, "B");
        assert!(run.heredocs[1].chomp);
        assert!(!run.heredocs[1].expand);
        assert_eq!(run.end_line, 5);
        assert_eq!(p.instructions[1].start_line, 6);
    }

    #[test]
    fn heredoc_marker_parsing() {
        let h = parse_heredoc("3<<\"EOF\"").unwrap().unwrap();
        assert_eq!((h.fd, h.name.as_str(), h.expand), (3, "EOF", false));
        assert!(parse_heredoc("<<").unwrap().is_none());
        assert!(parse_heredoc("a<<b").unwrap().is_none());
        assert_eq!(chomp_heredoc("\t\ta\n\tb\n"), "a\nb\n");
    }

    #[test]
    fn json_form_with_non_strings_is_an_error() {
        let e = parse_text("FROM x\nCMD [\"a\", 1]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 2: when using JSON array syntax, arrays must be comprised of strings only"
        );
        let p = parse("CMD [\"a\" \n");
        assert!(!p.instructions[0].json);
    }

    #[test]
    fn parse_words_keeps_quotes_for_later_expansion() {
        assert_eq!(
            parse_words("a=\"x y\" b='c d' e\\ f", '\\'),
            ["a=\"x y\"", "b='c d'", "e\\ f"]
        );
    }
}
