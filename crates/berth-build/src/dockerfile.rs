//! The parsed Dockerfile: global ARGs and stages, each a FROM and its instructions.

use serde::Serialize;

use crate::error::{ParseError, ParseErrorKind};
use crate::instruction::{ArgDecl, Instruction, Parsed, StageBase, parse_instruction};
use crate::parser::{Directives, parse_text};

/// An instruction with where it came from, for error messages and build output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line (heredoc bodies included).
    pub end_line: usize,
    /// The logical line as written (continuations joined), for `Step n/N : …` output.
    pub original: String,
    /// The instruction.
    #[serde(flatten)]
    pub instruction: Instruction,
}

/// One build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// Position among the stages, what `COPY --from=0` names.
    pub index: usize,
    /// The FROM line.
    pub from: StageBase,
    /// 1-based line of the FROM.
    pub line: usize,
    /// The FROM line as written.
    pub original: String,
    /// The stage's instructions in order.
    pub steps: Vec<Step>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// Parser directives.
    pub directives: Directives,
    /// ARGs before the first FROM: usable in FROM lines only (and by stages that
    /// re-declare them).
    pub meta_args: Vec<ArgDecl>,
    /// The stages in file order.
    pub stages: Vec<Stage>,
    /// Docker's parser warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Dockerfile {
    /// Parses Dockerfile text (stages one and two).
    ///
    /// # Errors
    /// [`ParseError`]: the line and Docker's message for the first problem found.
    pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
        let parsed = parse_text(text)?;
        let mut meta_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for raw in &parsed.instructions {
            let at = |kind| ParseError {
                line: raw.start_line,
                kind,
            };
            match parse_instruction(raw).map_err(at)? {
                Parsed::From(from) => stages.push(Stage {
                    index: stages.len(),
                    from,
                    line: raw.start_line,
                    original: raw.original.trim().to_string(),
                    steps: Vec::new(),
                }),
                Parsed::Instruction(Instruction::Arg { args }) if stages.is_empty() => {
                    meta_args.extend(args);
                }
                Parsed::Instruction(instruction) => {
                    let Some(stage) = stages.last_mut() else {
                        return Err(at(ParseErrorKind::NoStage));
                    };
                    stage.steps.push(Step {
                        line: raw.start_line,
                        end_line: raw.end_line,
                        original: raw.original.trim().to_string(),
                        instruction,
                    });
                }
            }
        }
        Ok(Dockerfile {
            directives: parsed.directives,
            meta_args,
            stages,
            warnings: parsed.warnings,
        })
    }

    /// Parses a Dockerfile as received (bytes): invalid UTF-8 is replaced, as Go would
    /// when the bytes end up in strings, rather than refusing the file.
    ///
    /// # Errors
    /// As [`Dockerfile::parse`].
    pub fn parse_bytes(bytes: &[u8]) -> Result<Dockerfile, ParseError> {
        Dockerfile::parse(&String::from_utf8_lossy(bytes))
    }

    /// The `N` of the classic builder's `Step n/N : …` lines: every meta ARG, every FROM
    /// and every instruction counts as a step.
    pub fn total_steps(&self) -> usize {
        self.meta_args.len()
            + self.stages.len()
            + self.stages.iter().map(|s| s.steps.len()).sum::<usize>()
    }

    /// The stage called `name` (case-insensitive, as Docker).
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.from.name.as_deref() == Some(lower.as_str()))
    }
}

/// Parses one ONBUILD trigger expression, as a child build does when it starts FROM an
/// image that carries triggers.
///
/// # Errors
/// [`ParseError`] as for a Dockerfile line; also FROM/MAINTAINER/ONBUILD as triggers.
pub fn parse_trigger(expression: &str) -> Result<Step, ParseError> {
    let parsed = parse_text(expression)?;
    let raw = &parsed.instructions[0];
    let at = |kind| ParseError {
        line: raw.start_line,
        kind,
    };
    let upper = raw.keyword.to_ascii_uppercase();
    match upper.as_str() {
        "ONBUILD" => return Err(at(ParseErrorKind::OnbuildChain)),
        "FROM" | "MAINTAINER" => return Err(at(ParseErrorKind::OnbuildTrigger(upper))),
        _ => {}
    }
    match parse_instruction(raw).map_err(at)? {
        Parsed::Instruction(instruction) => Ok(Step {
            line: raw.start_line,
            end_line: raw.end_line,
            original: raw.original.trim().to_string(),
            instruction,
        }),
        Parsed::From(_) => Err(at(ParseErrorKind::OnbuildTrigger(upper))),
    }
}
