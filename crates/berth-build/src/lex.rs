//! Docker's shell-like word lexer: quotes, escapes and `$VAR` / `${VAR…}` substitution.
//!
//! This is not a shell. It is the small language Docker applies to the arguments of
//! ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG and the
//! `--mount` options of RUN, and also what the parser uses to find heredoc markers. Its
//! quirks are Docker's and are kept on purpose: an escape inside double quotes only
//! escapes `"`, `$` and the escape character itself; `${}` is an error while `$.` is a
//! literal; an unset variable expands to nothing; expansions split into words only in
//! [`ShellLex::process_words`] (EXPOSE), never inside quotes.

use std::collections::{BTreeMap, HashMap};

/// Where the lexer looks variables up.
///
/// Implemented for the map types; the build scope ([`crate::scope::StageScope`])
/// implements it with Docker's precedence of ENV over ARG.
pub trait VarLookup {
    /// The value of `name`, or `None` when it is not set (which differs from set-but-empty
    /// for `${VAR-default}` and `${VAR?}`).
    fn var(&self, name: &str) -> Option<&str>;
}

impl VarLookup for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl VarLookup for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// No variables at all: used to split words without expanding anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVars;

impl VarLookup for NoVars {
    fn var(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// What went wrong inside a word, in the words of Docker's lexer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexErrorKind {
    /// `${VAR` without its closing brace.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${VAR/pat` without the second slash.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${:…}` or `${{`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// A modifier other than `-`, `+`, `?`, `#`, `%`, `/` (with or without `:`).
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${VAR?message}` / `${VAR:?message}` with VAR unset (or empty).
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The user's message or Docker's default.
        message: String,
    },
    /// A single quote that is never closed.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// A double quote that is never closed.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// A bad escape inside a `${VAR#pattern}` style pattern.
    #[error("invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// The character after the backslash.
        escaped: char,
    },
}

/// A word that could not be processed: the word and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {kind}")]
pub struct LexError {
    /// The whole word as given to the lexer.
    pub word: String,
    /// What is wrong.
    pub kind: LexErrorKind,
}

/// Docker's word lexer, configured with the Dockerfile's escape character.
#[derive(Debug, Clone)]
pub struct ShellLex {
    escape: char,
    /// Keep quote characters in the output (used to find heredoc names).
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written instead of expanding them to "".
    pub skip_unset: bool,
    /// Treat quotes as ordinary characters (heredoc bodies: only `$` is special).
    pub skip_quotes: bool,
}

impl ShellLex {
    /// A lexer for a Dockerfile whose escape character is `escape` (`\` or `` ` ``).
    pub fn new(escape: char) -> Self {
        ShellLex {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// Expands `word` into one string: quotes removed, escapes applied, variables
    /// substituted. Whitespace is kept as is.
    ///
    /// # Errors
    /// [`LexError`] for unbalanced quotes, malformed `${…}` and `${VAR?msg}` with VAR unset.
    pub fn process_word(&self, word: &str, vars: &dyn VarLookup) -> Result<String, LexError> {
        self.run(word, vars).map(|(s, _)| s)
    }

    /// Expands `word` and splits the result into words at unquoted whitespace, the way
    /// EXPOSE `$PORTS` becomes several ports.
    ///
    /// # Errors
    /// As [`ShellLex::process_word`].
    pub fn process_words(&self, word: &str, vars: &dyn VarLookup) -> Result<Vec<String>, LexError> {
        self.run(word, vars).map(|(_, w)| w)
    }

    fn run(&self, word: &str, vars: &dyn VarLookup) -> Result<(String, Vec<String>), LexError> {
        let mut p = WordProcessor {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            vars,
            raw_escapes: self.raw_escapes,
        };
        p.process_until(None, self.raw_escapes)
            .map_err(|kind| LexError {
                word: word.to_string(),
                kind,
            })
    }
}

/// Accumulates the word list for [`ShellLex::process_words`].
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    /// A character that splits words when it is whitespace (unquoted text, expansions).
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_str(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

struct WordProcessor<'a> {
    lex: &'a ShellLex,
    chars: Vec<char>,
    pos: usize,
    vars: &'a dyn VarLookup,
    raw_escapes: bool,
}

impl WordProcessor<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes until `stop` (consumed) or the end of input. `raw_escapes` applies
    /// within this call only (patterns keep their escapes).
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), LexErrorKind> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let r = self.process_until_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_until_inner(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), LexErrorKind> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    words.add_str(&s);
                }
                '<' => {
                    let s = self.possible_heredoc();
                    result.push_str(&s);
                    words.add_raw_str(&s);
                }
                '\'' if !self.lex.skip_quotes => {
                    let s = self.single_quote()?;
                    result.push_str(&s);
                    words.add_raw_str(&s);
                }
                '"' if !self.lex.skip_quotes => {
                    let s = self.double_quote()?;
                    result.push_str(&s);
                    words.add_raw_str(&s);
                }
                _ => {
                    self.next();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // A trailing escape character disappears.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if stop.is_some() {
            // Callers turn this into the message for their construct.
            return Err(LexErrorKind::MissingBrace);
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, LexErrorKind> {
        let mut out = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(LexErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, LexErrorKind> {
        let mut out = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(LexErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(_) => {
                    let mut ch = self.next().expect("peeked");
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.next();
                            }
                            // Any other escaped character keeps its escape, as in sh.
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut out = "<<".to_string();
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.vars.var(name).map(str::to_string)
    }

    fn dollar(&mut self) -> Result<String, LexErrorKind> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(LexErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(LexErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let Some(ch) = self.next() else {
            return Err(LexErrorKind::MissingBrace);
        };
        match ch {
            '}' => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                let mut modifier = ch.to_string();
                let op = if null_is_unset {
                    let Some(op) = self.next() else {
                        return Err(LexErrorKind::MissingBrace);
                    };
                    modifier.push(op);
                    op
                } else {
                    ch
                };
                let pattern_op = op == '#' || op == '%';
                if null_is_unset && pattern_op {
                    return Err(LexErrorKind::UnsupportedModifier(modifier));
                }
                let word = self.braced_word('}', pattern_op, LexErrorKind::MissingBrace)?;
                let value = self.lookup(&name);
                if self.lex.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{modifier}{word}}}"));
                }
                let empty = value
                    .as_deref()
                    .is_none_or(|v| null_is_unset && v.is_empty());
                match op {
                    '-' => Ok(if empty {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if empty { String::new() } else { word }),
                    '?' => match value {
                        None => Err(required(name, word, "is not allowed to be unset")),
                        Some(v) if null_is_unset && v.is_empty() => {
                            Err(required(name, word, "is not allowed to be empty"))
                        }
                        Some(v) => Ok(v),
                    },
                    '#' | '%' => {
                        let (greedy, pattern) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let glob = Glob::parse(&pattern)?;
                        let value = value.unwrap_or_default();
                        Ok(if op == '#' {
                            glob.trim_prefix(&value, greedy)
                        } else {
                            glob.trim_suffix(&value, greedy)
                        })
                    }
                    _ => Err(LexErrorKind::UnsupportedModifier(modifier)),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = self.braced_word('/', true, LexErrorKind::MissingSlash)?;
                let replacement = self.braced_word('}', true, LexErrorKind::MissingBrace)?;
                let value = self.lookup(&name);
                let Some(value) = value else {
                    if self.lex.skip_unset {
                        return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let glob = Glob::parse(&pattern)?;
                Ok(glob.replace(&value, &replacement, all))
            }
            other => Err(LexErrorKind::UnsupportedModifier(other.to_string())),
        }
    }

    /// The word after a modifier, up to `stop`; running out of input is `at_end`.
    fn braced_word(
        &mut self,
        stop: char,
        raw_escapes: bool,
        at_end: LexErrorKind,
    ) -> Result<String, LexErrorKind> {
        match self.process_until(Some(stop), raw_escapes) {
            Ok((w, _)) => Ok(w),
            Err(LexErrorKind::MissingBrace) => Err(at_end),
            Err(e) => Err(e),
        }
    }
}

fn required(name: String, word: String, default: &str) -> LexErrorKind {
    LexErrorKind::Required {
        name,
        message: if word.is_empty() {
            default.to_string()
        } else {
            word
        },
    }
}

/// The shell pattern of `${VAR#pat}`, `${VAR%pat}` and `${VAR/pat/rep}`: `*`, `?` and
/// backslash escapes, nothing else.
#[derive(Debug)]
struct Glob {
    tokens: Vec<GlobToken>,
}

#[derive(Debug, Clone, Copy)]
enum GlobToken {
    Star,
    Any,
    Lit(char),
}

impl Glob {
    fn parse(pattern: &str) -> Result<Glob, LexErrorKind> {
        let mut tokens = Vec::new();
        let mut it = pattern.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '*' => tokens.push(GlobToken::Star),
                '?' => tokens.push(GlobToken::Any),
                '\\' => match it.peek().copied() {
                    Some('}' | '/') => {}
                    Some(e @ ('*' | '?' | '\\')) => {
                        it.next();
                        tokens.push(GlobToken::Lit(e));
                    }
                    Some(e) => {
                        return Err(LexErrorKind::BadPattern {
                            pattern: pattern.to_string(),
                            escaped: e,
                        });
                    }
                    None => {
                        return Err(LexErrorKind::BadPattern {
                            pattern: pattern.to_string(),
                            escaped: ' ',
                        });
                    }
                },
                c => tokens.push(GlobToken::Lit(c)),
            }
        }
        Ok(Glob { tokens })
    }

    fn matches(&self, s: &[char]) -> bool {
        fn go(t: &[GlobToken], s: &[char]) -> bool {
            match t.split_first() {
                None => s.is_empty(),
                Some((GlobToken::Star, rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
                Some((GlobToken::Any, rest)) => !s.is_empty() && go(rest, &s[1..]),
                Some((GlobToken::Lit(c), rest)) => s.first() == Some(c) && go(rest, &s[1..]),
            }
        }
        go(&self.tokens, s)
    }

    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut ends: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new((0..=v.len()).rev())
        } else {
            Box::new(0..=v.len())
        };
        match ends.find(|&e| self.matches(&v[..e])) {
            Some(e) => v[e..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut starts: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new(0..=v.len())
        } else {
            Box::new((0..=v.len()).rev())
        };
        match starts.find(|&s| self.matches(&v[s..])) {
            Some(s) => v[..s].iter().collect(),
            None => value.to_string(),
        }
    }

    /// Replaces the leftmost (longest) match, or every match when `all`.
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i <= v.len() {
            if replaced && !all {
                break;
            }
            let found = (i..=v.len()).rev().find(|&e| self.matches(&v[i..e]));
            match found {
                Some(e) => {
                    out.push_str(replacement);
                    replaced = true;
                    if e == i {
                        if i < v.len() {
                            out.push(v[i]);
                        }
                        i += 1;
                    } else {
                        i = e;
                    }
                }
                None => {
                    if i < v.len() {
                        out.push(v[i]);
                    }
                    i += 1;
                }
            }
        }
        if i < v.len() {
            out.extend(&v[i..]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("NULL", ""),
            ("FOO", "a b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn word(w: &str) -> Result<String, LexError> {
        ShellLex::new('\\').process_word(w, &env())
    }

    #[test]
    fn process_word_matches_dockers_documented_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("hello", Some("hello")),
            ("he'll'o", Some("hello")),
            ("he'llo", None),
            ("he\\'llo", Some("he'llo")),
            ("abc\\tdef", Some("abctdef")),
            ("\"abc\\tdef\"", Some("abc\\tdef")),
            ("\"abc\\\\tdef\"", Some("abc\\tdef")),
            ("'abc\\tdef'", Some("abc\\tdef")),
            ("hello\\", Some("hello")),
            ("hello\\\\", Some("hello\\")),
            ("\"hello", None),
            ("\"hello\\\"", None),
            ("'hello\\'", Some("hello\\")),
            ("\"''\"", Some("''")),
            ("$.", Some("$.")),
            ("he$1x", Some("hex")),
            ("he$pwd.", Some("he.")),
            ("he$PWD", Some("he/home")),
            ("he\\$PWD", Some("he$PWD")),
            ("he\\\\$PWD", Some("he\\/home")),
            ("\"he\\$PWD\"", Some("he$PWD")),
            ("\\${}", Some("${}")),
            ("${}", None),
            ("he${}xx", None),
            ("he${hi}xx", Some("hexx")),
            ("he${.}", None),
            ("he${XXX:-000}xx", Some("he000xx")),
            ("he${PWD:-000}xx", Some("he/homexx")),
            ("he${XXX:-$PWD}xx", Some("he/homexx")),
            ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
            ("he${XXX:YYY}", None),
            ("he${XXX?}", None),
            ("he${PWD:?}", Some("he/home")),
            ("he${NULL?}", Some("he")),
            ("he${NULL:?}", None),
            ("he${NULL-x}", Some("he")),
            ("he${NULL:-x}", Some("hex")),
            ("he${NULL+x}", Some("hex")),
            ("he${NULL:+x}", Some("he")),
            ("he${XXX:+000}xx", Some("hexx")),
            ("he${PWD:+000}xx", Some("he000xx")),
            ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
            ("'he${XX}'", Some("he${XX}")),
            ("\"he'$PWD'\"", Some("he'/home'")),
            ("'$PWD'", Some("$PWD")),
            ("he${PWD", None),
            ("he${PWD:=000}xx", None),
            ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
            ("he${XXX:-\\$PWD:}xx", Some("he$PWD:xx")),
            ("안'녕'하세요", Some("안녕하세요")),
            ("안녕\\'하세요", Some("안녕'하세요")),
        ];
        for (input, want) in cases {
            let got = word(input);
            match want {
                Some(w) => assert_eq!(got.as_deref().ok(), Some(*w), "input {input}"),
                None => assert!(got.is_err(), "input {input} gave {got:?}"),
            }
        }
    }

    #[test]
    fn brace_edge_cases_and_positional_and_special_parameters() {
        let cases: &[(&str, Option<&str>)] = &[
            ("${{aaa}", None),
            ("${aaa}}", Some("}")),
            ("${aaa", None),
            ("${aaa:-bbb}}", Some("bbb}")),
            ("${aaa:-bbb", None),
            ("${aaa:-${bbb:-ccc}}", Some("ccc")),
            ("${aaa:-bbb ${foo}", None),
            ("${aaa:-bbb {foo}", Some("bbb {foo")),
            ("${:}", None),
            ("${:-bbb}", None),
            ("$1", Some("")),
            ("${1:-bbb}", Some("bbb")),
            ("$999aaa", Some("aaa")),
            ("${001:-bbb}aaa", Some("bbbaaa")),
            ("$@@@", Some("@@")),
            ("${@:-bbb}aaa", Some("bbbaaa")),
            ("$$", Some("")),
            ("${#:+bbb}", Some("")),
            ("${0:-bbb}", Some("bbb")),
            ("안녕${PWD:+${SHELL}}xx", Some("안녕bashxx")),
            ("안녕\\\\$PWD", Some("안녕\\/home")),
        ];
        for (input, want) in cases {
            let got = word(input);
            match want {
                Some(w) => assert_eq!(got.as_deref().ok(), Some(*w), "input {input}"),
                None => assert!(got.is_err(), "input {input} gave {got:?}"),
            }
        }
    }

    #[test]
    fn process_words_matches_dockers_words_table() {
        let vars: BTreeMap<String, String> = [
            ("hi", "hi"),
            ("space", "abc  def"),
            ("leading", "  ab c"),
            ("trailing", "ab c   "),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let lex = ShellLex::new('\\');
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("hello${hi}bye", Some(&["hellohibye"])),
            ("hello${space}bye", Some(&["helloabc", "defbye"])),
            ("hello\"${space}\"bye", Some(&["helloabc  defbye"])),
            ("hello \"${space}\"bye", Some(&["hello", "abc  defbye"])),
            ("hello${leading}def", Some(&["hello", "ab", "cdef"])),
            ("hello\"${leading}\" def", Some(&["hello  ab c", "def"])),
            ("hello${trailing}d", Some(&["helloab", "c", "d"])),
            ("hel\"lo${trailing}\"", Some(&["helloab c   "])),
            ("hello there     ", Some(&["hello", "there"])),
            ("hello\\ there", Some(&["hello there"])),
            ("hello\" there", None),
            ("hello\\\" there", Some(&["hello\"", "there"])),
            ("hello\"\\\\there\"", Some(&["hello\\there"])),
            ("hello\"\\there\"", Some(&["hello\\there"])),
            ("hello'\\\\there'", Some(&["hello\\\\there"])),
            ("hello'$there'", Some(&["hello$there"])),
        ];
        for (input, want) in cases {
            let got = lex.process_words(input, &vars);
            match want {
                Some(w) => assert_eq!(
                    got.ok(),
                    Some(w.iter().map(|s| s.to_string()).collect()),
                    "input {input}"
                ),
                None => assert!(got.is_err(), "input {input} gave {got:?}"),
            }
        }
    }

    #[test]
    fn pattern_modifiers_trim_and_replace() {
        let mut e = env();
        e.insert("P".into(), "a/b/c.tar.gz".into());
        let lex = ShellLex::new('\\');
        let w = |s: &str| lex.process_word(s, &e).unwrap();
        assert_eq!(w("${P#*/}"), "b/c.tar.gz");
        assert_eq!(w("${P##*/}"), "c.tar.gz");
        assert_eq!(w("${P%.*}"), "a/b/c.tar");
        assert_eq!(w("${P%%.*}"), "a/b/c");
        assert_eq!(w("${P/\\//-}"), "a-b/c.tar.gz");
        assert_eq!(w("${P//\\//-}"), "a-b-c.tar.gz");
        assert!(lex.process_word("${P:#x}", &e).is_err());
    }

    #[test]
    fn required_variable_errors_use_dockers_words() {
        let err = word("${XXX?}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to process \"${XXX?}\": XXX: is not allowed to be unset"
        );
        let err = word("${NULL:?must be set}").unwrap_err();
        assert_eq!(err.kind.to_string(), "NULL: must be set");
        assert_eq!(
            word("${XXX").unwrap_err().kind.to_string(),
            "syntax error: missing '}'"
        );
    }

    #[test]
    fn process_words_splits_expansions_but_not_quotes() {
        let lex = ShellLex::new('\\');
        let e = env();
        assert_eq!(lex.process_words("$FOO c", &e).unwrap(), ["a", "b", "c"]);
        assert_eq!(lex.process_words("\"$FOO\" c", &e).unwrap(), ["a b", "c"]);
        assert_eq!(lex.process_words("x\\ y", &e).unwrap(), ["x y"]);
        assert!(lex.process_words("\"\"", &e).unwrap().is_empty());
    }

    #[test]
    fn backtick_escape_leaves_backslash_literal() {
        let lex = ShellLex::new('`');
        let e = env();
        assert_eq!(lex.process_word("c:\\dir", &e).unwrap(), "c:\\dir");
        assert_eq!(lex.process_word("a`$PWD", &e).unwrap(), "a$PWD");
    }

    #[test]
    fn skip_unset_keeps_references_for_heredoc_detection() {
        let mut lex = ShellLex::new('\\');
        lex.skip_unset = true;
        lex.raw_quotes = true;
        let w = lex
            .process_words("cat <<'EOF' $X ${Y:-z}", &NoVars)
            .unwrap();
        assert_eq!(w, ["cat", "<<'EOF'", "$X", "${Y:-z}"]);
    }
}
