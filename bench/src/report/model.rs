//! The report document (`report.json`): every figure of the analysis, with the inputs and exclusions, versioned.

use crate::analysis::{self, Analysis};
use crate::load::{Exclusion, Loaded};
use serde::Serialize;

pub const FORMAT: &str = "sharebench-report";
/// 2: warnings are objects (kind, run, subject, text); groups carry their start time and command.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub schema_version: u32,
    pub sharebench_version: &'static str,
    /// Sources read (files, and stdin).
    pub sources: usize,
    pub workers: usize,
    pub excluded: Vec<Exclusion>,
    /// What loading did that a reader should know (outputs skipped, links not followed, runs kept apart).
    pub notes: Vec<String>,
    /// The plans among the inputs, each with its capacity answer; the runs of their points are listed under them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub studies: Vec<crate::load::studies::Study>,
    #[serde(flatten)]
    pub analysis: Analysis,
}

/// A chart of one run's section, with its files' paths relative to the report directory.
#[derive(Debug, Clone)]
pub struct ChartFile {
    pub run_id: String,
    pub gpu_uuid: String,
    pub title: String,
    pub svg: String,
    pub png: String,
}

pub fn build(loaded: &Loaded) -> Report {
    Report {
        format: FORMAT,
        schema_version: SCHEMA_VERSION,
        sharebench_version: env!("CARGO_PKG_VERSION"),
        sources: loaded.sources,
        workers: loaded.workers.len(),
        excluded: loaded.excluded.clone(),
        notes: loaded.notes.clone(),
        studies: loaded.plans.iter().filter_map(|p| super::plan::study(&p.dir, &p.json)).collect(),
        analysis: analysis::analyze(&loaded.workers),
    }
}

/// A group's workload in a few words: its kernel, or the foreign command it ran (cut to 60 characters).
pub fn describe_workload(shape: Option<&crate::workload::KernelShape>, command: Option<&[String]>) -> String {
    match (command, shape) {
        (Some(command), _) => {
            let text = command.join(" ");
            let cut: String = text.chars().take(60).collect();
            format!("command `{cut}{}`", if cut.len() < text.len() { "..." } else { "" })
        }
        (None, Some(shape)) => shape.describe(),
        (None, None) => "unknown workload".into(),
    }
}
