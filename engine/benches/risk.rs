//! Risk model latency/throughput: feature extraction, heuristic, and `onnx/risk-v1.onnx`
//! on tract and (when a libonnxruntime is found) onnxruntime, at 1, 64 and 1024 rows.
//!
//! ```text
//! cargo bench -p spot-engine --features onnx --bench risk
//! ```
//!
//! ort binds one backend per process, so the onnxruntime rows come from this same binary
//! re-run with `SPOT_RISK_BENCH_RUNTIME=<dylib>`; its table lines are passed through.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use spot_engine::risk::{extract, HeuristicModel, OnnxModel, PoolObservation, RiskModel, Runtime};

const CHILD_ENV: &str = "SPOT_RISK_BENCH_RUNTIME";
const BATCHES: [usize; 3] = [1, 64, 1024];

fn onnx_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../onnx")
}

fn observations() -> Result<Vec<PoolObservation>, String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        vectors: Vec<V>,
    }
    #[derive(serde::Deserialize)]
    struct V {
        observation: PoolObservation,
    }
    let path = onnx_dir().join("contract_vectors.json");
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Doc = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    Ok(doc.vectors.into_iter().map(|v| v.observation).collect())
}

/// Runs `f` (which processes `rows` rows) for about `budget`, returns (median call
/// latency, rows per second).
fn measure(rows: usize, budget: Duration, mut f: impl FnMut()) -> (Duration, f64) {
    for _ in 0..3 {
        f();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || samples.len() < 5 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    let total: Duration = samples.iter().sum();
    let median = samples[samples.len() / 2];
    let throughput = (rows * samples.len()) as f64 / total.as_secs_f64();
    (median, throughput)
}

fn row(what: &str, batch: usize, (median, throughput): (Duration, f64)) {
    println!(
        "| {what:<22} | {batch:>5} | {:>12.1} | {:>14.0} |",
        median.as_secs_f64() * 1e6,
        throughput
    );
}

fn bench_model(name: &str, model: &dyn RiskModel, obs: &[PoolObservation]) -> Result<(), String> {
    for &n in &BATCHES {
        let feats: Vec<_> = obs
            .iter()
            .cycle()
            .take(n)
            .map(|o| extract(o).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let mut failed = None;
        let m = measure(n, Duration::from_millis(700), || {
            if let Err(e) = model.score(&feats) {
                failed = Some(e.to_string());
            }
        });
        if let Some(e) = failed {
            return Err(format!("{name}: {e}"));
        }
        row(name, n, m);
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let obs = observations()?;
    let model_bytes = std::fs::read(onnx_dir().join("risk-v1.onnx")).map_err(|e| e.to_string())?;

    if let Some(path) = std::env::var_os(CHILD_ENV) {
        let rt = Runtime::OnnxRuntime {
            dylib_path: PathBuf::from(path),
        };
        let model = OnnxModel::from_bytes(&model_bytes, rt).map_err(|e| e.to_string())?;
        return bench_model("onnx:onnxruntime", &model, &obs);
    }

    println!("| what                   | batch | median µs    | rows/s         |");
    println!("|------------------------|-------|--------------|----------------|");
    for &n in &BATCHES {
        let batch: Vec<&PoolObservation> = obs.iter().cycle().take(n).collect();
        let m = measure(n, Duration::from_millis(300), || {
            for o in &batch {
                std::hint::black_box(extract(o).ok());
            }
        });
        row("features::extract", n, m);
    }
    bench_model("heuristic", &HeuristicModel, &obs)?;
    let model = OnnxModel::from_bytes(&model_bytes, Runtime::Tract).map_err(|e| e.to_string())?;
    bench_model("onnx:tract", &model, &obs)?;

    match Runtime::discover_onnxruntime() {
        Some(Runtime::OnnxRuntime { dylib_path }) => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let out = std::process::Command::new(exe)
                .env(CHILD_ENV, &dylib_path)
                .output()
                .map_err(|e| e.to_string())?;
            print!("{}", String::from_utf8_lossy(&out.stdout));
            if !out.status.success() {
                return Err(format!(
                    "onnxruntime run failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            println!("\nonnxruntime: {}", dylib_path.display());
        }
        _ => println!(
            "\n*** SKIP onnxruntime: no libonnxruntime (set ORT_DYLIB_PATH or pip install onnxruntime) ***"
        ),
    }
    Ok(())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    if let Err(e) = run() {
        eprintln!("risk bench failed: {e}");
        std::process::exit(1);
    }
}
