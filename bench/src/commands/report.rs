//! `sharebench report`: load results, analyse, print the summary, write the report directory.

use crate::cli::ReportArgs;
use crate::error::{exit, Error, Result};
use crate::fsio::Overwrite;
use crate::load;
use crate::report::{model, terminal, write};
use std::path::Path;

/// Loads, analyses and (with `out`) writes; returns the report and the summary text. `notes`: what the caller
/// knows failed (e.g. compare's phases), added to the report's warnings.
pub fn produce(
    inputs: &[String],
    keep_going: bool,
    out: Option<&Path>,
    overwrite: Overwrite,
    notes: &[crate::analysis::Warning],
) -> Result<(model::Report, String)> {
    let loaded = load::load(inputs, keep_going)?;
    let mut report = model::build(&loaded);
    report.analysis.warnings.extend(notes.iter().cloned());
    let mut summary = terminal::render(&report);
    if let Some(dir) = out {
        let files = write::write_all(&report, &loaded, dir, overwrite)?;
        summary += &format!("\n{}\n", terminal::wrote_line(dir, &files));
    }
    Ok((report, summary))
}

pub fn execute(args: &ReportArgs) -> Result<i32> {
    let (report, summary) =
        produce(&args.inputs, args.keep_going, args.out.as_deref(), Overwrite::from_force(args.force), &[])?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| Error::new(e.to_string()))?);
    } else {
        print!("{summary}");
        if args.out.is_none() {
            println!("\n(nothing written: pass --out DIR for report.md, report.html, report.json, summary.csv, trace.json and the charts)");
        }
    }
    let why = incomplete(&report);
    if let Some(why) = &why {
        eprintln!("sharebench report: exit {}: {why}", exit::INCOMPLETE);
    }
    Ok(if why.is_some() { exit::INCOMPLETE } else { exit::OK })
}

/// Why the report's exit code is 5 (incomplete), in a sentence; `None`: complete.
pub fn incomplete(report: &model::Report) -> Option<String> {
    let runs = |pick: &dyn Fn(&crate::analysis::GroupSummary) -> bool| {
        let mut ids: Vec<&str> =
            report.analysis.groups.iter().filter(|g| pick(g)).map(|g| g.key.run_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let all = runs(&|_| true).len();
    let partial = runs(&|g| !g.complete);
    let mut parts = Vec::new();
    if !partial.is_empty() {
        let shown: Vec<&str> = partial.iter().take(3).copied().collect();
        let more = if partial.len() > 3 { format!(" and {} more", partial.len() - 3) } else { String::new() };
        parts.push(format!(
            "{} of {all} run(s) have workers missing or stopped early ({}{more}): their figures cover what was recorded",
            partial.len(),
            shown.join(", ")
        ));
    }
    if !report.excluded.is_empty() {
        parts.push(format!("{} input(s) excluded (listed above)", report.excluded.len()));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}
