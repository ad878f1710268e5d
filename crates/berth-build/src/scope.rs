//! Which ARG and ENV values are in effect at each step, and variable substitution.
//!
//! Docker's rules, which this module keeps:
//! - ARGs before the first FROM ("meta args") are visible in FROM lines only. A stage
//!   sees one only after re-declaring it (`ARG NAME` without a default takes the meta
//!   value). `--build-arg` overrides both kinds of default.
//! - The platform args (`BUILDPLATFORM`, `TARGETOS`, …) are predefined meta args; the
//!   proxy args (`HTTP_PROXY`, …) are usable without being declared when given with
//!   `--build-arg`.
//! - Inside a stage, ENV (from the base image and earlier steps) shadows ARG of the
//!   same name.
//! - Only ADD, COPY (not its `--from`), ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG, the
//!   `--mount` options of RUN and expanding heredocs are substituted; RUN, CMD,
//!   ENTRYPOINT, SHELL, HEALTHCHECK and ONBUILD are left to the shell or to later.
//! - All pairs of one ENV instruction are substituted before any is set, so
//!   `ENV A=1 B=$A` gives B the value A had before the instruction.

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::{Dockerfile, Step};
use crate::instruction::{ArgDecl, CopyArgs, Instruction, KeyValue, StageBase};
use crate::lex::{LexError, ShellLex, VarLookup};

/// The proxy args Docker accepts from `--build-arg` without an ARG declaration.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A substitution that failed: the Dockerfile line and the lexer's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstitutionError {
    /// A word that does not expand (unbalanced quote, `${X?}` with X unset, …).
    #[error("line {line}: {error}")]
    Word {
        /// 1-based Dockerfile line.
        line: usize,
        /// Docker's message for the word.
        error: LexError,
    },
    /// FROM whose image expands to nothing.
    #[error("line {line}: base name ({base}) should not be blank")]
    BlankBase {
        /// 1-based Dockerfile line.
        line: usize,
        /// The base as written.
        base: String,
    },
}

/// An OS/architecture pair as the platform args spell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v7` for arm, or empty.
    pub variant: String,
}

impl Platform {
    /// The platform this process runs on, in OCI/Go names.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            "arm" => "arm",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: if architecture == "arm" {
                "v7".to_string()
            } else {
                String::new()
            },
        }
    }

    /// `os/arch[/variant]`.
    pub fn spec(&self) -> String {
        if self.variant.is_empty() {
            format!("{}/{}", self.os, self.architecture)
        } else {
            format!("{}/{}/{}", self.os, self.architecture, self.variant)
        }
    }
}

/// The build's inputs that decide substitution.
#[derive(Debug, Clone)]
pub struct BuildArgs {
    /// `--build-arg` values.
    pub values: BTreeMap<String, String>,
    /// The platform the build runs on.
    pub build_platform: Platform,
    /// The platform the image is for (`--platform`, else the build platform).
    pub target_platform: Platform,
}

impl BuildArgs {
    /// Build args for a native build with the given `--build-arg` values.
    pub fn native(values: BTreeMap<String, String>) -> BuildArgs {
        BuildArgs {
            values,
            build_platform: Platform::host(),
            target_platform: Platform::host(),
        }
    }
}

/// The meta-arg scope: what FROM lines and `COPY --from` see.
#[derive(Debug, Clone)]
pub struct GlobalScope {
    escape: char,
    meta: BTreeMap<String, String>,
    build_args: BTreeMap<String, String>,
}

/// A FROM line after substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFrom {
    /// Image reference, stage name or `scratch`.
    pub image: String,
    /// `--platform`, substituted.
    pub platform: Option<String>,
}

impl GlobalScope {
    /// Evaluates the meta args of `dockerfile` in order, each default substituted with
    /// the ones before it and the predefined platform args.
    ///
    /// # Errors
    /// [`SubstitutionError`] for a default that does not expand.
    pub fn new(
        dockerfile: &Dockerfile,
        args: &BuildArgs,
    ) -> Result<GlobalScope, SubstitutionError> {
        let mut meta = BTreeMap::new();
        for (prefix, p) in [
            ("BUILD", &args.build_platform),
            ("TARGET", &args.target_platform),
        ] {
            meta.insert(format!("{prefix}PLATFORM"), p.spec());
            meta.insert(format!("{prefix}OS"), p.os.clone());
            meta.insert(format!("{prefix}ARCH"), p.architecture.clone());
            meta.insert(format!("{prefix}VARIANT"), p.variant.clone());
        }
        for name in PROXY_ARGS {
            if let Some(v) = args.values.get(name) {
                meta.insert(name.to_string(), v.clone());
            }
        }
        let mut scope = GlobalScope {
            escape: dockerfile.directives.escape,
            meta,
            build_args: args.values.clone(),
        };
        let line = dockerfile.stages.first().map_or(1, |s| s.line);
        for decl in &dockerfile.meta_args {
            let lex = ShellLex::new(scope.escape);
            let word = |w: &str| {
                lex.process_word(w, &scope.meta)
                    .map_err(|error| SubstitutionError::Word { line, error })
            };
            let name = word(&decl.name)?;
            let value = match (scope.build_args.get(&name), &decl.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => Some(word(d)?),
                (None, None) => None,
            };
            if let Some(v) = value {
                scope.meta.insert(name, v);
            }
        }
        Ok(scope)
    }

    /// The meta args and their values.
    pub fn meta_args(&self) -> &BTreeMap<String, String> {
        &self.meta
    }

    /// Substitutes a FROM line with the meta args.
    ///
    /// # Errors
    /// [`SubstitutionError`] for a word that does not expand or a base that expands to
    /// nothing.
    pub fn resolve_from(
        &self,
        from: &StageBase,
        line: usize,
    ) -> Result<ResolvedFrom, SubstitutionError> {
        let image = self.expand(&from.image, line)?;
        if image.is_empty() {
            return Err(SubstitutionError::BlankBase {
                line,
                base: from.image.clone(),
            });
        }
        let platform = match &from.platform {
            Some(p) => Some(self.expand(p, line)?),
            None => None,
        };
        Ok(ResolvedFrom { image, platform })
    }

    /// Substitutes one word with the meta args (`COPY --from`, FROM).
    ///
    /// # Errors
    /// [`SubstitutionError::Word`].
    pub fn expand(&self, word: &str, line: usize) -> Result<String, SubstitutionError> {
        ShellLex::new(self.escape)
            .process_word(word, &self.meta)
            .map_err(|error| SubstitutionError::Word { line, error })
    }
}

/// The variables in effect inside one stage, updated step by step.
#[derive(Debug, Clone)]
pub struct StageScope {
    escape: char,
    env: Vec<(String, String)>,
    args: BTreeMap<String, String>,
    declared: BTreeSet<String>,
    meta: BTreeMap<String, String>,
    build_args: BTreeMap<String, String>,
}

impl VarLookup for StageScope {
    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.args.get(name).map(String::as_str))
    }
}

fn split_env(entry: &str) -> (String, String) {
    match entry.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (entry.to_string(), String::new()),
    }
}

impl StageScope {
    /// The scope at the start of a stage whose base image has environment `base_env`
    /// (`KEY=value` entries of the image config).
    pub fn new(global: &GlobalScope, base_env: &[String]) -> StageScope {
        let mut args = BTreeMap::new();
        for name in PROXY_ARGS {
            if let Some(v) = global.build_args.get(name) {
                args.insert(name.to_string(), v.clone());
            }
        }
        StageScope {
            escape: global.escape,
            env: base_env.iter().map(|e| split_env(e)).collect(),
            args,
            declared: BTreeSet::new(),
            meta: global.meta.clone(),
            build_args: global.build_args.clone(),
        }
    }

    /// The environment to write into the image config, in order.
    pub fn env(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// ARGs in effect (declared in this stage, or proxy args given with --build-arg).
    pub fn args(&self) -> &BTreeMap<String, String> {
        &self.args
    }

    /// The environment of a RUN step: the image environment plus the ARGs it does not
    /// shadow. ARGs are not persisted in the image; for the cache key use
    /// [`StageScope::cache_env`].
    pub fn run_env(&self) -> Vec<String> {
        let mut out = self.env();
        for (k, v) in &self.args {
            if !self.env.iter().any(|(e, _)| e == k) {
                out.push(format!("{k}={v}"));
            }
        }
        out
    }

    /// The environment that identifies a step in the cache: the image environment plus
    /// the ARGs in effect, sorted, leaving out proxy args that the Dockerfile does not
    /// declare (Docker keeps those out of the cache and the history, so changing a proxy
    /// does not rebuild).
    pub fn cache_env(&self) -> Vec<String> {
        let args = self.recorded_args();
        let mut out = self.env();
        out.push(format!("|{}", args.len()));
        out.extend(args);
        out
    }

    /// The ARGs in effect that the environment does not shadow, sorted, without the
    /// proxy args the Dockerfile does not declare: what Docker records of a RUN's
    /// build args.
    fn recorded_args(&self) -> Vec<String> {
        let mut args: Vec<String> = self
            .unshadowed_args()
            .filter(|(k, _)| self.declared.contains(*k) || !PROXY_ARGS.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        args.sort();
        args
    }

    fn unshadowed_args(&self) -> impl Iterator<Item = (&String, &String)> {
        self.args
            .iter()
            .filter(|(k, _)| !self.env.iter().any(|(e, _)| e == *k))
    }

    /// A RUN's command as Docker's classic builder records it in the image history
    /// (`created_by`): with build args in effect, `|N K=v … ` before the command
    /// (`|1 V=x /bin/sh -c echo $V`), N counting the args listed, which leave out
    /// undeclared proxy args (so `|0 …` when only those are given); the bare command
    /// when no build arg is in effect.
    pub fn run_history(&self, command: &[String]) -> String {
        if self.unshadowed_args().next().is_none() {
            return command.join(" ");
        }
        let args = self.recorded_args();
        let mut out = vec![format!("|{}", args.len())];
        out.extend(args);
        out.extend(command.iter().cloned());
        out.join(" ")
    }

    fn word(&self, w: &str, line: usize) -> Result<String, SubstitutionError> {
        ShellLex::new(self.escape)
            .process_word(w, self)
            .map_err(|error| SubstitutionError::Word { line, error })
    }

    fn opt(&self, w: &Option<String>, line: usize) -> Result<Option<String>, SubstitutionError> {
        w.as_ref().map(|w| self.word(w, line)).transpose()
    }

    fn pairs(&self, kvs: &[KeyValue], line: usize) -> Result<Vec<KeyValue>, SubstitutionError> {
        kvs.iter()
            .map(|kv| {
                Ok(KeyValue {
                    key: self.word(&kv.key, line)?,
                    value: self.word(&kv.value, line)?,
                    legacy: kv.legacy,
                })
            })
            .collect()
    }

    fn copy(&self, c: &CopyArgs, line: usize) -> Result<CopyArgs, SubstitutionError> {
        let mut raw = ShellLex::new('\\');
        raw.skip_quotes = true;
        let mut out = c.clone();
        out.sources = c
            .sources
            .iter()
            .map(|s| self.word(s, line))
            .collect::<Result<_, _>>()?;
        out.dest = self.word(&c.dest, line)?;
        out.chown = self.opt(&c.chown, line)?;
        out.chmod = self.opt(&c.chmod, line)?;
        // --from is not substituted: BuildKit rejects variables there (the stage graph
        // is fixed before any stage runs), see `plan::BuildPlan::new`.
        for f in &mut out.inline {
            if f.expand {
                f.data = raw
                    .process_word(&f.data, self)
                    .map_err(|error| SubstitutionError::Word { line, error })?;
            }
        }
        Ok(out)
    }

    /// Substitutes `step` as Docker does for its instruction and applies its effect on
    /// the scope (ENV sets variables, ARG declares them). Returns the substituted
    /// instruction, which is what the executor runs and what goes into the cache key.
    ///
    /// # Errors
    /// [`SubstitutionError`] for a word that does not expand.
    pub fn apply(&mut self, step: &Step) -> Result<Instruction, SubstitutionError> {
        let line = step.line;
        let out = match &step.instruction {
            Instruction::Env { vars } => {
                let vars = self.pairs(vars, line)?;
                for kv in &vars {
                    match self.env.iter_mut().find(|(k, _)| *k == kv.key) {
                        Some(slot) => slot.1 = kv.value.clone(),
                        None => self.env.push((kv.key.clone(), kv.value.clone())),
                    }
                }
                Instruction::Env { vars }
            }
            Instruction::Label { labels } => Instruction::Label {
                labels: self.pairs(labels, line)?,
            },
            Instruction::Add(c) => Instruction::Add(self.copy(c, line)?),
            Instruction::Copy(c) => Instruction::Copy(self.copy(c, line)?),
            Instruction::Workdir { path } => Instruction::Workdir {
                path: self.word(path, line)?,
            },
            Instruction::User { user } => Instruction::User {
                user: self.word(user, line)?,
            },
            Instruction::Stopsignal { signal } => Instruction::Stopsignal {
                signal: self.word(signal, line)?,
            },
            Instruction::Volume { volumes } => Instruction::Volume {
                volumes: volumes
                    .iter()
                    .map(|v| self.word(v, line))
                    .collect::<Result<_, _>>()?,
            },
            Instruction::Expose { ports } => {
                let lex = ShellLex::new(self.escape);
                let mut out = Vec::new();
                for p in ports {
                    out.extend(
                        lex.process_words(p, self)
                            .map_err(|error| SubstitutionError::Word { line, error })?,
                    );
                }
                Instruction::Expose { ports: out }
            }
            Instruction::Arg { args } => {
                let mut decls = Vec::new();
                for a in args {
                    let name = self.word(&a.name, line)?;
                    let default = self.opt(&a.default, line)?;
                    let value = self
                        .build_args
                        .get(&name)
                        .cloned()
                        .or_else(|| default.clone())
                        .or_else(|| self.meta.get(&name).cloned());
                    if let Some(v) = value {
                        self.args.insert(name.clone(), v);
                    }
                    self.declared.insert(name.clone());
                    decls.push(ArgDecl { name, default });
                }
                Instruction::Arg { args: decls }
            }
            Instruction::Run(r) => {
                let mut r = r.clone();
                r.mounts = r
                    .mounts
                    .iter()
                    .map(|m| self.word(m, line))
                    .collect::<Result<_, _>>()?;
                Instruction::Run(r)
            }
            other => other.clone(),
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BuildArgs {
        let mut a = BuildArgs::native(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        a.build_platform = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: String::new(),
        };
        a.target_platform = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: String::new(),
        };
        a
    }

    fn run_stage(
        text: &str,
        build_args: &[(&str, &str)],
        base_env: &[&str],
    ) -> (StageScope, Vec<Instruction>) {
        let df = Dockerfile::parse(text).unwrap();
        let global = GlobalScope::new(&df, &args(build_args)).unwrap();
        let base: Vec<String> = base_env.iter().map(|s| s.to_string()).collect();
        let mut scope = StageScope::new(&global, &base);
        let out = df.stages[0]
            .steps
            .iter()
            .map(|s| scope.apply(s).unwrap())
            .collect();
        (scope, out)
    }

    #[test]
    fn meta_args_are_visible_in_from_only() {
        let df =
            Dockerfile::parse("ARG V=3.19\nARG IMG=alpine:$V\nFROM $IMG\nRUN echo\nWORKDIR /$V\n")
                .unwrap();
        let global = GlobalScope::new(&df, &args(&[])).unwrap();
        let from = global.resolve_from(&df.stages[0].from, 3).unwrap();
        assert_eq!(from.image, "alpine:3.19");
        let mut scope = StageScope::new(&global, &[]);
        let w = scope.apply(&df.stages[0].steps[1]).unwrap();
        assert_eq!(w, Instruction::Workdir { path: "/".into() });
    }

    #[test]
    fn redeclared_meta_arg_takes_the_global_value() {
        let (scope, out) = run_stage("ARG V=1\nFROM x\nARG V\nWORKDIR /$V\n", &[], &[]);
        assert_eq!(out[1], Instruction::Workdir { path: "/1".into() });
        assert_eq!(scope.args().get("V").map(String::as_str), Some("1"));
    }

    #[test]
    fn build_arg_overrides_defaults_and_env_shadows_args() {
        let (scope, out) = run_stage(
            "FROM x\nARG A=default B=b\nENV B=env\nLABEL a=$A b=$B\n",
            &[("A", "cli")],
            &[],
        );
        let Instruction::Label { labels } = &out[2] else {
            panic!()
        };
        assert_eq!(labels[0].value, "cli");
        assert_eq!(labels[1].value, "env");
        assert_eq!(scope.run_env(), ["B=env", "A=cli"]);
    }

    #[test]
    fn env_pairs_see_values_from_before_the_instruction() {
        let (scope, _) = run_stage("FROM x\nENV A=1\nENV A=2 B=$A\n", &[], &[]);
        assert_eq!(scope.env(), ["A=2", "B=1"]);
    }

    #[test]
    fn base_image_env_is_used_and_replaced_in_place() {
        let (scope, out) = run_stage(
            "FROM x\nENV PATH=/opt/bin:$PATH\nWORKDIR $HOME\n",
            &[],
            &["PATH=/usr/bin", "HOME=/root"],
        );
        assert_eq!(scope.env(), ["PATH=/opt/bin:/usr/bin", "HOME=/root"]);
        assert_eq!(
            out[1],
            Instruction::Workdir {
                path: "/root".into()
            }
        );
    }

    #[test]
    fn run_and_cmd_are_not_substituted_but_quotes_are_removed_elsewhere() {
        let (_, out) = run_stage(
            "FROM x\nENV X=1\nRUN echo $X\nCMD echo $X\nLABEL \"a b\"='$X'\nUSER \"$X\"\n",
            &[],
            &[],
        );
        assert!(
            matches!(&out[1], Instruction::Run(r) if r.command == crate::instruction::CommandLine::Shell("echo $X".into()))
        );
        assert!(matches!(&out[2], Instruction::Cmd { .. }));
        let Instruction::Label { labels } = &out[3] else {
            panic!()
        };
        assert_eq!(
            (labels[0].key.as_str(), labels[0].value.as_str()),
            ("a b", "$X")
        );
        assert_eq!(out[4], Instruction::User { user: "1".into() });
    }

    #[test]
    fn expose_splits_expanded_words() {
        let (_, out) = run_stage(
            "FROM x\nARG PORTS=\"80 443\"\nEXPOSE $PORTS 53/udp\n",
            &[],
            &[],
        );
        assert_eq!(
            out[1],
            Instruction::Expose {
                ports: vec!["80".into(), "443".into(), "53/udp".into()]
            }
        );
    }

    #[test]
    fn platform_args_are_predefined_in_global_scope_and_need_declaring_in_stages() {
        let df = Dockerfile::parse(
            "FROM --platform=$BUILDPLATFORM x-$TARGETARCH\nARG TARGETOS\nRUN true\n",
        )
        .unwrap();
        let global = GlobalScope::new(&df, &args(&[])).unwrap();
        let from = global.resolve_from(&df.stages[0].from, 1).unwrap();
        assert_eq!(from.image, "x-arm64");
        assert_eq!(from.platform.as_deref(), Some("linux/amd64"));
        let mut scope = StageScope::new(&global, &[]);
        scope.apply(&df.stages[0].steps[0]).unwrap();
        assert_eq!(scope.run_env(), ["TARGETOS=linux"]);
    }

    #[test]
    fn proxy_args_need_no_declaration() {
        let (scope, _) = run_stage(
            "FROM x\nRUN true\n",
            &[("HTTP_PROXY", "http://p:3128"), ("OTHER", "x")],
            &[],
        );
        assert_eq!(scope.run_env(), ["HTTP_PROXY=http://p:3128"]);
    }

    #[test]
    fn cache_env_leaves_out_undeclared_proxy_args() {
        let (scope, _) = run_stage(
            "FROM x\nARG B=2 A=1\nARG no_proxy\n",
            &[("HTTP_PROXY", "http://p"), ("no_proxy", "x")],
            &["PATH=/bin"],
        );
        assert_eq!(
            scope.cache_env(),
            ["PATH=/bin", "|3", "A=1", "B=2", "no_proxy=x"]
        );
    }

    #[test]
    fn run_history_lists_build_args_before_the_command_as_docker_does() {
        let cmd: Vec<String> = vec!["/bin/sh".into(), "-c".into(), "echo $V".into()];
        let (scope, _) = run_stage("FROM x\nARG V\nARG W=2\nENV W=3\n", &[("V", "x")], &[]);
        assert_eq!(scope.run_history(&cmd), "|1 V=x /bin/sh -c echo $V");
        // Only an undeclared proxy arg: Docker still marks the command, with |0.
        let (scope, _) = run_stage("FROM x\n", &[("HTTP_PROXY", "http://p")], &[]);
        assert_eq!(scope.run_history(&cmd), "|0 /bin/sh -c echo $V");
        let (scope, _) = run_stage("FROM x\nARG NOVALUE\n", &[], &[]);
        assert_eq!(scope.run_history(&cmd), "/bin/sh -c echo $V");
    }

    #[test]
    fn copy_sources_dest_and_heredoc_bodies_are_substituted() {
        let (_, out) = run_stage(
            "FROM x\nARG DIR=/app\nCOPY --from=builder --chown=$DIR:1 a/$DIR $DIR/ \nCOPY <<EOF <<'RAW' $DIR/\nv=\"$DIR\"\nEOF\nv=$DIR\nRAW\n",
            &[],
            &[],
        );
        let Instruction::Copy(c) = &out[1] else {
            panic!()
        };
        assert_eq!(c.from.as_deref(), Some("builder"));
        assert_eq!(c.chown.as_deref(), Some("/app:1"));
        assert_eq!(c.sources, ["a//app"]);
        assert_eq!(c.dest, "/app/");
        let Instruction::Copy(c) = &out[2] else {
            panic!()
        };
        assert_eq!(c.inline[0].data, "v=\"/app\"\n");
        assert_eq!(c.inline[1].data, "v=$DIR\n");
    }

    #[test]
    fn unset_required_variable_names_the_line() {
        let df = Dockerfile::parse("FROM x\nWORKDIR ${NOPE:?set it}\n").unwrap();
        let global = GlobalScope::new(&df, &args(&[])).unwrap();
        let err = StageScope::new(&global, &[])
            .apply(&df.stages[0].steps[0])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: failed to process \"${NOPE:?set it}\": NOPE: set it"
        );
    }
}
