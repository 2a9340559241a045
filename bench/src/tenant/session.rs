//! One command's measurement from start to result, apart from the GPU and the barrier (which its worker
//! drives between the steps): start it, wait until it is ready, follow it through the window, stop it, and turn
//! what it reported into a report and a lane of the result format.

use super::supervise::{self, Ending, Readiness, Reported, Tenant};
use super::window::{self, Window};
use crate::error::{Error, Result};
use crate::result::tenant::TenantReport;
use crate::result::{histogram, records, LaneResult};
use std::path::Path;
use std::time::{Duration, Instant};

/// How the command is run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub ready_timeout: Duration,
    pub stop_grace: Duration,
    /// Whether it speaks the protocol (else it is ready as soon as it starts, and a neighbour only).
    pub reports: bool,
    /// Length of the measured window.
    pub window: Duration,
}

/// A command being measured.
pub struct Session {
    tenant: Tenant,
    settings: Settings,
    launched: Instant,
    window: Option<Window>,
    /// Seconds into the window at which the command ended by itself, if it did.
    ended_early_s: Option<f64>,
    pub report: TenantReport,
}

/// What a finished session hands back.
pub struct Finished {
    pub report: TenantReport,
    pub lane: LaneResult,
    /// What went wrong, each in a sentence; empty when the run is complete.
    pub problems: Vec<String>,
}

impl Session {
    pub fn start(command: &[String], env: &[(String, String)], settings: Settings, scratch: &Path) -> Result<Session> {
        let tenant = Tenant::start(command, env, scratch)?;
        Ok(Session {
            tenant,
            settings,
            launched: Instant::now(),
            window: None,
            ended_early_s: None,
            report: TenantReport::new(settings.reports),
        })
    }

    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Waits for `ready` (at once for a command that does not report); false when it never came.
    pub fn until_ready(&mut self) -> bool {
        if !self.settings.reports {
            return true;
        }
        match self.tenant.wait_ready(self.settings.ready_timeout) {
            Readiness::Ready { after } => {
                self.report.ready_after_s = Some(after.as_secs_f64());
                true
            }
            Readiness::ExitedFirst(_) => {
                self.report.ending = "exited-before-ready".into();
                false
            }
            Readiness::TimedOut => {
                self.report.ending = "never-ready".into();
                false
            }
            Readiness::Stopped => {
                self.report.ending = "stopped-before-ready".into();
                false
            }
        }
    }

    /// Tells the command the window and follows it to the window's end; false when it ended before that.
    pub fn measure(&mut self, window: Window) -> Result<bool> {
        self.window = Some(window);
        self.tenant.announce(window)?;
        let ended = self.tenant.follow_until(window.end_unix_ns);
        self.ended_early_s =
            ended.map(|_| crate::host::unix_now_ns().saturating_sub(window.start_unix_ns) as f64 / 1e9);
        Ok(ended.is_none())
    }

    /// Stops the command now (SIGTERM, SIGKILL after the grace period).
    pub fn stop(&mut self) -> Ending {
        let ending = self.tenant.stop(self.settings.stop_grace);
        if ending == Ending::Killed {
            eprintln!(
                "sharebench run: warning: the command ignored SIGTERM and was killed after {:.1} s",
                self.settings.stop_grace.as_secs_f64()
            );
        }
        ending
    }

    /// Stops the command and turns what it reported in the window into the report and a lane for `worker`.
    pub fn finish(mut self, worker: u32) -> Result<Finished> {
        let ending = self.stop();
        record_ending(&mut self.report, ending);
        self.report.ran_s = self.launched.elapsed().as_secs_f64();
        let window = self.window.unwrap_or(Window { start_unix_ns: 0, end_unix_ns: 0 });
        let lane = requests_lane(&self.tenant.reported, &mut self.report, worker, window)?;
        let problems = problems(&self.report, self.settings, self.ended_early_s);
        Ok(Finished { report: self.report, lane, problems })
    }
}

/// What went wrong with the command, for the result's status.
fn problems(report: &TenantReport, settings: Settings, early: Option<f64>) -> Vec<String> {
    let mut out = Vec::new();
    match report.ending.as_str() {
        "never-ready" => out.push(format!(
            "the command never reported ready within --ready-timeout {:.0} s (it was stopped after {:.1} s)",
            settings.ready_timeout.as_secs_f64(),
            report.ran_s
        )),
        "exited-before-ready" => out.push(format!(
            "the command ended ({}) after {:.1} s, before it reported ready",
            report.exit_status.as_deref().unwrap_or("?"),
            report.ran_s
        )),
        _ => {}
    }
    if let Some(at) = early {
        out.push(format!(
            "the command ended ({}) {at:.1} s into the {:.1} s window",
            report.exit_status.as_deref().unwrap_or("?"),
            settings.window.as_secs_f64()
        ));
    }
    if report.protocol_errors > 0 {
        out.push(format!(
            "{} protocol line(s) of the command were not understood (first: {}); every valid line was kept",
            report.protocol_errors,
            report.protocol_error_lines.first().map(String::as_str).unwrap_or("?")
        ));
    }
    out
}

/// How a command ended, in the report's words: `exited`, `terminated` or `killed`, and its exit status.
pub fn describe_ending(ending: Ending) -> (&'static str, Option<String>) {
    match ending {
        Ending::Exited(status) => ("exited", Some(supervise::describe_status(&status))),
        Ending::Terminated(status) => ("terminated", Some(supervise::describe_status(&status))),
        Ending::Killed => ("killed", Some("killed by signal 9 (SIGKILL) after ignoring SIGTERM".to_string())),
    }
}

/// Fills the report with how the command ended.
fn record_ending(report: &mut TenantReport, ending: Ending) {
    let (how, status) = describe_ending(ending);
    if report.ending.is_empty() {
        report.ending = how.into();
    }
    report.exit_status = status;
}

/// Moves what the command reported into the report, cut to `window`, and returns its lane.
pub fn requests_lane(
    reported: &Reported,
    report: &mut TenantReport,
    worker: u32,
    window: Window,
) -> Result<LaneResult> {
    let cut = window::apply(&reported.requests, window);
    report.requests_in_window = cut.records.len() as u64;
    report.requests_before_window = cut.before;
    report.requests_after_window = cut.after;
    (report.items, report.tokens, report.prompt_tokens) = (cut.items, cut.tokens, cut.prompt_tokens);
    report.ttft_histogram = cut.ttft.as_ref().map(histogram::to_base64);
    report.tpot_histogram = cut.tpot.as_ref().map(histogram::to_base64);
    report.protocol_errors = reported.error_count;
    report.protocol_error_lines = reported.errors.iter().map(|e| format!("line {}: {}", e.line, e.error)).collect();
    let encoded = records::encode(&cut.records, window.start_unix_ns)
        .map_err(|e| Error::new(format!("encoding the command's requests: {e}")))?;
    Ok(LaneResult {
        worker,
        kernels: encoded.count,
        latency_histogram: histogram::to_base64(&cut.histogram),
        records: encoded,
        device_stamps: false,
    })
}
