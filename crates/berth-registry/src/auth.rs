//! Registry credentials and the `WWW-Authenticate` challenge.
//!
//! Docker clients hand the daemon credentials as an [`AuthConfig`] (base64url JSON in
//! `X-Registry-Auth`, or the body of `POST /auth`). The registry says how to use them
//! in its 401 answer: `Basic realm=...` (send them on every request) or
//! `Bearer realm=...,service=...,scope=...` (trade them at the realm for a token).

use serde::{Deserialize, Serialize};

use crate::base64;

/// Docker's `AuthConfig`, as the CLI sends it in `X-Registry-Auth` and `POST /auth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    /// User name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// `base64(username:password)`, as `~/.docker/config.json` stores it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// The registry these are for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    /// A refresh token obtained at login, used instead of a password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    /// A bearer token to send as it is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header value. An empty or `{}` header means
    /// anonymous; a value that is not base64 JSON is an error (Docker refuses it too).
    ///
    /// # Errors
    /// A message for the client when the header cannot be decoded.
    pub fn from_header(value: &str) -> Result<AuthConfig, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(AuthConfig::default());
        }
        let raw = base64::decode(value).ok_or("invalid X-Registry-Auth header: not base64")?;
        serde_json::from_slice(&raw).map_err(|e| format!("invalid X-Registry-Auth header: {e}"))
    }

    /// Encodes this config for an `X-Registry-Auth` header (URL-safe base64 JSON).
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).expect("auth config serializes");
        base64::encode(&json).replace('+', "-").replace('/', "_")
    }

    /// The `auth` field `~/.docker/config.json` keeps: `base64(username:password)`.
    pub fn encode_auth_field(username: &str, password: &str) -> String {
        base64::encode(format!("{username}:{password}").as_bytes())
    }

    /// The credentials these carry, if any.
    pub fn credentials(&self) -> Option<Credentials> {
        if !self.registrytoken.is_empty() {
            return Some(Credentials::Token(self.registrytoken.clone()));
        }
        if !self.identitytoken.is_empty() {
            return Some(Credentials::IdentityToken(self.identitytoken.clone()));
        }
        if !self.username.is_empty() {
            return Some(Credentials::Basic {
                username: self.username.clone(),
                password: self.password.clone(),
            });
        }
        let raw = base64::decode(&self.auth)?;
        let text = String::from_utf8(raw).ok()?;
        let (username, password) = text.split_once(':')?;
        Some(Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        })
    }
}

/// What the client may present to a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// User name and password.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// An OAuth2 refresh token from an earlier login.
    IdentityToken(String),
    /// A ready bearer token.
    Token(String),
}

// Never print secrets, even in debug logs.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(***)"),
            Credentials::Token(_) => f.write_str("Token(***)"),
        }
    }
}

impl Credentials {
    /// The `Authorization: Basic ...` value, for user/password credentials.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::encode(format!("{username}:{password}").as_bytes())
            )),
            _ => None,
        }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send user and password on every request.
    Basic,
    /// Fetch a token from `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The service name to ask the token for.
        service: Option<String>,
        /// The scope the registry asked for, if it said.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value; `None` for schemes berth does not speak.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `k="v", k2=v2` with quoted values that may contain commas and `\"`.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// The token endpoint's answer (`token` per Docker's spec, `access_token` per OAuth2).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub(crate) token: String,
    #[serde(default)]
    pub(crate) access_token: String,
}

impl TokenResponse {
    pub(crate) fn into_token(self) -> Option<String> {
        [self.token, self.access_token]
            .into_iter()
            .find(|t| !t.is_empty())
    }
}

/// Percent-encodes a query value.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            }
        );
    }

    #[test]
    fn parses_basic_challenge_and_ignores_unknown_schemes() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn auth_config_round_trips_through_the_header() {
        let a = AuthConfig {
            username: "u".into(),
            password: "p?>".into(),
            serveraddress: "localhost:5000".into(),
            ..Default::default()
        };
        let h = a.to_header();
        assert!(!h.contains('+') && !h.contains('/'));
        assert_eq!(AuthConfig::from_header(&h).unwrap(), a);
        assert_eq!(AuthConfig::from_header("").unwrap(), AuthConfig::default());
        assert!(AuthConfig::from_header("%%%").is_err());
    }

    #[test]
    fn credentials_come_from_the_auth_field_too() {
        let a = AuthConfig {
            auth: "dXNlcjpwYXNz".into(),
            ..Default::default()
        };
        assert_eq!(
            a.credentials(),
            Some(Credentials::Basic {
                username: "user".into(),
                password: "pass".into()
            })
        );
        assert_eq!(AuthConfig::default().credentials(), None);
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
