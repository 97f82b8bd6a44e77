//! The seeded transaction generator behind `isolake-gen`.
//!
//! Same configuration and seed → byte-identical files. Rows are mostly normal; a labelled
//! share is anomalous (multivariate outliers, small-then-large pairs, quantity spikes), and
//! near misses (labelled normal) sit right next to the rules' boundaries so detectors are
//! tested on both sides. Events are spread over the span in time order and cut into files,
//! so patterns can span files.

mod anomalies;
mod output;
mod population;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use output::{WrittenFiles, write_dataset, write_files_paced};

use crate::error::{Error, Result};
use population::Population;

/// What a generated row is, for `labels.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Normal,
    /// Extreme in several features at once: amount, distance, country, channel.
    Outlier,
    /// Amount < 1.00, then the account's next transaction > 500.00 within 60 s.
    SmallThenLarge,
    /// Quantity > 3 × the user's usual maximum (which is 1–3).
    QuantitySpike,
    /// Looks like small-then-large but is not: gap > 60 s, exactly 1.00 or exactly 500.00.
    NearMiss,
    /// A malformed line (see [`BadKind`]).
    BadRecord,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Normal => "normal",
            Kind::Outlier => "outlier",
            Kind::SmallThenLarge => "small_then_large",
            Kind::QuantitySpike => "quantity_spike",
            Kind::NearMiss => "near_miss",
            Kind::BadRecord => "bad_record",
        }
    }

    /// 1 for the anomalies a detector should find, 0 otherwise.
    pub fn label(self) -> u8 {
        match self {
            Kind::Outlier | Kind::SmallThenLarge | Kind::QuantitySpike => 1,
            Kind::Normal | Kind::NearMiss | Kind::BadRecord => 0,
        }
    }
}

/// How a bad line is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadKind {
    BrokenJson,
    WrongType,
    MissingField,
    NegativeAmount,
    NullEventTime,
}

const BAD_KINDS: [BadKind; 5] = [
    BadKind::BrokenJson,
    BadKind::WrongType,
    BadKind::MissingField,
    BadKind::NegativeAmount,
    BadKind::NullEventTime,
];

/// One generated transaction before it is formatted.
#[derive(Debug, Clone)]
pub struct Event {
    pub time_ms: i64,
    pub account: u32,
    pub user: u32,
    pub kind: Kind,
    pub bad: Option<BadKind>,
    pub amount: f64,
    pub quantity: i64,
    pub unit_cost: f64,
    pub category: u8,
    pub product: u32,
    pub channel: u8,
    pub country: &'static str,
    pub distance_km: f64,
    pub seconds_since_last: f64,
}

/// The generator's settings. [`GeneratorConfig::new`] gives the defaults of `isolake-gen`.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub rows: usize,
    pub files: usize,
    pub seed: u64,
    /// First event time, milliseconds since the Unix epoch (default 2024-01-01T00:00:00Z).
    pub start_ms: i64,
    /// Events fall in `[start, start + span)` (default one day).
    pub span_ms: i64,
    /// Number of accounts (default rows / 20, at least 10).
    pub accounts: Option<usize>,
    pub bad_fraction: f64,
    pub outlier_fraction: f64,
    /// Small-then-large pairs per row (each pair is two rows).
    pub pair_fraction: f64,
    /// Near-miss pairs per row.
    pub near_miss_fraction: f64,
    pub spike_fraction: f64,
    /// File names are `<prefix>-<seed>-<index>.json`.
    pub file_prefix: String,
}

impl GeneratorConfig {
    pub fn new(rows: usize, files: usize, seed: u64) -> Self {
        Self {
            rows,
            files,
            seed,
            start_ms: 1_704_067_200_000,
            span_ms: 86_400_000,
            accounts: None,
            bad_fraction: 0.0,
            outlier_fraction: 0.003,
            pair_fraction: 0.001,
            near_miss_fraction: 0.0015,
            spike_fraction: 0.002,
            file_prefix: "txns".into(),
        }
    }

    fn validate(&self) -> Result<()> {
        let invalid = |name, reason: &str| {
            Err(Error::InvalidArgument {
                name,
                reason: reason.to_string(),
            })
        };
        if self.rows == 0 {
            return invalid("rows", "must be at least 1");
        }
        if self.files == 0 || self.files > self.rows {
            return invalid("files", "must be between 1 and the number of rows");
        }
        if self.span_ms <= 0 {
            return invalid("span", "must be positive");
        }
        if self.accounts == Some(0) {
            return invalid("accounts", "must be at least 1");
        }
        for (name, f) in [
            ("bad-fraction", self.bad_fraction),
            ("outlier-fraction", self.outlier_fraction),
            ("pair-fraction", self.pair_fraction),
            ("near-miss-fraction", self.near_miss_fraction),
            ("spike-fraction", self.spike_fraction),
        ] {
            if !(0.0..0.5).contains(&f) {
                return invalid(name, "must be in [0, 0.5)");
            }
        }
        let anomalous = self.outlier_fraction
            + 2.0 * (self.pair_fraction + self.near_miss_fraction)
            + self.spike_fraction
            + self.bad_fraction;
        if anomalous >= 0.5 {
            return invalid(
                "bad-fraction",
                "anomalies and bad lines must stay under half the rows",
            );
        }
        Ok(())
    }
}

/// A generated data set: events in file order, and where each file starts.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub config: GeneratorConfig,
    pub events: Vec<Event>,
    pub population: Population,
}

impl Dataset {
    /// The transaction id of the event at `index` (ids follow file order).
    pub fn transaction_id(&self, index: usize) -> String {
        format!("t{}-{:08}", self.config.seed, index)
    }

    /// The half-open index range of each file's events.
    pub fn file_ranges(&self) -> Vec<std::ops::Range<usize>> {
        let n = self.events.len();
        let f = self.config.files;
        (0..f).map(|k| k * n / f..(k + 1) * n / f).collect()
    }
}

/// Generates the data set described by `config`, deterministically from its seed.
pub fn generate(config: &GeneratorConfig) -> Result<Dataset> {
    config.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let n_accounts = config.accounts.unwrap_or((config.rows / 20).max(10));
    let population = Population::generate(&mut rng, n_accounts);
    let events = anomalies::build_events(&mut rng, config, &population);
    Ok(Dataset {
        config: config.clone(),
        events,
        population,
    })
}
