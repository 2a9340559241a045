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
        summary += &format!("\nwrote {} files to {}: {}\n", files.len(), dir.display(), files.join(", "));
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
    }
    let incomplete = !report.excluded.is_empty() || report.analysis.groups.iter().any(|g| !g.complete);
    Ok(if incomplete { exit::INCOMPLETE } else { exit::OK })
}
