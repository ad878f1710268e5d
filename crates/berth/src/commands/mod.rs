//! The commands, grouped by the object they manage (`image`, `system`,
//! `inspect`); containers, networks and volumes get their own modules.
//!
//! Every command is an async function taking the shared [`Ctx`] and its
//! parsed `Args`; it talks to the daemon only through [`Client`], prints
//! with [`Ctx::print`], and returns `anyhow` errors that `main` prints the
//! way docker does (a [`StatusError`] chooses its own exit code).

pub(crate) mod compose;
pub(crate) mod container;
pub(crate) mod disk;
pub(crate) mod events;
pub(crate) mod image;
pub(crate) mod inspect;
pub(crate) mod network;
pub(crate) mod port;
pub(crate) mod pull_progress;
pub(crate) mod registry;
pub(crate) mod system;
pub(crate) mod volume;

use std::collections::BTreeMap;
use std::io::Write;

use crate::cli::{self, Cli, Command, StatusError, Usage};
use crate::client::{Client, ClientError};

/// What every command gets: the daemon client and the invocation.
pub(crate) struct Ctx {
    pub(crate) client: Client,
    /// The command path and use line, for argument-count errors.
    pub(crate) usage: Usage,
    /// `-D`: print extra detail.
    pub(crate) debug: bool,
    /// The context name shown by `version`/`info` (docker's "default").
    pub(crate) context: String,
}

impl Ctx {
    /// Writes `text` to stdout as is.
    ///
    /// # Errors
    /// Write failures (a closed pipe ends the program quietly in `main`).
    pub(crate) fn print(&self, text: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }
}

/// Runs the parsed command line.
///
/// # Errors
/// Whatever the command reports.
pub(crate) async fn run(cli: Cli, ctx: Ctx) -> anyhow::Result<()> {
    let Some(command) = cli.command else {
        let tree = cli::command_tree();
        ctx.print(&cli::render_help(&[], &tree))?;
        return Ok(());
    };
    match command {
        Command::Compose(g) => compose::run_group(&ctx, g).await,
        Command::Commit(a) => container::changes::commit(&ctx, a).await,
        Command::Container(g) => container::run_group(&ctx, g).await,
        Command::Cp(a) => container::cp::run(&ctx, a).await,
        Command::Diff(a) => container::changes::diff(&ctx, a).await,
        Command::Export(a) => container::changes::export(&ctx, a).await,
        Command::Attach(a) => container::exec::attach_container(&ctx, a).await,
        Command::Create(a) => container::run::create(&ctx, a).await,
        Command::Exec(a) => container::exec::exec(&ctx, a).await,
        Command::History(a) => image::history::run(&ctx, a).await,
        Command::Image(g) => image::run_group(&ctx, g).await,
        Command::Build(a) => image::build::run(&ctx, a).await,
        Command::Images(a) => image::list::run(&ctx, a, true).await,
        Command::Import(a) => image::transfer::import(&ctx, a).await,
        Command::Info(a) => system::info(&ctx, a).await,
        Command::Inspect(a) => inspect::run(&ctx, a).await,
        Command::Kill(a) => container::lifecycle::kill(&ctx, a).await,
        Command::Load(a) => image::transfer::load(&ctx, a).await,
        Command::Login(a) => registry::login(&ctx, a).await,
        Command::Logout(a) => registry::logout(&ctx, a).await,
        Command::Logs(a) => container::logs::run(&ctx, a).await,
        Command::Events(a) => events::run(&ctx, a).await,
        Command::Pull(a) => registry::pull(&ctx, a).await,
        Command::Push(a) => registry::push(&ctx, a).await,
        Command::Network(g) => network::run_group(&ctx, g).await,
        Command::Port(a) => port::run(&ctx, a).await,
        Command::Ps(a) => container::list::run(&ctx, a).await,
        Command::Pause(a) => container::resources::pause(&ctx, a, false).await,
        Command::Unpause(a) => container::resources::pause(&ctx, a, true).await,
        Command::Top(a) => container::resources::top(&ctx, a).await,
        Command::Stats(a) => container::resources::stats(&ctx, a).await,
        Command::Update(a) => container::resources::update(&ctx, a).await,
        Command::Rename(a) => container::lifecycle::rename(&ctx, a).await,
        Command::Restart(a) => container::lifecycle::stop(&ctx, a, true).await,
        Command::Rm(a) => container::lifecycle::remove(&ctx, a).await,
        Command::Rmi(a) => image::remove::rmi(&ctx, a).await,
        Command::Run(a) => container::run::run(&ctx, a).await,
        Command::Save(a) => image::transfer::save(&ctx, a).await,
        Command::Start(a) => container::lifecycle::start(&ctx, a).await,
        Command::Stop(a) => container::lifecycle::stop(&ctx, a, false).await,
        Command::System(g) => system::run_group(&ctx, g).await,
        Command::Builder(g) => disk::run_builder(&ctx, g).await,
        Command::Tag(a) => image::remove::tag(&ctx, a).await,
        Command::Version(a) => system::version(&ctx, a).await,
        Command::Volume(g) => volume::run_group(&ctx, g).await,
        Command::Wait(a) => container::lifecycle::wait(&ctx, a).await,
        Command::External(words) => {
            let word = words.first().cloned().unwrap_or_default();
            Err(cli::unknown_command(&ctx.usage, &word).into())
        }
    }
}

/// Prints the help of a command group (`berth image`) or rejects an unknown
/// subcommand of it, as docker does.
pub(crate) fn group_without_command(ctx: &Ctx, external: Option<&[String]>) -> anyhow::Result<()> {
    if let Some(words) = external {
        let word = words.first().cloned().unwrap_or_default();
        return Err(cli::unknown_command(&ctx.usage, &word).into());
    }
    let tree = cli::command_tree();
    let path: Vec<String> = ctx
        .usage
        .path
        .split(' ')
        .skip(1)
        .map(str::to_string)
        .collect();
    let mut cmd = &tree;
    for p in &path {
        cmd = cmd.find_subcommand(p).expect("path comes from this tree");
    }
    ctx.print(&cli::render_help(&path, cmd))?;
    Ok(())
}

/// `-f/--filter name=value` as docker's `opts.FilterOpt` parses it.
///
/// # Errors
/// docker's "bad format of filter (expected name=value)".
pub(crate) fn parse_filter(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) => Ok((k.trim().to_lowercase(), v.trim().to_string())),
        None => Err("bad format of filter (expected name=value)".to_string()),
    }
}

/// The `filters` query value: `{"name":{"value":true}}` (empty when none).
pub(crate) fn filters_json(filters: &[(String, String)]) -> Option<String> {
    if filters.is_empty() {
        return None;
    }
    let mut map: BTreeMap<&str, BTreeMap<&str, bool>> = BTreeMap::new();
    for (k, v) in filters {
        map.entry(k.as_str()).or_default().insert(v.as_str(), true);
    }
    Some(serde_json::to_string(&map).expect("maps of strings serialize"))
}

/// One prune call as docker's `RunPrune` functions make it: `POST path` with the
/// filters, then the space reclaimed and the "Deleted …:" block (empty when nothing
/// went), each deleted item rendered by `item` from the report's `list_key` array.
/// Shared by the `prune` commands and `system prune`, which prints the blocks of
/// several in turn.
pub(crate) async fn prune_report(
    ctx: &Ctx,
    path: &str,
    filters: &[(String, String)],
    list_key: &str,
    heading: &str,
    item: fn(&serde_json::Value) -> String,
) -> anyhow::Result<(u64, String)> {
    let mut params = Vec::new();
    if let Some(f) = filters_json(filters) {
        params.push(("filters", f));
    }
    let report = ctx
        .client
        .call_json(
            hyper::Method::POST,
            &crate::client::with_query(path, &params),
            None,
        )
        .await?;
    let deleted = report[list_key].as_array().cloned().unwrap_or_default();
    if deleted.is_empty() {
        return Ok((0, String::new()));
    }
    let mut text = format!("{heading}:\n");
    for d in &deleted {
        text.push_str(&item(d));
        text.push('\n');
    }
    Ok((report["SpaceReclaimed"].as_u64().unwrap_or(0), text))
}

/// Prints what a prune command reports, as docker does: the block, a blank line,
/// then the total.
pub(crate) fn print_prune(ctx: &Ctx, reclaimed: u64, block: &str) -> std::io::Result<()> {
    let mut text = String::new();
    if !block.is_empty() {
        text.push_str(block);
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        crate::format::units::human_size(reclaimed as f64)
    ));
    ctx.print(&text)
}

/// A plain string item of a prune report (an ID or a name).
pub(crate) fn prune_item_text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// An I/O error phrased as Go prints it ("open x: no such file or directory").
pub(crate) fn go_io_error(op: &str, path: &str, err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    let text = match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    };
    format!("{op} {path}: {text}")
}

/// docker's check of flags annotated with an API version or OS type: the
/// flags given (`changed`) that the daemon cannot serve, errors joined.
/// `flags` holds (name, minimum API version or "windows" for Windows-only).
///
/// # Errors
/// docker's "\"--x\" requires API version ..." messages.
pub(crate) async fn check_flag_support(
    ctx: &Ctx,
    flags: &[(&str, &str, bool)],
) -> anyhow::Result<()> {
    let mut sorted: Vec<&(&str, &str, bool)> = flags.iter().filter(|f| f.2).collect();
    if sorted.is_empty() {
        return Ok(());
    }
    sorted.sort_by_key(|f| f.0);
    let version = ctx.client.api_version().await;
    let mut errors = Vec::new();
    for (name, need, _) in sorted {
        if *need == "windows" {
            errors.push(format!(
                "\"--{name}\" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux"
            ));
        } else if crate::client::version_less(&version, need) {
            errors.push(format!(
                "\"--{name}\" requires API version {need}, but the Docker daemon API version is {version}"
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(joined_errors(&errors).into())
    }
}

/// docker's `prompt.Confirm`: prints the question with " [y/N] " and reads one
/// line from stdin; only "y"/"Y" confirms (end of input declines).
pub(crate) fn confirm(ctx: &Ctx, message: &str) -> std::io::Result<bool> {
    use std::io::BufRead;
    ctx.print(&format!("{message} [y/N] "))?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().eq_ignore_ascii_case("y"))
}

/// A `StatusError` with exit status 1 (errors joined one per line).
pub(crate) fn joined_errors(errors: &[String]) -> StatusError {
    StatusError {
        message: errors.join("\n"),
        code: 1,
    }
}

/// A daemon error that ends the command at once (nothing listens).
pub(crate) fn fatal(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Connect { .. } | ClientError::Permission { .. }
    )
}

/// Prints the name of each success; joins the errors (docker's `errors.Join`).
/// With `ignore_missing`, not-found errors go to stderr and do not fail.
pub(crate) fn report_each(
    ctx: &Ctx,
    names: &[String],
    results: Vec<Result<serde_json::Value, ClientError>>,
    ignore_missing: bool,
) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(_) => ctx.print(&format!("{name}\n"))?,
            Err(e) if fatal(&e) => return Err(e.into()),
            Err(e) if ignore_missing && e.is_not_found() => eprintln!("{e}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(joined_errors(&errors).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_encode_as_docker_args() {
        let f = vec![
            ("dangling".to_string(), "true".to_string()),
            ("label".to_string(), "a=b".to_string()),
            ("label".to_string(), "c".to_string()),
        ];
        assert_eq!(
            filters_json(&f).unwrap(),
            r#"{"dangling":{"true":true},"label":{"a=b":true,"c":true}}"#
        );
        assert_eq!(filters_json(&[]), None);
    }

    #[test]
    fn filter_without_equals_is_refused() {
        assert!(parse_filter("bogus").is_err());
        assert_eq!(
            parse_filter(" Label = a=b").unwrap(),
            ("label".into(), "a=b".into())
        );
    }

    #[test]
    fn io_errors_read_like_go() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(
            go_io_error("open", "/x", &e),
            "open /x: no such file or directory"
        );
    }
}
