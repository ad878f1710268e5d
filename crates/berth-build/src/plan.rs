//! Stage three: the stage graph, and the stages a target needs.
//!
//! A stage depends on the stage it is built FROM and on every stage it copies or
//! mounts from (`COPY --from`, `RUN --mount=from=`). The plan keeps only the stages
//! the target reaches and groups them in waves: every stage of a wave depends only on
//! earlier waves, so the executor can build a wave's stages concurrently and skip the
//! stages nobody needs, as BuildKit does.

use crate::dockerfile::Dockerfile;
use crate::instruction::Instruction;
use crate::scope::{GlobalScope, ResolvedFrom, SubstitutionError};

/// Where a stage, or a `--from`, takes its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `scratch`: nothing.
    Scratch,
    /// An image reference, resolved (and pulled if missing) by the executor.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// One stage with its resolved base and its dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStage {
    /// Index of the stage in the Dockerfile.
    pub index: usize,
    /// `AS` name.
    pub name: Option<String>,
    /// The FROM line after meta-arg substitution.
    pub from: ResolvedFrom,
    /// The base: scratch, an image or an earlier stage.
    pub base: Source,
    /// Stages this stage needs (its base and `--from` stages), sorted, no duplicates.
    pub deps: Vec<usize>,
    /// Images named by `COPY --from`/`--mount from=` that are not stages.
    pub images: Vec<String>,
}

/// What to build and in which order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// Every stage of the Dockerfile, resolved.
    pub stages: Vec<PlannedStage>,
    /// The stage whose result is the image (`--target`, else the last).
    pub target: usize,
    /// Waves of needed stages: each wave depends only on earlier ones.
    pub waves: Vec<Vec<usize>>,
}

/// Why a Dockerfile's stages cannot be planned. Messages are BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Only ARGs, no FROM.
    #[error("dockerfile contains no stages to build")]
    NoStages,
    /// `--target` names no stage.
    #[error("target stage {0:?} could not be found")]
    TargetNotFound(String),
    /// `COPY --from=7` with fewer stages.
    #[error("line {line}: invalid stage index {index}")]
    InvalidStageIndex {
        /// 1-based line.
        line: usize,
        /// The index given.
        index: i64,
    },
    /// `COPY --from` naming the current or a later stage.
    #[error(
        "line {line}: cannot copy from stage {from:?}, it needs to be defined before current stage {stage:?}"
    )]
    LaterStage {
        /// 1-based line.
        line: usize,
        /// The `--from` value.
        from: String,
        /// The current stage (name or index).
        stage: String,
    },
    /// `COPY --from=$X`.
    #[error(
        "line {line}: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
    )]
    FromVariable {
        /// 1-based line.
        line: usize,
    },
    /// Two stages with the same `AS` name (the classic builder's check).
    #[error("line {line}: {name} stage name already used")]
    DuplicateStageName {
        /// 1-based line of the second FROM.
        line: usize,
        /// The name.
        name: String,
    },
    /// A FROM line that does not substitute.
    #[error(transparent)]
    Substitution(#[from] SubstitutionError),
}

impl BuildPlan {
    /// Resolves every stage's base and dependencies and the waves that build `target`
    /// (a stage name; `None` for the last stage).
    ///
    /// # Errors
    /// [`PlanError`]: unknown target, bad `--from`, or a FROM that does not substitute.
    pub fn new(
        dockerfile: &Dockerfile,
        global: &GlobalScope,
        target: Option<&str>,
    ) -> Result<BuildPlan, PlanError> {
        if dockerfile.stages.is_empty() {
            return Err(PlanError::NoStages);
        }
        let by_name = |name: &str, before: usize| {
            let lower = name.to_ascii_lowercase();
            dockerfile.stages[..before]
                .iter()
                .position(|s| s.from.name.as_deref() == Some(lower.as_str()))
        };
        let mut stages = Vec::new();
        for stage in &dockerfile.stages {
            if let Some(name) = &stage.from.name {
                if by_name(name, stage.index).is_some() {
                    return Err(PlanError::DuplicateStageName {
                        line: stage.line,
                        name: name.clone(),
                    });
                }
            }
            let from = global.resolve_from(&stage.from, stage.line)?;
            let base = if let Some(i) = by_name(&from.image, stage.index) {
                Source::Stage(i)
            } else if from.image.eq_ignore_ascii_case("scratch") {
                Source::Scratch
            } else {
                Source::Image(from.image.clone())
            };
            let mut deps = Vec::new();
            let mut images = Vec::new();
            if let Source::Stage(i) = base {
                deps.push(i);
            }
            let stage_label = stage
                .from
                .name
                .clone()
                .unwrap_or_else(|| stage.index.to_string());
            for step in &stage.steps {
                let froms: Vec<String> = match &step.instruction {
                    Instruction::Copy(c) => c.from.iter().cloned().collect(),
                    Instruction::Run(r) => r.mounts.iter().filter_map(|m| mount_from(m)).collect(),
                    _ => Vec::new(),
                };
                for f in froms {
                    if f.contains('$') && global.expand(&f, step.line).ok().as_deref() != Some(&f) {
                        return Err(PlanError::FromVariable { line: step.line });
                    }
                    let later = || PlanError::LaterStage {
                        line: step.line,
                        from: f.clone(),
                        stage: stage_label.clone(),
                    };
                    if let Ok(index) = f.parse::<i64>() {
                        let Some(i) = usize::try_from(index)
                            .ok()
                            .filter(|i| *i < dockerfile.stages.len())
                        else {
                            return Err(PlanError::InvalidStageIndex {
                                line: step.line,
                                index,
                            });
                        };
                        if i >= stage.index {
                            return Err(later());
                        }
                        deps.push(i);
                    } else if let Some(i) = by_name(&f, stage.index) {
                        deps.push(i);
                    } else if by_name(&f, dockerfile.stages.len()).is_some() {
                        return Err(later());
                    } else if !images.contains(&f) {
                        images.push(f);
                    }
                }
            }
            deps.sort_unstable();
            deps.dedup();
            stages.push(PlannedStage {
                index: stage.index,
                name: stage.from.name.clone(),
                from,
                base,
                deps,
                images,
            });
        }
        let target = match target {
            None => stages.len() - 1,
            Some(t) => dockerfile
                .stage(t)
                .map(|s| s.index)
                .ok_or_else(|| PlanError::TargetNotFound(t.to_string()))?,
        };
        // Dependencies always point to earlier stages, so one pass in index order
        // computes each needed stage's depth.
        let mut needed = vec![false; stages.len()];
        needed[target] = true;
        for i in (0..=target).rev() {
            if needed[i] {
                for &d in &stages[i].deps {
                    needed[d] = true;
                }
            }
        }
        let mut depth = vec![0usize; stages.len()];
        let mut waves: Vec<Vec<usize>> = Vec::new();
        for i in 0..=target {
            if !needed[i] {
                continue;
            }
            depth[i] = stages[i]
                .deps
                .iter()
                .map(|&d| depth[d] + 1)
                .max()
                .unwrap_or(0);
            if waves.len() <= depth[i] {
                waves.resize(depth[i] + 1, Vec::new());
            }
            waves[depth[i]].push(i);
        }
        Ok(BuildPlan {
            stages,
            target,
            waves,
        })
    }

    /// What `COPY --from=<from>` (or `--mount from=`) in stage `stage` refers to: an
    /// earlier stage by name (case-insensitive) or index, else an image. `new` has
    /// already rejected indexes and names of the current or later stages.
    pub fn source_of(&self, stage: usize, from: &str) -> Source {
        if let Ok(i) = from.parse::<usize>() {
            if i < stage {
                return Source::Stage(i);
            }
        }
        let lower = from.to_ascii_lowercase();
        match self.stages[..stage.min(self.stages.len())]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            Some(i) => Source::Stage(i),
            None => Source::Image(from.to_string()),
        }
    }

    /// `--build-arg` names that no meta ARG and no ARG of a needed stage declares (proxy
    /// args excepted), sorted: what Docker warns about as "[Warning] One or more
    /// build-args [...] were not consumed".
    pub fn unused_build_args(
        &self,
        dockerfile: &Dockerfile,
        build_args: &std::collections::BTreeMap<String, String>,
    ) -> Vec<String> {
        let mut declared: Vec<&str> = dockerfile
            .meta_args
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        for i in self.order() {
            for step in &dockerfile.stages[i].steps {
                if let Instruction::Arg { args } = &step.instruction {
                    declared.extend(args.iter().map(|a| a.name.as_str()));
                }
            }
        }
        build_args
            .keys()
            .filter(|k| !declared.contains(&k.as_str()))
            .filter(|k| !crate::scope::PROXY_ARGS.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// The needed stages in an order that builds every dependency first.
    pub fn order(&self) -> Vec<usize> {
        self.waves.iter().flatten().copied().collect()
    }
}

/// The `from=` of a `--mount` value (`type=cache,from=builder,target=/x`).
fn mount_from(mount: &str) -> Option<String> {
    mount.split(',').find_map(|field| {
        let (k, v) = field.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("from")
            .then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::scope::BuildArgs;

    fn plan(text: &str, target: Option<&str>) -> Result<BuildPlan, PlanError> {
        let df = Dockerfile::parse(text).unwrap();
        let global = GlobalScope::new(&df, &BuildArgs::native(BTreeMap::new())).unwrap();
        BuildPlan::new(&df, &global, target)
    }

    const MULTI: &str = "\
FROM golang AS build
RUN go build
FROM alpine AS docs
RUN make docs
FROM busybox AS unused
RUN true
FROM build AS test
RUN go test
FROM scratch
COPY --from=build /app /app
COPY --from=1 /docs /docs
COPY --from=nginx:1 /etc/nginx /etc/nginx
RUN --mount=type=bind,from=test,target=/t true
";

    #[test]
    fn target_needs_only_reachable_stages_in_waves() {
        let p = plan(MULTI, None).unwrap();
        assert_eq!(p.target, 4);
        assert_eq!(p.waves, vec![vec![0, 1], vec![3], vec![4]]);
        assert_eq!(p.stages[3].base, Source::Stage(0));
        assert_eq!(p.stages[4].base, Source::Scratch);
        assert_eq!(p.stages[4].deps, [0, 1, 3]);
        assert_eq!(p.stages[4].images, ["nginx:1"]);
        assert_eq!(p.order(), [0, 1, 3, 4]);
        assert_eq!(p.source_of(4, "BUILD"), Source::Stage(0));
        assert_eq!(p.source_of(4, "1"), Source::Stage(1));
        assert_eq!(p.source_of(4, "nginx:1"), Source::Image("nginx:1".into()));
    }

    #[test]
    fn target_option_selects_a_stage_by_name() {
        let p = plan(MULTI, Some("TEST")).unwrap();
        assert_eq!(p.target, 3);
        assert_eq!(p.waves, vec![vec![0], vec![3]]);
        assert_eq!(
            plan(MULTI, Some("nope")).unwrap_err().to_string(),
            "target stage \"nope\" could not be found"
        );
    }

    #[test]
    fn copy_from_later_or_missing_stage_is_rejected() {
        let e = plan("FROM a AS one\nCOPY --from=two x y\nFROM b AS two\n", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: cannot copy from stage \"two\", it needs to be defined before current stage \"one\""
        );
        let e = plan("FROM a\nCOPY --from=5 x y\n", None).unwrap_err();
        assert_eq!(e.to_string(), "line 2: invalid stage index 5");
        let e = plan("ARG S=a\nFROM a\nCOPY --from=$S x y\n", None).unwrap_err();
        assert!(matches!(e, PlanError::FromVariable { line: 3 }));
    }

    #[test]
    fn duplicate_stage_names_are_rejected() {
        let e = plan("FROM a AS x\nFROM b AS X\n", None).unwrap_err();
        assert_eq!(e.to_string(), "line 2: x stage name already used");
    }

    #[test]
    fn unused_build_args_ignore_declared_and_proxy_args() {
        let text = "ARG META\nFROM a AS one\nARG USED\nFROM b AS unused\nARG ONLY_UNUSED\nFROM c\nCOPY --from=one x y\n";
        let p = plan(text, None).unwrap();
        let df = Dockerfile::parse(text).unwrap();
        let args: BTreeMap<String, String> = ["META", "USED", "ONLY_UNUSED", "EXTRA", "HTTP_PROXY"]
            .iter()
            .map(|k| (k.to_string(), "v".to_string()))
            .collect();
        assert_eq!(p.unused_build_args(&df, &args), ["EXTRA", "ONLY_UNUSED"]);
    }

    #[test]
    fn from_uses_meta_args_and_stage_names() {
        let p = plan("ARG B=alpine\nFROM $B AS base\nFROM BASE\n", None).unwrap();
        assert_eq!(p.stages[0].base, Source::Image("alpine".into()));
        assert_eq!(p.stages[1].base, Source::Stage(0));
        assert!(matches!(plan("ARG X\n", None), Err(PlanError::NoStages)));
    }
}
