//! The build executor behind `POST /build`: Docker's classic builder, step by step,
//! over berth-build's front end.
//!
//! [`BuildService::receive_context`] unpacks the context tarball into a private
//! directory; [`BuildService::build`] parses the Dockerfile, plans the stages the
//! target needs and runs each as soon as the stages it needs are built (independent
//! stages at once), streaming the classic builder's output lines ([`BuildMessage`])
//! in file order, as if the stages had run one after another. Every step ends as an image whose parent is the
//! previous step's image, as Docker's intermediate images are, so `images -a` shows
//! them and the cache can point at them.
//!
//! How each kind of step runs, and why:
//! - config-only instructions (ENV, LABEL, CMD, …) edit the config and record an
//!   image without a layer ([`ImageService::commit_config`]): no container, no diff.
//!   Docker v28 creates and removes a container for them and prints its lines; the
//!   same lines are printed so output compares line for line (the id is a fresh
//!   random one, as Docker's is).
//! - RUN creates a container from the current image, attaches to its output before
//!   starting it, waits, and commits its upper directory as the layer.
//! - COPY/ADD/WORKDIR write into a fresh upper directory through a detached overlay
//!   of the current image's layers ([`ContainerRoot::scratch`]; the archive code
//!   resolves every path inside that root) and commit the upper directory. No
//!   container record, init layer or shim: a container cost 50-100 ms per step and
//!   none of it is needed to write files. `COPY --from` reads its source image the
//!   same way. `FROM scratch` has no layers to overlay, so a plain directory is the
//!   upper directory there.
//!
//! The cache ([`cache`]) is keyed by berth-build's [`CacheKeyMaterial`]: a hit costs
//! one hash-map probe and one image lookup. As in Docker, the first miss busts the
//! cache for the rest of the stage.
//!
//! On-disk layout (under the data root):
//! ```text
//! builder/
//!   cache.log          step cache key → image id (see `cache`)
//!   tmp/<random>/      one build: context/ (the unpacked context), root-<random>/
//!                      (upper/ and work/ of one COPY/ADD/WORKDIR), downloads
//! ```

mod cache;
mod config;
mod copy;
mod fetch;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_build::cache::CacheKeyMaterial;
use berth_build::ignore::{IgnoreMatcher, clean_path};
use berth_build::instruction::{CommandLine, CopyArgs, Instruction, Run};
use berth_build::plan::{BuildPlan, Source};
use berth_build::scope::{BuildArgs, GlobalScope, StageScope};
use berth_build::{Dockerfile, Step};
use berth_oci::Digest;
use berth_oci::image::ContainerConfig;
use berth_oci::reference::Reference;
use berth_registry::AuthConfig;
use berth_store::layer::{self, ApplyOptions};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::UnboundedSender;

use crate::containers::{
    Config, ContainerRoot, ContainerService, CreateRequest, HostConfig, WaitCondition,
};
use crate::images::{ImageService, LayerCommit, ProgressMessage, PullRequest};
use crate::{DaemonError, ErrorKind};

use cache::CacheIndex;
use config::StageMeta;
use copy::{Attrs, Dest};

/// What `POST /build` asks for (its query parameters).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `dockerfile`: the Dockerfile's path inside the context (default `Dockerfile`).
    pub dockerfile: String,
    /// `t`: names to tag the result with.
    pub tags: Vec<String>,
    /// `buildargs`: a `None` value was named without a value (only warned about).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `labels`: added to the final stage as LABEL steps.
    pub labels: BTreeMap<String, String>,
    /// `target`: the stage to build.
    pub target: Option<String>,
    /// `pull`: pull FROM images even when present.
    pub pull: bool,
    /// `nocache`.
    pub no_cache: bool,
    /// `cachefrom`: only these images' parent chains may satisfy the cache.
    pub cache_from: Vec<String>,
    /// `extrahosts`: `host:ip` lines added to each RUN container's `/etc/hosts`.
    pub extra_hosts: Vec<String>,
    /// `rm` (default true): remove RUN containers after a successful step.
    pub remove: bool,
    /// `forcerm`: remove them after a failed step too.
    pub force_remove: bool,
    /// `memory`, bytes.
    pub memory: i64,
    /// `cpuperiod`.
    pub cpu_period: i64,
    /// `cpuquota`.
    pub cpu_quota: i64,
    /// `cpushares`.
    pub cpu_shares: i64,
    /// `networkmode` of RUN containers.
    pub network_mode: String,
    /// `X-Registry-Config`: credentials per registry, for pulls.
    pub auth_configs: HashMap<String, AuthConfig>,
}

/// One message of the build's output stream.
#[derive(Debug, Clone)]
pub enum BuildMessage {
    /// Text for `{"stream": …}`.
    Stream(String),
    /// Pull progress of a FROM image.
    Progress(ProgressMessage),
    /// A stage's result, for `{"aux": {"ID": …}}`.
    Aux(Digest),
}

/// A failed build: the error, and a RUN's exit code when that was the cause.
#[derive(Debug, Clone)]
pub struct BuildFailure {
    /// What went wrong.
    pub error: DaemonError,
    /// The failing RUN's exit code.
    pub code: Option<i32>,
}

impl From<DaemonError> for BuildFailure {
    fn from(error: DaemonError) -> Self {
        BuildFailure { error, code: None }
    }
}

/// An unpacked build context; removed when dropped.
pub struct BuildContext {
    dir: PathBuf,
}

impl BuildContext {
    /// The context's root directory.
    pub fn root(&self) -> PathBuf {
        self.dir.join("context")
    }
}

impl Drop for BuildContext {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The build service.
pub struct BuildService {
    root: PathBuf,
    images: Arc<ImageService>,
    containers: Arc<ContainerService>,
    cache: CacheIndex,
}

fn io_internal(what: &str) -> impl Fn(std::io::Error) -> DaemonError + '_ {
    move |e| DaemonError::internal(format!("{what}: {e}"))
}

fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

fn short(id: &Digest) -> String {
    id.hex()[..12].to_string()
}

/// Sends to the client; a client that went away must not stop the cleanup.
struct Out<'a>(&'a UnboundedSender<BuildMessage>);

impl Out<'_> {
    fn line(&self, text: impl Into<String>) {
        let mut t = text.into();
        t.push('\n');
        let _ = self.0.send(BuildMessage::Stream(t));
    }
}

/// The state of one stage while its steps run.
struct StageState {
    image: Option<Digest>,
    config: ContainerConfig,
    meta: StageMeta,
}

/// Per-build settings the steps need.
struct Run_<'a> {
    opts: &'a BuildOptions,
    context: &'a Path,
    ignore: &'a IgnoreMatcher,
    scratch_dir: PathBuf,
    platform: String,
    /// Set by the first miss: later steps of the build do not probe.
    busted: bool,
    /// Images whose chains may satisfy the cache (`cachefrom`); `None`: any.
    cache_from: Option<Vec<Digest>>,
    /// RUN containers being removed while later steps run.
    removals: &'a Removals,
}

/// Removals of committed RUN containers, run in the background so that the next
/// steps need not wait for the unmount and directory removal (≈ 50-90 ms each);
/// [`BuildService::build`] waits for all of them before it returns.
#[derive(Default)]
struct Removals(std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>);

impl Removals {
    fn spawn(&self, containers: Arc<ContainerService>, id: String) {
        let task = tokio::spawn(async move {
            if let Err(e) = containers.remove(&id, true, true).await {
                tracing::warn!(container = %id, error = %e, "cannot remove build container");
            }
        });
        self.0.lock().expect("removals lock").push(task);
    }

    async fn finish(self) {
        let tasks = std::mem::take(&mut *self.0.lock().expect("removals lock"));
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl BuildService {
    /// Opens the cache index under `data_root` and clears what an earlier run left in
    /// the temporary directory.
    ///
    /// # Errors
    /// `Internal` when the directories cannot be created or the index read.
    pub fn open(
        data_root: &Path,
        images: Arc<ImageService>,
        containers: Arc<ContainerService>,
    ) -> Result<BuildService, DaemonError> {
        let root = data_root.join("builder");
        let _ = std::fs::remove_dir_all(root.join("tmp"));
        std::fs::create_dir_all(root.join("tmp"))
            .map_err(io_internal("cannot create builder dir"))?;
        let cache = CacheIndex::open(&root.join("cache.log"))?;
        Ok(BuildService {
            root,
            images,
            containers,
            cache,
        })
    }

    /// Unpacks a context tarball (plain, gzip or zstd) into a new private directory.
    /// Blocking.
    ///
    /// # Errors
    /// `InvalidArgument` for a body that is not a tarball, `Internal` otherwise.
    pub fn receive_context(&self, mut body: impl Read + Send) -> Result<BuildContext, DaemonError> {
        let result = self.unpack_context(&mut body);
        if result.is_err() {
            // Read what the client is still sending (within a bound) before the error
            // is answered: closing on an unread upload makes the client report a broken
            // pipe instead of the error.
            let _ = std::io::copy(&mut body.take(64 << 20), &mut std::io::sink());
        }
        result
    }

    fn unpack_context(&self, body: &mut (impl Read + Send)) -> Result<BuildContext, DaemonError> {
        let ctx = BuildContext {
            dir: self.root.join("tmp").join(random_hex(8)),
        };
        let root = ctx.root();
        std::fs::create_dir_all(&root).map_err(io_internal("cannot create context dir"))?;
        let (_, reader) = layer::decompress(std::io::BufReader::with_capacity(1 << 20, body))
            .map_err(|e| DaemonError::invalid(format!("failed to read build context: {e}")))?;
        let opts = ApplyOptions {
            whiteouts: false,
            ..ApplyOptions::default()
        };
        let reader = TarTail {
            inner: reader,
            pos: 0,
            tail: None,
        };
        layer::apply_layer(&root, reader, &opts).map_err(|e| match e {
            layer::ApplyError::Read { .. }
            | layer::ApplyError::InvalidPath { .. }
            | layer::ApplyError::InvalidHeader { .. }
            | layer::ApplyError::Truncated { .. } => {
                let cause = std::error::Error::source(&e)
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default();
                DaemonError::invalid(format!("failed to read build context: {e}{cause}"))
            }
            other => DaemonError::internal(format!("cannot unpack build context: {other}")),
        })?;
        Ok(ctx)
    }

    /// Checks the options that can be refused before the context is read (tags).
    ///
    /// # Errors
    /// `InvalidArgument` in Docker's words.
    pub fn check_options(&self, opts: &BuildOptions) -> Result<(), DaemonError> {
        for t in &opts.tags {
            tag_reference(t)?;
        }
        Ok(())
    }

    /// Runs the build in `ctx`, streaming its output to `out`. Returns the image.
    ///
    /// # Errors
    /// [`BuildFailure`]: a bad Dockerfile or option (`InvalidArgument`), a missing
    /// image, a failing RUN (with its exit code).
    pub async fn build(
        &self,
        ctx: &BuildContext,
        opts: &BuildOptions,
        out: &UnboundedSender<BuildMessage>,
    ) -> Result<Digest, BuildFailure> {
        let removals = Removals::default();
        let result = self.build_steps(ctx, opts, out, &removals).await;
        // The build is over only when its RUN containers are gone: a client that
        // lists containers right after sees none, as with Docker.
        removals.finish().await;
        result
    }

    async fn build_steps(
        &self,
        ctx: &BuildContext,
        opts: &BuildOptions,
        out: &UnboundedSender<BuildMessage>,
        removals: &Removals,
    ) -> Result<Digest, BuildFailure> {
        let out = Out(out);
        let context = ctx.root();
        let (df, ignore) = read_dockerfile(&context, &opts.dockerfile)?;
        let values: BTreeMap<String, String> = opts
            .build_args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        let args = BuildArgs::native(values);
        let global =
            GlobalScope::new(&df, &args).map_err(|e| DaemonError::invalid(e.to_string()))?;
        let plan = BuildPlan::new(&df, &global, opts.target.as_deref())
            .map_err(|e| DaemonError::invalid(e.to_string()))?;
        let mut needed = plan.order();
        needed.sort_unstable();
        let labels: Vec<Step> = opts
            .labels
            .iter()
            .map(|(k, v)| Step {
                line: 0,
                end_line: 0,
                original: format!("LABEL {k}={v}"),
                instruction: Instruction::Label {
                    labels: vec![berth_build::instruction::KeyValue {
                        key: k.clone(),
                        value: v.clone(),
                        legacy: false,
                    }],
                },
            })
            .collect();
        let total = df.meta_args.len()
            + needed
                .iter()
                .map(|&i| 1 + df.stages[i].steps.len())
                .sum::<usize>()
            + labels.len();
        // `cachefrom` limits the cache to those images' chains; names that resolve to
        // no image leave nothing to match, so the build misses, as Docker's does.
        let cache_from = (!opts.cache_from.is_empty()).then(|| {
            opts.cache_from
                .iter()
                .filter_map(|name| self.images.get(name).ok().map(|img| img.record.id))
                .collect::<Vec<_>>()
        });
        let mut n = 0;
        for a in &df.meta_args {
            n += 1;
            match &a.default {
                Some(d) => out.line(format!("Step {n}/{total} : ARG {}={d}", a.name)),
                None => out.line(format!("Step {n}/{total} : ARG {}", a.name)),
            }
        }
        // Every needed stage runs as soon as the stages it needs are built, so
        // independent stages build at once. Each writes into its own channel and the
        // printer below forwards them in file order, so the output reads as the
        // classic builder's sequential one: a stage's lines appear once the stages
        // before it have printed theirs, with Docker's step numbers.
        let mut first_step = Vec::with_capacity(needed.len());
        for &i in &needed {
            first_step.push(n + 1);
            n += 1 + df.stages[i].steps.len();
        }
        let position: HashMap<usize, usize> =
            needed.iter().enumerate().map(|(k, &i)| (i, k)).collect();
        let (done_tx, done_rx): (Vec<_>, Vec<_>) = needed
            .iter()
            .map(|_| tokio::sync::watch::channel(None::<Result<Option<Digest>, ()>>))
            .unzip();
        let (line_tx, line_rx): (Vec<_>, Vec<_>) = needed
            .iter()
            .map(|_| tokio::sync::mpsc::unbounded_channel::<BuildMessage>())
            .unzip();
        // After a failure no stage starts another step; those running finish theirs,
        // so no RUN container is left behind.
        let failed = std::sync::atomic::AtomicBool::new(false);
        let target = *needed.last().expect("a plan has a target stage");
        let stages =
            needed
                .iter()
                .enumerate()
                .zip(done_tx)
                .zip(line_tx)
                .map(|(((k, &i), done), lines)| {
                    let (plan, global, df, labels) = (&plan, &global, &df, &labels);
                    let (position, done_rx, failed) = (&position, &done_rx, &failed);
                    let first = first_step[k];
                    let cache_from = cache_from.clone();
                    let (context, ignore, scratch_dir) = (&context, &ignore, ctx.dir.clone());
                    let platform = args.target_platform.spec();
                    async move {
                        // The stages this one needs, built: their images for FROM and
                        // COPY --from. A failed one fails this one without output.
                        let mut results = HashMap::new();
                        for dep in &plan.stages[i].deps {
                            let Some(&p) = position.get(dep) else {
                                continue;
                            };
                            let mut rx = done_rx[p].clone();
                            let outcome = match rx.wait_for(Option::is_some).await {
                                Ok(v) => (*v).expect("waited for a value"),
                                Err(_) => Err(()),
                            };
                            match outcome {
                                Ok(image) => {
                                    results.insert(*dep, image);
                                }
                                Err(()) => {
                                    let _ = done.send(Some(Err(())));
                                    return Err(None);
                                }
                            }
                        }
                        let mut run = Run_ {
                            opts,
                            context,
                            ignore,
                            scratch_dir,
                            platform,
                            busted: opts.no_cache,
                            cache_from,
                            removals,
                        };
                        let extra: &[Step] = if i == target { labels } else { &[] };
                        let out = Out(&lines);
                        let result = self
                            .build_stage(
                                &mut run, plan, global, df, i, &results, extra, first, total, &out,
                                failed,
                            )
                            .await;
                        if matches!(result, Err(Some(_))) {
                            failed.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                        let _ = done.send(Some(result.as_ref().map(|id| *id).map_err(|_| ())));
                        result
                    }
                });
        let printer = async {
            for (k, mut rx) in line_rx.into_iter().enumerate() {
                while let Some(message) = rx.recv().await {
                    let _ = out.0.send(message);
                }
                // A stage that failed or was skipped ends the output, as a sequential
                // build would have stopped there.
                if !matches!(*done_rx[k].borrow(), Some(Ok(_))) {
                    break;
                }
            }
        };
        let (outcomes, ()) = tokio::join!(futures_util::future::join_all(stages), printer);
        let mut last = None;
        for outcome in outcomes {
            match outcome {
                Ok(image) => last = image,
                // The first real failure, in file order; skipped stages carry none.
                Err(Some(e)) => return Err(e),
                Err(None) => {}
            }
        }
        let unused = plan.unused_build_args(&df, &args.values);
        let mut unused: Vec<String> = unused;
        for (k, v) in &opts.build_args {
            if v.is_none() && !unused.contains(k) {
                let declared = df.meta_args.iter().any(|a| &a.name == k)
                    || df.stages.iter().flat_map(|s| &s.steps).any(|s| {
                        matches!(&s.instruction, Instruction::Arg { args } if args.iter().any(|a| &a.name == k))
                    });
                if !declared {
                    unused.push(k.clone());
                }
            }
        }
        unused.sort();
        if !unused.is_empty() {
            out.line(format!(
                "[Warning] One or more build-args [{}] were not consumed",
                unused.join(" ")
            ));
        }
        let Some(id) = last else {
            return Err(
                DaemonError::invalid("No image was generated. Is your Dockerfile empty?").into(),
            );
        };
        out.line(format!("Successfully built {}", short(&id)));
        for t in &opts.tags {
            let reference = tag_reference(t)?;
            self.images.tag(&id.to_string(), t, "")?;
            out.line(format!(
                "Successfully tagged {}",
                reference.familiar_string()
            ));
        }
        Ok(id)
    }

    /// Builds stage `i` of `df` on the images of the stages it needs (`results`),
    /// numbering its output lines from `first` (its FROM line) of `total`. `Err(None)`:
    /// stopped before a step because another stage failed (`failed`).
    #[allow(clippy::too_many_arguments)]
    async fn build_stage(
        &self,
        run: &mut Run_<'_>,
        plan: &BuildPlan,
        global: &GlobalScope,
        df: &Dockerfile,
        i: usize,
        results: &HashMap<usize, Option<Digest>>,
        extra: &[Step],
        first: usize,
        total: usize,
        out: &Out<'_>,
        failed: &std::sync::atomic::AtomicBool,
    ) -> Result<Option<Digest>, Option<BuildFailure>> {
        let stopped = || failed.load(std::sync::atomic::Ordering::SeqCst);
        let stage = &df.stages[i];
        out.line(format!("Step {first}/{total} : {}", stage.original));
        let base = match &plan.stages[i].base {
            Source::Scratch => None,
            Source::Stage(j) => results.get(j).copied().flatten(),
            Source::Image(name) => Some(
                self.base_image(name, run.opts, out)
                    .await
                    .map_err(BuildFailure::from)?,
            ),
        };
        let mut state = StageState {
            image: base,
            config: base
                .and_then(|id| self.images.get(&id.to_string()).ok())
                .and_then(|img| img.config.config.clone())
                .unwrap_or_default(),
            meta: StageMeta::default(),
        };
        out.line(format!(
            " ---> {}",
            state.image.as_ref().map(short).unwrap_or_default()
        ));
        let base_env = state.config.env.clone().unwrap_or_default();
        let mut scope = StageScope::new(global, &base_env);
        // Triggers of the base image run first, as Docker's classic builder does.
        let triggers: Vec<String> = match state.config.extra.remove("OnBuild") {
            Some(serde_json::Value::Array(a)) => a
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if !triggers.is_empty() {
            let s = if triggers.len() == 1 { "" } else { "s" };
            out.line(format!("# Executing {} build trigger{s}", triggers.len()));
            for t in &triggers {
                let step = berth_build::parse_trigger(t)
                    .map_err(|e| BuildFailure::from(DaemonError::invalid(e.to_string())))?;
                if stopped() {
                    return Err(None);
                }
                self.step(run, plan, i, results, &mut state, &mut scope, &step, out)
                    .await?;
            }
        }
        for (n, step) in stage.steps.iter().chain(extra).enumerate() {
            if stopped() {
                return Err(None);
            }
            out.line(format!(
                "Step {}/{total} : {}",
                first + 1 + n,
                step.original
            ));
            let t0 = std::time::Instant::now();
            self.step(run, plan, i, results, &mut state, &mut scope, step, out)
                .await?;
            tracing::debug!(
                step = %step.original,
                us = t0.elapsed().as_micros() as u64,
                "build step done"
            );
            out.line(format!(
                " ---> {}",
                state.image.as_ref().map(short).unwrap_or_default()
            ));
        }
        if let Some(id) = state.image {
            let _ = out.0.send(BuildMessage::Aux(id));
        }
        Ok(state.image)
    }

    /// The image a FROM names: local unless missing or `pull` is set.
    async fn base_image(
        &self,
        name: &str,
        opts: &BuildOptions,
        out: &Out<'_>,
    ) -> Result<Digest, DaemonError> {
        if !opts.pull {
            match self.images.get(name) {
                Ok(img) => return Ok(img.record.id),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let reference = Reference::parse_normalized(name)
            .map_err(|e| DaemonError::invalid(e.to_string()))?
            .with_default_tag();
        let auth = opts
            .auth_configs
            .iter()
            .find(|(k, _)| {
                let host = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or("");
                host == reference.domain()
                    || (reference.domain() == "docker.io" && host.contains("docker.io"))
            })
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let prepared = self
            .images
            .prepare_pull(PullRequest {
                reference,
                platform: None,
                auth,
            })
            .await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ProgressMessage>();
        let forward = {
            let sender = out.0.clone();
            tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    let _ = sender.send(BuildMessage::Progress(m));
                }
            })
        };
        let images = self.images.clone();
        let rt = tokio::runtime::Handle::current();
        let id = tokio::task::spawn_blocking(move || images.finish_pull(prepared, &rt, &tx))
            .await
            .map_err(|e| DaemonError::internal(format!("pull failed: {e}")))??;
        let _ = forward.await;
        Ok(id)
    }

    /// Runs one step: substitution, cache probe, then the step itself.
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &self,
        run: &mut Run_<'_>,
        plan: &BuildPlan,
        stage: usize,
        results: &HashMap<usize, Option<Digest>>,
        state: &mut StageState,
        scope: &mut StageScope,
        step: &Step,
        out: &Out<'_>,
    ) -> Result<(), BuildFailure> {
        // An ARG's own image does not depend on the value it brings in (ARGs are not
        // in the config): as in Docker, it is keyed by what was in effect before it.
        let env_before = scope.cache_env();
        // Synthetic steps (`--label`) are literal: Docker does not expand them.
        let instruction = if step.line == 0 {
            step.instruction.clone()
        } else {
            scope
                .apply(step)
                .map_err(|e| DaemonError::invalid(e.to_string()))?
        };
        // What COPY/ADD take, resolved before the probe: their checksum is part of
        // the key, and a missing source fails the step either way.
        let mut copy_from: Option<Digest> = None;
        let mut downloads: Vec<fetch::Download> = Vec::new();
        let mut checksum = None;
        let mut sources = None;
        if let Instruction::Copy(c) | Instruction::Add(c) = &instruction {
            if let Some(from) = &c.from {
                let id = match plan.source_of(stage, from) {
                    Source::Stage(j) => results.get(&j).copied().flatten().ok_or_else(|| {
                        DaemonError::invalid(format!("stage {from} produced no image"))
                    })?,
                    Source::Scratch => {
                        return Err(DaemonError::invalid("cannot copy from scratch").into());
                    }
                    Source::Image(name) => self.base_image(&name, run.opts, out).await?,
                };
                copy_from = Some(id);
                sources = Some(format!("from {id} {}", c.sources.join("\u{0}")));
            } else {
                let local: Vec<String> = c.sources.iter().filter(|s| !is_url(s)).cloned().collect();
                let is_add = matches!(instruction, Instruction::Add(_));
                for url in c.sources.iter().filter(|s| is_url(s)) {
                    if !is_add {
                        return Err(DaemonError::invalid("source can't be a URL for COPY").into());
                    }
                    let path = run.scratch_dir.join(format!("url-{}", random_hex(6)));
                    let got = fetch::download(url, &path).await?;
                    downloads.push(got);
                }
                let root = run.context.to_path_buf();
                let ignore = run.ignore.clone();
                let sum = tokio::task::spawn_blocking(move || {
                    berth_build::context::checksum_sources(&root, &local, &ignore)
                })
                .await
                .map_err(|e| DaemonError::internal(format!("checksum task failed: {e}")))?
                .map_err(|e| context_error(&e))?;
                let mut digest = sum.digest.clone();
                for d in &downloads {
                    digest.push_str(&format!(" url:{}:{}", d.name, d.sha256));
                }
                if !c.inline.is_empty() {
                    digest.push_str(&serde_json::to_string(&c.inline).unwrap_or_default());
                }
                sources = Some(digest);
                checksum = Some(sum);
            }
        }
        if let Instruction::Env { .. } = &instruction {
            state.config.env = Some(scope.env());
        }
        let key = CacheKeyMaterial {
            parent: state
                .image
                .map(|d| d.to_string())
                .unwrap_or_else(|| "scratch".into()),
            instruction: instruction.clone(),
            env: if matches!(instruction, Instruction::Arg { .. }) {
                env_before
            } else {
                scope.cache_env()
            },
            platform: run.platform.clone(),
            sources,
        }
        .key();
        if !run.busted {
            if let Some(hit) = self.probe(&key, run.cache_from.as_deref()) {
                out.line(" ---> Using cache");
                self.adopt(state, hit)?;
                if let Instruction::Maintainer { maintainer } = &instruction {
                    state.meta.maintainer = maintainer.clone();
                }
                if let Instruction::Cmd { .. } = &instruction {
                    state.meta.cmd_set = true;
                }
                return Ok(());
            }
            run.busted = true;
        }
        let shell = config::shell_of(&state.config).join(" ");
        let comment = |text: String| format!("{shell} {text}");
        let id = match &instruction {
            Instruction::Run(r) => self.run_step(run, state, scope, r, out).await?,
            Instruction::Copy(c) | Instruction::Add(c) => {
                let add = matches!(instruction, Instruction::Add(_));
                let word = if add { "ADD" } else { "COPY" };
                let created_by = comment(format!(
                    "#(nop) {word} {}{} in {} ",
                    c.chown
                        .as_ref()
                        .map(|o| format!("--chown={o} "))
                        .unwrap_or_default(),
                    checksum
                        .as_ref()
                        .map(|s| s.digest.clone())
                        .unwrap_or_else(|| c.sources.join(" ")),
                    c.dest
                ));
                let result = self
                    .copy_step(
                        run, state, c, add, copy_from, checksum, &downloads, created_by,
                    )
                    .await;
                for d in &downloads {
                    let _ = std::fs::remove_file(&d.path);
                }
                result?
            }
            Instruction::Workdir { path } => {
                let dir = copy::absolute(&if path.starts_with('/') {
                    path.clone()
                } else {
                    format!(
                        "{}/{path}",
                        state.config.working_dir.as_deref().unwrap_or("/")
                    )
                });
                state.config.working_dir = Some(dir.clone());
                let created_by = comment(format!("#(nop) WORKDIR {dir}"));
                self.workdir_step(run, state, &dir, created_by, out).await?
            }
            other => {
                config::apply(&mut state.config, &mut state.meta, other)?;
                let text = step_text(step);
                let created_by = comment(format!("#(nop)  {text}"));
                // Docker v28 runs a container for these too; its lines are kept so the
                // output matches, though nothing runs here (see the module docs).
                let fake = random_hex(32);
                out.line(format!(" ---> Running in {}", &fake[..12]));
                let id = self.commit_config(state, created_by).await?;
                if run.opts.remove || run.opts.force_remove {
                    out.line(format!(
                        " ---> Removed intermediate container {}",
                        &fake[..12]
                    ));
                }
                id
            }
        };
        state.image = Some(id);
        self.cache.insert(key, id)?;
        Ok(())
    }

    /// A cached image for `key` that still exists (and, with `cachefrom`, is in one
    /// of those images' chains).
    fn probe(
        &self,
        key: &berth_build::cache::CacheKey,
        cache_from: Option<&[Digest]>,
    ) -> Option<Digest> {
        let id = self.cache.get(key)?;
        self.images.get(&id.to_string()).ok()?;
        let Some(cache_from) = cache_from else {
            return Some(id);
        };
        for top in cache_from {
            let mut cur = Some(*top);
            while let Some(c) = cur {
                if c == id {
                    return Some(id);
                }
                cur = self
                    .images
                    .get(&c.to_string())
                    .ok()
                    .and_then(|i| i.record.parent);
            }
        }
        None
    }

    /// Continues from a cached image: its config is the truth.
    fn adopt(&self, state: &mut StageState, id: Digest) -> Result<(), DaemonError> {
        let img = self.images.get(&id.to_string())?;
        state.config = img.config.config.clone().unwrap_or_default();
        state.image = Some(id);
        Ok(())
    }

    async fn commit_config(
        &self,
        state: &StageState,
        created_by: String,
    ) -> Result<Digest, DaemonError> {
        let req = LayerCommit {
            parent: state.image,
            config: state.config.clone(),
            created_by,
            author: state.meta.maintainer.clone(),
            ..Default::default()
        };
        let images = self.images.clone();
        tokio::task::spawn_blocking(move || images.commit_config(&req))
            .await
            .map_err(|e| DaemonError::internal(format!("commit task failed: {e}")))?
    }

    async fn commit_upper(
        &self,
        state: &StageState,
        upper: PathBuf,
        created_by: String,
        container: Option<String>,
    ) -> Result<Digest, DaemonError> {
        let req = LayerCommit {
            parent: state.image,
            config: state.config.clone(),
            created_by,
            author: state.meta.maintainer.clone(),
            container,
            ..Default::default()
        };
        let images = self.images.clone();
        tokio::task::spawn_blocking(move || images.commit_layer(&upper, &req))
            .await
            .map_err(|e| DaemonError::internal(format!("commit task failed: {e}")))?
    }

    /// Creates a container of the current image that runs `cmd` (never started for
    /// COPY/WORKDIR, which only use its root).
    async fn create(
        &self,
        run: &Run_<'_>,
        state: &StageState,
        cmd: Vec<String>,
        env: Vec<String>,
        network: &str,
    ) -> Result<String, DaemonError> {
        let image = state.image.ok_or_else(|| {
            DaemonError::invalid("Please provide a source image with `from` prior to run")
        })?;
        let config = Config {
            image: image.to_string(),
            cmd: Some(cmd),
            entrypoint: Some(Vec::new()),
            env: Some(env),
            working_dir: state.config.working_dir.clone().unwrap_or_default(),
            user: state.config.user.clone().unwrap_or_default(),
            attach_stdout: true,
            attach_stderr: true,
            healthcheck: Some(serde_json::json!({"Test": ["NONE"]})),
            ..Default::default()
        };
        let host_config = HostConfig {
            network_mode: network.to_string(),
            extra_hosts: (!run.opts.extra_hosts.is_empty()).then(|| run.opts.extra_hosts.clone()),
            memory: run.opts.memory,
            cpu_period: run.opts.cpu_period,
            cpu_quota: run.opts.cpu_quota,
            cpu_shares: run.opts.cpu_shares,
            ..Default::default()
        };
        let (id, _) = self
            .containers
            .create(CreateRequest {
                name: None,
                config,
                host_config,
                networking_config: None,
            })
            .await?;
        Ok(id)
    }

    async fn run_step(
        &self,
        run: &Run_<'_>,
        state: &StageState,
        scope: &StageScope,
        r: &Run,
        out: &Out<'_>,
    ) -> Result<Digest, BuildFailure> {
        if let Some(flag) = r
            .network
            .as_ref()
            .map(|_| "network")
            .or_else(|| (!r.mounts.is_empty()).then_some("mount"))
            .or_else(|| (!r.devices.is_empty()).then_some("device"))
        {
            return Err(DaemonError::invalid(format!(
                "the --{flag} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled"
            ))
            .into());
        }
        let cmd = run_command(&state.config, r);
        let network = match run.opts.network_mode.as_str() {
            "" | "default" => "bridge",
            other => other,
        };
        let env = scope.run_env();
        let t0 = std::time::Instant::now();
        let id = self.create(run, state, cmd.clone(), env, network).await?;
        let t_create = t0.elapsed();
        out.line(format!(" ---> Running in {}", &id[..12]));
        let result = self.run_container(&id, out).await;
        let t_run = t0.elapsed();
        let code = match result {
            Ok(code) => code,
            Err(e) => {
                let _ = self.containers.remove(&id, true, true).await;
                return Err(e.into());
            }
        };
        if code != 0 {
            // A failed step's container is removed unless the client asked to keep
            // containers (`rm=0` without `forcerm`).
            if run.opts.remove || run.opts.force_remove {
                let _ = self.containers.remove(&id, true, true).await;
            }
            return Err(BuildFailure {
                error: DaemonError::invalid(format!(
                    "The command '{}' returned a non-zero code: {code}",
                    cmd.join(" ")
                )),
                code: Some(code),
            });
        }
        let entry = self.containers.get(&id)?;
        let upper = self.containers.upper_dir(&entry);
        let committed = self
            .commit_upper(state, upper, scope.run_history(&cmd), Some(id.clone()))
            .await;
        let t_commit = t0.elapsed();
        if run.opts.remove || run.opts.force_remove || committed.is_err() {
            run.removals.spawn(self.containers.clone(), id.clone());
            out.line(format!(
                " ---> Removed intermediate container {}",
                &id[..12]
            ));
        }
        tracing::debug!(
            create_us = t_create.as_micros() as u64,
            run_us = (t_run - t_create).as_micros() as u64,
            commit_us = (t_commit - t_run).as_micros() as u64,
            remove_us = (t0.elapsed() - t_commit).as_micros() as u64,
            "build RUN step timings"
        );
        Ok(committed?)
    }

    /// Starts container `id` with its output streamed to the client; its exit code.
    async fn run_container(&self, id: &str, out: &Out<'_>) -> Result<i32, DaemonError> {
        let entry = self.containers.get(id)?;
        let waiter = self.containers.wait_for_start(&entry);
        let containers = self.containers.clone();
        let sender = out.0.clone();
        let reader = tokio::spawn(async move {
            let Ok(ack) = waiter.await else { return };
            let stream = containers.attach_stream(&entry, false, true, true).await;
            let _ = ack.send(());
            let Ok(mut stream) = stream else { return };
            let mut header = [0u8; 8];
            loop {
                if stream.read_exact(&mut header).await.is_err() {
                    return;
                }
                let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
                let mut data = vec![0u8; len];
                if stream.read_exact(&mut data).await.is_err() {
                    return;
                }
                let text = String::from_utf8_lossy(&data);
                // The classic builder shows a step's stderr in red, as Docker's does
                // (clients such as docker-py look for these escapes).
                let text = if header[0] == 2 {
                    format!("\x1b[91m{text}\x1b[0m")
                } else {
                    text.into_owned()
                };
                let _ = sender.send(BuildMessage::Stream(text));
            }
        });
        if let Err(e) = self.containers.start(id).await {
            reader.abort();
            return Err(e);
        }
        let code = self.containers.wait(id, WaitCondition::NotRunning).await?;
        // The shim closes attach streams once the output is drained.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), reader).await;
        Ok(code)
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_step(
        &self,
        run: &Run_<'_>,
        state: &StageState,
        c: &CopyArgs,
        add: bool,
        from: Option<Digest>,
        checksum: Option<berth_build::context::FileSetChecksum>,
        downloads: &[fetch::Download],
        created_by: String,
    ) -> Result<Digest, BuildFailure> {
        let workdir = state.config.working_dir.clone().unwrap_or_default();
        let mut dest = Dest::new(&c.dest, &workdir);
        let many = c.sources.len() + c.inline.len() > 1
            || checksum
                .as_ref()
                .is_some_and(|s| s.sources.iter().map(|(_, m)| m.len()).sum::<usize>() > 1)
            || c.sources.iter().any(|s| s.contains(['*', '?', '[']));
        if many && !dest.is_dir {
            let word = if add { "ADD" } else { "COPY" };
            return Err(DaemonError::invalid(format!(
                "When using {word} with more than one source file, the destination must be a directory and end with a /"
            ))
            .into());
        }
        let root = WorkRoot::new(self, run, state).await?;
        let result = async {
            if !dest.is_dir && root.is_dir(&dest.path) {
                dest.is_dir = true;
            }
            let chmod = c.chmod.as_deref().map(copy::parse_chmod).transpose()?;
            let owner = match &c.chown {
                Some(spec) => Some(root.chown(spec)?),
                None if from.is_some() => None,
                None => Some((0, 0)),
            };
            let attrs = Attrs { owner, chmod };
            let tar_path = run.scratch_dir.join(format!("copy-{}.tar", random_hex(6)));
            let file =
                std::fs::File::create(&tar_path).map_err(io_internal("cannot stage copy"))?;
            let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
            builder.mode(tar::HeaderMode::Complete);
            match from {
                None => {
                    let ctx = run.context.to_path_buf();
                    let sources = checksum.map(|s| s.sources).unwrap_or_default();
                    let d = dest.clone();
                    let inline = c.inline.clone();
                    let fetched = downloads.to_vec();
                    builder = tokio::task::spawn_blocking(move || {
                        copy::write_context_sources(&mut builder, &ctx, &sources, &d, attrs, add)?;
                        for f in &fetched {
                            let target = if d.is_dir {
                                format!("{}/{}", d.path, f.name)
                            } else {
                                d.path.clone()
                            };
                            let file = std::fs::File::open(&f.path)
                                .map_err(io_internal("cannot stage copy"))?;
                            let mut h = tar::Header::new_gnu();
                            h.set_size(f.size);
                            // Docker gives downloads 0600 and the Last-Modified time.
                            h.set_mode(attrs.chmod.unwrap_or(0o600));
                            h.set_mtime(f.mtime);
                            let (u, g) = attrs.owner.unwrap_or((0, 0));
                            h.set_uid(u.into());
                            h.set_gid(g.into());
                            builder
                                .append_data(
                                    &mut h,
                                    copy::absolute(&target).trim_start_matches('/'),
                                    file,
                                )
                                .map_err(io_internal("cannot stage copy"))?;
                        }
                        for f in &inline {
                            let mut h = tar::Header::new_gnu();
                            h.set_size(f.data.len() as u64);
                            h.set_mode(attrs.chmod.unwrap_or(0o644));
                            let (u, g) = attrs.owner.unwrap_or((0, 0));
                            h.set_uid(u.into());
                            h.set_gid(g.into());
                            let target = if d.is_dir {
                                format!("{}/{}", d.path, f.name)
                            } else {
                                d.path.clone()
                            };
                            builder
                                .append_data(
                                    &mut h,
                                    copy::absolute(&target).trim_start_matches('/'),
                                    f.data.as_bytes(),
                                )
                                .map_err(io_internal("cannot stage copy"))?;
                        }
                        Ok::<_, DaemonError>(builder)
                    })
                    .await
                    .map_err(|e| DaemonError::internal(format!("copy task failed: {e}")))??;
                }
                Some(image) => {
                    // The source image is read through an overlay of its layers of
                    // our own (nothing is written to it): no container is made.
                    let src = WorkRoot::new(
                        self,
                        run,
                        &StageState {
                            image: Some(image),
                            config: ContainerConfig::default(),
                            meta: StageMeta::default(),
                        },
                    )
                    .await?;
                    let r = match &src {
                        WorkRoot::Overlay { root, .. } => {
                            self.copy_from_root(root.clone(), c, &dest, attrs, builder)
                                .await
                        }
                        WorkRoot::Dir(_) => Err(DaemonError::invalid("cannot copy from scratch")),
                    };
                    src.remove();
                    builder = r?;
                }
            }
            builder
                .into_inner()
                .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
                .map_err(io_internal("cannot stage copy"))?;
            let file = std::fs::File::open(&tar_path).map_err(io_internal("cannot stage copy"))?;
            let _ = std::fs::remove_file(&tar_path);
            root.extract(file).await?;
            self.commit_upper(state, root.upper(), created_by, None)
                .await
        }
        .await;
        root.remove();
        Ok(result?)
    }

    async fn copy_from_root<W: std::io::Write + Send + 'static>(
        &self,
        root: Arc<ContainerRoot>,
        c: &CopyArgs,
        dest: &Dest,
        attrs: Attrs,
        mut builder: tar::Builder<W>,
    ) -> Result<tar::Builder<W>, DaemonError> {
        let requested = c.sources.clone();
        let dest = dest.clone();
        tokio::task::spawn_blocking(move || {
            let mut sources = Vec::new();
            for s in &requested {
                if s.contains(['*', '?', '[']) {
                    sources.extend(expand_wildcard(&root, s)?);
                } else {
                    sources.push(s.clone());
                }
            }
            let many = sources.len() > 1 || requested.iter().any(|s| s.contains(['*', '?', '[']));
            for s in &sources {
                let path = copy::absolute(s);
                let stat = root.stat(&path).map_err(|e| {
                    if e.kind() == ErrorKind::NotFound {
                        DaemonError::invalid(format!(
                            "failed to compute cache key: \"{path}\": not found"
                        ))
                    } else {
                        e
                    }
                })?;
                let is_dir = stat.mode & (1 << 31) != 0;
                let mut buf = Vec::new();
                root.write_archive(&path, &mut buf)?;
                let base = path.rsplit('/').next().unwrap_or("").to_string();
                let (target, strip_top) = if is_dir {
                    (
                        Dest {
                            path: dest.path.clone(),
                            is_dir: true,
                        },
                        true,
                    )
                } else if dest.is_dir || many {
                    (
                        Dest {
                            path: dest.path.clone(),
                            is_dir: true,
                        },
                        false,
                    )
                } else {
                    // A file copied to a file name: the entry is renamed to it.
                    let parent = match dest.path.rsplit_once('/') {
                        Some(("", _)) | None => "/".to_string(),
                        Some((p, _)) => p.to_string(),
                    };
                    let name = dest.path.rsplit('/').next().unwrap_or("").to_string();
                    let t = Dest {
                        path: parent,
                        is_dir: true,
                    };
                    copy::rewrite_entries(&mut builder, &buf[..], &t, attrs, |n| {
                        (n == base || base.is_empty()).then(|| name.clone())
                    })?;
                    continue;
                };
                copy::rewrite_entries(&mut builder, &buf[..], &target, attrs, |n| {
                    if strip_top {
                        // `dir/x` → `x`; the directory itself is the destination.
                        let rest = if base.is_empty() {
                            Some(n)
                        } else {
                            n.strip_prefix(&base).map(|r| r.trim_start_matches('/'))
                        };
                        rest.filter(|r| !r.is_empty()).map(str::to_string)
                    } else {
                        Some(n.to_string())
                    }
                })?;
            }
            Ok(builder)
        })
        .await
        .map_err(|e| DaemonError::internal(format!("copy task failed: {e}")))?
    }

    async fn workdir_step(
        &self,
        run: &Run_<'_>,
        state: &StageState,
        dir: &str,
        created_by: String,
        out: &Out<'_>,
    ) -> Result<Digest, BuildFailure> {
        // Docker v28 runs a container for WORKDIR and prints its lines; they are kept
        // so the output compares line for line, though no container is made here.
        let fake = random_hex(32);
        if state.image.is_some() {
            out.line(format!(" ---> Running in {}", &fake[..12]));
        }
        let root = WorkRoot::new(self, run, state).await?;
        let result = async {
            if dir == "/" || root.is_dir(dir) {
                return self.commit_config(state, created_by).await;
            }
            let mut builder = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
            h.set_size(0);
            builder
                .append_data(
                    &mut h,
                    format!("{}/", dir.trim_start_matches('/')),
                    std::io::empty(),
                )
                .map_err(io_internal("cannot create working directory"))?;
            let data = builder
                .into_inner()
                .map_err(io_internal("cannot create working directory"))?;
            root.extract(std::io::Cursor::new(data)).await?;
            self.commit_upper(state, root.upper(), created_by, None)
                .await
        }
        .await;
        root.remove();
        if state.image.is_some() && (run.opts.remove || run.opts.force_remove) {
            out.line(format!(
                " ---> Removed intermediate container {}",
                &fake[..12]
            ));
        }
        Ok(result?)
    }
}

/// Completes a tarball that ends without its last entry's padding and the
/// end-of-archive blocks. The docker CLI sends such a context when `-f` names a
/// Dockerfile outside it (its tar wrapper closes the pipe before the tar writer);
/// Go's reader, so dockerd, accepts that, the `tar` crate does not. A complete
/// tarball is never read up to its end, so the zeros added here are never seen.
struct TarTail<R> {
    inner: R,
    pos: u64,
    tail: Option<u64>,
}

impl<R: Read> Read for TarTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(left) = &mut self.tail {
            let n = (*left).min(buf.len() as u64) as usize;
            buf[..n].fill(0);
            *left -= n as u64;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.tail = Some((512 - self.pos % 512) % 512 + 1024);
            return self.read(buf);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Where a COPY/ADD/WORKDIR writes: a fresh upper directory, seen through a detached
/// overlay over the current image's layers (so paths resolve as they would in a
/// container, symlinks and all), or for `FROM scratch` a plain directory that becomes
/// the first layer. No container record, init layer, shim or mount point: the upper
/// directory is committed as the step's layer and the whole directory removed.
enum WorkRoot {
    Overlay {
        dir: PathBuf,
        root: Arc<ContainerRoot>,
    },
    Dir(PathBuf),
}

impl WorkRoot {
    async fn new(
        svc: &BuildService,
        run: &Run_<'_>,
        state: &StageState,
    ) -> Result<WorkRoot, DaemonError> {
        let dir = run.scratch_dir.join(format!("root-{}", random_hex(6)));
        let Some(image) = state.image else {
            std::fs::create_dir_all(&dir).map_err(io_internal("cannot create layer dir"))?;
            return Ok(WorkRoot::Dir(dir));
        };
        let mut lowers = svc.images.layer_dirs(&image)?;
        let made = (|| {
            for d in ["upper", "work"] {
                std::fs::create_dir_all(dir.join(d))?;
            }
            if lowers.is_empty() {
                // overlayfs needs one lower dir: an image without layers has none.
                std::fs::create_dir_all(dir.join("empty"))?;
                lowers.push(dir.join("empty"));
            }
            Ok(())
        })();
        let opened = made
            .map_err(io_internal("cannot create layer dir"))
            .and_then(|()| {
                ContainerRoot::scratch(
                    &dir.join("upper"),
                    &dir.join("work"),
                    &lowers,
                    &short(&image),
                )
            });
        match opened {
            Ok(root) => Ok(WorkRoot::Overlay {
                dir,
                root: Arc::new(root),
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn is_dir(&self, path: &str) -> bool {
        match self {
            WorkRoot::Overlay { root, .. } => {
                root.stat(path).is_ok_and(|s| s.mode & (1 << 31) != 0)
            }
            WorkRoot::Dir(d) => {
                let rel = clean_path(path.trim_start_matches('/'));
                rel == "." || std::fs::symlink_metadata(d.join(rel)).is_ok_and(|m| m.is_dir())
            }
        }
    }

    /// `user[:group]` to ids through the root's `/etc/passwd` and `/etc/group`.
    fn chown(&self, spec: &str) -> Result<(u32, u32), DaemonError> {
        let read = |path: &str| -> String {
            let WorkRoot::Overlay { root, .. } = self else {
                return String::new();
            };
            let mut buf = Vec::new();
            if root.write_archive(path, &mut buf).is_err() {
                return String::new();
            }
            let mut archive = tar::Archive::new(&buf[..]);
            let mut text = String::new();
            if let Ok(mut entries) = archive.entries()
                && let Some(Ok(mut e)) = entries.next()
            {
                let _ = e.read_to_string(&mut text);
            }
            text
        };
        copy::resolve_chown(spec, &read("/etc/passwd"), &read("/etc/group"))
    }

    async fn extract(&self, tar: impl Read + Send + 'static) -> Result<(), DaemonError> {
        match self {
            WorkRoot::Overlay { root, .. } => {
                let root = root.clone();
                tokio::task::spawn_blocking(move || root.extract_tar("/", tar))
                    .await
                    .map_err(|e| DaemonError::internal(format!("copy task failed: {e}")))?
            }
            WorkRoot::Dir(d) => {
                let d = d.clone();
                tokio::task::spawn_blocking(move || {
                    let opts = ApplyOptions {
                        whiteouts: false,
                        ..ApplyOptions::default()
                    };
                    layer::apply_layer(&d, tar, &opts)
                        .map(|_| ())
                        .map_err(|e| DaemonError::internal(format!("failed to copy files: {e}")))
                })
                .await
                .map_err(|e| DaemonError::internal(format!("copy task failed: {e}")))?
            }
        }
    }

    /// The directory committed as the step's layer.
    fn upper(&self) -> PathBuf {
        match self {
            WorkRoot::Overlay { dir, .. } => dir.join("upper"),
            WorkRoot::Dir(d) => d.clone(),
        }
    }

    /// Removes the directory (the overlay goes when its last fd is closed).
    fn remove(self) {
        let dir = match self {
            WorkRoot::Overlay { dir, root } => {
                drop(root);
                dir
            }
            WorkRoot::Dir(d) => d,
        };
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove build layer dir");
        }
    }
}

/// The paths in `root` that a `COPY --from` wildcard source matches, sorted: each
/// component is matched with Go's `filepath.Match` against the names of the
/// directory the components before it lead to, as Docker matches source paths.
///
/// # Errors
/// `InvalidArgument` for a bad pattern or when nothing matches (Docker's words).
fn expand_wildcard(root: &ContainerRoot, pattern: &str) -> Result<Vec<String>, DaemonError> {
    let mut found = vec![String::new()];
    for part in copy::absolute(pattern).split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for dir in &found {
            if !part.contains(['*', '?', '[', '\\']) {
                next.push(format!("{dir}/{part}"));
                continue;
            }
            let listed = match root.read_dir(if dir.is_empty() { "/" } else { dir }) {
                Ok(names) => names,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for name in listed {
                let hit = berth_build::ignore::path_match(part, &name)
                    .map_err(|e| DaemonError::invalid(format!("{pattern}: {e}")))?;
                if hit {
                    next.push(format!("{dir}/{name}"));
                }
            }
        }
        found = next;
    }
    found.retain(|p| root.stat(p).is_ok());
    found.sort();
    if found.is_empty() {
        return Err(DaemonError::invalid(
            "COPY failed: no source files were specified",
        ));
    }
    Ok(found)
}

/// The command a RUN executes: exec form as is; shell form through the stage's
/// shell, with heredocs as the script (a lone `<<EOF` runs the body itself).
fn run_command(config: &ContainerConfig, r: &Run) -> Vec<String> {
    match &r.command {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let script = if r.heredocs.is_empty() {
                s.clone()
            } else {
                let only_marker = r.heredocs.len() == 1 && {
                    let t = s.trim();
                    let t = t.strip_prefix("<<").unwrap_or(t);
                    let t = t.strip_prefix('-').unwrap_or(t);
                    t.trim_matches(['"', '\'']) == r.heredocs[0].name
                };
                if only_marker {
                    r.heredocs[0].content.clone()
                } else {
                    let mut text = s.clone();
                    text.push('\n');
                    for h in &r.heredocs {
                        text.push_str(&h.content);
                        text.push_str(&h.name);
                        text.push('\n');
                    }
                    text
                }
            };
            let mut v = config::shell_of(config);
            v.push(script);
            v
        }
    }
}

/// The instruction as Docker's history comment shows it: keyword and arguments.
fn step_text(step: &Step) -> String {
    let t = step.original.trim();
    match t.split_once(char::is_whitespace) {
        Some((k, rest)) => format!("{} {}", k.to_ascii_uppercase(), rest.trim()),
        None => t.to_ascii_uppercase(),
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn context_error(e: &berth_build::context::ContextError) -> DaemonError {
    use berth_build::context::ContextError as E;
    match e {
        E::NotFound(p) => DaemonError::invalid(format!(
            "COPY failed: file not found in build context or excluded by .dockerignore: stat {}: file does not exist",
            p.trim_start_matches('/')
        )),
        E::OutsideContext(p) => DaemonError::invalid(format!(
            "COPY failed: forbidden path outside the build context: {p} ()"
        )),
        other => DaemonError::invalid(other.to_string()),
    }
}

/// A `t=` value as the reference it tags.
fn tag_reference(t: &str) -> Result<Reference, DaemonError> {
    let r = Reference::parse_normalized(t)
        .map_err(|e| DaemonError::invalid(format!("invalid reference format: {e}")))?;
    if r.digest().is_some() {
        return Err(DaemonError::invalid(format!(
            "invalid reference format: {t}: refusing to create a tag with a digest reference"
        )));
    }
    Ok(r.with_default_tag())
}

/// Reads the Dockerfile and `.dockerignore` of the context. Docker falls back to
/// `dockerfile` when the default `Dockerfile` is missing.
fn read_dockerfile(context: &Path, name: &str) -> Result<(Dockerfile, IgnoreMatcher), DaemonError> {
    let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(text) => IgnoreMatcher::from_dockerignore(&text)
            .map_err(|e| DaemonError::invalid(format!("failed to parse .dockerignore: {e}")))?,
        Err(_) => IgnoreMatcher::new::<&str>(&[]).expect("no patterns"),
    };
    let requested = if name.is_empty() { "Dockerfile" } else { name };
    let rel = clean_path(requested.trim_start_matches('/'));
    let not_found =
        || DaemonError::invalid(format!("Cannot locate specified Dockerfile: {requested}"));
    if rel == ".." || rel.starts_with("../") {
        return Err(not_found());
    }
    let mut candidates = vec![rel.clone()];
    if name.is_empty() {
        candidates.push("dockerfile".into());
    }
    for c in candidates {
        let path = context.join(&c);
        // Resolved inside the context: a symlinked Dockerfile must not lead out.
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !md.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io_internal("cannot read the Dockerfile"))?;
        let df =
            Dockerfile::parse_bytes(&bytes).map_err(|e| DaemonError::invalid(e.to_string()))?;
        return Ok((df, ignore));
    }
    Err(not_found())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_build::parser::Heredoc;

    #[test]
    fn a_tarball_without_its_end_blocks_is_completed() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "f", &b"abc"[..]).unwrap();
        let full = b.into_inner().unwrap();
        // Header and data, no padding, no end-of-archive blocks.
        let cut = &full[..512 + 3];
        let mut out = Vec::new();
        TarTail {
            inner: cut,
            pos: 0,
            tail: None,
        }
        .read_to_end(&mut out)
        .unwrap();
        assert_eq!(out.len(), 512 * 4);
        let mut a = tar::Archive::new(&out[..]);
        let names: Vec<_> = a.entries().unwrap().map(|e| e.unwrap().size()).collect();
        assert_eq!(names, [3]);
    }

    #[test]
    fn a_lone_heredoc_marker_runs_the_body_as_the_script() {
        let r = Run {
            command: CommandLine::Shell("<<EOF".into()),
            heredocs: vec![Heredoc {
                name: "EOF".into(),
                fd: 0,
                expand: true,
                chomp: false,
                content: "echo a\necho b\n".into(),
            }],
            mounts: Vec::new(),
            network: None,
            devices: Vec::new(),
        };
        let cmd = run_command(&ContainerConfig::default(), &r);
        assert_eq!(cmd, ["/bin/sh", "-c", "echo a\necho b\n"]);
        let r = Run {
            command: CommandLine::Shell("cat <<EOF > /f".into()),
            ..r
        };
        assert_eq!(
            run_command(&ContainerConfig::default(), &r)[2],
            "cat <<EOF > /f\necho a\necho b\nEOF\n"
        );
    }

    #[test]
    fn a_missing_dockerfile_is_named_as_docker_names_it() {
        let d = tempfile::tempdir().unwrap();
        let e = read_dockerfile(d.path(), "").unwrap_err();
        assert_eq!(
            e.message(),
            "Cannot locate specified Dockerfile: Dockerfile"
        );
        std::fs::write(d.path().join("dockerfile"), "FROM scratch\n").unwrap();
        assert!(read_dockerfile(d.path(), "").is_ok());
        assert!(read_dockerfile(d.path(), "../x").is_err());
    }
}
