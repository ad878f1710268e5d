//! Dockerfile instructions given as `--change` to `import` (and later `commit`): they
//! edit an image config's run defaults without running anything.

use std::collections::BTreeMap;

use berth_oci::image::ContainerConfig;
use serde_json::Value;

use crate::DaemonError;

/// Applies each change line (`CMD ["sh"]`, `ENV A=1`, …) to `config`, in order.
///
/// # Errors
/// `InvalidArgument` for an instruction `import`/`commit` do not accept (Docker's
/// "… is not a valid change command") or a malformed argument.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<(), DaemonError> {
    for change in changes {
        let line = change.trim();
        if line.is_empty() {
            continue;
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let instruction = word.to_ascii_lowercase();
        match instruction.as_str() {
            "cmd" => config.cmd = Some(command_form(rest)),
            "entrypoint" => config.entrypoint = Some(command_form(rest)),
            "env" => {
                let env = config.env.get_or_insert_with(Vec::new);
                for (k, v) in key_values(rest, "ENV")? {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
            }
            "label" => {
                let labels = config.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in key_values(rest, "LABEL")? {
                    labels.insert(k, v);
                }
            }
            "expose" => {
                let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in rest.split_whitespace() {
                    let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                    let (lo, hi) = match port.split_once('-') {
                        Some((a, b)) => (parse_port(a, p)?, parse_port(b, p)?),
                        None => (parse_port(port, p)?, parse_port(port, p)?),
                    };
                    for n in lo..=hi {
                        ports.insert(
                            format!("{n}/{}", proto.to_ascii_lowercase()),
                            Value::Object(Default::default()),
                        );
                    }
                }
            }
            "volume" => {
                let vols = config.volumes.get_or_insert_with(BTreeMap::new);
                let list = json_array(rest)
                    .unwrap_or_else(|| rest.split_whitespace().map(str::to_string).collect());
                if list.is_empty() {
                    return Err(DaemonError::invalid(
                        "VOLUME requires at least one argument",
                    ));
                }
                for v in list {
                    vols.insert(v, Value::Object(Default::default()));
                }
            }
            "workdir" => {
                if rest.is_empty() {
                    return Err(DaemonError::invalid(
                        "WORKDIR requires exactly one argument",
                    ));
                }
                let dir = if rest.starts_with('/') {
                    rest.to_string()
                } else {
                    let base = config.working_dir.clone().unwrap_or_else(|| "/".into());
                    format!("{}/{rest}", base.trim_end_matches('/'))
                };
                config.working_dir = Some(dir);
            }
            "user" => config.user = Some(rest.to_string()),
            "stopsignal" => config.stop_signal = Some(rest.to_string()),
            "onbuild" => {
                let entry = config
                    .extra
                    .entry("OnBuild".into())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = entry {
                    a.push(Value::String(rest.to_string()));
                }
            }
            _ => {
                return Err(DaemonError::invalid(format!(
                    "{instruction} is not a valid change command"
                )));
            }
        }
    }
    Ok(())
}

fn parse_port(s: &str, whole: &str) -> Result<u16, DaemonError> {
    s.parse()
        .map_err(|_| DaemonError::invalid(format!("invalid containerPort: {whole}")))
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str(s).ok()
}

/// Exec form (`["a","b"]`) or shell form (wrapped in `/bin/sh -c`).
fn command_form(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

/// `K=V K2="v 2"` pairs, or the legacy `K value with spaces` form.
fn key_values(rest: &str, what: &str) -> Result<Vec<(String, String)>, DaemonError> {
    let words = split_words(rest);
    if words.is_empty() {
        return Err(DaemonError::invalid(format!(
            "{what} requires at least one argument"
        )));
    }
    if !words[0].contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if what == "ENV" && v.trim().is_empty() {
            return Err(DaemonError::invalid("ENV must have two arguments"));
        }
        return Ok(vec![(k.to_string(), unquote(v.trim()))]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((unquote(k), unquote(v))),
            _ => Err(DaemonError::invalid(format!(
                "{what} names can not be blank"
            ))),
        })
        .collect()
}

/// Splits on whitespace outside quotes, keeping the quotes (removed by [`unquote`]).
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match (c, quote) {
            ('\\', _) => {
                cur.push(c);
                escaped = true;
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                cur.push(c);
            }
            (c, Some(q)) if c == q => {
                quote = None;
                cur.push(c);
            }
            (c, None) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (c, _) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unquote(s: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', q) if q != Some('\'') => out.extend(chars.next()),
            ('"' | '\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            (c, _) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(lines: &[&str]) -> Result<ContainerConfig, DaemonError> {
        let mut c = ContainerConfig::default();
        apply_changes(
            &mut c,
            &lines.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c)
    }

    #[test]
    fn applies_docker_instructions() {
        let c = apply(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/true",
            r#"ENV A=1 B="two words""#,
            "ENV C three words",
            "ENV A=3",
            "EXPOSE 80 53/udp 8000-8001",
            r#"LABEL x=y "z"=w"#,
            "WORKDIR /app",
            "WORKDIR sub",
            "USER 1000:1000",
            "VOLUME /data /logs",
        ])
        .unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "/bin/true"]);
        assert_eq!(c.env.unwrap(), vec!["B=two words", "C=three words", "A=3"]);
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert_eq!(c.labels.unwrap().get("z").unwrap(), "w");
        assert_eq!(c.working_dir.unwrap(), "/app/sub");
        assert_eq!(c.user.unwrap(), "1000:1000");
        assert_eq!(c.volumes.unwrap().len(), 2);
    }

    #[test]
    fn refuses_build_only_instructions() {
        let e = apply(&["RUN rm -rf /"]).unwrap_err();
        assert_eq!(e.message(), "run is not a valid change command");
        assert!(apply(&["EXPOSE abc"]).is_err());
    }
}
