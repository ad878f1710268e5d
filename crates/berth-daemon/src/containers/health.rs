//! Healthchecks at run time, with Docker's semantics (moby `daemon/health.go`).
//!
//! A running container whose `Config.Healthcheck` has a `CMD`/`CMD-SHELL` test gets one
//! monitor task; every other container gets none, so a container without a check costs
//! nothing. The task sleeps an interval, runs the probe as an exec through the
//! container's shim (the same path as `docker exec`, so the probe gets the container's
//! user, env, working directory, capabilities and seccomp profile, and Docker's
//! `exec_create`/`exec_start`/`exec_die` events), and folds the result into
//! `State.Health`:
//! - exit 0 makes the container `healthy` and resets the failing streak;
//! - anything else adds to the streak (not while still `starting` inside the start
//!   period), and `Retries` failures in a row make it `unhealthy`;
//! - a probe still running after `Timeout` is killed and counts as exit -1 with
//!   Docker's "Health check exceeded timeout" message.
//!
//! Each status change is a `health_status: <status>` event. The state is persisted
//! with the container record on every result, so `inspect` shows the last results after
//! a daemon restart; as Docker does, a restore or restart sets the status back to
//! `starting` (keeping the log), and stopping the monitor leaves it `unhealthy`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::exec::{ExecConfig, ExecStartConfig};
use super::model::{Config, Health, HealthcheckResult};
use super::{ContainerRecord, ContainerService, Entry};
use crate::DaemonError;

/// Longest probe output kept; the rest is dropped and `...` marks the cut.
const MAX_OUTPUT_LEN: usize = 4096;
/// Results kept in `State.Health.Log`.
const MAX_LOG_ENTRIES: usize = 5;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Docker's `MinimumDuration` for every healthcheck duration that is set.
const MINIMUM_DURATION_NS: i64 = 1_000_000;

/// Docker's health status words.
const STARTING: &str = "starting";
/// The last probe succeeded.
const HEALTHY: &str = "healthy";
/// `Retries` probes in a row failed, or the monitor stopped.
const UNHEALTHY: &str = "unhealthy";
/// The `health=` filter's word for a container without a healthcheck.
const NONE: &str = "none";

/// A container's healthcheck, with Docker's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HealthConfig {
    /// The probe's argv (the shell prepended for `CMD-SHELL`).
    command: Vec<String>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    start_interval: Duration,
    retries: i64,
}

fn nanos(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn duration_or(v: &Value, key: &str, default: Duration) -> Duration {
    match nanos(v, key) {
        n if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

impl HealthConfig {
    /// The probe to run, or `None` without a check (none set, `NONE`, an unknown type).
    pub(super) fn from_config(config: &Config) -> Option<HealthConfig> {
        let hc = config.healthcheck.as_ref()?;
        let test: Vec<String> = hc
            .get("Test")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        let (kind, rest) = test.split_first()?;
        let command = match kind.as_str() {
            "CMD" => rest.to_vec(),
            "CMD-SHELL" => {
                let shell: Vec<String> = config
                    .extra
                    .get("Shell")
                    .and_then(|s| serde_json::from_value(s.clone()).ok())
                    .filter(|s: &Vec<String>| !s.is_empty())
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                shell.into_iter().chain(rest.iter().cloned()).collect()
            }
            _ => return None,
        };
        if command.is_empty() {
            return None;
        }
        let retries = hc.get("Retries").and_then(Value::as_i64).unwrap_or(0);
        Some(HealthConfig {
            command,
            interval: duration_or(hc, "Interval", DEFAULT_INTERVAL),
            timeout: duration_or(hc, "Timeout", DEFAULT_TIMEOUT),
            start_period: duration_or(hc, "StartPeriod", Duration::ZERO),
            start_interval: duration_or(hc, "StartInterval", DEFAULT_START_INTERVAL),
            retries: if retries > 0 {
                retries
            } else {
                DEFAULT_RETRIES
            },
        })
    }

    /// Docker's `getInterval`: the start interval while starting inside the start
    /// period, else the interval.
    fn next_delay(&self, since_start: Duration, status: &str) -> Duration {
        if since_start >= self.start_period || status != STARTING {
            self.interval
        } else {
            self.start_interval
        }
    }
}

/// Checks a create request's healthcheck as Docker does.
///
/// # Errors
/// `InvalidArgument` with Docker's message for a duration under 1ms or negative retries.
pub(super) fn validate(config: &Config) -> Result<(), DaemonError> {
    let Some(hc) = config.healthcheck.as_ref() else {
        return Ok(());
    };
    for (key, name) in [
        ("Interval", "Interval"),
        ("Timeout", "Timeout"),
        ("StartPeriod", "StartPeriod"),
        ("StartInterval", "StartInterval"),
    ] {
        let n = nanos(hc, key);
        if n != 0 && n < MINIMUM_DURATION_NS {
            return Err(DaemonError::invalid(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if hc.get("Retries").and_then(Value::as_i64).unwrap_or(0) < 0 {
        return Err(DaemonError::invalid(
            "Retries in Healthcheck cannot be negative",
        ));
    }
    Ok(())
}

/// Docker's merge of the image's healthcheck into the container's: the image's whole
/// check when none was given, else its values for every field left zero.
pub(super) fn merge_image_healthcheck(config: &mut Config, image: Option<&Value>) {
    let Some(image) = image.filter(|v| v.is_object()) else {
        return;
    };
    let Some(mine) = config.healthcheck.as_mut().and_then(Value::as_object_mut) else {
        config.healthcheck = Some(image.clone());
        return;
    };
    let empty_test = mine
        .get("Test")
        .and_then(Value::as_array)
        .is_none_or(|t| t.is_empty());
    if empty_test && let Some(t) = image.get("Test") {
        mine.insert("Test".into(), t.clone());
    }
    for key in [
        "Interval",
        "Timeout",
        "StartPeriod",
        "StartInterval",
        "Retries",
    ] {
        let zero = mine.get(key).and_then(Value::as_i64).unwrap_or(0) == 0;
        if zero && let Some(v) = image.get(key) {
            mine.insert(key.into(), v.clone());
        }
    }
}

/// Go's `time.Duration.String()` (`1m30s`, `500ms`, `2.5s`), as Docker's messages
/// print durations.
fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let frac = |value: u128, unit: u128| {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = format!("{rest:0width$}", width = unit.ilog10() as usize);
            format!("{whole}.{}", digits.trim_end_matches('0'))
        }
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000));
    }
    let secs = ns / 1_000_000_000;
    let sub = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let s = frac(s * 1_000_000_000 + sub, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// Docker's `limitedBuffer`: the first 4 KiB of a probe's stdout and stderr together.
#[derive(Default)]
struct LimitedBuffer {
    buf: Vec<u8>,
    truncated: bool,
}

impl LimitedBuffer {
    fn write(&mut self, data: &[u8]) {
        let keep = MAX_OUTPUT_LEN
            .saturating_sub(self.buf.len())
            .min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            out.push_str("...");
        }
        out
    }
}

/// Reads an exec stream without a TTY (Docker's frames) to its end.
async fn read_frames(
    stream: &mut tokio::net::UnixStream,
    out: &mut LimitedBuffer,
) -> std::io::Result<()> {
    let mut header = [0u8; 8];
    let mut chunk = vec![0u8; 8192];
    loop {
        match stream.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut left = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        while left > 0 {
            let want = left.min(chunk.len());
            stream.read_exact(&mut chunk[..want]).await?;
            out.write(&chunk[..want]);
            left -= want;
        }
    }
}

/// Folds one result into the health state (Docker's `handleProbeResult`); returns
/// whether the status changed. `in_start_period`: the probe started within the start
/// period, where failures of a container still starting do not count.
fn record_result(
    health: &mut Health,
    result: HealthcheckResult,
    retries: i64,
    in_start_period: bool,
) -> bool {
    let old = health.status.clone();
    health.log.push(result);
    if health.log.len() > MAX_LOG_ENTRIES {
        let excess = health.log.len() - MAX_LOG_ENTRIES;
        health.log.drain(..excess);
    }
    let last = health.log.last().expect("just pushed");
    if last.exit_code == 0 {
        health.failing_streak = 0;
        health.status = HEALTHY.into();
    } else if !(health.status == STARTING && in_start_period) {
        health.failing_streak += 1;
        if health.failing_streak >= retries {
            health.status = UNHEALTHY.into();
        }
    }
    health.status != old
}

/// A running monitor: its task, and the probe exec in flight (forgotten when the
/// monitor is stopped mid-probe).
pub(super) struct HealthMonitor {
    task: tokio::task::AbortHandle,
    probe: Arc<Mutex<Option<String>>>,
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Docker's `State.Health` word for `ps` (`health: starting`, `healthy`, `unhealthy`).
pub(super) fn status_suffix(health: &Health) -> String {
    if health.status == STARTING {
        "health: starting".into()
    } else {
        health.status.clone()
    }
}

/// Docker's `health=` filter value of a container.
pub(super) fn filter_value(health: Option<&Health>) -> &str {
    health.map_or(NONE, |h| h.status.as_str())
}

/// Checks `health=` filter values.
///
/// # Errors
/// `InvalidArgument` in Docker's words for another value.
pub(super) fn validate_filter(value: &str) -> Result<(), DaemonError> {
    if matches!(value, NONE | STARTING | HEALTHY | UNHEALTHY) {
        return Ok(());
    }
    Err(DaemonError::invalid(format!(
        "invalid filter 'health={value}': invalid value for health ({value}): must be one of none, starting, healthy, unhealthy"
    )))
}

impl ContainerService {
    /// Docker's `initHealthMonitor`: for a container that just started (or was
    /// restored) with a healthcheck, sets the status to `starting` (keeping the log)
    /// and starts its monitor. Does nothing for a container without a check.
    pub(super) fn start_health_monitor(&self, entry: &Arc<Entry>) {
        self.spawn_health_monitor(entry, true);
    }

    /// Docker's `updateHealthMonitor` around pause: a paused container is not probed
    /// (its monitor stops and it reads `unhealthy`); unpausing resumes the monitor
    /// without resetting the status, which the next probe decides.
    pub(super) fn pause_health_monitor(&self, entry: &Arc<Entry>, paused: bool) {
        if paused {
            self.stop_health_monitor(entry);
        } else {
            self.spawn_health_monitor(entry, false);
        }
    }

    fn spawn_health_monitor(&self, entry: &Arc<Entry>, reset: bool) {
        let Some(hc) = HealthConfig::from_config(&entry.record().config) else {
            return;
        };
        let Some(me) = self.me.upgrade() else { return };
        self.stop_health_monitor(entry);
        entry.edit(|r| {
            let h = r.state.health.get_or_insert_with(Health::default);
            if reset || h.status.is_empty() {
                h.status = STARTING.into();
                h.failing_streak = 0;
            }
        });
        let probe = Arc::new(Mutex::new(None));
        let task = {
            let entry = entry.clone();
            let probe = probe.clone();
            tokio::spawn(async move { me.health_loop(entry, hc, probe).await })
        };
        *entry.health.lock().expect("health lock") = Some(HealthMonitor {
            task: task.abort_handle(),
            probe,
        });
    }

    /// Stops a container's monitor, if it has one: its probe ends with the container
    /// or is killed, and the status becomes `unhealthy`, as Docker leaves it.
    pub(super) fn stop_health_monitor(&self, entry: &Entry) {
        let Some(monitor) = entry.health.lock().expect("health lock").take() else {
            return;
        };
        monitor.task.abort();
        if let Some(exec) = monitor.probe.lock().expect("probe lock").take() {
            if let Some((pid, None)) = self.exec_outcome(&exec) {
                kill_probe(pid);
            }
            self.forget_exec(&exec);
        }
        entry.edit(|r| {
            if let Some(h) = r.state.health.as_mut() {
                h.status = UNHEALTHY.into();
            }
        });
    }

    async fn health_loop(
        self: Arc<Self>,
        entry: Arc<Entry>,
        hc: HealthConfig,
        probe: Arc<Mutex<Option<String>>>,
    ) {
        let started = parse_time(&entry.record().state.started_at).unwrap_or_else(Utc::now);
        loop {
            let since_start = (Utc::now() - started).to_std().unwrap_or_default();
            let status = entry
                .record()
                .state
                .health
                .map(|h| h.status)
                .unwrap_or_default();
            tokio::time::sleep(hc.next_delay(since_start, &status)).await;
            let r = entry.record();
            if !r.state.running {
                return;
            }
            // Docker stops probing a paused container.
            if r.state.paused {
                continue;
            }
            let start = Utc::now();
            let (exit_code, output) = match self.probe_once(&r, &hc, &probe).await {
                Ok(outcome) => outcome,
                Err(message) => {
                    tracing::warn!(container = %r.id, error = %message, "health check could not run");
                    (-1, message)
                }
            };
            let result = HealthcheckResult {
                start: crate::images::go_time(start),
                end: crate::images::go_time(Utc::now()),
                exit_code,
                output,
            };
            let in_start_period = (start - started).to_std().unwrap_or_default() < hc.start_period;
            // The monitor may have been stopped while this probe ran.
            if !entry.record().state.running {
                return;
            }
            let changed = entry.edit(|r| {
                let h = r.state.health.get_or_insert_with(Health::default);
                record_result(h, result, hc.retries, in_start_period).then(|| h.status.clone())
            });
            let _ = self.persist(&entry);
            if let Some(status) = changed {
                tracing::debug!(container = %r.id, status = %status, "health status changed");
                self.event(&entry.record(), &format!("health_status: {status}"), &[]);
            }
        }
    }

    /// Runs the probe once as an exec: its exit code and output, or why it could not
    /// run (Docker records that as exit -1 with the message).
    async fn probe_once(
        &self,
        r: &ContainerRecord,
        hc: &HealthConfig,
        probe: &Mutex<Option<String>>,
    ) -> Result<(i32, String), String> {
        let exec_id = self
            .exec_create(
                &r.id,
                ExecConfig {
                    attach_stdout: true,
                    attach_stderr: true,
                    cmd: Some(hc.command.clone()),
                    ..ExecConfig::default()
                },
            )
            .map_err(|e| e.message().to_string())?;
        *probe.lock().expect("probe lock") = Some(exec_id.clone());
        let outcome = self.run_probe(&r.id, &exec_id, hc).await;
        *probe.lock().expect("probe lock") = None;
        self.forget_exec(&exec_id);
        outcome
    }

    async fn run_probe(
        &self,
        container: &str,
        exec_id: &str,
        hc: &HealthConfig,
    ) -> Result<(i32, String), String> {
        let mut stream = match self.exec_start(exec_id, &ExecStartConfig::default()).await {
            Ok(Some(s)) => s.stream,
            Ok(None) => return Err("health check exec started detached".into()),
            Err(e) => return Err(e.message().to_string()),
        };
        let mut output = LimitedBuffer::default();
        let timed_out = tokio::time::timeout(hc.timeout, read_frames(&mut stream, &mut output))
            .await
            .is_err();
        if timed_out {
            if let Some((pid, None)) = self.exec_outcome(exec_id) {
                kill_probe(pid);
            }
            self.exec_finished(exec_id).await;
            let limit = go_duration(hc.timeout);
            let out = output.text();
            let message = if out.is_empty() {
                format!("Health check exceeded timeout ({limit})")
            } else {
                format!("Health check exceeded timeout ({limit}): {out}")
            };
            return Ok((-1, message));
        }
        drop(stream);
        self.exec_finished(exec_id).await;
        match self.exec_outcome(exec_id) {
            Some((_, Some(code))) => Ok((code, output.text())),
            _ => Err(format!(
                "healthcheck for container {container} has no exit code"
            )),
        }
    }
}

/// Kills a probe that ran out of time (its PID is in the host's namespace). Only
/// called while the daemon's record says the probe has not ended: the shim, its
/// parent, has not reaped it, or has only just, so the PID is still the probe's.
fn kill_probe(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(hc: Value) -> Config {
        Config {
            healthcheck: Some(hc),
            ..Config::default()
        }
    }

    fn result(code: i32) -> HealthcheckResult {
        HealthcheckResult {
            exit_code: code,
            ..HealthcheckResult::default()
        }
    }

    fn starting() -> Health {
        Health {
            status: STARTING.into(),
            ..Health::default()
        }
    }

    #[test]
    fn cmd_shell_runs_through_the_default_shell_with_docker_defaults() {
        let hc =
            HealthConfig::from_config(&config(json!({"Test": ["CMD-SHELL", "true"]}))).unwrap();
        assert_eq!(hc.command, vec!["/bin/sh", "-c", "true"]);
        assert_eq!(hc.interval, DEFAULT_INTERVAL);
        assert_eq!(hc.timeout, DEFAULT_TIMEOUT);
        assert_eq!(hc.retries, DEFAULT_RETRIES);
    }

    #[test]
    fn cmd_runs_its_argv_and_none_means_no_monitor() {
        let hc = HealthConfig::from_config(&config(
            json!({"Test": ["CMD", "ls", "/"], "Interval": 1_000_000_000i64, "Retries": 2}),
        ))
        .unwrap();
        assert_eq!(hc.command, vec!["ls", "/"]);
        assert_eq!(hc.interval, Duration::from_secs(1));
        assert_eq!(hc.retries, 2);
        assert!(HealthConfig::from_config(&config(json!({"Test": ["NONE"]}))).is_none());
        assert!(HealthConfig::from_config(&config(json!({"Interval": 5}))).is_none());
        assert!(HealthConfig::from_config(&Config::default()).is_none());
    }

    #[test]
    fn image_shell_is_used_for_cmd_shell() {
        let mut c = config(json!({"Test": ["CMD-SHELL", "x"]}));
        c.extra.insert("Shell".into(), json!(["/bin/bash", "-ec"]));
        let hc = HealthConfig::from_config(&c).unwrap();
        assert_eq!(hc.command, vec!["/bin/bash", "-ec", "x"]);
    }

    #[test]
    fn success_makes_healthy_and_retries_failures_make_unhealthy() {
        let mut h = starting();
        assert!(record_result(&mut h, result(0), 2, false));
        assert_eq!(h.status, HEALTHY);
        assert!(!record_result(&mut h, result(1), 2, false));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 1));
        assert!(record_result(&mut h, result(1), 2, false));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        assert!(record_result(&mut h, result(0), 2, false));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_while_starting() {
        let mut h = starting();
        for _ in 0..5 {
            assert!(!record_result(&mut h, result(1), 1, true));
        }
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        assert!(record_result(&mut h, result(1), 1, false));
        assert_eq!(h.status, UNHEALTHY);
    }

    #[test]
    fn log_keeps_the_last_five_results() {
        let mut h = starting();
        for code in 0..7 {
            record_result(&mut h, result(code), 100, false);
        }
        let codes: Vec<i32> = h.log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, vec![2, 3, 4, 5, 6]);
    }

    #[test]
    fn output_is_cut_at_four_kib_with_an_ellipsis() {
        let mut b = LimitedBuffer::default();
        b.write(&[b'a'; 4000]);
        b.write(&[b'b'; 200]);
        let t = b.text();
        assert_eq!(t.len(), 4096 + 3);
        assert!(t.ends_with("bbb..."));
        let mut small = LimitedBuffer::default();
        small.write(b"ok\n");
        assert_eq!(small.text(), "ok\n");
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
    }

    #[test]
    fn start_interval_applies_only_while_starting_in_the_start_period() {
        let hc = HealthConfig {
            command: vec!["true".into()],
            interval: Duration::from_secs(30),
            timeout: DEFAULT_TIMEOUT,
            start_period: Duration::from_secs(10),
            start_interval: Duration::from_secs(1),
            retries: 3,
        };
        assert_eq!(
            hc.next_delay(Duration::ZERO, STARTING),
            Duration::from_secs(1)
        );
        assert_eq!(
            hc.next_delay(Duration::ZERO, HEALTHY),
            Duration::from_secs(30)
        );
        assert_eq!(
            hc.next_delay(Duration::from_secs(11), STARTING),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn create_refuses_durations_under_a_millisecond_and_negative_retries() {
        let e = validate(&config(json!({"Test": ["CMD", "true"], "Interval": 10}))).unwrap_err();
        assert_eq!(
            e.message(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        let e = validate(&config(json!({"Retries": -1}))).unwrap_err();
        assert_eq!(e.message(), "Retries in Healthcheck cannot be negative");
        assert!(validate(&config(json!({"Interval": 1_000_000}))).is_ok());
    }

    #[test]
    fn image_healthcheck_fills_what_the_container_left_zero() {
        let image = json!({"Test": ["CMD", "a"], "Interval": 5, "Retries": 4});
        let mut c = config(json!({"Test": [], "Interval": 7}));
        merge_image_healthcheck(&mut c, Some(&image));
        let hc = c.healthcheck.unwrap();
        assert_eq!(hc["Test"], json!(["CMD", "a"]));
        assert_eq!(hc["Interval"], json!(7));
        assert_eq!(hc["Retries"], json!(4));
        let mut none = Config::default();
        merge_image_healthcheck(&mut none, Some(&image));
        assert_eq!(none.healthcheck, Some(image));
    }

    #[test]
    fn ps_words_and_filter_values_are_dockers() {
        assert_eq!(status_suffix(&starting()), "health: starting");
        assert_eq!(filter_value(None), "none");
        assert_eq!(filter_value(Some(&starting())), "starting");
        assert!(validate_filter("healthy").is_ok());
        assert!(validate_filter("sick").is_err());
    }
}
