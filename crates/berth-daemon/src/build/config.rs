//! The instructions that only change the image config (ENV, LABEL, CMD, …), applied
//! to the run config as Docker's dispatchers do.

use std::collections::BTreeMap;

use berth_build::instruction::{CommandLine, Healthcheck, Instruction};
use berth_oci::image::ContainerConfig;
use serde_json::{Value, json};

use crate::DaemonError;

/// The default shell of RUN, CMD and ENTRYPOINT's shell forms on Linux.
pub(super) const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The stage's SHELL (`Shell` in the config), or Docker's default.
pub(super) fn shell_of(config: &ContainerConfig) -> Vec<String> {
    match config.extra.get("Shell") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
    }
}

/// A command line as the config stores it: exec form as is, shell form behind the
/// shell.
pub(super) fn command(config: &ContainerConfig, cmd: &CommandLine) -> Vec<String> {
    match cmd {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut out = shell_of(config);
            out.push(s.clone());
            out
        }
    }
}

/// What the config-only instructions leave besides the config.
#[derive(Debug, Clone, Default)]
pub(super) struct StageMeta {
    /// MAINTAINER: the author of later images.
    pub maintainer: String,
    /// CMD was given in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

/// Applies a config-only instruction (already substituted) to `config`. ENV is the
/// caller's (the scope holds the environment); RUN, COPY, ADD and WORKDIR are not
/// config-only.
///
/// # Errors
/// `InvalidArgument` for a malformed EXPOSE port.
pub(super) fn apply(
    config: &mut ContainerConfig,
    meta: &mut StageMeta,
    instruction: &Instruction,
) -> Result<(), DaemonError> {
    match instruction {
        Instruction::Cmd { command: c } => {
            config.cmd = Some(command(config, c)).filter(|_| !is_empty_shell(c));
            meta.cmd_set = true;
        }
        Instruction::Entrypoint { command: c } => {
            config.entrypoint = if is_empty_shell(c) {
                None
            } else {
                Some(command(config, c))
            };
            // Docker: a new ENTRYPOINT drops the base image's CMD unless this stage
            // set one.
            if !meta.cmd_set {
                config.cmd = None;
            }
        }
        Instruction::Label { labels } => {
            let map = config.labels.get_or_insert_with(BTreeMap::new);
            for kv in labels {
                map.insert(kv.key.clone(), kv.value.clone());
            }
        }
        Instruction::Maintainer { maintainer } => meta.maintainer = maintainer.clone(),
        Instruction::Expose { ports } => {
            let map = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in ports {
                for port in expand_port(p)? {
                    map.insert(port, json!({}));
                }
            }
        }
        Instruction::Volume { volumes } => {
            let map = config.volumes.get_or_insert_with(BTreeMap::new);
            for v in volumes {
                if v.trim().is_empty() {
                    return Err(DaemonError::invalid(
                        "VOLUME specified can not be an empty string",
                    ));
                }
                map.insert(v.clone(), json!({}));
            }
        }
        Instruction::User { user } => config.user = Some(user.clone()),
        Instruction::Stopsignal { signal } => config.stop_signal = Some(signal.clone()),
        Instruction::Healthcheck(h) => {
            let value = match h {
                Healthcheck::None => json!({"Test": ["NONE"]}),
                Healthcheck::Cmd {
                    test,
                    interval_ns,
                    timeout_ns,
                    start_period_ns,
                    start_interval_ns,
                    retries,
                } => {
                    let mut v = json!({ "Test": test });
                    for (k, n) in [
                        ("Interval", interval_ns),
                        ("Timeout", timeout_ns),
                        ("StartPeriod", start_period_ns),
                        ("StartInterval", start_interval_ns),
                    ] {
                        if *n > 0 {
                            v[k] = json!(n);
                        }
                    }
                    if *retries > 0 {
                        v["Retries"] = json!(retries);
                    }
                    v
                }
            };
            config.extra.insert("Healthcheck".into(), value);
        }
        Instruction::Shell { shell } => {
            config.extra.insert("Shell".into(), json!(shell));
        }
        Instruction::Onbuild { expression } => {
            let entry = config
                .extra
                .entry("OnBuild".into())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !entry.is_array() {
                *entry = Value::Array(Vec::new());
            }
            if let Value::Array(a) = entry {
                a.push(Value::String(expression.clone()));
            }
        }
        Instruction::Arg { .. } | Instruction::Env { .. } => {}
        Instruction::Run(_)
        | Instruction::Copy(_)
        | Instruction::Add(_)
        | Instruction::Workdir { .. } => {}
    }
    Ok(())
}

fn is_empty_shell(c: &CommandLine) -> bool {
    matches!(c, CommandLine::Shell(s) if s.is_empty())
}

/// `80`, `53/udp`, `8000-8002/tcp` as Docker's `nat.ParsePortSpecs` keys.
fn expand_port(spec: &str) -> Result<Vec<String>, DaemonError> {
    let (port, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let bad = || DaemonError::invalid(format!("invalid containerPort: {spec}"));
    let (lo, hi) = match port.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let n = port.parse::<u16>().map_err(|_| bad())?;
            (n, n)
        }
    };
    if hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi)
        .map(|n| format!("{n}/{}", proto.to_ascii_lowercase()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_drops_the_base_cmd_unless_the_stage_set_one() {
        let mut c = ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let mut meta = StageMeta::default();
        let ep = Instruction::Entrypoint {
            command: CommandLine::Exec(vec!["/init".into()]),
        };
        apply(&mut c, &mut meta, &ep).unwrap();
        assert_eq!(c.cmd, None);
        let cmd = Instruction::Cmd {
            command: CommandLine::Shell("echo hi".into()),
        };
        apply(&mut c, &mut meta, &cmd).unwrap();
        apply(&mut c, &mut meta, &ep).unwrap();
        assert_eq!(
            c.cmd,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
    }

    #[test]
    fn shell_changes_the_shell_form_and_ports_expand() {
        let mut c = ContainerConfig::default();
        let mut meta = StageMeta::default();
        apply(
            &mut c,
            &mut meta,
            &Instruction::Shell {
                shell: vec!["/bin/bash".into(), "-ec".into()],
            },
        )
        .unwrap();
        assert_eq!(
            command(&c, &CommandLine::Shell("x".into())),
            ["/bin/bash", "-ec", "x"]
        );
        apply(
            &mut c,
            &mut meta,
            &Instruction::Expose {
                ports: vec!["80".into(), "53/UDP".into(), "8000-8001".into()],
            },
        )
        .unwrap();
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
    }
}
