//! `docker exec`: exec instances of running containers.
//!
//! An exec is created (`POST /containers/{id}/exec`: checked and remembered, nothing
//! runs), then started (`POST /exec/{id}/start`): the container's shim starts the
//! process (see `berth_shim_protocol::Request::Exec`) and, unless detached, the
//! connection it answers on becomes the exec's stream. The exit code is fetched from
//! the shim when the stream ends, before the client's connection closes, because the
//! docker CLI inspects the exec as soon as its stream ends.
//!
//! Execs live in memory only, as Docker keeps them; a daemon restart forgets them.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_shim_protocol::{ExecSpec, LaunchErrorKind, Reply, Request};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::spec::{base_env, replace_or_append_env};
use super::{ContainerService, shim};
use crate::DaemonError;

/// Execs remembered at most (the oldest finished ones are forgotten first).
const MAX_EXECS: usize = 1024;

/// `POST /containers/{id}/exec`'s body (Docker's `ExecOptions`; the fields carry the
/// Engine API's names, which its spec documents).
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecConfig {
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    /// Go's JSON decoding matches names without regard to case, and docker-py sends
    /// this one as `detachKeys`.
    #[serde(default, alias = "detachKeys")]
    pub detach_keys: Option<String>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub console_size: Option<Vec<u16>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
}

/// `POST /exec/{id}/start`'s body (the Engine API's names).
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecStartConfig {
    #[serde(default)]
    pub detach: bool,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub console_size: Option<Vec<u16>>,
}

#[derive(Debug, Clone)]
struct ExecRecord {
    id: String,
    container_id: String,
    config: ExecConfig,
    detach_keys: Vec<u8>,
    started: bool,
    running: bool,
    pid: u32,
    exit_code: Option<i32>,
    /// Creation order, to forget the oldest first.
    serial: u64,
}

/// The exec instances of all containers.
#[derive(Default)]
pub(super) struct Execs {
    by_id: Mutex<HashMap<String, ExecRecord>>,
    serial: Mutex<u64>,
}

/// A started exec whose stream the caller joins to the client.
pub struct ExecStream {
    /// The shim connection carrying the exec's stdio.
    pub stream: tokio::net::UnixStream,
    /// Raw bytes (TTY) or Docker's frames.
    pub tty: bool,
    /// Read the client's stdin (with this detach sequence).
    pub stdin: Option<Vec<u8>>,
}

fn no_such_exec(id: &str) -> DaemonError {
    DaemonError::not_found(format!("No such exec instance: {id}"))
}

fn console_size(size: &Option<Vec<u16>>) -> Option<(u16, u16)> {
    match size.as_deref() {
        Some([h, w]) if *h > 0 && *w > 0 => Some((*h, *w)),
        _ => None,
    }
}

impl ContainerService {
    fn running_container(&self, name: &str) -> Result<super::model::ContainerRecord, DaemonError> {
        let r = self.get(name)?.record();
        if r.state.paused {
            return Err(DaemonError::conflict(format!(
                "Container {} is paused, unpause the container before exec",
                r.id
            )));
        }
        if !r.state.running {
            return Err(DaemonError::conflict(format!(
                "container {} is not running",
                r.id
            )));
        }
        Ok(r)
    }

    /// `POST /containers/{id}/exec`: returns the new exec's ID.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when the container does not run; `InvalidArgument` for
    /// no command or bad detach keys.
    pub fn exec_create(&self, name: &str, config: ExecConfig) -> Result<String, DaemonError> {
        let r = self.running_container(name)?;
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(DaemonError::invalid("No exec command specified"));
        }
        let detach_keys = super::attach::parse_detach_keys(
            config.detach_keys.as_deref().unwrap_or(""),
        )
        .map_err(|_| {
            DaemonError::invalid(format!(
                "Invalid escape keys ({}) provided",
                config.detach_keys.as_deref().unwrap_or("")
            ))
        })?;
        let id = crate::containers::new_volume_name();
        let serial = {
            let mut s = self.execs.serial.lock().expect("exec serial lock");
            *s += 1;
            *s
        };
        let mut execs = self.execs.by_id.lock().expect("execs lock");
        if execs.len() >= MAX_EXECS {
            let oldest = execs
                .values()
                .filter(|e| !e.running)
                .min_by_key(|e| e.serial)
                .map(|e| e.id.clone());
            if let Some(oldest) = oldest {
                execs.remove(&oldest);
            }
        }
        execs.insert(
            id.clone(),
            ExecRecord {
                id: id.clone(),
                container_id: r.id,
                config,
                detach_keys,
                started: false,
                running: false,
                pid: 0,
                exit_code: None,
                serial,
            },
        );
        drop(execs);
        self.exec_event(&id, "exec_create");
        Ok(id)
    }

    /// Docker's exec events: the action carries the command (`exec_start: sh -c ...`).
    fn exec_event(&self, exec_id: &str, action: &str) {
        let Some((container, cmd)) = self
            .execs
            .by_id
            .lock()
            .expect("execs lock")
            .get(exec_id)
            .map(|r| {
                (
                    r.container_id.clone(),
                    r.config.cmd.clone().unwrap_or_default(),
                )
            })
        else {
            return;
        };
        if let Ok(entry) = self.get(&container) {
            self.event(
                &entry.record(),
                &format!("{action}: {}", cmd.join(" ")),
                &[("execID", exec_id.to_string())],
            );
        }
    }

    /// `POST /exec/{id}/start`: starts the process. `Ok(None)` when detached;
    /// otherwise the stream to join to the client, after which the caller must call
    /// [`ContainerService::exec_finished`].
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when it already ran or the container stopped; the
    /// shim's refusal (a missing command is `Conflict`-free `Internal` with Docker's
    /// message, as `OCI runtime exec failed`).
    pub async fn exec_start(
        &self,
        exec_id: &str,
        start: &ExecStartConfig,
    ) -> Result<Option<ExecStream>, DaemonError> {
        let rec = {
            let mut execs = self.execs.by_id.lock().expect("execs lock");
            let rec = execs
                .get_mut(exec_id)
                .ok_or_else(|| no_such_exec(exec_id))?;
            if rec.running {
                return Err(DaemonError::conflict(format!(
                    "exec command {exec_id} is already running"
                )));
            }
            if rec.started {
                return Err(DaemonError::conflict(format!(
                    "exec command {exec_id} has already run"
                )));
            }
            rec.started = true;
            rec.clone()
        };
        let c = match self.running_container(&rec.container_id) {
            Ok(c) => c,
            Err(e) => {
                self.exec_edit(exec_id, |r| r.exit_code = Some(126));
                return Err(e);
            }
        };
        let cfg = &rec.config;
        let tty = cfg.tty;
        let base = replace_or_append_env(
            base_env(&c.config.hostname, tty),
            c.config.env.as_deref().unwrap_or_default(),
        );
        let env = replace_or_append_env(base, cfg.env.as_deref().unwrap_or_default());
        let spec = ExecSpec {
            exec_id: exec_id.to_string(),
            args: cfg.cmd.clone().unwrap_or_default(),
            env,
            cwd: cfg
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| c.config.working_dir.clone()),
            user: cfg
                .user
                .clone()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| c.config.user.clone()),
            privileged: cfg.privileged,
            tty,
            attach_stdin: cfg.attach_stdin && !start.detach,
            detach: start.detach,
            console_size: console_size(&start.console_size).or(console_size(&cfg.console_size)),
        };
        let state_dir = self.state_dir(&c.id);
        let (reply, stream) = shim::exec(&state_dir, &spec).await.map_err(|e| {
            DaemonError::conflict(format!("container {} is not running: {e}", c.id))
        })?;
        match reply {
            Reply::Started { pid } => {
                self.exec_edit(exec_id, |r| {
                    r.running = true;
                    r.pid = pid;
                });
                self.exec_event(exec_id, "exec_start");
            }
            Reply::Error(e) => {
                let code = match e.kind {
                    LaunchErrorKind::CommandNotFound => 127,
                    LaunchErrorKind::CommandNotExecutable => 126,
                    _ => 126,
                };
                self.exec_edit(exec_id, |r| r.exit_code = Some(code));
                return Err(DaemonError::internal(format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: {}",
                    e.message
                )));
            }
            other => {
                return Err(DaemonError::internal(format!(
                    "unexpected shim reply to exec: {other:?}"
                )));
            }
        }
        if start.detach {
            return Ok(None);
        }
        Ok(Some(ExecStream {
            stream,
            tty,
            stdin: cfg.attach_stdin.then(|| rec.detach_keys.clone()),
        }))
    }

    fn exec_edit(&self, id: &str, f: impl FnOnce(&mut ExecRecord)) {
        if let Some(r) = self.execs.by_id.lock().expect("execs lock").get_mut(id) {
            f(r);
        }
    }

    /// Asks the shim how a started exec is doing and records it.
    async fn exec_refresh(&self, id: &str) {
        let Some(rec) = self
            .execs
            .by_id
            .lock()
            .expect("execs lock")
            .get(id)
            .cloned()
        else {
            return;
        };
        if !rec.running {
            return;
        }
        let state_dir = self.state_dir(&rec.container_id);
        let request = Request::ExecState {
            exec_id: id.to_string(),
        };
        match shim::call(&state_dir, &request).await {
            Ok(Reply::ExecState(s)) => {
                if let Some(code) = s.exit_code {
                    // Only the refresh that ends it reports `exec_die`, once.
                    let ended = {
                        let mut execs = self.execs.by_id.lock().expect("execs lock");
                        match execs.get_mut(id) {
                            Some(r) if r.running => {
                                r.running = false;
                                r.exit_code = Some(code);
                                true
                            }
                            _ => false,
                        }
                    };
                    if ended && let Ok(entry) = self.get(&rec.container_id) {
                        self.event(
                            &entry.record(),
                            "exec_die",
                            &[("execID", id.to_string()), ("exitCode", code.to_string())],
                        );
                    }
                }
            }
            // The shim is gone or forgot it: the container (and so the exec) ended.
            _ => self.exec_edit(id, |r| {
                r.running = false;
                if r.exit_code.is_none() {
                    r.exit_code = Some(137);
                }
            }),
        }
    }

    /// Called when an exec's stream ended: records the exit code.
    pub async fn exec_finished(&self, id: &str) {
        // The shim closes the stream after it knows the exit code; a few tries cover
        // a stream that ended early (the client left).
        for _ in 0..20 {
            self.exec_refresh(id).await;
            let running = self
                .execs
                .by_id
                .lock()
                .expect("execs lock")
                .get(id)
                .is_some_and(|r| r.running);
            if !running {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Reports that the client detached from an exec's stream with its detach keys
    /// (Docker's `exec_detach` event); the process keeps running.
    pub fn exec_detached(&self, id: &str) {
        let container = self
            .execs
            .by_id
            .lock()
            .expect("execs lock")
            .get(id)
            .map(|r| r.container_id.clone());
        if let Some(c) = container
            && let Ok(entry) = self.get(&c)
        {
            self.event(
                &entry.record(),
                "exec_detach",
                &[("execID", id.to_string())],
            );
        }
    }

    /// `POST /exec/{id}/resize`.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when it does not run.
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), DaemonError> {
        let rec = self
            .execs
            .by_id
            .lock()
            .expect("execs lock")
            .get(id)
            .cloned()
            .ok_or_else(|| no_such_exec(id))?;
        if !rec.running {
            return Err(DaemonError::conflict(format!(
                "Exec {id} is not running, so it can not be resized."
            )));
        }
        let request = Request::ExecResize {
            exec_id: id.to_string(),
            height,
            width,
        };
        match shim::call(&self.state_dir(&rec.container_id), &request).await {
            Ok(Reply::Ok) => Ok(()),
            other => Err(DaemonError::conflict(format!(
                "cannot resize exec {id}: {other:?}"
            ))),
        }
    }

    /// `GET /exec/{id}/json`.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn exec_inspect(&self, id: &str) -> Result<Value, DaemonError> {
        self.exec_refresh(id).await;
        let r = self
            .execs
            .by_id
            .lock()
            .expect("execs lock")
            .get(id)
            .cloned()
            .ok_or_else(|| no_such_exec(id))?;
        let cmd = r.config.cmd.clone().unwrap_or_default();
        Ok(json!({
            "ID": r.id,
            "Running": r.running,
            "ExitCode": r.exit_code,
            "ProcessConfig": {
                "tty": r.config.tty,
                "entrypoint": cmd.first().cloned().unwrap_or_default(),
                "arguments": cmd.get(1..).unwrap_or_default(),
                "privileged": r.config.privileged,
                "user": r.config.user.clone().unwrap_or_default(),
            },
            "OpenStdin": r.config.attach_stdin,
            "OpenStderr": r.config.attach_stderr,
            "OpenStdout": r.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": r.container_id,
            "DetachKeys": r.detach_keys,
            "Pid": r.pid,
        }))
    }

    /// Drops the execs of a removed container (Docker's exec inspect then says
    /// "No such exec instance").
    pub(super) fn forget_execs(&self, container_id: &str) {
        self.execs
            .by_id
            .lock()
            .expect("execs lock")
            .retain(|_, e| e.container_id != container_id);
    }

    /// A started exec's PID and, once it ended, its exit code (for healthcheck probes).
    pub(super) fn exec_outcome(&self, id: &str) -> Option<(u32, Option<i32>)> {
        self.execs
            .by_id
            .lock()
            .expect("execs lock")
            .get(id)
            .map(|r| (r.pid, r.exit_code))
    }

    /// Forgets one exec (a finished healthcheck probe: nobody inspects those, and a
    /// probe every few seconds would otherwise crowd out the user's execs).
    pub(super) fn forget_exec(&self, id: &str) {
        self.execs.by_id.lock().expect("execs lock").remove(id);
    }

    /// The IDs of a container's execs (inspect's `ExecIDs`).
    pub fn exec_ids(&self, container_id: &str) -> Vec<String> {
        let execs = self.execs.by_id.lock().expect("execs lock");
        let mut ids: Vec<&ExecRecord> = execs
            .values()
            .filter(|e| e.container_id == container_id && e.running)
            .collect();
        ids.sort_by_key(|e| e.serial);
        ids.into_iter().map(|e| e.id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_size_needs_both_dimensions() {
        assert_eq!(console_size(&Some(vec![10, 20])), Some((10, 20)));
        assert_eq!(console_size(&Some(vec![0, 20])), None);
        assert_eq!(console_size(&None), None);
    }
}
