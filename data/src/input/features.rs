//! The model's features of a frame as one row-major matrix, with the rows that cannot be
//! scored (a null, non-numeric or non-finite feature).

use ndarray::ArrayView2;
use polars::prelude::*;

use super::{InputError as Error, Result};

/// The model's features of a frame, row-major, with the rows that cannot be scored.
pub struct FeatureMatrix {
    /// Row-major values of the scorable rows only.
    pub values: Vec<f64>,
    /// For every row of the frame: whether it is scorable (all features finite numbers).
    pub valid: Vec<bool>,
    /// Features per row.
    pub width: usize,
}

impl FeatureMatrix {
    /// Extracts `features` from `df`. Numeric and numeric-string columns are cast to f64;
    /// nulls, unparsable strings and NaN/infinity make a row unscorable. A missing column is
    /// an error: no row could be scored.
    pub fn extract(df: &DataFrame, features: &[String]) -> Result<Self> {
        let width = features.len();
        let n = df.height();
        let mut columns = Vec::with_capacity(width);
        for name in features {
            let column = df
                .column(name)
                .map_err(|_| Error::MissingFeature {
                    column: name.clone(),
                    features: features.join(", "),
                })?
                .as_materialized_series()
                .cast(&DataType::Float64)?;
            columns.push(column);
        }
        let chunked: Vec<&Float64Chunked> = columns
            .iter()
            .map(|s| s.f64())
            .collect::<PolarsResult<_>>()?;
        let mut valid = vec![true; n];
        for c in &chunked {
            for (row, v) in c.iter().enumerate() {
                if !v.is_some_and(f64::is_finite) {
                    valid[row] = false;
                }
            }
        }
        let good = valid.iter().filter(|v| **v).count();
        let mut values = vec![0.0; good * width];
        for (j, c) in chunked.iter().enumerate() {
            let mut k = 0;
            for (row, v) in c.iter().enumerate() {
                if valid[row] {
                    values[k * width + j] = v.unwrap_or(0.0);
                    k += 1;
                }
            }
        }
        Ok(FeatureMatrix {
            values,
            valid,
            width,
        })
    }

    /// Number of scorable rows.
    pub fn scorable_rows(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }

    /// The scorable rows as a matrix view.
    pub fn view(&self) -> ArrayView2<'_, f64> {
        ArrayView2::from_shape((self.scorable_rows(), self.width), &self.values)
            .unwrap_or_else(|_| unreachable!("values hold rows × width numbers"))
    }
}
