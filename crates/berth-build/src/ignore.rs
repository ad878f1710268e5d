//! `.dockerignore`: which files of the build context are left out.
//!
//! The semantics are those of moby's `patternmatcher` and `ignorefile`, which the
//! docker CLI uses to filter the context it sends: patterns are cleaned like Go's
//! `filepath.Clean` (so `./a/../b` is `b` and a leading `/` is dropped); `*` and `?`
//! stop at `/`; `**` spans directories; `[...]` is a character class; `!pattern`
//! re-includes what earlier patterns excluded, and the last matching pattern wins; a
//! pattern that matches a directory excludes everything under it. Docker compiles the
//! patterns to regular expressions; berth matches the same token list directly, which
//! needs no regex engine and keeps the quirks (a leading `**` is a suffix match).

/// A `.dockerignore` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A line that is just `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    BareExclusion,
    /// An unclosed `[` or a trailing escape.
    #[error("syntax error in pattern {0:?}")]
    BadPattern(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    One,
    /// `[...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/` inside a pattern: nothing, or anything ending in `/`.
    OptDirs,
    /// A trailing `**` after other wildcards: anything.
    AnyAll,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Exact,
    /// `dir/**`: the path starts with `dir/`.
    Prefix,
    /// A pattern starting with `**`: the path ends with the rest.
    Suffix,
    Tokens,
}

#[derive(Debug, Clone)]
struct Pattern {
    cleaned: String,
    dirs: usize,
    exclusion: bool,
    kind: Kind,
    tokens: Vec<Token>,
}

/// Lexical path cleaning, as Go's `filepath.Clean` on Unix.
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

impl Pattern {
    fn compile(cleaned: &str, exclusion: bool) -> Result<Pattern, IgnoreError> {
        let bad = || IgnoreError::BadPattern(cleaned.to_string());
        let chars: Vec<char> = cleaned.chars().collect();
        let mut tokens = Vec::new();
        let mut kind = Kind::Exact;
        let mut k = 0;
        let mut first = true;
        while k < chars.len() {
            let ch = chars[k];
            k += 1;
            match ch {
                '*' if chars.get(k) == Some(&'*') => {
                    k += 1;
                    if chars.get(k) == Some(&'/') {
                        k += 1;
                    }
                    if k == chars.len() {
                        if kind == Kind::Exact {
                            kind = Kind::Prefix;
                        } else {
                            tokens.push(Token::AnyAll);
                            kind = Kind::Tokens;
                        }
                    } else {
                        tokens.push(Token::OptDirs);
                        kind = Kind::Tokens;
                    }
                    if first {
                        kind = Kind::Suffix;
                    }
                }
                '*' => {
                    tokens.push(Token::Star);
                    kind = Kind::Tokens;
                }
                '?' => {
                    tokens.push(Token::One);
                    kind = Kind::Tokens;
                }
                '\\' => match chars.get(k) {
                    Some(&c) => {
                        k += 1;
                        tokens.push(Token::Lit(c));
                        kind = Kind::Tokens;
                    }
                    None => return Err(bad()),
                },
                '[' => {
                    let negated = matches!(chars.get(k), Some('^' | '!'));
                    if negated {
                        k += 1;
                    }
                    let mut ranges = Vec::new();
                    let mut closed = false;
                    while k < chars.len() {
                        let mut c = chars[k];
                        k += 1;
                        if c == ']' && !ranges.is_empty() {
                            closed = true;
                            break;
                        }
                        if c == '\\' {
                            c = *chars.get(k).ok_or_else(bad)?;
                            k += 1;
                        }
                        let mut hi = c;
                        if chars.get(k) == Some(&'-') && chars.get(k + 1).is_some_and(|n| *n != ']')
                        {
                            hi = chars[k + 1];
                            k += 2;
                            if hi == '\\' {
                                hi = *chars.get(k).ok_or_else(bad)?;
                                k += 1;
                            }
                        }
                        ranges.push((c, hi));
                    }
                    if !closed {
                        return Err(bad());
                    }
                    tokens.push(Token::Class { negated, ranges });
                    kind = Kind::Tokens;
                }
                c => tokens.push(Token::Lit(c)),
            }
            first = false;
        }
        Ok(Pattern {
            cleaned: cleaned.to_string(),
            dirs: cleaned.split('/').count(),
            exclusion,
            kind,
            tokens,
        })
    }

    fn matches(&self, path: &str) -> bool {
        match self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix
                if self
                    .tokens
                    .iter()
                    .all(|t| matches!(t, Token::Lit(_) | Token::OptDirs)) =>
            {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Suffix | Kind::Tokens => {
                let p: Vec<char> = path.chars().collect();
                match_tokens(&self.tokens, &p)
            }
        }
    }
}

/// Runs the token list as an NFA over `s`: linear in the path length times the number
/// of tokens, so hostile patterns like `*a*a*a*a*b` cannot make a walk exponential.
fn match_tokens(t: &[Token], s: &[char]) -> bool {
    // State i: about to match token i. `inside[i]`: within the `.*` part of an OptDirs
    // at i, which may leave to i + 1 only right after a '/'.
    let n = t.len();
    let mut at = vec![false; n + 1];
    let mut inside = vec![false; n + 1];
    at[0] = true;
    close(t, &mut at);
    for &c in s {
        let mut next = vec![false; n + 1];
        let mut next_inside = vec![false; n + 1];
        for i in 0..n {
            if at[i] {
                match &t[i] {
                    Token::Lit(l) => next[i + 1] |= *l == c,
                    Token::One => next[i + 1] |= c != '/',
                    Token::Class { negated, ranges } => {
                        next[i + 1] |=
                            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated;
                    }
                    Token::Star => next[i] |= c != '/',
                    Token::AnyAll => next[i] = true,
                    Token::OptDirs => {
                        next_inside[i] = true;
                        next[i + 1] |= c == '/';
                    }
                }
            }
            if inside[i] {
                next_inside[i] = true;
                next[i + 1] |= c == '/';
            }
        }
        close(t, &mut next);
        at = next;
        inside = next_inside;
    }
    at[n]
}

/// Adds the states reachable without consuming a character (`*`, `**`, `**/` may match
/// nothing).
fn close(t: &[Token], at: &mut [bool]) {
    for i in 0..t.len() {
        if at[i] && matches!(t[i], Token::Star | Token::AnyAll | Token::OptDirs) {
            at[i + 1] = true;
        }
    }
}

/// Go's `filepath.Match` on `/`-separated paths: `*`, `?`, `[...]` and `\\` escapes,
/// with `**` no different from `*`. Used for wildcard sources of ADD and COPY.
///
/// # Errors
/// [`IgnoreError::BadPattern`] for an unclosed class or a trailing escape.
pub fn path_match(pattern: &str, path: &str) -> Result<bool, IgnoreError> {
    let mut single = pattern.to_string();
    while single.contains("**") {
        single = single.replace("**", "*");
    }
    let p = Pattern::compile(&single, false)?;
    let chars: Vec<char> = path.chars().collect();
    Ok(match p.kind {
        Kind::Exact => path == single,
        _ => match_tokens(&p.tokens, &chars),
    })
}

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

impl IgnoreMatcher {
    /// Reads `.dockerignore` text: `#` lines are comments, blank lines are skipped,
    /// patterns are trimmed and cleaned, a leading `/` is dropped.
    ///
    /// # Errors
    /// [`IgnoreError`] for a bare `!` or a malformed pattern.
    pub fn from_dockerignore(text: &str) -> Result<IgnoreMatcher, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let invert = p.starts_with('!');
            if invert {
                p = p[1..].trim();
            }
            let mut p = if p.is_empty() {
                String::new()
            } else {
                clean_path(p)
            };
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
            patterns.push(if invert { format!("!{p}") } else { p });
        }
        IgnoreMatcher::new(&patterns)
    }

    /// Compiles patterns as given (`!` prefix for exceptions).
    ///
    /// # Errors
    /// [`IgnoreError`] for a bare `!` or a malformed pattern.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<IgnoreMatcher, IgnoreError> {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let p = clean_path(p);
            let (exclusion, body) = match p.strip_prefix('!') {
                Some("") => return Err(IgnoreError::BareExclusion),
                Some(rest) => (true, rest),
                None => (false, p.as_str()),
            };
            out.push(Pattern::compile(body, exclusion)?);
        }
        Ok(IgnoreMatcher { patterns: out })
    }

    /// Whether any pattern is an exception (`!…`): then excluded directories must still
    /// be walked, since something inside may be re-included.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative to the context root, `/`-separated) is excluded: the
    /// last pattern that matches it or one of its parent directories decides.
    pub fn is_excluded(&self, path: &str) -> bool {
        let file = clean_path(path);
        if file == "." {
            return false;
        }
        let parents: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pat in &self.patterns {
            if pat.exclusion != matched {
                continue;
            }
            let mut m = pat.matches(&file);
            if !m {
                m = (1..=parents.len()).any(|n| pat.matches(&parents[..n].join("/")));
            }
            if m {
                matched = !pat.exclusion;
            }
        }
        matched
    }

    /// Whether a walk can skip everything under the excluded directory `dir`: true
    /// unless an exception pattern could re-include something inside it (Docker's test:
    /// the exception's text starts with `dir/`).
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        let dir_slash = format!("{}/", clean_path(dir));
        !self
            .patterns
            .iter()
            .any(|p| p.exclusion && format!("{}/", p.cleaned).starts_with(&dir_slash))
    }

    /// Whether `path` matches the patterns the way `Matches` does in moby, with the
    /// parent check limited to the pattern's depth. Exposed for tests against Docker's
    /// documented examples; walks use [`IgnoreMatcher::is_excluded`].
    pub fn matches_shallow(&self, path: &str) -> bool {
        let file = clean_path(path);
        let parent: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pat in &self.patterns {
            if pat.exclusion != matched {
                continue;
            }
            let mut m = pat.matches(&file);
            if !m && !parent.is_empty() && pat.dirs <= parent.len() {
                m = pat.matches(&parent[..pat.dirs].join("/"));
            }
            if m {
                matched = !pat.exclusion;
            }
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str], path: &str) -> bool {
        IgnoreMatcher::new(patterns).unwrap().is_excluded(path)
    }

    #[test]
    fn clean_path_matches_go() {
        assert_eq!(clean_path("./a/../b/"), "b");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path("../x/./y"), "../x/y");
        assert_eq!(clean_path(""), ".");
        assert_eq!(clean_path("a//b"), "a/b");
    }

    #[test]
    fn dockers_documented_dockerignore_example() {
        // The example of Docker's .dockerignore reference.
        let text = "# comment\n*/temp*\n*/*/temp*\ntemp?\n";
        let ig = IgnoreMatcher::from_dockerignore(text).unwrap();
        assert!(ig.is_excluded("somedir/temporary.txt"));
        assert!(ig.is_excluded("somedir/temp"));
        assert!(ig.is_excluded("somedir/subdir/temporary.txt"));
        assert!(ig.is_excluded("tempa"));
        assert!(ig.is_excluded("tempb"));
        assert!(!ig.is_excluded("temp"));
        assert!(!ig.is_excluded("a/b/c/temp"));
        assert!(!ig.is_excluded("# comment"));
    }

    #[test]
    fn double_star_spans_directories() {
        assert!(m(&["**/*.go"], "a.go"));
        assert!(m(&["**/*.go"], "a/b/c.go"));
        assert!(!m(&["**/*.go"], "a/b/c.gox"));
        assert!(m(&["**"], "anything/at/all"));
        assert!(m(&["a/**"], "a/b/c"));
        assert!(m(&["a/**/z"], "a/z"));
        assert!(m(&["a/**/z"], "a/b/c/z"));
        assert!(!m(&["a/**/z"], "b/z"));
        assert!(m(&["**/node_modules"], "x/node_modules/y/z.js"));
    }

    #[test]
    fn exceptions_reinclude_and_last_match_wins() {
        // Docker's documented example: all markdown except README files.
        let p = ["*.md", "!README*.md"];
        assert!(m(&p, "CHANGELOG.md"));
        assert!(!m(&p, "README-secret.md"));
        let p = ["*.md", "!README*.md", "README-secret.md"];
        assert!(m(&p, "README-secret.md"));
        assert!(!m(&p, "README.md"));
        let p = ["*.md", "README-secret.md", "!README*.md"];
        assert!(!m(&p, "README-secret.md"));
    }

    #[test]
    fn directory_pattern_excludes_contents_and_leading_slash_is_dropped() {
        let ig = IgnoreMatcher::from_dockerignore("/build\n./tmp/../cache\n").unwrap();
        assert!(ig.is_excluded("build/out/x.o"));
        assert!(ig.is_excluded("cache/a"));
        assert!(!ig.is_excluded("src/build"));
        assert!(ig.can_skip_dir("build"));
        let ig = IgnoreMatcher::new(&["build", "!build/keep"]).unwrap();
        assert!(!ig.can_skip_dir("build"));
        assert!(!ig.is_excluded("build/keep"));
        assert!(ig.is_excluded("build/other"));
    }

    #[test]
    fn wildcards_stop_at_slashes_and_classes_work() {
        assert!(m(&["*"], "a"));
        assert!(m(&["*"], "a/b"), "parent a matches *");
        assert!(!m(&["a*c"], "ab/c"));
        assert!(m(&["file[0-9].txt"], "file7.txt"));
        assert!(!m(&["file[0-9].txt"], "filex.txt"));
        assert!(m(&["file[^0-9].txt"], "filex.txt"));
        assert!(m(&["a\\*b"], "a*b"));
        assert!(!m(&["a\\*b"], "axb"));
    }

    #[test]
    fn path_match_is_single_level() {
        assert!(path_match("*.txt", "a.txt").unwrap());
        assert!(!path_match("*.txt", "d/a.txt").unwrap());
        assert!(path_match("d/?.txt", "d/a.txt").unwrap());
        assert!(!path_match("**.txt", "d/a.txt").unwrap());
    }

    #[test]
    fn hostile_patterns_match_in_linear_time() {
        let pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let path = "a".repeat(5000);
        let started = std::time::Instant::now();
        assert!(!m(&[pattern], &path));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert_eq!(
            IgnoreMatcher::new(&["!"]).unwrap_err(),
            IgnoreError::BareExclusion
        );
        assert!(IgnoreMatcher::new(&["a["]).is_err());
    }

    #[test]
    fn shallow_match_checks_parent_at_pattern_depth() {
        let ig = IgnoreMatcher::new(&["docs"]).unwrap();
        assert!(ig.matches_shallow("docs/a/b"));
        assert!(!ig.matches_shallow("x/docs"));
    }
}
