//! Writes labelled spot-market history from the simulator as CSV on stdout (same as
//! `spot-optimizer export-history`): the training data of the interruption-risk model.
//!
//! ```text
//! cargo run -p spot-cloud --no-default-features --example export_history -- [SEED] [DAYS] > history.csv
//! ```

use std::io::{self, BufWriter};
use std::process::ExitCode;

fn arg<T: std::str::FromStr>(v: Option<String>, name: &str, default: T) -> Result<T, String> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| format!("{name} must be a non-negative integer, got `{s}`")),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let parsed =
        arg(args.next(), "SEED", 42u64).and_then(|s| Ok((s, arg(args.next(), "DAYS", 61u32)?)));
    let (seed, days) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("export_history: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = BufWriter::new(io::stdout().lock());
    match spot_cloud::sim::history::write_csv(seed, days, &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("export_history: {e}");
            ExitCode::FAILURE
        }
    }
}
