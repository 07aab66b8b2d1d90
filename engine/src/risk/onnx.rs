//! ONNX risk models on ort, backed by tract (pure Rust) or a libonnxruntime dylib.
//!
//! ort keeps its backend (the `OrtApi` table) and its environment in process-wide
//! globals that can be set once: a process runs every model on the runtime it chose
//! first. [`OnnxModel::from_bytes`] with another runtime afterwards returns
//! [`RiskError::RuntimeConflict`] instead of silently using the wrong one. The product
//! picks one runtime at startup (tract unless an onnxruntime library is configured).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use super::features::{Features, FEATURE_COUNT, INPUT_NAME, OUTPUT_NAME};
use super::{RiskError, RiskModel, RiskScore};

/// The contract vectors every model must pass on load (`onnx/contract_vectors.json`).
const CONTRACT_VECTORS_JSON: &str = include_str!("../../../onnx/contract_vectors.json");

/// Which ONNX runtime executes a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// tract through ort-tract: pure Rust, nothing to install, the default.
    Tract,
    /// Microsoft onnxruntime loaded from this shared library (needs API version >= 1.24;
    /// the `onnxruntime` PyPI wheel ships one under `onnxruntime/capi/`).
    OnnxRuntime { dylib_path: PathBuf },
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Runtime::Tract => f.write_str("tract"),
            Runtime::OnnxRuntime { dylib_path } => {
                write!(f, "onnxruntime ({})", dylib_path.display())
            }
        }
    }
}

impl Runtime {
    /// Finds a libonnxruntime for tests, benches and CI: `ORT_DYLIB_PATH` if set, else the
    /// library inside the `onnxruntime` Python package (asks `python3` where it is).
    /// `None` when neither exists; production configures the path explicitly.
    pub fn discover_onnxruntime() -> Option<Runtime> {
        if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            return p
                .is_file()
                .then_some(Runtime::OnnxRuntime { dylib_path: p });
        }
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import os, onnxruntime; print(os.path.dirname(onnxruntime.__file__))",
            ])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let capi = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("capi");
        let mut libs: Vec<PathBuf> = std::fs::read_dir(&capi)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("libonnxruntime.so")
                        || (n.starts_with("libonnxruntime.") && n.ends_with(".dylib"))
                        || n == "onnxruntime.dll"
                })
            })
            .collect();
        libs.sort();
        libs.pop()
            .map(|dylib_path| Runtime::OnnxRuntime { dylib_path })
    }
}

struct Backend {
    runtime: Runtime,
    env: Environment,
}

fn backend_slot() -> MutexGuard<'static, Option<Backend>> {
    static SLOT: OnceLock<Mutex<Option<Backend>>> = OnceLock::new();
    let m = SLOT.get_or_init(|| Mutex::new(None));
    // A panic while holding the lock leaves a fully built or an absent backend, both
    // valid states: recover instead of poisoning every later load.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The runtime this process bound ort to, if any model has been loaded yet.
pub fn active_runtime() -> Option<Runtime> {
    backend_slot().as_ref().map(|b| b.runtime.clone())
}

fn ort_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The ort environment for `runtime`, binding the process to it on first use.
fn environment(runtime: &Runtime) -> Result<Environment, RiskError> {
    let mut slot = backend_slot();
    if let Some(b) = slot.as_ref() {
        return if &b.runtime == runtime {
            Ok(b.env.clone())
        } else {
            Err(RiskError::RuntimeConflict {
                active: b.runtime.to_string(),
                requested: runtime.to_string(),
            })
        };
    }
    let conflict = || RiskError::RuntimeConflict {
        active: "another ort backend (set outside engine::risk)".to_owned(),
        requested: runtime.to_string(),
    };
    let builder = match runtime {
        Runtime::Tract => {
            if !ort::set_api(ort_tract::api()) {
                return Err(conflict());
            }
            ort::init()
        }
        Runtime::OnnxRuntime { dylib_path } => {
            // init_from checks the library's version and keeps it loaded for the process.
            let builder = ort::init_from(dylib_path)
                .map_err(|e| RiskError::RuntimeUnavailable(ort_err(e)))?;
            let api = onnxruntime_api(dylib_path)?;
            if !ort::set_api(api) {
                return Err(conflict());
            }
            builder
        }
    };
    let env = builder
        .with_name("spot-risk")
        .build()
        .map_err(|e| RiskError::RuntimeUnavailable(ort_err(e)))?;
    *slot = Some(Backend {
        runtime: runtime.clone(),
        env: env.clone(),
    });
    Ok(env)
}

/// Reads libonnxruntime's `OrtApi` table (API version [`ort::sys::ORT_API_VERSION`]).
///
/// With ort's `alternative-backend` feature (needed for tract) ort never fetches the API
/// from a loaded dylib itself, so this does what ort's own `load-dynamic` setup would:
/// `OrtGetApiBase()->GetApi(version)` and a copy of the returned table. It is the only
/// unsafe code of the engine (the crate denies `unsafe_code` everywhere else).
#[allow(unsafe_code)]
fn onnxruntime_api(path: &Path) -> Result<ort::sys::OrtApi, RiskError> {
    type GetApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    let unavailable = |what: String| RiskError::RuntimeUnavailable(what);
    // SAFETY: loading runs the library's initialisers; `path` was just loaded and
    // version-checked by `ort::init_from`, so this is onnxruntime and dlopen only bumps
    // its reference count. `OrtGetApiBase` has exactly the declared signature in every
    // onnxruntime release (C ABI). `GetApi` returns null or a pointer to a static table
    // inside the library; we check null, copy the table (plain function pointers) and
    // leak the `Library` so those pointers stay valid for the life of the process.
    unsafe {
        let lib = libloading::Library::new(path)
            .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
        let get_base: libloading::Symbol<'_, GetApiBase> = lib
            .get(b"OrtGetApiBase\0")
            .map_err(|e| unavailable(format!("{}: no OrtGetApiBase: {e}", path.display())))?;
        let base = get_base();
        if base.is_null() {
            return Err(unavailable("OrtGetApiBase returned null".to_owned()));
        }
        let api = ((*base).GetApi)(ort::sys::ORT_API_VERSION);
        if api.is_null() {
            return Err(unavailable(format!(
                "{} does not provide ONNX Runtime API version {}",
                path.display(),
                ort::sys::ORT_API_VERSION
            )));
        }
        let table = (*api).clone();
        std::mem::forget(lib);
        Ok(table)
    }
}

/// A validated ONNX risk model (contract v1).
pub struct OnnxModel {
    runtime: Runtime,
    /// `Session::run` needs `&mut`; scoring is short, so a mutex is cheaper than a pool.
    session: Mutex<Session>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

/// Feature rows of the embedded contract vectors.
pub(crate) fn contract_feature_rows() -> Result<Vec<[f32; FEATURE_COUNT]>, RiskError> {
    #[derive(serde::Deserialize)]
    struct Doc {
        vectors: Vec<Vector>,
    }
    #[derive(serde::Deserialize)]
    struct Vector {
        features: Vec<f32>,
    }
    let doc: Doc = serde_json::from_str(CONTRACT_VECTORS_JSON)
        .map_err(|e| RiskError::ContractMismatch(format!("embedded contract vectors: {e}")))?;
    doc.vectors
        .into_iter()
        .map(|v| {
            <[f32; FEATURE_COUNT]>::try_from(v.features.as_slice()).map_err(|_| {
                RiskError::ContractMismatch("embedded contract vector has wrong width".to_owned())
            })
        })
        .collect()
}

fn check_io(session: &Session) -> Result<(), RiskError> {
    let mismatch = |s: String| Err(RiskError::ContractMismatch(s));
    let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let [input] = session.inputs() else {
        return mismatch(format!("expected one input `{INPUT_NAME}`, got {names:?}"));
    };
    if input.name() != INPUT_NAME {
        return mismatch(format!("expected one input `{INPUT_NAME}`, got {names:?}"));
    }
    match input.dtype() {
        ValueType::Tensor { ty, shape, .. } => {
            if *ty != TensorElementType::Float32 {
                return mismatch(format!("input `{INPUT_NAME}` must be float32, is {ty:?}"));
            }
            let dims: &[i64] = shape;
            match dims {
                [n, f] if *f == FEATURE_COUNT as i64 && *n < 0 => {}
                [n, f] if *f == FEATURE_COUNT as i64 => {
                    return mismatch(format!(
                        "input batch dimension must be dynamic (dim_param \"N\"), is fixed at {n}"
                    ))
                }
                _ => {
                    return mismatch(format!(
                        "input `{INPUT_NAME}` must have shape [N, {FEATURE_COUNT}], has {dims:?}"
                    ))
                }
            }
        }
        other => {
            return mismatch(format!(
                "input `{INPUT_NAME}` must be a tensor, is {other:?}"
            ))
        }
    }
    let Some(output) = session.outputs().iter().find(|o| o.name() == OUTPUT_NAME) else {
        let outs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        return mismatch(format!("expected an output `{OUTPUT_NAME}`, got {outs:?}"));
    };
    match output.dtype() {
        ValueType::Tensor { ty, shape, .. } => {
            if *ty != TensorElementType::Float32 {
                return mismatch(format!("output `{OUTPUT_NAME}` must be float32, is {ty:?}"));
            }
            let dims: &[i64] = shape;
            if !(dims.len() == 1 || dims.len() == 2 && dims[1] == 1) {
                return mismatch(format!(
                    "output `{OUTPUT_NAME}` must have shape [N] or [N, 1], has {dims:?}"
                ));
            }
        }
        other => {
            return mismatch(format!(
                "output `{OUTPUT_NAME}` must be a tensor, is {other:?}"
            ))
        }
    }
    Ok(())
}

fn run(session: &mut Session, rows: &[[f32; FEATURE_COUNT]]) -> Result<Vec<f32>, RiskError> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let input = TensorRef::from_array_view(([rows.len(), FEATURE_COUNT], flat.as_slice()))
        .map_err(|e| RiskError::Inference(ort_err(e)))?;
    let outputs = session
        .run(ort::inputs![INPUT_NAME => input])
        .map_err(|e| RiskError::Inference(ort_err(e)))?;
    let value = outputs
        .get(OUTPUT_NAME)
        .ok_or_else(|| RiskError::Inference(format!("no output `{OUTPUT_NAME}`")))?;
    let (_, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|e| RiskError::Inference(ort_err(e)))?;
    if data.len() != rows.len() {
        return Err(RiskError::Inference(format!(
            "`{OUTPUT_NAME}` has {} values for {} rows",
            data.len(),
            rows.len()
        )));
    }
    Ok(data.to_vec())
}

impl OnnxModel {
    /// Loads and validates a model: it must parse on `runtime`, take exactly one
    /// `float32 [N, 22]` input named `features` with a dynamic batch dimension, produce a
    /// `float32` `interruption_probability` of shape `[N]` or `[N, 1]`, and return finite
    /// values in [0, 1] for every contract vector. This is the registry's upload check.
    pub fn from_bytes(bytes: &[u8], runtime: Runtime) -> Result<Self, RiskError> {
        let env = environment(&runtime)?;
        let builder = Session::builder(&env).map_err(|e| RiskError::InvalidModel(ort_err(e)))?;
        let mut builder = match runtime {
            // Scoring batches are small: one thread avoids oversubscribing the control plane.
            Runtime::OnnxRuntime { .. } => builder
                .with_intra_threads(1)
                .map_err(|e| RiskError::InvalidModel(ort_err(e)))?,
            Runtime::Tract => builder,
        };
        let mut session = builder
            .commit_from_memory(bytes)
            .map_err(|e| RiskError::InvalidModel(ort_err(e)))?;
        check_io(&session)?;
        let rows = contract_feature_rows()?;
        let probs = run(&mut session, &rows).map_err(|e| match e {
            RiskError::Inference(s) => {
                RiskError::ContractMismatch(format!("model failed on the contract vectors: {s}"))
            }
            other => other,
        })?;
        if let Some((vector, &value)) = probs
            .iter()
            .enumerate()
            .find(|(_, p)| !(p.is_finite() && (0.0..=1.0).contains(*p)))
        {
            return Err(RiskError::OutOfRange { vector, value });
        }
        Ok(OnnxModel {
            runtime,
            session: Mutex::new(session),
        })
    }

    /// The runtime the model runs on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Raw probabilities for feature rows (no confidence/action): for tests and benches.
    pub fn probabilities(&self, rows: &[[f32; FEATURE_COUNT]]) -> Result<Vec<f32>, RiskError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        run(&mut session, rows)
    }
}

impl RiskModel for OnnxModel {
    fn score(&self, batch: &[Features]) -> Result<Vec<RiskScore>, RiskError> {
        let rows: Vec<[f32; FEATURE_COUNT]> = batch.iter().map(|f| f.values).collect();
        let probs = self.probabilities(&rows)?;
        probs
            .iter()
            .zip(batch)
            .enumerate()
            .map(|(i, (&p, f))| {
                // Validated on load, but a model can still misbehave on unusual inputs:
                // refuse to pass a NaN or out-of-range value on as a probability.
                if p.is_finite() && (0.0..=1.0).contains(&p) {
                    Ok(RiskScore::from_probability(f64::from(p), f, false))
                } else {
                    Err(RiskError::OutOfRange {
                        vector: i,
                        value: p,
                    })
                }
            })
            .collect()
    }

    fn describe(&self) -> String {
        match &self.runtime {
            Runtime::Tract => "onnx:tract".to_owned(),
            Runtime::OnnxRuntime { .. } => "onnx:onnxruntime".to_owned(),
        }
    }
}
