//! Writes labelled spot-market history from the simulator as CSV on stdout: the training
//! data of the interruption-risk model (`onnx/train.py`, contract in `onnx/CONTRACT.md`).
//!
//! ```text
//! cargo run -p spot-cloud --no-default-features --example export_history -- [SEED] [DAYS] > history.csv
//! ```
//!
//! One row per (instance type, AZ, hour), grouped by pool, oldest first (the order of
//! [`spot_cloud::sim::history::export`]). Static instance facts come from the embedded
//! catalog so the trainer needs nothing else. `placement_score` is the capacity signal
//! the product can observe (AWS Spot placement score, 1–10): the simulator's hidden
//! capacity level quantised to ten buckets. `capacity` (the hidden truth) is exported for
//! analysis only; the trainer must not use it as a feature.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use spot_cloud::sim::catalog::{az_index, Catalog};
use spot_cloud::sim::history::{export, HISTORY_REGION};

const HEADER: &str = "time,instance_type,family,category,vcpu,memory_mib,gpus,burstable,\
az,az_index,spot_price,on_demand_price,capacity,placement_score,interrupted_next_hour";

/// Spot placement score (1–10) the simulator reports for a capacity level in [0, 1].
fn placement_score(capacity: f64) -> u8 {
    (capacity * 10.0).ceil().clamp(1.0, 10.0) as u8
}

fn parse_arg<T: std::str::FromStr>(
    arg: Option<String>,
    name: &str,
    default: T,
) -> Result<T, String> {
    match arg {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| format!("{name} must be a non-negative integer, got `{s}`")),
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let seed: u64 = parse_arg(args.next(), "SEED", 42)?;
    let days: u32 = parse_arg(args.next(), "DAYS", 61)?;
    let catalog = Catalog::embedded();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    // A closed stdout (`| head`) ends the export quietly; other write errors are reported.
    let io_err = |e: io::Error| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            String::new()
        } else {
            format!("writing CSV: {e}")
        }
    };
    writeln!(out, "{HEADER}").map_err(io_err)?;
    for row in export(seed, days) {
        let Some(t) = catalog.get(&row.instance_type) else {
            return Err(format!("{} is not in the catalog", row.instance_type));
        };
        let category = serde_json::to_value(t.category)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "other".to_owned());
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{:.6},{},{}",
            row.time.format("%Y-%m-%dT%H:%M:%SZ"),
            row.instance_type,
            t.family,
            category,
            t.vcpu,
            t.memory_mib,
            t.gpus,
            u8::from(t.burstable),
            row.az,
            az_index(HISTORY_REGION, &row.az).unwrap_or(0),
            row.spot_price,
            row.on_demand_price,
            row.capacity,
            placement_score(row.capacity),
            u8::from(row.interrupted_next_hour),
        )
        .map_err(io_err)?;
    }
    out.flush().map_err(io_err)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_empty() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("export_history: {e}");
            ExitCode::FAILURE
        }
    }
}
