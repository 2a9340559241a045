//! Studies in a results tree: a capacity plan (`plan.json`) is one study, the runs of its points belong to it,
//! and its answer is the plan's own (how many Pods per GPU meet the SLO per mode), not each point's. Pure: a
//! plan's JSON in, its entry out; `load` reads the files its walk found.

use serde::Serialize;

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

/// The study a plan's `plan.json` describes (`None`: not a plan sharebench wrote).
pub fn from_plan_json(dir: &str, plan: &serde_json::Value) -> Option<Study> {
    if plan.get("format")?.as_str()? != "sharebench-plan" {
        return None;
    }
    let points = plan.get("points")?.as_array()?;
    let name = plan.pointer("/scenario/name").and_then(|n| n.as_str()).unwrap_or("?");
    let slo = plan.get("slo_p99_ms").and_then(|s| s.as_f64()).unwrap_or(f64::NAN);
    let title = format!("plan {}, SLO p99 {slo} ms, {} points", crate::units::printable(name), points.len());
    let mut answer = Vec::new();
    for entry in plan.get("capacity")?.as_array()? {
        let (Some(mode), fits) = (entry.get(0).and_then(|m| m.as_str()), entry.get(1).and_then(|n| n.as_u64())) else {
            continue;
        };
        let tried: Vec<u64> = points
            .iter()
            .filter(|p| p.get("mode").and_then(|m| m.as_str()) == Some(mode))
            .filter_map(|p| p.get("pods").and_then(|n| n.as_u64()))
            .collect();
        let pods = |n: u64| if n == 1 { "1 Pod per GPU meets".to_string() } else { format!("{n} Pods per GPU meet") };
        let mode = crate::units::printable(mode);
        answer.push(match (fits, fits.and_then(|n| tried.iter().copied().filter(|&t| t > n).min())) {
            (Some(n), None) => format!("{mode}: at least {} the SLO (the most tried: more may fit)", pods(n)),
            (Some(n), Some(failed)) => format!("{mode}: {} the SLO; {failed} did not", pods(n)),
            (None, _) => format!("{mode}: not even one Pod meets the SLO"),
        });
    }
    Some(Study { dir: dir.to_string(), title, answer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_one_study_with_its_capacity_answer_and_its_points_under_it() {
        let plan = serde_json::json!({
            "format": "sharebench-plan",
            "scenario": {"name": "inference"},
            "slo_p99_ms": 5.0,
            "points": [
                {"mode": "timeslice", "pods": 1}, {"mode": "timeslice", "pods": 2}, {"mode": "timeslice", "pods": 4},
                {"mode": "mps", "pods": 1}, {"mode": "mps", "pods": 8}, {"mode": "solo", "pods": 1}, {"mode": "solo", "pods": 2},
            ],
            "capacity": [["timeslice", 2], ["mps", 8], ["other", null], ["solo", 1]],
        });
        let s = from_plan_json("results/plan-inference", &plan).unwrap();
        assert_eq!(s.title, "plan inference, SLO p99 5 ms, 7 points");
        assert_eq!(
            s.answer,
            [
                "timeslice: 2 Pods per GPU meet the SLO; 4 did not",
                "mps: at least 8 Pods per GPU meet the SLO (the most tried: more may fit)",
                "other: not even one Pod meets the SLO",
                "solo: 1 Pod per GPU meets the SLO; 2 did not",
            ]
        );
        assert!(s.holds("results/plan-inference/points/mps-8/r1/results.jsonl.gz"));
        assert!(!s.holds("results/plan-inference-k8s/points/mps-8/r1/results.jsonl.gz"));
        assert_eq!(from_plan_json("x", &serde_json::json!({"format": "sharebench-result"})), None);
    }
}
