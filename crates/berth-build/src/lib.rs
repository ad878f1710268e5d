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
//!
//! How an executor drives it:
//!
//! ```
//! use std::collections::BTreeMap;
//! use berth_build::{Dockerfile, cache::CacheKeyMaterial, plan::{BuildPlan, Source}};
//! use berth_build::scope::{BuildArgs, GlobalScope, StageScope};
//!
//! let df = Dockerfile::parse("ARG V=1\nFROM busybox AS base\nENV A=$V\nARG V\nRUN echo $A$V\n")?;
//! let args = BuildArgs::native(BTreeMap::from([("V".into(), "2".into())]));
//! let global = GlobalScope::new(&df, &args)?;
//! let plan = BuildPlan::new(&df, &global, None)?;
//! for wave in &plan.waves {
//!     for &i in wave {
//!         // Stages of one wave may run concurrently.
//!         assert_eq!(plan.stages[i].base, Source::Image("busybox".into()));
//!         let base_env = vec!["PATH=/bin".to_string()]; // from the base image's config
//!         let mut scope = StageScope::new(&global, &base_env);
//!         let mut parent = "sha256:<base image id>".to_string();
//!         for step in &df.stages[i].steps {
//!             let instruction = scope.apply(step)?;
//!             let key = CacheKeyMaterial {
//!                 parent: parent.clone(),
//!                 instruction,
//!                 env: scope.cache_env(),
//!                 platform: args.target_platform.spec(),
//!                 sources: None, // context::checksum_sources(..) for ADD/COPY
//!             }
//!             .key();
//!             // Look `key` up; on a miss run the step and commit a new image.
//!             parent = format!("image-for-{key}");
//!         }
//!         // The meta arg V is not visible in the stage until `ARG V` re-declares it.
//!         assert_eq!(scope.env(), ["PATH=/bin", "A="]);
//!         assert_eq!(scope.run_env(), ["PATH=/bin", "A=", "V=2"]);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
