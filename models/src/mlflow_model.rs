//! The MLflow model directory around an artifact, so that MLflow, Python and Spark can use an
//! isolake version (`mlflow.pyfunc.load_model`, `mlflow.pyfunc.spark_udf`).
//!
//! ```text
//! model/
//!   model.isolake          the artifact (the only file isolake itself scores with)
//!   MLmodel                flavor python_function, signature, input example
//!   code/isolake_pyfunc.py the pyfunc loader: pure Python + numpy, shipped in every version
//!   input_example.json     a few training rows (pandas "split" orient)
//!   python_env.yaml, requirements.txt
//! ```
//!
//! The loader's source is compiled into isolake (`models/python/isolake_pyfunc.py`), so a
//! version always carries the loader of the isolake that wrote it. The files are checksummed
//! together at registration ([`TAG_MLFLOW_MODEL_SHA256`]) and verified when isolake fetches a
//! version: a tampered `MLmodel` or loader is refused like a tampered artifact.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::forest::IsolationForest;

/// The version tag holding the checksum of the MLflow files ([`MlflowModel::checksum`]).
pub const TAG_MLFLOW_MODEL_SHA256: &str = "isolake.mlflow_model_sha256";
pub const MLMODEL_FILE: &str = "MLmodel";
/// The loader, under the model's `code` directory (which pyfunc puts on `sys.path`).
pub const LOADER_FILE: &str = "code/isolake_pyfunc.py";
pub const INPUT_EXAMPLE_FILE: &str = "input_example.json";
pub const PYTHON_ENV_FILE: &str = "python_env.yaml";
pub const REQUIREMENTS_FILE: &str = "requirements.txt";

/// The pyfunc loader module shipped in every model directory.
pub const LOADER_SOURCE: &str = include_str!("../python/isolake_pyfunc.py");

/// Rows of the input example (MLflow shows them and checks the signature against them).
const EXAMPLE_ROWS: usize = 5;

/// A feature's type in MLflow's signature: the type the training rows had (isolake reads
/// every feature as a double, but MLflow refuses a frame whose types differ from the
/// signature's where the conversion could lose precision, e.g. int64 into double).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Integer,
    Long,
    Float,
    Double,
    Boolean,
    String,
}

impl ColumnType {
    /// MLflow's name of the type.
    pub fn as_mlflow(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Long => "long",
            ColumnType::Float => "float",
            ColumnType::Double => "double",
            ColumnType::Boolean => "boolean",
            ColumnType::String => "string",
        }
    }

    /// `value` as an input example holds it for a column of this type.
    fn example(self, value: f64) -> Value {
        match self {
            ColumnType::Integer | ColumnType::Long => json!(value as i64),
            ColumnType::Boolean => json!(value != 0.0),
            ColumnType::String => json!(value.to_string()),
            ColumnType::Float | ColumnType::Double => json!(value),
        }
    }
}

/// The MLflow files of one version, in the order they are checksummed.
#[derive(Debug, Clone)]
pub struct MlflowModel {
    files: Vec<(&'static str, Vec<u8>)>,
}

impl MlflowModel {
    /// The files for `model`, stored as `artifact_file`, whose features had `types` in the
    /// training rows, with up to five of `example_rows` (row-major, one value per feature)
    /// as the input example. A feature without a type is a double.
    pub fn new(
        model: &IsolationForest,
        artifact_file: &str,
        types: &[ColumnType],
        example_rows: &[f64],
    ) -> Self {
        let features = model.feature_names();
        let types: Vec<ColumnType> = (0..features.len())
            .map(|i| types.get(i).copied().unwrap_or(ColumnType::Double))
            .collect();
        let example: Vec<Vec<Value>> = example_rows
            .chunks_exact(features.len().max(1))
            .take(EXAMPLE_ROWS)
            .map(|row| row.iter().zip(&types).map(|(v, t)| t.example(*v)).collect())
            .collect();
        let files = vec![
            (
                MLMODEL_FILE,
                mlmodel(model, artifact_file, &types).into_bytes(),
            ),
            (LOADER_FILE, LOADER_SOURCE.as_bytes().to_vec()),
            (INPUT_EXAMPLE_FILE, input_example(features, &example)),
            (PYTHON_ENV_FILE, PYTHON_ENV.as_bytes().to_vec()),
            (REQUIREMENTS_FILE, REQUIREMENTS.as_bytes().to_vec()),
        ];
        Self { files }
    }

    /// Each file's path under the model directory and its bytes.
    pub fn files(&self) -> &[(&'static str, Vec<u8>)] {
        &self.files
    }

    /// SHA-256 (hex) over every file's name and bytes, in order.
    pub fn checksum(&self) -> String {
        let pairs: Vec<(&str, &[u8])> =
            self.files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        checksum(&pairs)
    }
}

/// The checksum [`MlflowModel::checksum`] computes, over files read back from a registry.
pub fn checksum(files: &[(&str, &[u8])]) -> String {
    let mut hasher = Sha256::new();
    for (name, bytes) in files {
        // Lengths first, so no two different file lists hash alike.
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    hex(&hasher.finalize())
}

/// The names of the files [`MlflowModel`] writes, in checksum order.
pub const FILES: [&str; 5] = [
    MLMODEL_FILE,
    LOADER_FILE,
    INPUT_EXAMPLE_FILE,
    PYTHON_ENV_FILE,
    REQUIREMENTS_FILE,
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const PYTHON_ENV: &str =
    "python: \"3.10\"\nbuild_dependencies:\n  - pip\ndependencies:\n  - -r requirements.txt\n";
const REQUIREMENTS: &str = "numpy\npandas\n";

/// The `MLmodel` file (YAML; written by hand: every value is a plain scalar or a JSON string).
fn mlmodel(model: &IsolationForest, artifact_file: &str, types: &[ColumnType]) -> String {
    let inputs: Vec<Value> = model
        .feature_names()
        .iter()
        .zip(types)
        .map(|(f, t)| json!({"type": t.as_mlflow(), "name": f, "required": true}))
        .collect();
    let outputs = json!([
        {"type": "double", "name": "anomaly_score", "required": true},
        {"type": "boolean", "name": "is_anomaly", "required": true},
    ]);
    let created = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f");
    let fingerprint = model.fingerprint();
    let quoted = |v: &Value| serde_json::to_string(&v.to_string()).unwrap_or_default();
    format!(
        "artifact_path: model\n\
         flavors:\n\
         \x20 python_function:\n\
         \x20   code: code\n\
         \x20   data: {artifact_file}\n\
         \x20   env:\n\
         \x20     virtualenv: {PYTHON_ENV_FILE}\n\
         \x20   loader_module: isolake_pyfunc\n\
         \x20 isolake:\n\
         \x20   artifact: {artifact_file}\n\
         \x20   fingerprint: {fingerprint}\n\
         \x20   isolake_version: {version}\n\
         model_uuid: {uuid}\n\
         saved_input_example_info:\n\
         \x20 artifact_path: {INPUT_EXAMPLE_FILE}\n\
         \x20 pandas_orient: split\n\
         \x20 type: dataframe\n\
         signature:\n\
         \x20 inputs: {inputs}\n\
         \x20 outputs: {outputs}\n\
         \x20 params: null\n\
         utc_time_created: '{created}'\n",
        version = env!("CARGO_PKG_VERSION"),
        uuid = &fingerprint[..32],
        inputs = quoted(&Value::Array(inputs)),
        outputs = quoted(&outputs),
    )
}

/// The input example in pandas' "split" orient.
fn input_example(features: &[String], rows: &[Vec<Value>]) -> Vec<u8> {
    let example = json!({ "columns": features, "data": rows });
    let mut bytes = serde_json::to_vec(&example).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
