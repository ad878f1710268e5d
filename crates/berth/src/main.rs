//! `berth`: the command-line client, with docker's command syntax, output and
//! exit codes.
//!
//! It links no daemon code: every command is an Engine API call over HTTP on
//! a unix socket, so it works against `berthd` and against a real `dockerd`
//! alike. Modules: [`cli`] (parsing, usage errors, help), [`client`] (HTTP,
//! version negotiation, streaming), [`format`] (templates, tables, units),
//! [`jsonmessage`] (progress streams), [`reference`] (image names) and
//! [`commands`] (one module per object kind).
//!
//! Exit codes follow docker's `cmd/docker`: 125 for flag errors, a command's
//! own status for [`cli::StatusError`]s, 1 for every other error, 0 when the
//! user declined a prompt.
#![forbid(unsafe_code)]
// The create request is one large `json!` literal, as docker's structs are.
#![recursion_limit = "256"]

mod cli;
mod client;
mod commands;
mod format;
mod jsonmessage;
mod reference;
mod stdcopy;

use std::io::Write;

use cli::{Cancelled, Parsed, StatusError};
use client::{Client, DEFAULT_HOST};

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match cli::parse(&argv) {
        Ok(Parsed::Help(text)) => {
            print_stdout(&text);
            0
        }
        Ok(Parsed::Version) => {
            print_stdout(&format!("berth version {}\n", env!("CARGO_PKG_VERSION")));
            0
        }
        Ok(Parsed::Run { cli, usage }) => run(*cli, usage),
        Err(e) => report(&anyhow::Error::new(e)),
    };
    std::process::exit(code);
}

fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn run(cli: cli::Cli, usage: cli::Usage) -> i32 {
    let host = match resolve_host(&cli.host) {
        Ok(h) => h,
        Err(e) => return report(&e),
    };
    let client = match Client::new(&host, std::env::var("DOCKER_API_VERSION").ok()) {
        Ok(c) => c,
        Err(e) => return report(&e.into()),
    };
    let ctx = commands::Ctx {
        client,
        usage,
        debug: cli.debug,
        context: cli.context.clone().unwrap_or_else(|| "default".to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(&anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let result = runtime.block_on(commands::run(cli, ctx));
    // A stdin read may still be pending on a blocking thread (attach): do
    // not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => 0,
        Err(e) => report(&e),
    }
}

/// `-H` (at most one), else `DOCKER_HOST`, else berth's socket.
fn resolve_host(hosts: &[String]) -> anyhow::Result<String> {
    match hosts {
        [] => Ok(std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_string())),
        [one] => Ok(one.clone()),
        _ => anyhow::bail!("specify only one -H"),
    }
}

/// Prints an error as docker's `main` does and returns the exit status.
fn report(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<Cancelled>().is_some() {
        return 0;
    }
    // A closed stdout (`berth images | head -1`) is not an error worth a word.
    if err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return 0;
    }
    if let Some(status) = err.downcast_ref::<StatusError>() {
        if !status.message.is_empty() {
            eprintln!("{}", status.message);
        }
        return if status.code == 0 { 1 } else { status.code };
    }
    eprintln!("{err:#}");
    1
}
