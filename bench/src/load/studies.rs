//! Studies in a results tree: a capacity plan (`plan.json`) is one study, the runs of its points belong to it,
//! and its answer is the plan's own (how many Pods per GPU meet the SLO per mode), not each point's. `load` keeps
//! each plan file it walked past as it is ([`PlanFile`]); the report turns it into a [`Study`] with the plan's
//! own wording (`report::plan::study`).

use serde::Serialize;

/// A `plan.json` found among the inputs, with the directory that holds it.
#[derive(Debug, Clone)]
pub struct PlanFile {
    pub dir: String,
    pub json: serde_json::Value,
}

/// One plan of the tree, as a report lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Study {
    /// The plan's directory, as the walk reached it: every result under it is one of its points.
    pub dir: String,
    /// `plan inference, SLO p99 5 ms, 14 points`.
    pub title: String,
    /// The capacity answer, one line per mode.
    pub answer: Vec<String>,
}

impl Study {
    /// Whether a result read from `source` is one of this plan's points.
    pub fn holds(&self, source: &str) -> bool {
        source.strip_prefix(&self.dir).is_some_and(|rest| rest.starts_with('/'))
    }
}
