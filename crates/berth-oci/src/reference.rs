//! Image references (`busybox`, `user/app:1`, `localhost:5000/app@sha256:…`), normalized
//! exactly as Docker does.
//!
//! Docker's rules live in `github.com/distribution/reference`. A reference is
//! `[domain/]path[:tag][@digest]`; [`Reference::parse_normalized`] fills in the defaults
//! the docker CLI and daemon apply (`busybox` → `docker.io/library/busybox`,
//! `index.docker.io/x` → `docker.io/library/x`) and refuses what they refuse, with their
//! error messages, because clients show those messages to users and scripts match them.
//!
//! The grammar is parsed by hand rather than with the regular expressions Docker writes it
//! in. Every part of it is delimited by characters the neighbouring parts cannot contain
//! (`/`, `:`, `@`), so a single left-to-right pass reaches the same split the anchored
//! regex does, including its quirks: a first component that looks like a domain but is not
//! a valid one (`a_b.c/d`) is taken as part of the path with an empty domain, as Docker
//! does. The golden tables in the tests were produced by running Docker's own package on
//! the same inputs.
//!
//! [`familiar_match`] is the glob match behind `docker images PATTERN` and
//! `docker images --filter reference=PATTERN`, with Go's `path.Match` semantics.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Digest;

/// The registry Docker uses when a reference names none.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The old spelling of [`DEFAULT_DOMAIN`], rewritten to it during normalization.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Single-component names on Docker Hub live under `library/` (the official images).
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag implied when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository path Docker accepts (the domain does not count).
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag Docker accepts.
const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not a valid image reference. `Display` gives Docker's exact messages.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ReferenceError {
    /// The string does not follow the reference grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// The repository part of the input has uppercase letters; carries that part as
    /// Docker prints it (after normalization, so `Busybox` gives `library/Busybox`).
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    UppercaseRepository(String),
    /// The reference only parses once lowercased, with the uppercase outside the part
    /// checked for [`ReferenceError::UppercaseRepository`] (e.g. `a_b.C/a`, whose first
    /// component is neither a valid domain nor a valid path component).
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    /// The repository name is empty. Docker's unnormalized parser returns this for an
    /// empty string; [`Reference::parse_normalized`] never does, since normalization
    /// always supplies a name (an empty input is [`ReferenceError::InvalidFormat`]).
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// The repository path is longer than [`NAME_TOTAL_LENGTH_MAX`].
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// The input is a bare 64-hex string, which Docker reserves for image IDs.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    /// A tag given to [`Reference::with_tag`] is not `[\w][\w.-]{0,127}`.
    #[error("invalid tag format")]
    InvalidTag,
    /// The digest's encoded part is not lowercase hex, or an unknown algorithm is spelled
    /// with uppercase letters (go-digest's own grammar is lowercase).
    #[error("invalid checksum digest format")]
    DigestFormat,
    /// The digest's encoded part has the wrong length for its algorithm.
    #[error("invalid checksum digest length")]
    DigestLength,
    /// The digest algorithm is not sha256. Docker also accepts sha384 and sha512, which
    /// berth's [`Digest`] cannot hold; those are refused here too.
    #[error("unsupported digest algorithm")]
    UnsupportedDigest,
}

/// A named image reference: domain, repository path, and an optional tag and digest.
///
/// Always normalized: the domain of a Docker Hub image is `docker.io` and official images
/// carry their `library/` prefix. The domain is empty only in the one case Docker leaves
/// it empty (see the module docs). Ordering is by domain, path, tag, then digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference as the docker CLI and daemon do (`ParseNormalizedNamed`).
    ///
    /// # Errors
    /// - [`ReferenceError::HexIdentifier`] for a bare 64-hex string (an image ID).
    /// - [`ReferenceError::UppercaseRepository`] when the repository has uppercase letters.
    /// - [`ReferenceError::InvalidFormat`] when the grammar does not match (empty input,
    ///   bad characters, trailing `:`, …), [`ReferenceError::NameContainsUppercase`] when
    ///   it would match once lowercased.
    /// - [`ReferenceError::NameTooLong`] when the path exceeds 255 characters.
    /// - [`ReferenceError::DigestFormat`], [`ReferenceError::DigestLength`] or
    ///   [`ReferenceError::UnsupportedDigest`] for a digest that is not a valid sha256.
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if is_image_id_hex(s) {
            return Err(ReferenceError::HexIdentifier(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        // Docker checks case on everything before the first ':' of the remainder, which
        // for `name@sha256:…` includes `@sha256`; the message shows exactly that slice.
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::UppercaseRepository(remote.to_string()));
        }
        parse_full(&format!("{domain}/{remainder}"))
    }

    /// Like `ParseDockerRef`: normalizes, adds the `latest` tag to a bare name, and drops
    /// the tag of a reference that has both tag and digest (the digest alone decides).
    ///
    /// # Errors
    /// As [`Reference::parse_normalized`].
    pub fn parse_docker_ref(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_normalized(s)?;
        if r.digest.is_some() {
            r.tag = None;
        }
        Ok(r.with_default_tag())
    }

    /// Adds the `latest` tag when there is neither tag nor digest (Docker's `TagNameOnly`).
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The registry, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full repository name, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The repository name as Docker shows it: `busybox`, `user/app`, `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The reference as Docker shows it: `busybox:latest`, `user/app@sha256:…`,
    /// `busybox:1@sha256:…`. A bare name stays bare (no implied tag).
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_tag_and_digest(&mut s);
        s
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository (and digest, if any) with `tag`.
    ///
    /// # Errors
    /// [`ReferenceError::InvalidTag`] unless [`is_valid_tag`] accepts `tag`.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// The same repository (and tag, if any) with `digest`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The repository alone, without tag or digest (Docker's `TrimNamed`).
    pub fn without_tag_or_digest(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    fn push_tag_and_digest(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_tag_and_digest(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse_normalized(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether `tag` is a valid tag: `[\w][\w.-]{0,127}` with ASCII `\w`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_LENGTH_MAX
        && is_word(b[0])
        && b[1..].iter().all(|&c| is_word(c) || c == b'.' || c == b'-')
}

/// Docker's `FamiliarMatch`: whether `pattern` (a Go `path.Match` glob) matches the
/// familiar string of `r` (`busybox:latest`) or, failing that, its familiar name
/// (`busybox`). This is how both `docker images PATTERN` and
/// `docker images --filter reference=PATTERN` select images; the CLI turns the positional
/// argument into a `reference` filter. A malformed pattern matches nothing.
pub fn familiar_match(pattern: &str, r: &Reference) -> bool {
    familiar_match_checked(pattern, r).unwrap_or(false)
}

/// A glob pattern that Go's `path.Match` refuses (for example an unclosed `[`).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("syntax error in pattern")]
pub struct BadPatternError;

/// [`familiar_match`], reporting a malformed pattern the way Docker's graphdriver image
/// store does: the error comes from matching the familiar string; a pattern found
/// malformed only while matching the familiar name just does not match.
///
/// # Errors
/// [`BadPatternError`] when the pattern is malformed.
pub fn familiar_match_checked(pattern: &str, r: &Reference) -> Result<bool, BadPatternError> {
    match glob_match(pattern, &r.familiar_string()) {
        Ok(true) => Ok(true),
        first => {
            let by_name = glob_match(pattern, &r.familiar_name()).unwrap_or(false);
            first.map(|_| by_name)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Normalization

/// Whether `s` is exactly 64 lowercase hex digits (Docker's `anchoredIdentifierRegexp`).
fn is_image_id_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Splits off the registry the way Docker does before parsing (`splitDockerDomain`): the
/// first component is a registry only if it is `localhost`, contains `.` or `:`, or has
/// uppercase letters; otherwise the reference is on Docker Hub.
fn split_docker_domain(name: &str) -> (&str, String) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{name}"));
    };
    let (domain, remote) = if maybe_domain == "localhost" {
        (maybe_domain, maybe_remote)
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, maybe_remote)
    } else if maybe_domain.contains(['.', ':']) || maybe_domain.to_lowercase() != maybe_domain {
        (maybe_domain, maybe_remote)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        (domain, format!("{OFFICIAL_REPO_PREFIX}{remote}"))
    } else {
        (domain, remote.to_string())
    }
}

/// Docker's `Parse`, for the already-normalized `domain/remainder` string.
fn parse_full(s: &str) -> Result<Reference, ReferenceError> {
    let Some(parts) = match_reference(s) else {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        if match_reference(&s.to_lowercase()).is_some() {
            return Err(ReferenceError::NameContainsUppercase);
        }
        return Err(ReferenceError::InvalidFormat);
    };
    if parts.path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    let digest = parts.digest.map(validate_digest).transpose()?;
    Ok(Reference {
        domain: parts.domain.unwrap_or_default().to_string(),
        path: parts.path.to_string(),
        tag: parts.tag.map(str::to_string),
        digest,
    })
}

/// The pieces of a reference that matched the grammar, before any validation that
/// Docker does after matching (path length, digest algorithm and length).
struct Parts<'a> {
    domain: Option<&'a str>,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Matches `[domain/]path[:tag][@digest]`, splitting it as Docker's anchored regex does.
fn match_reference(s: &str) -> Option<Parts<'_>> {
    // No part before the digest may contain '@', and the digest contains none either.
    let (before, digest) = match s.split_once('@') {
        Some((before, digest)) => (before, Some(digest)),
        None => (s, None),
    };
    if digest.is_some_and(|d| !is_digest_grammar(d)) {
        return None;
    }
    // A ':' after the last '/' can only start the tag: the name holds a ':' only in a
    // domain's port, and a domain is always followed by '/'.
    let (name, tag) = match before.rfind(':') {
        Some(i) if !before[i..].contains('/') => (&before[..i], Some(&before[i + 1..])),
        _ => (before, None),
    };
    if tag.is_some_and(|t| !is_valid_tag(t)) {
        return None;
    }
    let (domain, path) = split_name(name)?;
    Some(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

/// Splits a name into optional domain and path (`anchoredNameRegexp`). The regex prefers
/// taking a domain; when the first component is not a valid domain it may still be a
/// path component.
fn split_name(name: &str) -> Option<(Option<&str>, &str)> {
    if let Some((first, rest)) = name.split_once('/') {
        if is_domain_and_port(first) && is_remote_name(rest) {
            return Some((Some(first), rest));
        }
    }
    is_remote_name(name).then_some((None, name))
}

/// `pathComponent ('/' pathComponent)*`.
fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    // Each run of non-alphanumerics between alphanumerics must be one separator.
    b.split(|&c| alnum(c))
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&c| c == b'-'))
}

/// `host(:[0-9]+)?` where host is a DNS-like name or a bracketed IPv6 address.
fn is_domain_and_port(s: &str) -> bool {
    let (host_ok, port) = if let Some(inner_and_rest) = s.strip_prefix('[') {
        let Some((inner, rest)) = inner_and_rest.split_once(']') else {
            return false;
        };
        let ipv6_ok =
            !inner.is_empty() && inner.bytes().all(|c| c.is_ascii_hexdigit() || c == b':');
        (ipv6_ok, rest)
    } else {
        let end = s.find(':').unwrap_or(s.len());
        (s[..end].split('.').all(is_domain_component), &s[end..])
    };
    host_ok
        && (port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())))
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`.
fn is_digest_grammar(s: &str) -> bool {
    let Some((algorithm, encoded)) = s.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    algorithm_ok && encoded.len() >= 32 && encoded.bytes().all(|c| c.is_ascii_hexdigit())
}

/// go-digest's `Validate` for a string that matched the digest grammar, narrowed to the
/// one algorithm [`Digest`] holds.
fn validate_digest(s: &str) -> Result<Digest, ReferenceError> {
    let (algorithm, encoded) = s.split_once(':').ok_or(ReferenceError::DigestFormat)?;
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        // go-digest calls an unknown algorithm malformed rather than unsupported when it
        // fails its own, lowercase-only, algorithm grammar.
        _ if algorithm.bytes().any(|c| c.is_ascii_uppercase()) => {
            return Err(ReferenceError::DigestFormat);
        }
        _ => return Err(ReferenceError::UnsupportedDigest),
    };
    if encoded.len() != hex_len {
        return Err(ReferenceError::DigestLength);
    }
    if !encoded
        .bytes()
        .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(ReferenceError::DigestFormat);
    }
    if algorithm != "sha256" {
        return Err(ReferenceError::UnsupportedDigest);
    }
    Digest::from_hex(encoded).map_err(|_| ReferenceError::DigestFormat)
}

/// `\w` in Go's RE2: ASCII letters, digits and underscore.
fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

// ---------------------------------------------------------------------------------------
// Glob matching with Go's path.Match semantics

/// Go's `path.Match`: `*` matches any run of non-`/` characters, `?` one non-`/`
/// character, `[...]` a class (`^` negates, `a-z` ranges, `\` escapes), `\x` a literal.
/// Like Go, the whole pattern is checked for syntax even after a mismatch.
fn glob_match(pattern: &str, name: &str) -> Result<bool, BadPatternError> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing '*' matches the rest of the name unless it has a '/'.
            return Ok(!name.contains(&b'/'));
        }
        let (t, ok) = match_chunk(chunk, name)?;
        // The last chunk must consume the whole name, else try the star's skips.
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            // Skip i+1 bytes for the star; it never crosses a '/'.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok) = match_chunk(chunk, &name[i + 1..])?;
                if ok && (t.is_empty() || !pattern.is_empty()) {
                    name = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        // No match: still report a malformed remainder of the pattern, as Go does.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off leading stars and the literal/class chunk up to the next star outside `[]`.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches one chunk (no stars) at the start of `s`; returns the rest of `s` and whether
/// it matched. Keeps walking the chunk after a mismatch to find syntax errors.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<(&'a [u8], bool), BadPatternError> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0u32;
                if !failed {
                    let (rune, n) = decode_rune(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = class_char(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        let (h, rest) = class_char(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                let literal = if c == b'\\' {
                    chunk = &chunk[1..];
                    *chunk.first().ok_or(BadPatternError)?
                } else {
                    c
                };
                if !failed {
                    if literal != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { (&[], false) } else { (s, true) })
}

/// One (possibly escaped) character of a `[...]` class, as a code point. Errors where Go's
/// `getEsc` does: a bare `-` or `]`, a dangling `\`, or a class that never closes.
fn class_char(chunk: &[u8]) -> Result<(u32, &[u8]), BadPatternError> {
    let chunk = match chunk {
        [] | [b'-' | b']', ..] | [b'\\'] => return Err(BadPatternError),
        [b'\\', rest @ ..] => rest,
        _ => chunk,
    };
    let (r, n) = decode_rune(chunk);
    if r == u32::from(char::REPLACEMENT_CHARACTER) && n == 1 {
        return Err(BadPatternError);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPatternError);
    }
    Ok((r, rest))
}

/// Go's `utf8.DecodeRuneInString`: the first code point and its length in bytes, or
/// U+FFFD and 1 for an invalid or truncated sequence. `s` must not be empty.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    let head = &s[..s.len().min(4)];
    let valid = match std::str::from_utf8(head) {
        Ok(v) => v,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    match valid.chars().next() {
        Some(c) => (u32::from(c), c.len_utf8()),
        None => (u32::from(char::REPLACEMENT_CHARACTER), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest used in the golden tables, written `{D}` there.
    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// `ParseNormalizedNamed` on each input, as Docker's own package (distribution/reference
    /// as vendored in moby v28.5.2) answered it: either `ERR <message>` or
    /// `domain|path|tag|digest|String()|FamiliarName|FamiliarString`.
    const PARSE_GOLDEN: &[(&str, &str)] = &[
        (
            "busybox",
            "docker.io|library/busybox|||docker.io/library/busybox|busybox|busybox",
        ),
        (
            "busybox:latest",
            "docker.io|library/busybox|latest||docker.io/library/busybox:latest|busybox|busybox:latest",
        ),
        (
            "ubuntu:22.04",
            "docker.io|library/ubuntu|22.04||docker.io/library/ubuntu:22.04|ubuntu|ubuntu:22.04",
        ),
        (
            "library/busybox",
            "docker.io|library/busybox|||docker.io/library/busybox|busybox|busybox",
        ),
        (
            "docker.io/busybox",
            "docker.io|library/busybox|||docker.io/library/busybox|busybox|busybox",
        ),
        (
            "docker.io/library/busybox",
            "docker.io|library/busybox|||docker.io/library/busybox|busybox|busybox",
        ),
        (
            "index.docker.io/busybox",
            "docker.io|library/busybox|||docker.io/library/busybox|busybox|busybox",
        ),
        (
            "index.docker.io/library/busybox:1.36",
            "docker.io|library/busybox|1.36||docker.io/library/busybox:1.36|busybox|busybox:1.36",
        ),
        (
            "index.docker.io/user/app",
            "docker.io|user/app|||docker.io/user/app|user/app|user/app",
        ),
        (
            "docker.io/user/app:v1",
            "docker.io|user/app|v1||docker.io/user/app:v1|user/app|user/app:v1",
        ),
        (
            "user/app",
            "docker.io|user/app|||docker.io/user/app|user/app|user/app",
        ),
        (
            "user/app/sub",
            "docker.io|user/app/sub|||docker.io/user/app/sub|user/app/sub|user/app/sub",
        ),
        (
            "user/app:1.0-rc_1",
            "docker.io|user/app|1.0-rc_1||docker.io/user/app:1.0-rc_1|user/app|user/app:1.0-rc_1",
        ),
        (
            "library/busybox/extra",
            "docker.io|library/busybox/extra|||docker.io/library/busybox/extra|library/busybox/extra|library/busybox/extra",
        ),
        (
            "docker.io/library/foo/bar",
            "docker.io|library/foo/bar|||docker.io/library/foo/bar|library/foo/bar|library/foo/bar",
        ),
        (
            "localhost/app",
            "localhost|app|||localhost/app|localhost/app|localhost/app",
        ),
        (
            "localhost:5000/app",
            "localhost:5000|app|||localhost:5000/app|localhost:5000/app|localhost:5000/app",
        ),
        (
            "localhost:5000/app:1",
            "localhost:5000|app|1||localhost:5000/app:1|localhost:5000/app|localhost:5000/app:1",
        ),
        (
            "localhost:5000/app@sha256:{D}",
            "localhost:5000|app||sha256:{D}|localhost:5000/app@sha256:{D}|localhost:5000/app|localhost:5000/app@sha256:{D}",
        ),
        (
            "localhost:5000/a/b/c:tag@sha256:{D}",
            "localhost:5000|a/b/c|tag|sha256:{D}|localhost:5000/a/b/c:tag@sha256:{D}|localhost:5000/a/b/c|localhost:5000/a/b/c:tag@sha256:{D}",
        ),
        (
            "busybox@sha256:{D}",
            "docker.io|library/busybox||sha256:{D}|docker.io/library/busybox@sha256:{D}|busybox|busybox@sha256:{D}",
        ),
        (
            "busybox:1.36@sha256:{D}",
            "docker.io|library/busybox|1.36|sha256:{D}|docker.io/library/busybox:1.36@sha256:{D}|busybox|busybox:1.36@sha256:{D}",
        ),
        (
            "user/app:1@sha256:{D}",
            "docker.io|user/app|1|sha256:{D}|docker.io/user/app:1@sha256:{D}|user/app|user/app:1@sha256:{D}",
        ),
        (
            "quay.io/coreos/etcd:v3.5.0",
            "quay.io|coreos/etcd|v3.5.0||quay.io/coreos/etcd:v3.5.0|quay.io/coreos/etcd|quay.io/coreos/etcd:v3.5.0",
        ),
        (
            "quay.io:443/coreos/etcd",
            "quay.io:443|coreos/etcd|||quay.io:443/coreos/etcd|quay.io:443/coreos/etcd|quay.io:443/coreos/etcd",
        ),
        (
            "registry.example.com:5000/team/app",
            "registry.example.com:5000|team/app|||registry.example.com:5000/team/app|registry.example.com:5000/team/app|registry.example.com:5000/team/app",
        ),
        (
            "my-registry.local/app",
            "my-registry.local|app|||my-registry.local/app|my-registry.local/app|my-registry.local/app",
        ),
        (
            "127.0.0.1:5000/app",
            "127.0.0.1:5000|app|||127.0.0.1:5000/app|127.0.0.1:5000/app|127.0.0.1:5000/app",
        ),
        (
            "[::1]:5000/app",
            "[::1]:5000|app|||[::1]:5000/app|[::1]:5000/app|[::1]:5000/app",
        ),
        ("[fe80::1%eth0]:5000/app", "ERR invalid reference format"),
        (
            "[2001:db8::1]/app:tag",
            "[2001:db8::1]|app|tag||[2001:db8::1]/app:tag|[2001:db8::1]/app|[2001:db8::1]/app:tag",
        ),
        ("[::1]/app", "[::1]|app|||[::1]/app|[::1]/app|[::1]/app"),
        ("[]/app", "ERR invalid reference format"),
        ("[::g]:5000/app", "ERR invalid reference format"),
        ("Foo/bar", "Foo|bar|||Foo/bar|Foo/bar|Foo/bar"),
        (
            "FOO.example.com/app",
            "FOO.example.com|app|||FOO.example.com/app|FOO.example.com/app|FOO.example.com/app",
        ),
        (
            "example.com/Foo",
            "ERR invalid reference format: repository name (Foo) must be lowercase",
        ),
        (
            "Busybox",
            "ERR invalid reference format: repository name (library/Busybox) must be lowercase",
        ),
        (
            "BUSYBOX:latest",
            "ERR invalid reference format: repository name (library/BUSYBOX) must be lowercase",
        ),
        (
            "localhost:5000/Foo",
            "ERR invalid reference format: repository name (Foo) must be lowercase",
        ),
        (
            "busybox:Latest",
            "docker.io|library/busybox|Latest||docker.io/library/busybox:Latest|busybox|busybox:Latest",
        ),
        (
            "Busybox@sha256:{D}",
            "ERR invalid reference format: repository name (library/Busybox@sha256) must be lowercase",
        ),
        (
            "user/App:tag",
            "ERR invalid reference format: repository name (user/App) must be lowercase",
        ),
        (
            "{D}",
            "ERR invalid repository name ({D}), cannot specify 64-byte hexadecimal strings",
        ),
        (
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "ERR invalid reference format: repository name (library/E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855) must be lowercase",
        ),
        (
            "sha256:{D}",
            "docker.io|library/sha256|{D}||docker.io/library/sha256:{D}|sha256|sha256:{D}",
        ),
        (
            "{D}0",
            "docker.io|library/{D}0|||docker.io/library/{D}0|{D}0|{D}0",
        ),
        (
            "ab{D}",
            "docker.io|library/ab{D}|||docker.io/library/ab{D}|ab{D}|ab{D}",
        ),
        ("busybox:", "ERR invalid reference format"),
        ("busybox@", "ERR invalid reference format"),
        ("busybox@sha256:", "ERR invalid reference format"),
        (":tag", "ERR invalid reference format"),
        ("@sha256:{D}", "ERR invalid reference format"),
        ("/busybox", "ERR invalid reference format"),
        ("busybox/", "ERR invalid reference format"),
        ("user//app", "ERR invalid reference format"),
        ("-user/app", "ERR invalid reference format"),
        ("user-/app", "ERR invalid reference format"),
        (
            "us--er/app",
            "docker.io|us--er/app|||docker.io/us--er/app|us--er/app|us--er/app",
        ),
        (
            "us__er/app",
            "docker.io|us__er/app|||docker.io/us__er/app|us__er/app|us__er/app",
        ),
        ("us___er/app", "ERR invalid reference format"),
        ("us._er/app", "ERR invalid reference format"),
        ("us.er/app", "us.er|app|||us.er/app|us.er/app|us.er/app"),
        (
            "us_er/app",
            "docker.io|us_er/app|||docker.io/us_er/app|us_er/app|us_er/app",
        ),
        ("a_b.c/d", "|a_b.c/d|||a_b.c/d|a_b.c/d|a_b.c/d"),
        ("a_b.C/a", "ERR repository name must be lowercase"),
        ("a_b.c:5000/d", "ERR invalid reference format"),
        ("foo:bar/baz", "ERR invalid reference format"),
        (
            "foo:5000/baz",
            "foo:5000|baz|||foo:5000/baz|foo:5000/baz|foo:5000/baz",
        ),
        (
            "localhost:5000",
            "docker.io|library/localhost|5000||docker.io/library/localhost:5000|localhost|localhost:5000",
        ),
        ("localhost:notaport/app", "ERR invalid reference format"),
        ("example.com:/app", "ERR invalid reference format"),
        ("-example.com/app", "ERR invalid reference format"),
        ("example-.com/app", "ERR invalid reference format"),
        (
            "exa-mple.com/app",
            "exa-mple.com|app|||exa-mple.com/app|exa-mple.com/app|exa-mple.com/app",
        ),
        ("example..com/app", "ERR invalid reference format"),
        ("bus$ybox", "ERR invalid reference format"),
        ("bus ybox", "ERR invalid reference format"),
        ("busybox:tag:tag", "ERR invalid reference format"),
        (
            "busybox:tag@sha256:{D}@sha256:{D}",
            "ERR invalid reference format",
        ),
        (
            "busybox@sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "ERR invalid checksum digest format",
        ),
        (
            "busybox@sha256:e3b0c44298fc1c149afbf4c8996fb924",
            "ERR invalid checksum digest length",
        ),
        (
            "busybox@md5:e3b0c44298fc1c149afbf4c8996fb924",
            "ERR unsupported digest algorithm",
        ),
        (
            "busybox@SHA256:{D}",
            "ERR invalid reference format: repository name (library/busybox@SHA256) must be lowercase",
        ),
        ("busybox@sha256+b64:{D}", "ERR unsupported digest algorithm"),
        ("busybox:1@sHa256:{D}", "ERR invalid checksum digest format"),
        (
            "busybox:1@MD5:e3b0c44298fc1c149afbf4c8996fb924",
            "ERR invalid checksum digest format",
        ),
        (
            "busybox:1@md5:e3b0c44298fc1c149afbf4c8996fb924",
            "ERR unsupported digest algorithm",
        ),
        ("busybox@1sha:{D}", "ERR invalid reference format"),
        ("busybox@sha256:{D}xyz", "ERR invalid reference format"),
        ("busybox:.tag", "ERR invalid reference format"),
        ("busybox:-tag", "ERR invalid reference format"),
        (
            "busybox:_tag",
            "docker.io|library/busybox|_tag||docker.io/library/busybox:_tag|busybox|busybox:_tag",
        ),
        (
            "busybox:ta.g-_",
            "docker.io|library/busybox|ta.g-_||docker.io/library/busybox:ta.g-_|busybox|busybox:ta.g-_",
        ),
        (
            "Ä",
            "ERR invalid reference format: repository name (library/Ä) must be lowercase",
        ),
        ("ubuntu:22.04 ", "ERR invalid reference format"),
        (" ubuntu", "ERR invalid reference format"),
        ("bus\\tybox", "ERR invalid reference format"),
    ];

    /// Inputs Docker accepts but berth refuses, because [`Digest`] holds only sha256.
    const SHA256_ONLY: &[&str] = &[
        "busybox@sha512:{D}{D}",
        "busybox@sha384:{D}e3b0c44298fc1c149afbf4c8996fb924",
    ];

    fn describe(r: &Reference) -> String {
        [
            r.domain().to_string(),
            r.path().to_string(),
            r.tag().unwrap_or_default().to_string(),
            r.digest().map(ToString::to_string).unwrap_or_default(),
            r.to_string(),
            r.familiar_name(),
            r.familiar_string(),
        ]
        .join("|")
    }

    #[test]
    fn parse_normalized_matches_docker_golden_table() {
        let mut failures = Vec::new();
        for (input, expected) in PARSE_GOLDEN {
            let input = input.replace("{D}", HEX);
            let expected = expected.replace("{D}", HEX);
            let got = match Reference::parse_normalized(&input) {
                Ok(r) => describe(&r),
                Err(e) => format!("ERR {e}"),
            };
            if got != expected {
                failures.push(format!("{input:?}\n   got  {got}\n   want {expected}"));
            }
        }
        assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    }

    #[test]
    fn digests_other_than_sha256_are_refused_as_unsupported() {
        for input in SHA256_ONLY {
            let input = input.replace("{D}", HEX);
            assert_eq!(
                Reference::parse_normalized(&input),
                Err(ReferenceError::UnsupportedDigest),
                "{input}"
            );
        }
    }

    #[test]
    fn long_names_are_limited_on_the_path_alone() {
        let b = |n| "b".repeat(n);
        // The path may be 255 characters; the domain does not count.
        let r = Reference::parse_normalized(&format!("example.com/{}", b(255))).unwrap();
        assert_eq!(r.path().len(), 255);
        let r = Reference::parse_normalized(&format!("docker.io/library/{}", b(247))).unwrap();
        assert_eq!(r.familiar_name(), b(247));
        // `library/` counts: 8 + 255 > 255.
        for input in [
            b(255),
            format!("docker.io/{}", b(255)),
            format!("example.com/{}", b(256)),
            format!("{}/{}", "a".repeat(200), "a".repeat(200)),
        ] {
            assert_eq!(
                Reference::parse_normalized(&input),
                Err(ReferenceError::NameTooLong)
            );
        }
        assert_eq!(
            ReferenceError::NameTooLong.to_string(),
            "repository name must not be more than 255 characters"
        );
    }

    #[test]
    fn tags_are_limited_to_128_characters() {
        let ok = format!("busybox:{}", "t".repeat(128));
        assert_eq!(
            Reference::parse_normalized(&ok)
                .unwrap()
                .tag()
                .unwrap()
                .len(),
            128
        );
        let long = format!("busybox:{}", "t".repeat(129));
        assert_eq!(
            Reference::parse_normalized(&long),
            Err(ReferenceError::InvalidFormat)
        );
    }

    #[test]
    fn is_valid_tag_follows_docker_tag_grammar() {
        for tag in ["latest", "_", "a.b-c_D", "1", &"t".repeat(128)] {
            assert!(is_valid_tag(tag), "{tag}");
        }
        for tag in ["", ".x", "-x", "a/b", "a:b", "é", "a b", &"t".repeat(129)] {
            assert!(!is_valid_tag(tag), "{tag}");
        }
    }

    #[test]
    fn with_default_tag_adds_latest_only_to_a_bare_name() {
        let r = |s: &str| Reference::parse_normalized(s).unwrap().with_default_tag();
        assert_eq!(r("busybox").to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r("busybox:1").tag(), Some("1"));
        let pinned = r(&format!("busybox@sha256:{HEX}"));
        assert_eq!(pinned.tag(), None);
        assert_eq!(pinned.familiar_string(), format!("busybox@sha256:{HEX}"));
    }

    #[test]
    fn parse_docker_ref_drops_the_tag_when_a_digest_pins_the_image() {
        let r = Reference::parse_docker_ref(&format!("busybox:1@sha256:{HEX}")).unwrap();
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
        let r = Reference::parse_docker_ref("user/app").unwrap();
        assert_eq!(r.familiar_string(), "user/app:latest");
    }

    #[test]
    fn with_tag_and_with_digest_keep_the_other_part() {
        let digest: Digest = format!("sha256:{HEX}").parse().unwrap();
        let base = Reference::parse_normalized("localhost:5000/app").unwrap();
        let tagged = base.with_tag("v2").unwrap();
        assert_eq!(tagged.to_string(), "localhost:5000/app:v2");
        let both = tagged.with_digest(digest);
        assert_eq!(
            both.to_string(),
            format!("localhost:5000/app:v2@sha256:{HEX}")
        );
        assert_eq!(
            both.with_tag("v3").unwrap().familiar_string(),
            format!("localhost:5000/app:v3@sha256:{HEX}")
        );
        assert_eq!(both.without_tag_or_digest(), base);
        assert_eq!(base.with_tag("-bad"), Err(ReferenceError::InvalidTag));
        assert_eq!(ReferenceError::InvalidTag.to_string(), "invalid tag format");
    }

    #[test]
    fn display_round_trips_through_parse_and_serde() {
        for input in [
            "busybox",
            "user/app:1",
            "localhost:5000/a/b@sha256:{D}",
            "[::1]:5000/app:tag@sha256:{D}",
            "a_b.c/d",
            "Foo/bar:x",
        ] {
            let input = input.replace("{D}", HEX);
            let r: Reference = input.parse().unwrap();
            assert_eq!(r.to_string().parse::<Reference>().unwrap(), r);
            assert_eq!(r.familiar_string().parse::<Reference>().unwrap(), r);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{r}\""));
            assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
        }
        let err = serde_json::from_str::<Reference>("\"Busybox\"").unwrap_err();
        assert!(err.to_string().contains("must be lowercase"), "{err}");
    }

    #[test]
    fn references_order_by_name_then_tag() {
        let mut refs: Vec<Reference> = ["busybox:2", "alpine", "busybox:1", "a.io/x"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        refs.sort();
        let shown: Vec<String> = refs.iter().map(Reference::familiar_string).collect();
        assert_eq!(shown, ["a.io/x", "alpine", "busybox:1", "busybox:2"]);
    }

    /// `FamiliarMatch(pattern, ParseNormalizedNamed(ref))` as Docker's package answered
    /// it: `true`, `false`, or `bad` for a pattern Go's `path.Match` refuses.
    const MATCH_GOLDEN: &[(&str, &str, &str)] = &[
        ("busybox", "busybox:latest", "true"),
        ("busybox", "busybox", "true"),
        ("busybox:latest", "busybox:latest", "true"),
        ("busybox:1", "busybox:latest", "false"),
        ("busy*", "busybox:latest", "true"),
        ("busy*", "busybox:1.36", "true"),
        ("busybox:*", "busybox:1.36", "true"),
        ("busybox:1.*", "busybox:1.36", "true"),
        ("*", "busybox:latest", "true"),
        ("*", "user/app:1", "false"),
        ("*/*", "user/app:1", "true"),
        ("user/*", "user/app:1", "true"),
        ("user/*", "user/app/sub:1", "false"),
        ("user/*/*", "user/app/sub:1", "true"),
        ("*", "localhost:5000/app:1", "false"),
        ("localhost:5000/*", "localhost:5000/app:1", "true"),
        ("localhost:*/app", "localhost:5000/app:1", "true"),
        ("library/busybox", "busybox:latest", "false"),
        ("docker.io/library/busybox", "busybox:latest", "false"),
        ("docker.io/busybox", "busybox:latest", "false"),
        ("busybox", "busybox@sha256:{D}", "true"),
        ("busybox@sha256:*", "busybox@sha256:{D}", "true"),
        ("busybox@*", "busybox@sha256:{D}", "true"),
        ("busybox:1@sha256:*", "busybox:1@sha256:{D}", "true"),
        ("busybox:1", "busybox:1@sha256:{D}", "false"),
        ("busybox:?", "busybox:1", "true"),
        ("busybox:??", "busybox:1", "false"),
        ("b?sybox", "busybox:latest", "true"),
        ("[a-c]usybox", "busybox:latest", "true"),
        ("[^a-c]usybox", "busybox:latest", "false"),
        ("[!a-c]usybox", "busybox:latest", "true"),
        ("[b]usybox:latest", "busybox:latest", "true"),
        ("[\\b]usybox", "busybox:latest", "true"),
        ("busybo[xyz]", "busybox:latest", "true"),
        ("busybox[", "busybox:latest", "bad"),
        ("[", "busybox:latest", "bad"),
        ("busybox\\", "busybox:latest", "bad"),
        ("\\busybox", "busybox:latest", "true"),
        ("[]a]usybox", "busybox:latest", "bad"),
        ("[a-]usybox", "busybox:latest", "bad"),
        ("[-a]usybox", "busybox:latest", "bad"),
        ("nomatch[", "busybox:latest", "bad"),
        ("nomatch*[", "busybox:latest", "bad"),
        ("*x", "busybox:latest", "true"),
        ("*x*", "busybox:latest", "true"),
        ("*box:*", "busybox:latest", "true"),
        ("**", "busybox:latest", "true"),
        ("b*y*x", "busybox:latest", "true"),
        ("*/app", "user/app:1", "true"),
        ("user?app", "user/app:1", "false"),
        ("", "busybox:latest", "false"),
        ("busybox", "user/busybox:latest", "false"),
        ("*busybox", "user/busybox:latest", "false"),
        ("*/busybox", "user/busybox:latest", "true"),
        ("a*", "a_b.c/d", "false"),
    ];

    #[test]
    fn familiar_match_matches_docker_golden_table() {
        let mut failures = Vec::new();
        for (pattern, input, expected) in MATCH_GOLDEN {
            let input = input.replace("{D}", HEX);
            let r = Reference::parse_normalized(&input).unwrap();
            let got = match familiar_match_checked(pattern, &r) {
                Ok(m) => m.to_string(),
                Err(BadPatternError) => "bad".to_string(),
            };
            if got != *expected {
                failures.push(format!(
                    "{pattern:?} vs {input:?}: got {got}, want {expected}"
                ));
            }
            assert_eq!(familiar_match(pattern, &r), *expected == "true");
        }
        assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    }

    #[test]
    fn glob_star_skips_bytes_inside_multibyte_characters_like_go() {
        // Go's star loop advances byte by byte; '?' then sees an invalid sequence and
        // still consumes one byte, so these agree with path.Match.
        assert_eq!(glob_match("*?", "é"), Ok(true));
        assert_eq!(glob_match("?", "é"), Ok(true));
        assert_eq!(glob_match("??", "é"), Ok(false));
        assert_eq!(glob_match("[é]", "é"), Ok(true));
        assert_eq!(glob_match("[a-z]", "é"), Ok(false));
    }
}
