//! The figures do not move when the code under them does: `report.json` of every committed result set (each
//! directory under results/ that holds worker results, reported on its own files; the whole tree as one report;
//! and the scale benchmark's synthetic results at a small size), as the current code writes it, must match the
//! digest recorded in `bench/tests/report-digests.txt` when that file was last written.
//!
//! A change that means to change figures (a new statistic, a fixed bug) writes the file again, and its commit
//! says why: `SHAREBENCH_WRITE_DIGESTS=1 cargo test --test report_stability`. Any other change (a faster
//! decoder, a parallel sweep, a split module) must leave every line as it is. To see what moved in a set:
//! `sharebench report DIR/*.gz --keep-going --json` with the old and the new binary, and diff the two.

#[path = "../examples/synth_results.rs"]
mod synth_results;

use sharebench::load::files::{is_own_output, is_result_name};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn digests_file() -> PathBuf {
    root().join("bench/tests/report-digests.txt")
}

/// Every directory under `dir` with worker result files directly in it, and those files, sorted.
fn result_sets(dir: &Path, sets: &mut BTreeMap<PathBuf, Vec<String>>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            result_sets(&path, sets);
        } else if is_result_name(&path) && !is_own_output(&path) {
            sets.entry(dir.to_path_buf()).or_default().push(path.display().to_string());
        }
    }
}

/// The report.json of one set's files. The committed sets are named relative to the checkout (the working
/// directory is its root), so nothing machine-specific enters; only the synthetic set's temporary directory is
/// taken out. The results' own text is never rewritten: a command line recorded on the device stays as it is.
fn report_json(files: &[String], temporary: Option<&Path>) -> String {
    let loaded = sharebench::load::load(files, true).unwrap();
    let report = sharebench::report::model::build(&loaded);
    let json = serde_json::to_string(&report).unwrap();
    match temporary {
        Some(dir) => json.replace(&format!("{}/", dir.display()), ""),
        None => json,
    }
}

fn digest(files: &[String], temporary: Option<&Path>) -> String {
    format!("{:016x}", sharebench::units::fnv1a(report_json(files, temporary).bytes()))
}

/// `relative/dir digest`, one line a set.
fn current_digests() -> String {
    // One test in this binary, so changing the working directory disturbs no other.
    std::env::set_current_dir(root()).unwrap();
    let mut sets = BTreeMap::new();
    result_sets(Path::new("results"), &mut sets);
    // The whole tree as one report too: it is where the plans' studies and the many-run layout come in.
    let mut out = format!("results(whole-tree) {}\n", digest(&["results".to_string()], None));
    for (dir, files) in &sets {
        out += &format!("{} {}\n", dir.display(), digest(files, None));
    }
    // Many long lanes on one device clock: the sweep and the merge at a size the committed sets do not reach.
    let synthetic = tempfile::tempdir().unwrap();
    synth_results::generate(&synthetic.path().join("in"), 16, 5_000);
    let inputs = [synthetic.path().join("in").display().to_string()];
    out += &format!("synthetic(16x5000) {}\n", digest(&inputs, Some(synthetic.path())));
    out
}

#[test]
fn every_committed_result_set_reports_the_figures_it_reported_before() {
    let now = current_digests();
    if std::env::var_os("SHAREBENCH_WRITE_DIGESTS").is_some() {
        std::fs::write(digests_file(), &now).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(digests_file()).unwrap();
    let before: BTreeMap<&str, &str> = recorded.lines().filter_map(|l| l.split_once(' ')).collect();
    let after: BTreeMap<&str, &str> = now.lines().filter_map(|l| l.split_once(' ')).collect();
    let moved: Vec<String> = before
        .keys()
        .chain(after.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|set| before.get(*set) != after.get(*set))
        .map(|set| {
            format!("{set}: {} -> {}", before.get(set).unwrap_or(&"(none)"), after.get(set).unwrap_or(&"(none)"))
        })
        .collect();
    assert!(
        moved.is_empty(),
        "report.json changed for {} committed result set(s):\n{}\nIf the change is meant, write the digests again \
         (SHAREBENCH_WRITE_DIGESTS=1 cargo test --test report_stability) and say why in the commit.",
        moved.len(),
        moved.join("\n")
    );
}
