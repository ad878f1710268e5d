//! Command-line parsing with docker's syntax, messages and exit codes.
//!
//! clap does the parsing (commands are `derive` structs that live beside
//! their code in `commands/`), but everything the user reads is rendered
//! here the way docker's cobra/pflag front end renders it: usage errors
//! ("unknown flag: --x", then "Usage:" and "Run '... --help'", exit 125),
//! argument-count errors (exit 1) and `--help` pages.
//!
//! To add a command: write its `Args` struct with `#[command(override_usage =
//! "<docker's Use without the name>", after_long_help = "<aliases line>")]`,
//! add a variant to [`Command`] (or a group enum) and a match arm in
//! `commands::run`. Help, usage errors and argument checks then work.

use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::commands::{
    compose, container, disk, events, image, inspect, network, port, registry, system, volume,
};

/// The program name used in messages ("berth: 'berth tag' requires ...").
pub(crate) const BIN: &str = "berth";

/// docker's `flags.FormatHelp` (list commands).
pub(crate) const FORMAT_HELP: &str = "Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

/// docker's `flags.InspectFormatHelp` (inspect-like commands).
pub(crate) const INSPECT_FORMAT_HELP: &str = "Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

/// Global options (docker's `cliflags.ClientOptions`).
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    override_usage = "[OPTIONS] COMMAND [ARG...]",
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    allow_external_subcommands = true
)]
pub(crate) struct Cli {
    /// Location of client config files
    #[arg(long, value_name = "string")]
    pub(crate) config: Option<String>,
    /// Name of the context to use to connect to the daemon (overrides DOCKER_HOST env var and default context set with "docker context use")
    #[arg(short = 'c', long, value_name = "string")]
    pub(crate) context: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub(crate) debug: bool,
    /// Daemon socket to connect to
    #[arg(short = 'H', long, value_name = "list")]
    pub(crate) host: Vec<String>,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(
        short = 'l',
        long = "log-level",
        value_name = "string",
        default_value = "info"
    )]
    pub(crate) log_level: String,
    /// Use TLS; implied by --tlsverify
    #[arg(long)]
    pub(crate) tls: bool,
    /// Use TLS and verify the remote
    #[arg(long)]
    pub(crate) tlsverify: bool,
    /// Print version information and quit
    #[arg(short = 'v', long)]
    pub(crate) version: bool,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Attach local standard input, output, and error streams to a running container
    #[command(after_long_help = "berth container attach, berth attach")]
    Attach(container::AttachArgs),
    /// Build an image from a Dockerfile
    Build(image::BuildArgs),
    /// Manage builds
    Builder(disk::BuilderGroup),
    /// Create a new image from a container's changes
    Commit(container::CommitArgs),
    /// Define and run multi-container applications
    Compose(compose::ComposeGroup),
    /// Manage containers
    Container(container::ContainerGroup),
    /// Copy files/folders between a container and the local filesystem
    Cp(container::CpArgs),
    /// Create a new container
    Create(container::CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::DiffArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// Execute a command in a running container
    #[command(after_long_help = "berth container exec, berth exec")]
    Exec(container::ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(container::ExportArgs),
    /// Show the history of an image
    History(image::HistoryArgs),
    /// Manage images
    Image(image::ImageGroup),
    /// List images
    Images(image::ListArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(image::ImportArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Return low-level information on Docker objects
    Inspect(inspect::InspectArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Load an image from a tar archive or STDIN
    Load(image::LoadArgs),
    /// Log in to a registry
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// Fetch the logs of a container
    Logs(container::LogsArgs),
    /// Pause all processes within one or more containers
    Pause(container::PauseArgs),
    /// List containers
    #[command(
        after_long_help = "berth container ls, berth container list, berth container ps, berth ps"
    )]
    Ps(container::ListArgs),
    /// Manage networks
    Network(network::NetworkGroup),
    /// List port mappings or a specific mapping for the container
    Port(port::PortArgs),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Restart one or more containers
    #[command(after_long_help = "berth container restart, berth restart")]
    Restart(container::StopArgs),
    /// Remove one or more containers
    #[command(after_long_help = "berth container rm, berth container remove, berth rm")]
    Rm(container::RemoveArgs),
    /// Remove one or more images
    Rmi(image::RemoveArgs),
    /// Create and run a new container from an image
    Run(container::RunArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image::SaveArgs),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(container::StatsArgs),
    /// Stop one or more running containers
    #[command(after_long_help = "berth container stop, berth stop")]
    Stop(container::StopArgs),
    /// Manage Docker
    System(system::SystemGroup),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image::TagArgs),
    /// Display the running processes of a container
    Top(container::TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::PauseArgs),
    /// Update configuration of one or more containers
    Update(container::UpdateArgs),
    /// Show the Docker version information
    Version(system::VersionArgs),
    /// Manage volumes
    Volume(volume::VolumeGroup),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::WaitArgs),
    #[command(external_subcommand)]
    External(Vec<String>),
}

/// An error that decides its own exit status (docker's `cli.StatusError`).
#[derive(Debug)]
pub(crate) struct StatusError {
    /// What to print on stderr (nothing when empty).
    pub(crate) message: String,
    /// The process exit status.
    pub(crate) code: i32,
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatusError {}

/// The user cancelled at a prompt: exit quietly with status 0, as docker does.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Cancelled(pub(crate) String);

/// What parsing produced.
pub(crate) enum Parsed {
    /// Run this command line; `usage` describes the command found.
    Run { cli: Box<Cli>, usage: Usage },
    /// Print this help text on stdout and exit 0.
    Help(String),
    /// Print `version` and exit 0 (`-v`).
    Version,
}

/// The command that was invoked, for docker-style argument errors.
#[derive(Clone, Debug, Default)]
pub(crate) struct Usage {
    /// "berth image ls"
    pub(crate) path: String,
    /// "berth image ls [OPTIONS] [REPOSITORY[:TAG]]"
    pub(crate) use_line: String,
}

impl Usage {
    fn argument_error(&self, what: String, verb: &str) -> StatusError {
        StatusError {
            message: format!(
                "{BIN}: '{}' {what}\n\nUsage:  {}\n\n{verb} '{} --help' for more information",
                self.path, self.use_line, self.path
            ),
            code: 1,
        }
    }

    /// docker's `cli.NoArgs`.
    pub(crate) fn no_args(&self, args: &[String]) -> Result<(), StatusError> {
        if args.is_empty() {
            return Ok(());
        }
        Err(self.argument_error("accepts no arguments".to_string(), "Run"))
    }

    /// docker's `cli.ExactArgs(n)`.
    pub(crate) fn exact_args(&self, args: &[String], n: usize) -> Result<(), StatusError> {
        if args.len() == n {
            return Ok(());
        }
        Err(self.argument_error(format!("requires {n} {}", plural("argument", n)), "Run"))
    }

    /// docker's `cli.RequiresMinArgs(n)` (its message says "See").
    pub(crate) fn min_args(&self, args: &[String], n: usize) -> Result<(), StatusError> {
        if args.len() >= n {
            return Ok(());
        }
        Err(self.argument_error(
            format!("requires at least {n} {}", plural("argument", n)),
            "See",
        ))
    }

    /// docker's `cli.RequiresMaxArgs(n)`; docker 28 really prints "SRun" there.
    pub(crate) fn max_args(&self, args: &[String], n: usize) -> Result<(), StatusError> {
        if args.len() <= n {
            return Ok(());
        }
        Err(self.argument_error(
            format!("requires at most {n} {}", plural("argument", n)),
            "SRun",
        ))
    }

    /// docker's `cli.RequiresRangeArgs(min, max)`.
    #[allow(dead_code)] // for commands still to come (`cp`, `exec`, ...)
    pub(crate) fn range_args(
        &self,
        args: &[String],
        min: usize,
        max: usize,
    ) -> Result<(), StatusError> {
        if args.len() >= min && args.len() <= max {
            return Ok(());
        }
        Err(self.argument_error(
            format!(
                "requires at least {min} and at most {max} {}",
                plural("argument", max)
            ),
            "Run",
        ))
    }
}

fn plural(word: &str, n: usize) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// The full command tree with a hidden `-h/--help` flag on every command.
pub(crate) fn command_tree() -> clap::Command {
    add_help_flags(Cli::command())
}

fn add_help_flags(cmd: clap::Command) -> clap::Command {
    let uses_h = cmd.get_arguments().any(|a| a.get_short() == Some('h'));
    let mut help = Arg::new("help")
        .long("help")
        .action(ArgAction::SetTrue)
        .hide(true);
    if !uses_h {
        help = help.short('h');
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut cmd = cmd.arg(help);
    for name in names {
        cmd = cmd.mut_subcommand(name, add_help_flags);
    }
    cmd
}

/// Parses `argv` (without the program name).
///
/// # Errors
/// [`StatusError`]s carrying docker's usage messages and exit codes.
pub(crate) fn parse(argv: &[String]) -> Result<Parsed, StatusError> {
    let tree = command_tree();
    let path = command_path(&tree, argv);
    let target = find_command(&tree, &path);
    let usage = usage_for(&path, target);

    let mut full = vec![BIN.to_string()];
    full.extend(argv.iter().cloned());
    let matches = match tree.clone().try_get_matches_from(full) {
        Ok(m) => m,
        // Commands whose operands clap itself requires: `--help` still wins, and a
        // missing operand is cobra's "requires at least N arguments".
        Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => {
            let asks_help = argv
                .iter()
                .take_while(|w| *w != "--")
                .any(|w| w == "--help" || w == "-h");
            if asks_help {
                return Ok(Parsed::Help(render_help(&path, target)));
            }
            let required = target
                .get_positionals()
                .filter(|a| a.is_required_set())
                .count();
            let n = required.max(1);
            return Err(usage.argument_error(
                format!("requires at least {n} {}", plural("argument", n)),
                "See",
            ));
        }
        Err(e) => return Err(flag_error(&e, &usage, target, argv)),
    };

    // Help anywhere on the chain wins once flags parsed, as with cobra.
    let mut m = &matches;
    let mut help = m.get_flag("help");
    while let Some((_, sub)) = m.subcommand() {
        if sub
            .try_get_one::<bool>("help")
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false)
        {
            help = true;
        }
        m = sub;
    }
    let cli = Cli::from_arg_matches(&matches).map_err(|e| flag_error(&e, &usage, target, argv))?;
    if cli.version && path.is_empty() {
        return Ok(Parsed::Version);
    }
    if help {
        return Ok(Parsed::Help(render_help(&path, target)));
    }
    Ok(Parsed::Run {
        cli: Box::new(cli),
        usage,
    })
}

/// The canonical names of the (sub)commands named in `argv`, skipping global
/// flags; aliases (`image list`) resolve to their command (`image ls`).
fn command_path(tree: &clap::Command, argv: &[String]) -> Vec<String> {
    let mut path = Vec::new();
    let mut cmd = tree;
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if a == "--" {
            break;
        }
        if a.starts_with('-') && a.len() > 1 {
            // Skip the value of a flag that takes one (only the root's matter here).
            if path.is_empty() && !a.contains('=') && takes_value(cmd, a) {
                i += 1;
            }
            i += 1;
            continue;
        }
        match cmd.find_subcommand(a) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                cmd = sub;
            }
            None => break,
        }
        if !cmd.has_subcommands() {
            break;
        }
        i += 1;
    }
    path
}

fn takes_value(cmd: &clap::Command, flag: &str) -> bool {
    let arg = if let Some(long) = flag.strip_prefix("--") {
        cmd.get_arguments().find(|a| a.get_long() == Some(long))
    } else {
        // "-H" takes the next word; "-Hunix://..." carries its value.
        let mut chars = flag.chars().skip(1);
        let first = chars.next();
        if chars.next().is_some() {
            return false;
        }
        cmd.get_arguments().find(|a| a.get_short() == first)
    };
    arg.is_some_and(|a| a.get_action().takes_values())
}

fn find_command<'a>(tree: &'a clap::Command, path: &[String]) -> &'a clap::Command {
    let mut cmd = tree;
    for name in path {
        cmd = cmd
            .find_subcommand(name)
            .expect("path built from this tree");
    }
    cmd
}

fn usage_for(path: &[String], cmd: &clap::Command) -> Usage {
    let mut full_path = vec![BIN.to_string()];
    full_path.extend(path.iter().cloned());
    let path = full_path.join(" ");
    let args = cmd
        .get_overridden_usage()
        .map(|u| u.to_string())
        .unwrap_or_default();
    let use_line = if args.is_empty() {
        path.clone()
    } else {
        format!("{path} {args}")
    };
    Usage { path, use_line }
}

/// Turns a clap error into docker's flag error (exit 125).
fn flag_error(
    err: &clap::Error,
    usage: &Usage,
    cmd: &clap::Command,
    argv: &[String],
) -> StatusError {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let ctx = |kind: ContextKind| -> Option<String> {
        match err.get(kind)? {
            ContextValue::String(s) => Some(s.clone()),
            ContextValue::Strings(v) => v.first().cloned(),
            other => Some(other.to_string()),
        }
    };
    let invalid_arg = ctx(ContextKind::InvalidArg).unwrap_or_default();
    // clap names a flag as "--format <string>" or "-f <string>".
    // ("--init[=<INIT>]" for a flag whose value is optional)
    let flag_name = invalid_arg
        .split_whitespace()
        .next()
        .unwrap_or("")
        .split('[')
        .next()
        .unwrap_or("")
        .to_string();
    let describe = |flag: &str| -> String {
        if let Some(long) = flag.strip_prefix("--") {
            format!("--{long}")
        } else {
            let c = flag.trim_start_matches('-');
            format!("'{c}' in -{c}")
        }
    };
    let message = match err.kind() {
        ErrorKind::UnknownArgument => {
            if flag_name.starts_with("--") {
                format!("unknown flag: {flag_name}")
            } else if flag_name.starts_with('-') {
                let c = flag_name
                    .trim_start_matches('-')
                    .chars()
                    .next()
                    .unwrap_or('?');
                // pflag names the whole word ("-dit"), clap only the letter.
                let word = argv
                    .iter()
                    .take_while(|w| *w != "--")
                    .find(|w| w.starts_with('-') && !w.starts_with("--") && w[1..].contains(c))
                    .map_or(flag_name.as_str(), String::as_str);
                format!("unknown shorthand flag: '{c}' in {word}")
            } else {
                format!("unknown command: {flag_name}")
            }
        }
        ErrorKind::InvalidValue if ctx(ContextKind::InvalidValue).is_none_or(|v| v.is_empty()) => {
            format!("flag needs an argument: {}", describe(&flag_name))
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => format!(
            "invalid argument {:?} for {:?} flag: {}",
            ctx(ContextKind::InvalidValue).unwrap_or_default(),
            pflag_name(cmd, &flag_name),
            std::error::Error::source(err)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "invalid value".to_string())
        ),
        ErrorKind::TooManyValues | ErrorKind::NoEquals => {
            format!("invalid argument for {flag_name:?} flag")
        }
        _ => first_line(&err.to_string()),
    };
    StatusError {
        message: format!(
            "{message}\n\nUsage:  {}\n\nRun '{} --help' for more information",
            usage.use_line, usage.path
        ),
        code: 125,
    }
}

/// How pflag names a flag in messages: "-f, --filter" or "--format".
fn pflag_name(cmd: &clap::Command, flag: &str) -> String {
    let long = flag.trim_start_matches('-');
    let arg = cmd.get_arguments().find(|a| {
        a.get_long() == Some(long) || (flag.len() == 2 && a.get_short() == long.chars().next())
    });
    match arg {
        Some(a) => match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}, --{l}"),
            (None, Some(l)) => format!("--{l}"),
            _ => flag.to_string(),
        },
        None => flag.to_string(),
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string()
}

/// docker's "unknown command" for a word that names no (sub)command.
pub(crate) fn unknown_command(usage: &Usage, word: &str) -> StatusError {
    let message = if usage.path == BIN {
        format!("{BIN}: unknown command: {BIN} {word}\n\nRun '{BIN} --help' for more information")
    } else {
        format!(
            "{BIN}: unknown command: {} {word}\n\nUsage:  {}\n\nRun '{} --help' for more information",
            usage.path, usage.use_line, usage.path
        )
    };
    StatusError { message, code: 1 }
}

/// The help page of the command at `path`, laid out like docker's.
pub(crate) fn render_help(path: &[String], cmd: &clap::Command) -> String {
    let usage = usage_for(path, cmd);
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    let mut out = String::new();
    if cmd.has_subcommands() && !path.is_empty() {
        out.push_str(&format!(
            "\nUsage:  {} COMMAND\n\n{about}\n\nCommands:\n",
            usage.path
        ));
        let mut subs: Vec<&clap::Command> =
            cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
        subs.sort_by_key(|s| s.get_name().to_string());
        for s in subs {
            let short = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            out.push_str(&format!("  {:<11} {short}\n", s.get_name()));
        }
        // A group with options of its own (`compose -f/-p`) lists them too.
        let options = render_options(cmd);
        if !options.is_empty() {
            out.push_str("\nOptions:\n");
            out.push_str(&options);
        }
        out.push_str(&format!(
            "\nRun '{} COMMAND --help' for more information on a command.\n",
            usage.path
        ));
        return out;
    }
    out.push_str(&format!("\nUsage:  {}\n\n{about}\n", usage.use_line));
    if let Some(aliases) = cmd.get_after_long_help() {
        out.push_str(&format!("\nAliases:\n  {aliases}\n"));
    }
    if path.is_empty() {
        out.push_str("\nCommands:\n");
        for s in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let short = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            out.push_str(&format!("  {:<11} {short}\n", s.get_name()));
        }
        out.push_str("\nGlobal Options:\n");
    } else {
        out.push_str("\nOptions:\n");
    }
    out.push_str(&render_options(cmd));
    if path.is_empty() {
        out.push_str(&format!(
            "\nRun '{BIN} COMMAND --help' for more information on a command.\n"
        ));
    }
    out
}

fn render_options(cmd: &clap::Command) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut args: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
        .collect();
    args.sort_by_key(|a| a.get_long().unwrap_or("").to_string());
    for a in args {
        let mut left = match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}, --{l}"),
            (None, Some(l)) => format!("    --{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, None) => continue,
        };
        if a.get_action().takes_values() && a.get_num_args().is_none_or(|n| n.min_values() > 0) {
            let name = a
                .get_value_names()
                .and_then(|v| v.first().map(|s| s.to_string()))
                .unwrap_or_else(|| "string".to_string());
            left.push(' ');
            left.push_str(&name);
        }
        let mut help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        let defaults: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        if let Some(d) = defaults.first() {
            if d == "true" {
                help.push_str(" (default true)");
            } else if !d.is_empty() && d != "false" {
                help.push_str(&format!(" (default {d:?})"));
            }
        }
        rows.push((left, help));
    }
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (left, help) in rows {
        let mut lines = help.lines();
        out.push_str(&format!(
            "  {left:<width$}   {}\n",
            lines.next().unwrap_or("")
        ));
        for more in lines {
            out.push_str(&format!("  {:<width$}   {more}\n", ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tree_is_consistent() {
        command_tree().debug_assert();
    }

    #[test]
    fn unknown_flag_reads_like_pflag_and_exits_125() {
        let Err(e) = parse(&args(&["images", "--bogus"])) else {
            panic!("parsed")
        };
        assert_eq!(e.code, 125);
        assert_eq!(
            e.message,
            "unknown flag: --bogus\n\nUsage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'berth images --help' for more information"
        );
    }

    #[test]
    fn help_wins_over_missing_operands_and_missing_ones_read_like_cobra() {
        assert!(matches!(
            parse(&args(&["compose", "exec", "--help"])),
            Ok(Parsed::Help(_))
        ));
        let Err(e) = parse(&args(&["compose", "port", "web"])) else {
            panic!("parsed")
        };
        assert_eq!(e.code, 1);
        assert!(
            e.message
                .starts_with("berth: 'berth compose port' requires at least 2 arguments\n"),
            "{}",
            e.message
        );
    }

    #[test]
    fn unknown_shorthand_names_the_letter() {
        let Err(e) = parse(&args(&["image", "list", "-x"])) else {
            panic!("parsed")
        };
        assert!(
            e.message.starts_with(
                "unknown shorthand flag: 'x' in -x\n\nUsage:  berth image ls [OPTIONS]"
            )
        );
    }

    #[test]
    fn missing_flag_value_reads_like_pflag() {
        let Err(e) = parse(&args(&["images", "--format"])) else {
            panic!("parsed")
        };
        assert!(
            e.message.starts_with("flag needs an argument: --format\n"),
            "{}",
            e.message
        );
    }

    #[test]
    fn invalid_flag_values_name_both_spellings() {
        let Err(e) = parse(&args(&["images", "-f", "bogus"])) else {
            panic!("parsed")
        };
        assert!(
            e.message.starts_with("invalid argument \"bogus\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\n"),
            "{}",
            e.message
        );
    }

    #[test]
    fn global_flags_are_skipped_when_finding_the_command() {
        let tree = command_tree();
        assert_eq!(
            command_path(&tree, &args(&["-H", "unix:///x", "image", "rm", "a"])),
            ["image", "rm"]
        );
        assert_eq!(
            command_path(&tree, &args(&["--host=unix:///x", "image", "remove"])),
            ["image", "rm"]
        );
    }

    #[test]
    fn help_flag_prints_help() {
        let Ok(Parsed::Help(text)) = parse(&args(&["images", "--help"])) else {
            panic!("no help")
        };
        assert!(text.contains("Usage:  berth images [OPTIONS] [REPOSITORY[:TAG]]"));
        assert!(text.contains("-a, --all"));
    }

    #[test]
    fn argument_count_errors_match_docker() {
        let u = Usage {
            path: "berth tag".into(),
            use_line: "berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]".into(),
        };
        let e = u.exact_args(&args(&["a"]), 2).unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(
            e.message,
            "berth: 'berth tag' requires 2 arguments\n\nUsage:  berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n\nRun 'berth tag --help' for more information"
        );
    }
}
