//! Writes a finished `compare --observer-effect` run's observer table again with the current code (its
//! `observer-effect.md` and `.json`), from the run directory's `results/` and `alone/`, compressed or not.
//! Usage: cargo run --release --example observer_table RUN_DIR

fn main() {
    let Some(dir) = std::env::args().nth(1).map(std::path::PathBuf::from) else {
        eprintln!("usage: observer_table RUN_DIR (a compare --observer-effect run directory)");
        std::process::exit(2);
    };
    let results = dir.join("results").display().to_string();
    match sharebench::commands::compare::observer_effect(&results, &dir) {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("observer_table: {}", e.problem);
            std::process::exit(1);
        }
    }
}
