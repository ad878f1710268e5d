//! The parse error, with Docker's wording so that users see the messages they know.

use crate::lex::LexError;

/// A Dockerfile that cannot be parsed: the 1-based line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line where the offending instruction starts.
    pub line: usize,
    /// What is wrong, in Docker's words.
    pub kind: ParseErrorKind,
}

/// What is wrong with a Dockerfile line. Messages are BuildKit's (moby vendors them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// A parser directive given twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    /// `# escape=` with something other than `\` or `` ` ``.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    /// A heredoc whose delimiter line never comes.
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    /// Only comments and blank lines.
    #[error("file with no instructions")]
    NoInstructions,
    /// A heredoc delimiter that does not lex.
    #[error("{0}")]
    Lex(LexError),
    /// `["a", 1]`.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    /// A keyword Docker does not know, with Docker's "did you mean" for near misses.
    #[error("unknown instruction: {name}{}", did_you_mean(.suggestion))]
    UnknownInstruction {
        /// The keyword as written.
        name: String,
        /// The closest instruction (edit distance below 3), cased like the input.
        suggestion: Option<String>,
    },
    /// Legacy `ENV key` without a value.
    #[error("{0} must have two arguments")]
    TwoArguments(&'static str),
    /// `ENV a=b c`.
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    MissingEquals(String),
    /// An instruction without arguments that needs some.
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(&'static str),
    /// An instruction that takes exactly one argument.
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    /// COPY/ADD with a single argument.
    #[error(
        "{0} requires at least two arguments, but only one was provided. Destination could not be determined"
    )]
    NoDestination(&'static str),
    /// A heredoc in a place that cannot take one (the destination).
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(&'static str),
    /// `ENV =x`.
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    /// Key/value lists that do not come in threes.
    #[error("Bad input to {0}, too many arguments")]
    TooManyArguments(&'static str),
    /// FROM with two or four or more words.
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    /// `FROM x AS 1bad`.
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName(String),
    /// `ONBUILD ONBUILD …`.
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    /// `ONBUILD FROM` / `ONBUILD MAINTAINER`.
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(String),
    /// `HEALTHCHECK NONE x`.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArgs,
    /// `HEALTHCHECK CMD` alone.
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    /// `HEALTHCHECK FOO`.
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    /// A duration option below Docker's minimum.
    #[error("Interval {0:?} cannot be less than 1ms")]
    IntervalTooShort(String),
    /// A duration that Go's `time.ParseDuration` would reject.
    #[error("time: invalid duration {0:?}")]
    InvalidDuration(String),
    /// `--retries=x`.
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    InvalidRetries(String),
    /// `--retries=-1`.
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(i64),
    /// `VOLUME ""`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// SHELL in shell form.
    #[error("{0} requires the arguments to be in JSON form")]
    NotJson(&'static str),
    /// A flag word without `--`.
    #[error("arg should start with -- : {0}")]
    FlagNotDashed(String),
    /// A flag the instruction does not take.
    #[error("unknown flag: {flag}{}", did_you_mean(.suggestion))]
    UnknownFlag {
        /// The flag as written, with its dashes.
        flag: String,
        /// The closest flag this instruction takes (without dashes).
        suggestion: Option<String>,
    },
    /// A single-valued flag given twice.
    #[error("duplicate flag specified: {0}")]
    DuplicateFlag(String),
    /// `--from` without `=value`.
    #[error("missing a value on flag: {0}")]
    FlagMissingValue(String),
    /// `--link=maybe`.
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    FlagNotBool {
        /// The flag as written.
        flag: String,
        /// The value given.
        value: String,
    },
    /// `RUN --network=bridge`.
    #[error("invalid network mode {0:?}")]
    InvalidNetwork(String),
    /// An instruction before the first FROM (other than ARG).
    #[error("no build stage in current context")]
    NoStage,
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean {s}?)"),
        None => String::new(),
    }
}

/// The option closest to `value` by edit distance, if closer than 3, as BuildKit's
/// `suggest.Search`. Case-insensitive search returns the option cased like `value`.
pub(crate) fn suggest(value: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let norm = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let val = norm(value);
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let opt = norm(opt);
        if opt == val {
            return None;
        }
        let d = levenshtein(&val, &opt);
        if d < min {
            min = d;
            best = Some(opt);
        }
    }
    let best = best?;
    if case_sensitive || value == value.to_lowercase() {
        Some(best)
    } else if value == value.to_uppercase() {
        Some(best.to_uppercase())
    } else {
        Some(best)
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_follow_buildkit() {
        let names = ["FROM", "RUN", "COPY"];
        assert_eq!(suggest("FORM", &names, false).as_deref(), Some("FROM"));
        assert_eq!(suggest("form", &names, false).as_deref(), Some("from"));
        assert_eq!(suggest("RUUN", &names, false).as_deref(), Some("RUN"));
        assert_eq!(suggest("XYZZY", &names, false), None);
        assert_eq!(
            suggest("form", &["from", "chown"], true).as_deref(),
            Some("from")
        );
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
