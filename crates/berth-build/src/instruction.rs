//! Stage two: raw instructions to typed instructions.
//!
//! Each instruction is checked the way Docker checks it when it parses (argument
//! counts, the flags it accepts, HEALTHCHECK durations, stage names). Values are kept
//! as written: variable substitution depends on the ENV and ARG in effect at that
//! step, which only the build knows, so it happens in [`crate::scope`].

use serde::Serialize;

use crate::error::{ParseErrorKind, suggest};
use crate::parser::{Heredoc, RawInstruction, chomp_heredoc, parse_heredoc};

/// The command of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandLine {
    /// JSON array: run as is.
    Exec(Vec<String>),
    /// Anything else: run through the stage's SHELL. Empty when the instruction had no
    /// arguments (`CMD` alone); Docker then uses the shell with no script argument.
    Shell(String),
}

/// A `key=value` of ENV or LABEL, as written (quotes still in place).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Written in the legacy `KEY value` form.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub legacy: bool,
}

/// One name of an ARG instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default, when given (`ARG X=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A file given inline to COPY/ADD as a heredoc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineFile {
    /// The heredoc name, used as the file name.
    pub name: String,
    /// The content (tabs already stripped for `<<-`).
    pub data: String,
    /// Variables in the content are expanded (the delimiter was not quoted).
    pub expand: bool,
}

/// RUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The command.
    pub command: CommandLine,
    /// Heredoc bodies (a RUN heredoc is the script or stdin of the command).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub heredocs: Vec<Heredoc>,
    /// `--mount=` values, kept unparsed for the executor.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<String>,
    /// `--network=default|none|host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `--device=` values, kept unparsed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
}

/// COPY and ADD share this shape; ADD-only and COPY-only options are `None` for the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyArgs {
    /// Source paths (or URLs for ADD).
    pub sources: Vec<String>,
    /// Inline sources given as heredocs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inline: Vec<InlineFile>,
    /// The destination.
    pub dest: String,
    /// COPY `--from=` (stage name, stage index or image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `--chown=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chown: Option<String>,
    /// `--chmod=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chmod: Option<String>,
    /// `--link`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub link: bool,
    /// `--exclude=` patterns.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// ADD `--checksum=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// ADD `--keep-git-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_git_dir: Option<bool>,
    /// ADD `--unpack`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpack: Option<bool>,
    /// The sources were a JSON array.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub json: bool,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK [options] CMD …`.
    Cmd {
        /// Docker's `Test`: `["CMD", …]` or `["CMD-SHELL", "…"]`.
        test: Vec<String>,
        /// `--interval`, in nanoseconds (0: default).
        interval_ns: u64,
        /// `--timeout`, in nanoseconds.
        timeout_ns: u64,
        /// `--start-period`, in nanoseconds.
        start_period_ns: u64,
        /// `--start-interval`, in nanoseconds.
        start_interval_ns: u64,
        /// `--retries` (0: default).
        retries: u32,
    },
}

/// An instruction inside a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "UPPERCASE")]
pub enum Instruction {
    /// RUN.
    Run(Run),
    /// CMD.
    Cmd {
        /// The command.
        command: CommandLine,
    },
    /// ENTRYPOINT.
    Entrypoint {
        /// The command; an empty exec form clears it.
        command: CommandLine,
    },
    /// LABEL.
    Label {
        /// The labels.
        labels: Vec<KeyValue>,
    },
    /// MAINTAINER (deprecated; sets the author).
    Maintainer {
        /// The maintainer text.
        maintainer: String,
    },
    /// EXPOSE (ports sorted as Docker sorts them).
    Expose {
        /// Port specs, `80`, `53/udp`.
        ports: Vec<String>,
    },
    /// ENV.
    Env {
        /// The variables.
        vars: Vec<KeyValue>,
    },
    /// ADD.
    Add(CopyArgs),
    /// COPY.
    Copy(CopyArgs),
    /// VOLUME.
    Volume {
        /// Mount points.
        volumes: Vec<String>,
    },
    /// USER.
    User {
        /// `user[:group]`.
        user: String,
    },
    /// WORKDIR.
    Workdir {
        /// The path.
        path: String,
    },
    /// ARG.
    Arg {
        /// The declared names.
        args: Vec<ArgDecl>,
    },
    /// ONBUILD.
    Onbuild {
        /// The trigger text, re-parsed when a child image builds FROM this one.
        expression: String,
    },
    /// STOPSIGNAL.
    Stopsignal {
        /// The signal name or number.
        signal: String,
    },
    /// HEALTHCHECK.
    Healthcheck(Healthcheck),
    /// SHELL.
    Shell {
        /// The shell, exec form only.
        shell: Vec<String>,
    },
}

/// FROM: starts a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageBase {
    /// The base: image reference, stage name or `scratch`, before substitution.
    pub image: String,
    /// `AS name`, lowercased as Docker does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `--platform=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// What one Dockerfile line is: a FROM or an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// FROM.
    From(StageBase),
    /// Anything else.
    Instruction(Instruction),
}

/// Every instruction keyword, for "did you mean" suggestions.
const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Bool,
    Str,
    Strs,
}

/// The flags an instruction accepts, filled in from its `--name=value` words.
struct Flags {
    spec: Vec<(&'static str, FlagKind)>,
    values: Vec<(&'static str, Vec<String>)>,
}

impl Flags {
    fn parse(raw: &[String], spec: &[(&'static str, FlagKind)]) -> Result<Flags, ParseErrorKind> {
        let mut f = Flags {
            spec: spec.to_vec(),
            values: Vec::new(),
        };
        for a in raw {
            if a == "--" {
                break;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(ParseErrorKind::FlagNotDashed(a.clone()));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let flag = format!("--{name}");
            let Some(&(name, kind)) = f.spec.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = f.spec.iter().map(|(n, _)| *n).collect();
                return Err(ParseErrorKind::UnknownFlag {
                    suggestion: suggest(name, &names, true),
                    flag,
                });
            };
            let seen = f.values.iter().position(|(n, _)| *n == name);
            if seen.is_some() && kind != FlagKind::Strs {
                return Err(ParseErrorKind::DuplicateFlag(flag));
            }
            let v = match kind {
                FlagKind::Bool => match value {
                    Some("") => return Err(ParseErrorKind::FlagMissingValue(flag)),
                    None => "true".to_string(),
                    Some(v) => match v.to_ascii_lowercase().as_str() {
                        "true" => "true".to_string(),
                        "false" => "false".to_string(),
                        _ => {
                            return Err(ParseErrorKind::FlagNotBool {
                                flag,
                                value: v.to_string(),
                            });
                        }
                    },
                },
                FlagKind::Str | FlagKind::Strs => match value {
                    None => return Err(ParseErrorKind::FlagMissingValue(flag)),
                    Some(v) => v.to_string(),
                },
            };
            match seen {
                Some(i) => f.values[i].1.push(v),
                None => f.values.push((name, vec![v])),
            }
        }
        Ok(f)
    }

    fn string(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.last().cloned())
    }
    fn strings(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
    fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }
}

use FlagKind::{Bool, Str, Strs};

fn command_line(args: &[String], json: bool) -> CommandLine {
    if json {
        CommandLine::Exec(args.to_vec())
    } else {
        CommandLine::Shell(args.join(" "))
    }
}

fn key_values(args: &[String], name: &'static str) -> Result<Vec<KeyValue>, ParseErrorKind> {
    if args.is_empty() {
        return Err(ParseErrorKind::AtLeastOneArgument(name));
    }
    if args.len() % 3 != 0 {
        return Err(ParseErrorKind::TooManyArguments(name));
    }
    args.chunks(3)
        .map(|c| {
            if c[0].is_empty() {
                return Err(ParseErrorKind::BlankName(name));
            }
            Ok(KeyValue {
                key: c[0].clone(),
                value: c[1].clone(),
                legacy: c[2].is_empty(),
            })
        })
        .collect()
}

fn copy_like(
    raw: &RawInstruction,
    name: &'static str,
    flags: &Flags,
) -> Result<CopyArgs, ParseErrorKind> {
    let (dest, srcs) = raw.args.split_last().expect("caller checked two arguments");
    if parse_heredoc(dest)?.is_some() {
        return Err(ParseErrorKind::HeredocDestination(name));
    }
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for src in srcs {
        match parse_heredoc(src)? {
            Some(marker) => {
                let body = raw
                    .heredocs
                    .iter()
                    .find(|h| h.name == marker.name)
                    .map(|h| h.content.clone())
                    .unwrap_or_default();
                inline.push(InlineFile {
                    name: marker.name,
                    data: if marker.chomp {
                        chomp_heredoc(&body)
                    } else {
                        body
                    },
                    expand: marker.expand,
                });
            }
            None => sources.push(src.clone()),
        }
    }
    Ok(CopyArgs {
        sources,
        inline,
        dest: dest.clone(),
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link").unwrap_or(false),
        exclude: flags.strings("exclude"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack: flags.bool("unpack"),
        json: raw.json,
    })
}

/// Parses a Go duration (`1m30s`, `500ms`, `1.5h`) into nanoseconds; negative values
/// come back negative so that the caller can report them as too short.
fn go_duration(s: &str) -> Result<i128, ParseErrorKind> {
    let bad = || ParseErrorKind::InvalidDuration(s.to_string());
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += num * unit;
    }
    let ns = total as i128;
    Ok(if neg { -ns } else { ns })
}

fn interval(flags: &Flags, name: &'static str) -> Result<u64, ParseErrorKind> {
    let Some(v) = flags.string(name).filter(|v| !v.is_empty()) else {
        return Ok(0);
    };
    let ns = go_duration(&v)?;
    if ns == 0 {
        return Ok(0);
    }
    if ns < 1_000_000 {
        return Err(ParseErrorKind::IntervalTooShort(name.to_string()));
    }
    Ok(u64::try_from(ns).unwrap_or(u64::MAX))
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn one_arg(raw: &RawInstruction, name: &'static str) -> Result<String, ParseErrorKind> {
    match raw.args.as_slice() {
        [a] => Ok(a.clone()),
        _ => Err(ParseErrorKind::ExactlyOneArgument(name)),
    }
}

/// Turns one raw instruction into a typed one, checking it as Docker does.
///
/// # Errors
/// [`ParseErrorKind`] in Docker's words: unknown instruction, wrong argument count,
/// unknown or malformed flag, bad HEALTHCHECK option, bad stage name.
pub fn parse_instruction(raw: &RawInstruction) -> Result<Parsed, ParseErrorKind> {
    let a = &raw.args;
    let flags = |spec: &[(&'static str, FlagKind)]| Flags::parse(&raw.flags, spec);
    let ins = match raw.keyword.to_ascii_lowercase().as_str() {
        "from" => {
            let f = flags(&[("platform", Str)])?;
            let name = match a.as_slice() {
                [_, as_kw, n] if as_kw.eq_ignore_ascii_case("as") => {
                    let lower = n.to_ascii_lowercase();
                    if !valid_stage_name(&lower) {
                        return Err(ParseErrorKind::InvalidStageName(n.clone()));
                    }
                    Some(lower)
                }
                [_] => None,
                _ => return Err(ParseErrorKind::FromArguments),
            };
            return Ok(Parsed::From(StageBase {
                image: a[0].clone(),
                name,
                platform: f.string("platform"),
            }));
        }
        "run" => {
            let f = flags(&[("mount", Strs), ("network", Str), ("device", Strs)])?;
            let network = f.string("network");
            if let Some(n) = &network {
                if !matches!(n.as_str(), "default" | "none" | "host") {
                    return Err(ParseErrorKind::InvalidNetwork(n.clone()));
                }
            }
            Instruction::Run(Run {
                command: command_line(a, raw.json),
                heredocs: raw.heredocs.clone(),
                mounts: f.strings("mount"),
                network,
                devices: f.strings("device"),
            })
        }
        "cmd" => {
            flags(&[])?;
            Instruction::Cmd {
                command: command_line(a, raw.json),
            }
        }
        "entrypoint" => {
            flags(&[])?;
            Instruction::Entrypoint {
                command: command_line(a, raw.json),
            }
        }
        "label" => {
            flags(&[])?;
            Instruction::Label {
                labels: key_values(a, "LABEL")?,
            }
        }
        "maintainer" => {
            let maintainer = one_arg(raw, "MAINTAINER")?;
            flags(&[])?;
            Instruction::Maintainer { maintainer }
        }
        "expose" => {
            if a.is_empty() {
                return Err(ParseErrorKind::AtLeastOneArgument("EXPOSE"));
            }
            flags(&[])?;
            let mut ports = a.clone();
            ports.sort();
            Instruction::Expose { ports }
        }
        "env" => {
            flags(&[])?;
            Instruction::Env {
                vars: key_values(a, "ENV")?,
            }
        }
        "add" => {
            if a.len() < 2 {
                return Err(ParseErrorKind::NoDestination("ADD"));
            }
            let f = flags(&[
                ("chown", Str),
                ("chmod", Str),
                ("link", Bool),
                ("keep-git-dir", Bool),
                ("checksum", Str),
                ("unpack", Bool),
                ("exclude", Strs),
            ])?;
            Instruction::Add(copy_like(raw, "ADD", &f)?)
        }
        "copy" => {
            if a.len() < 2 {
                return Err(ParseErrorKind::NoDestination("COPY"));
            }
            let f = flags(&[
                ("chown", Str),
                ("from", Str),
                ("chmod", Str),
                ("link", Bool),
                ("exclude", Strs),
            ])?;
            Instruction::Copy(copy_like(raw, "COPY", &f)?)
        }
        "volume" => {
            if a.is_empty() {
                return Err(ParseErrorKind::AtLeastOneArgument("VOLUME"));
            }
            flags(&[])?;
            let volumes = a
                .iter()
                .map(|v| match v.trim() {
                    "" => Err(ParseErrorKind::EmptyVolume),
                    t => Ok(t.to_string()),
                })
                .collect::<Result<_, _>>()?;
            Instruction::Volume { volumes }
        }
        "user" => {
            let user = one_arg(raw, "USER")?;
            flags(&[])?;
            Instruction::User { user }
        }
        "workdir" => {
            let path = one_arg(raw, "WORKDIR")?;
            flags(&[])?;
            Instruction::Workdir { path }
        }
        "arg" => {
            if a.is_empty() {
                return Err(ParseErrorKind::AtLeastOneArgument("ARG"));
            }
            let args = a
                .iter()
                .map(|w| match w.split_once('=') {
                    Some(("", _)) => Err(ParseErrorKind::BlankName("ARG")),
                    Some((k, v)) => Ok(ArgDecl {
                        name: k.to_string(),
                        default: Some(v.to_string()),
                    }),
                    None => Ok(ArgDecl {
                        name: w.clone(),
                        default: None,
                    }),
                })
                .collect::<Result<_, _>>()?;
            Instruction::Arg { args }
        }
        "onbuild" => {
            let Some(trigger) = a.first() else {
                return Err(ParseErrorKind::AtLeastOneArgument("ONBUILD"));
            };
            flags(&[])?;
            let trigger = trigger.trim().to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => return Err(ParseErrorKind::OnbuildChain),
                "MAINTAINER" | "FROM" => return Err(ParseErrorKind::OnbuildTrigger(trigger)),
                _ => {}
            }
            let orig = raw.original.trim_start();
            let mut expression = orig[orig.char_indices().nth(7).map_or(orig.len(), |(i, _)| i)..]
                .trim_start()
                .to_string();
            for h in &raw.heredocs {
                expression.push('\n');
                expression.push_str(&h.content);
                expression.push_str(&h.name);
            }
            Instruction::Onbuild { expression }
        }
        "stopsignal" => Instruction::Stopsignal {
            signal: one_arg(raw, "STOPSIGNAL")?,
        },
        "healthcheck" => {
            let Some(typ) = a.first() else {
                return Err(ParseErrorKind::AtLeastOneArgument("HEALTHCHECK"));
            };
            let typ = typ.to_ascii_uppercase();
            let rest = &a[1..];
            if typ == "NONE" {
                if !rest.is_empty() {
                    return Err(ParseErrorKind::HealthcheckNoneArgs);
                }
                Instruction::Healthcheck(Healthcheck::None)
            } else {
                let f = flags(&[
                    ("interval", Str),
                    ("timeout", Str),
                    ("start-period", Str),
                    ("start-interval", Str),
                    ("retries", Str),
                ])?;
                if typ != "CMD" {
                    return Err(ParseErrorKind::HealthcheckType(typ));
                }
                if rest.is_empty() {
                    return Err(ParseErrorKind::HealthcheckMissingCommand);
                }
                let test = if raw.json {
                    std::iter::once("CMD".to_string())
                        .chain(rest.iter().cloned())
                        .collect()
                } else {
                    vec!["CMD-SHELL".to_string(), rest.join(" ")]
                };
                let interval_ns = interval(&f, "interval")?;
                let timeout_ns = interval(&f, "timeout")?;
                let start_period_ns = interval(&f, "start-period")?;
                let start_interval_ns = interval(&f, "start-interval")?;
                let retries = match f.string("retries").filter(|r| !r.is_empty()) {
                    None => 0,
                    Some(r) => {
                        let n: i64 = r
                            .parse()
                            .map_err(|_| ParseErrorKind::InvalidRetries(r.clone()))?;
                        if n < 0 {
                            return Err(ParseErrorKind::NegativeRetries(n));
                        }
                        u32::try_from(n).map_err(|_| ParseErrorKind::InvalidRetries(r))?
                    }
                };
                Instruction::Healthcheck(Healthcheck::Cmd {
                    test,
                    interval_ns,
                    timeout_ns,
                    start_period_ns,
                    start_interval_ns,
                    retries,
                })
            }
        }
        "shell" => {
            flags(&[])?;
            if a.is_empty() {
                return Err(ParseErrorKind::AtLeastOneArgument("SHELL"));
            }
            if !raw.json {
                return Err(ParseErrorKind::NotJson("SHELL"));
            }
            Instruction::Shell { shell: a.clone() }
        }
        _ => {
            return Err(ParseErrorKind::UnknownInstruction {
                name: raw.keyword.clone(),
                suggestion: suggest(&raw.keyword, &INSTRUCTIONS, false),
            });
        }
    };
    Ok(Parsed::Instruction(ins))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_time_parse_duration() {
        assert_eq!(go_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(go_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(go_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(go_duration("0").unwrap(), 0);
        assert!(go_duration("10").is_err());
        assert!(go_duration("abc").is_err());
    }

    #[test]
    fn stage_names_follow_dockers_pattern() {
        assert!(valid_stage_name("build-1.x_y"));
        assert!(!valid_stage_name("1build"));
        assert!(!valid_stage_name("a/b"));
    }
}
