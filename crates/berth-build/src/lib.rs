//! berth's Dockerfile front end: text → instructions → stages, plus what a build needs
//! around them (variable substitution, `.dockerignore`, cache keys).
//!
//! - [`Dockerfile::parse`]: parser directives, comments, continuations, heredocs and
//!   every instruction, checked with Docker's error messages ([`ParseError`]).
//! - [`lex::ShellLex`]: Docker's word lexer (`$VAR`, `${VAR:-x}`, quotes, escapes).
//! - [`scope::StageScope`]: which ARG and ENV values are in effect at a step, and the
//!   substitution of exactly the instructions Docker substitutes.
//! - [`plan::BuildPlan`]: the stages a target needs, their dependencies and the order
//!   (in waves that can run concurrently).
//! - [`ignore::IgnoreMatcher`]: `.dockerignore` with moby's pattern-matcher semantics.
//! - [`cache`]: the cache key of a step and the checksum of the files ADD/COPY take
//!   from the build context.
//!
//! Design: the front end is pure: no daemon, no images, no containers. The executor
//! gives it the base image's environment and the parent layer, and gets back typed,
//! substituted instructions and cache keys. Parsing mirrors BuildKit's three stages
//! (line syntax, instruction checks, stage graph) so each can be compared with Docker
//! and tested with golden files (`tests/golden`). Substitution happens per step, not at
//! parse time, because ENV from the base image and earlier steps changes the result.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod context;
mod dockerfile;
mod error;
pub mod ignore;
pub mod instruction;
pub mod lex;
pub mod parser;
pub mod plan;
pub mod scope;

pub use dockerfile::{Dockerfile, Stage, Step, parse_trigger};
pub use error::{ParseError, ParseErrorKind};
