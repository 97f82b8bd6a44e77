//! What a fitted model says about itself: the self-describing part of an artifact.
//!
//! A model must be explainable long after training — which features in which order, which
//! hyperparameters, trained on which data, by which release — so this travels with the
//! trees in memory and is the artifact's header on disk.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::forest::params::IsolationForestValidParams;

/// Where the training rows came from. Filled by the training job after `fit`
/// ([`IsolationForest::set_training_data`](crate::IsolationForest::set_training_data)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingDataRef {
    /// URI of the Delta table the training rows were read from.
    pub table_uri: String,
    /// Delta table version that was read.
    pub delta_version: u64,
}

/// Metadata of a fitted model (the artifact header, minus its format and checksum fields).
///
/// Read it through [`IsolationForest::metadata`](crate::IsolationForest::metadata); the
/// fields that must stay consistent with the trees cannot be changed on a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Feature (column) names, in the order rows must present them.
    pub feature_names: Vec<String>,
    /// Hyperparameters; `seed` is always the seed actually used.
    pub hyperparameters: IsolationForestValidParams,
    /// ψ: training rows sampled per tree (resolved from `max_samples`).
    pub samples_per_tree: usize,
    /// Features each tree could split on (resolved from `max_features`).
    pub features_per_tree: usize,
    /// `decision_function = score_samples − offset`.
    pub offset: f64,
    /// Number of rows the model was fitted on.
    pub training_rows: usize,
    /// Source table and version of the training rows, once the training job records it.
    pub training_data: Option<TrainingDataRef>,
    /// When `fit` ran.
    pub created_at: DateTime<Utc>,
    /// Version of `isolake-models` that fitted the model.
    pub crate_version: String,
}

impl ModelMetadata {
    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }
}
