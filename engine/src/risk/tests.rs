//! Contract tests of MOD-AI-01 against the shipped artefacts in `onnx/`.
//!
//! ort binds one backend per process, and every test here shares the test binary's
//! process, so all of them use tract. onnxruntime is exercised in a child process (this
//! same binary re-run with only `ort_child`), which prints its probabilities for the
//! parent to compare.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde::Deserialize;

use super::features::{col, FEATURE_COUNT, FEATURE_NAMES};
use super::*;

const CHILD_ENV: &str = "SPOT_RISK_ORT_CHILD";
const CHILD_MARKER: &str = "SPOT_RISK_ORT_PROBS=";

#[derive(Debug, Deserialize)]
struct Doc {
    contract_version: String,
    input_name: String,
    output_name: String,
    feature_names: Vec<String>,
    feature_tolerance: f64,
    probability_tolerance: f64,
    vectors: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
struct Vector {
    observation: PoolObservation,
    features: Vec<f32>,
    interruption_probability: f64,
    heuristic_probability: f64,
}

fn onnx_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../onnx")
}

fn read(rel: &str) -> Vec<u8> {
    let p = onnx_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn doc() -> Doc {
    serde_json::from_slice(&read("contract_vectors.json")).unwrap()
}

fn tract_model() -> OnnxModel {
    OnnxModel::from_bytes(&read("risk-v1.onnx"), Runtime::Tract).unwrap()
}

fn rows(doc: &Doc) -> Vec<[f32; FEATURE_COUNT]> {
    doc.vectors
        .iter()
        .map(|v| extract(&v.observation).unwrap().values)
        .collect()
}

#[test]
fn contract_file_matches_the_rust_constants() {
    let d = doc();
    assert_eq!(d.contract_version, features::CONTRACT_VERSION);
    assert_eq!(d.input_name, features::INPUT_NAME);
    assert_eq!(d.output_name, features::OUTPUT_NAME);
    assert_eq!(d.feature_names, FEATURE_NAMES.to_vec());
    assert!(d.vectors.len() >= 10);
}

#[test]
fn rust_features_match_the_python_reference() {
    let d = doc();
    for (k, v) in d.vectors.iter().enumerate() {
        let f = extract(&v.observation).unwrap();
        assert_eq!(v.features.len(), FEATURE_COUNT);
        for (i, (a, b)) in f.values.iter().zip(&v.features).enumerate() {
            assert!(
                (f64::from(*a) - f64::from(*b)).abs() <= d.feature_tolerance,
                "vector {k} feature {} ({}): rust {a} python {b}",
                i,
                FEATURE_NAMES[i]
            );
        }
    }
}

#[test]
fn heuristic_matches_python_and_is_degraded() {
    let d = doc();
    let feats: Vec<Features> = d
        .vectors
        .iter()
        .map(|v| extract(&v.observation).unwrap())
        .collect();
    let scores = HeuristicModel.score(&feats).unwrap();
    for (k, (s, v)) in scores.iter().zip(&d.vectors).enumerate() {
        assert!(
            (s.probability - v.heuristic_probability).abs() < 1e-6,
            "vector {k}: {} vs {}",
            s.probability,
            v.heuristic_probability
        );
        assert!(s.degraded);
        assert!((0.0..=HEURISTIC_CONFIDENCE_FACTOR).contains(&s.confidence));
    }
    assert!(HeuristicModel.is_degraded());
    // Scarce, expensive, flagged pools are AVOID; healthy cheap ones SAFE.
    let mut f = feats[0];
    f.values[col::CAPACITY_SIGNAL] = 0.1;
    f.values[col::CAPACITY_MISSING] = 0.0;
    f.values[col::PRICE_RATIO_LAST] = 0.95;
    assert_eq!(HeuristicModel.score(&[f]).unwrap()[0].action, Action::Avoid);
    f.values[col::CAPACITY_SIGNAL] = 1.0;
    f.values[col::PRICE_RATIO_LAST] = 0.3;
    f.values[col::HIVE_FLAGS] = 0.0;
    assert_eq!(HeuristicModel.score(&[f]).unwrap()[0].action, Action::Safe);
}

#[test]
fn tract_reproduces_the_contract_vectors() {
    let d = doc();
    let model = tract_model();
    let probs = model.probabilities(&rows(&d)).unwrap();
    for (k, (p, v)) in probs.iter().zip(&d.vectors).enumerate() {
        assert!(
            (f64::from(*p) - v.interruption_probability).abs() <= d.probability_tolerance,
            "vector {k}: tract {p} expected {}",
            v.interruption_probability
        );
    }
    // Batched and single-row scoring agree, and the derived fields follow the contract.
    let feats: Vec<Features> = d
        .vectors
        .iter()
        .map(|v| extract(&v.observation).unwrap())
        .collect();
    let batch = model.score(&feats).unwrap();
    for (f, s) in feats.iter().zip(&batch) {
        let one = model.score(std::slice::from_ref(f)).unwrap();
        assert!((one[0].probability - s.probability).abs() < 1e-6);
        assert_eq!(s.action, Action::from_probability(s.probability));
        assert!((0.0..=1.0).contains(&s.confidence));
        assert!(!s.degraded);
    }
    assert!(model.score(&[]).unwrap().is_empty());
    assert_eq!(model.describe(), "onnx:tract");
}

#[test]
fn the_model_separates_risky_from_healthy_pools() {
    let d = doc();
    let model = tract_model();
    let base = d.vectors[0].observation.clone();
    let healthy = PoolObservation {
        placement_score: Some(10),
        spot_prices: vec![0.3 * base.on_demand_price; 24],
        hive_flags_24h: 0,
        ..base.clone()
    };
    let tight = PoolObservation {
        placement_score: Some(1),
        spot_prices: vec![0.9 * base.on_demand_price; 24],
        hive_flags_24h: 8,
        ..base
    };
    let s = model
        .score(&extract_batch(&[healthy, tight]).unwrap())
        .unwrap();
    assert_eq!(s[0].action, Action::Safe, "{s:?}");
    assert!(s[1].probability > 5.0 * s[0].probability, "{s:?}");
}

#[test]
fn garbage_bytes_are_rejected() {
    for bytes in [&b""[..], b"not an onnx model at all", &[0xFF; 300][..]] {
        let err = OnnxModel::from_bytes(bytes, Runtime::Tract).unwrap_err();
        assert!(matches!(err, RiskError::InvalidModel(_)), "{err:?}");
    }
    let mut truncated = read("risk-v1.onnx");
    truncated.truncate(truncated.len() / 2);
    let err = OnnxModel::from_bytes(&truncated, Runtime::Tract).unwrap_err();
    assert!(matches!(err, RiskError::InvalidModel(_)), "{err:?}");
}

#[test]
fn wrong_input_names_are_rejected() {
    let err =
        OnnxModel::from_bytes(&read("testdata/wrong_inputs.onnx"), Runtime::Tract).unwrap_err();
    match err {
        RiskError::ContractMismatch(msg) => assert!(msg.contains("`features`"), "{msg}"),
        other => panic!("expected ContractMismatch, got {other:?}"),
    }
}

#[test]
fn out_of_range_outputs_are_rejected() {
    let err =
        OnnxModel::from_bytes(&read("testdata/out_of_range.onnx"), Runtime::Tract).unwrap_err();
    match err {
        RiskError::OutOfRange { value, .. } => assert!(value > 1.0, "{value}"),
        other => panic!("expected OutOfRange, got {other:?}"),
    }
}

#[test]
fn the_heuristic_takes_over_when_no_model_loads() {
    let d = doc();
    let feats = vec![extract(&d.vectors[0].observation).unwrap()];
    let (model, err) = load_or_heuristic(Some(b"garbage"), &Runtime::Tract);
    assert!(matches!(err, Some(RiskError::InvalidModel(_))), "{err:?}");
    assert!(model.is_degraded());
    assert!(model.score(&feats).unwrap()[0].degraded);
    let (model, err) = load_or_heuristic(None, &Runtime::Tract);
    assert!(err.is_none() && model.is_degraded());
    let (model, err) = load_or_heuristic(Some(&read("risk-v1.onnx")), &Runtime::Tract);
    assert!(err.is_none() && !model.is_degraded(), "{err:?}");
}

#[test]
fn a_second_runtime_in_the_same_process_is_a_typed_error() {
    let _ = tract_model();
    let other = Runtime::OnnxRuntime {
        dylib_path: PathBuf::from("/nonexistent/libonnxruntime.so"),
    };
    let err = OnnxModel::from_bytes(&read("risk-v1.onnx"), other).unwrap_err();
    assert!(matches!(err, RiskError::RuntimeConflict { .. }), "{err:?}");
    assert_eq!(active_runtime(), Some(Runtime::Tract));
}

#[test]
fn invalid_observations_name_the_field() {
    let base = doc().vectors[0].observation.clone();
    let cases = [
        (
            PoolObservation {
                spot_prices: vec![],
                ..base.clone()
            },
            "spot_prices",
        ),
        (
            PoolObservation {
                spot_prices: vec![0.1, f64::NAN],
                ..base.clone()
            },
            "spot_prices",
        ),
        (
            PoolObservation {
                on_demand_price: 0.0,
                ..base.clone()
            },
            "on_demand_price",
        ),
        (
            PoolObservation {
                hour_utc: 24,
                ..base.clone()
            },
            "hour_utc",
        ),
        (
            PoolObservation {
                weekday: 7,
                ..base.clone()
            },
            "weekday",
        ),
        (
            PoolObservation {
                placement_score: Some(0),
                ..base.clone()
            },
            "placement_score",
        ),
        (
            PoolObservation {
                vcpu: 0,
                ..base.clone()
            },
            "vcpu",
        ),
    ];
    for (obs, field) in cases {
        match extract(&obs) {
            Err(RiskError::InvalidObservation { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let err = extract_batch(&[base.clone(), PoolObservation { weekday: 9, ..base }]).unwrap_err();
    assert!(
        matches!(&err, RiskError::InvalidObservation { field, .. } if field == "[1].weekday"),
        "{err:?}"
    );
}

#[test]
fn confidence_reflects_certainty_and_coverage() {
    let f = extract(&doc().vectors[0].observation).unwrap();
    let full = Features {
        history_hours: 24,
        capacity_known: true,
        ..f
    };
    let sure = RiskScore::from_probability(0.01, &full, false);
    let coin = RiskScore::from_probability(0.5, &full, false);
    assert!(sure.confidence > 0.9 && coin.confidence < 1e-9);
    let thin = Features {
        history_hours: 6,
        capacity_known: false,
        ..full
    };
    let thin_score = RiskScore::from_probability(0.01, &thin, false);
    assert!(thin_score.confidence < sure.confidence * 0.25 + 1e-9);
    let json = serde_json::to_value(sure).unwrap();
    assert_eq!(json["recommended_action"], "SAFE");
    assert!(json["interruption_probability"].is_f64() && json["confidence_score"].is_f64());
    let nan = RiskScore::from_probability(f64::NAN, &full, false);
    assert_eq!(nan.action, Action::Avoid);
    assert_eq!(
        RiskScore::from_probability(0.35, &full, false).action,
        Action::Caution
    );
}

/// The onnxruntime half of the runtime comparison; does nothing unless started by
/// `onnxruntime_agrees_with_tract` (it binds the process to onnxruntime).
#[test]
#[ignore = "run by onnxruntime_agrees_with_tract in a child process"]
fn ort_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let runtime = Runtime::OnnxRuntime {
        dylib_path: PathBuf::from(path),
    };
    let d = doc();
    let model = OnnxModel::from_bytes(&read("risk-v1.onnx"), runtime.clone()).unwrap();
    let probs = model.probabilities(&rows(&d)).unwrap();
    // The same validation verdicts on this runtime.
    let err = OnnxModel::from_bytes(b"garbage", runtime.clone()).unwrap_err();
    assert!(matches!(err, RiskError::InvalidModel(_)), "{err:?}");
    let err =
        OnnxModel::from_bytes(&read("testdata/wrong_inputs.onnx"), runtime.clone()).unwrap_err();
    assert!(matches!(err, RiskError::ContractMismatch(_)), "{err:?}");
    let err = OnnxModel::from_bytes(&read("testdata/out_of_range.onnx"), runtime).unwrap_err();
    assert!(matches!(err, RiskError::OutOfRange { .. }), "{err:?}");
    let err = OnnxModel::from_bytes(&read("risk-v1.onnx"), Runtime::Tract).unwrap_err();
    assert!(matches!(err, RiskError::RuntimeConflict { .. }), "{err:?}");
    println!("\n{CHILD_MARKER}{}", serde_json::to_string(&probs).unwrap());
}

#[test]
fn onnxruntime_agrees_with_tract() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let Some(Runtime::OnnxRuntime { dylib_path }) = Runtime::discover_onnxruntime() else {
        eprintln!(
            "\n*** SKIP onnxruntime_agrees_with_tract: no libonnxruntime found (set \
             ORT_DYLIB_PATH or `pip install onnxruntime`); only tract was tested ***\n"
        );
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "risk::tests::ort_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &dylib_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "onnxruntime child failed ({}):\n{stdout}\n{}",
        dylib_path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once(CHILD_MARKER).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("child printed no probabilities:\n{stdout}"));
    let ort_probs: Vec<f32> = serde_json::from_str(line).unwrap();
    let d = doc();
    let tract_probs = tract_model().probabilities(&rows(&d)).unwrap();
    assert_eq!(ort_probs.len(), d.vectors.len());
    for (k, ((o, t), v)) in ort_probs
        .iter()
        .zip(&tract_probs)
        .zip(&d.vectors)
        .enumerate()
    {
        assert!(
            (o - t).abs() <= 1e-5,
            "vector {k}: onnxruntime {o} tract {t}"
        );
        assert!(
            (f64::from(*o) - v.interruption_probability).abs() <= d.probability_tolerance,
            "vector {k}: onnxruntime {o} expected {}",
            v.interruption_probability
        );
    }
    eprintln!(
        "onnxruntime ({}) and tract agree on {} contract vectors",
        dylib_path.display(),
        ort_probs.len()
    );
}
