//! Who transacts: accounts with their users, home country and habits, and the merchants'
//! price levels. Normal behaviour is drawn from here; anomalies depart from it.

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal};

/// Merchant categories with their median unit cost.
pub const CATEGORIES: [(&str, f64); 8] = [
    ("grocery", 12.0),
    ("fuel", 45.0),
    ("restaurant", 28.0),
    ("apparel", 40.0),
    ("electronics", 120.0),
    ("travel", 180.0),
    ("online_services", 15.0),
    ("pharmacy", 18.0),
];
const CATEGORY_WEIGHTS: [u32; 8] = [30, 14, 18, 10, 6, 4, 12, 6];

pub const HOME_COUNTRIES: [&str; 12] = [
    "US", "GB", "DE", "FR", "NL", "ES", "IT", "CA", "SE", "PL", "IE", "PT",
];
pub const FAR_COUNTRIES: [&str; 8] = ["BR", "JP", "ZA", "MX", "TH", "AU", "IN", "TR"];
pub const CHANNELS: [&str; 3] = ["pos", "online", "atm"];

/// The cheapest normal unit price. Normal amounts therefore never fall below 1.00, so the
/// only "small" transactions in the data are the ones the generator plants and labels.
pub const MIN_NORMAL_UNIT_COST: f64 = 1.5;
const MAX_NORMAL_UNIT_COST: f64 = 450.0;
/// Products per category.
pub const PRODUCTS_PER_CATEGORY: u32 = 125;

#[derive(Debug, Clone)]
pub struct User {
    /// The most units this user normally buys at once (1–3).
    pub usual_quantity: i64,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub home_country: u16,
    pub age_days: i64,
    /// Indices into [`Population::users`].
    pub users: Vec<u32>,
    /// Spending level relative to the category median.
    pub spend_factor: f64,
}

#[derive(Debug, Clone)]
pub struct Population {
    pub accounts: Vec<Account>,
    pub users: Vec<User>,
}

impl Population {
    pub fn generate(rng: &mut impl Rng, n_accounts: usize) -> Self {
        let mut accounts = Vec::with_capacity(n_accounts);
        let mut users = Vec::with_capacity(n_accounts * 2);
        let spend = LogNormal::new(0.0, 0.35).expect("valid log-normal parameters");
        for _ in 0..n_accounts {
            let n_users = rng.gen_range(1..=3);
            let first = users.len() as u32;
            for _ in 0..n_users {
                users.push(User {
                    usual_quantity: rng.gen_range(1..=3),
                });
            }
            accounts.push(Account {
                home_country: rng.gen_range(0..HOME_COUNTRIES.len()) as u16,
                age_days: rng.gen_range(30..=3650),
                users: (first..first + n_users).collect(),
                spend_factor: spend.sample(rng),
            });
        }
        Self { accounts, users }
    }
}

/// Draws a category index by the categories' weights.
pub fn category(rng: &mut impl Rng) -> u8 {
    let total: u32 = CATEGORY_WEIGHTS.iter().sum();
    let mut pick = rng.gen_range(0..total);
    for (i, w) in CATEGORY_WEIGHTS.iter().enumerate() {
        if pick < *w {
            return i as u8;
        }
        pick -= w;
    }
    0
}

/// A normal unit cost for the category and account.
pub fn unit_cost(rng: &mut impl Rng, category: u8, spend_factor: f64) -> f64 {
    let median = CATEGORIES[category as usize].1 * spend_factor;
    let noise = LogNormal::new(0.0, 0.5).expect("valid log-normal parameters");
    round2((median * noise.sample(rng)).clamp(MIN_NORMAL_UNIT_COST, MAX_NORMAL_UNIT_COST))
}

/// A channel: mostly card present.
pub fn channel(rng: &mut impl Rng) -> u8 {
    match rng.gen_range(0..100) {
        0..68 => 0,
        68..95 => 1,
        _ => 2,
    }
}

/// Kilometres from home for a normal purchase.
pub fn home_distance(rng: &mut impl Rng) -> f64 {
    round3(Exp::new(1.0 / 6.0).expect("valid rate").sample(rng))
}

/// Relative frequency of transactions by hour of day (UTC): quiet at night.
const HOUR_WEIGHTS: [f64; 24] = [
    1.0, 0.5, 0.3, 0.3, 0.4, 0.8, 2.0, 4.0, 6.0, 7.0, 7.0, 7.0, 8.0, 7.0, 7.0, 7.0, 7.0, 7.0, 8.0,
    8.0, 6.0, 4.0, 3.0, 2.0,
];

/// An event time in `[start_ms, start_ms + span_ms)`, following the daily rhythm.
pub fn event_time(rng: &mut impl Rng, start_ms: i64, span_ms: i64) -> i64 {
    loop {
        let t = start_ms + rng.gen_range(0..span_ms);
        let hour = (t.rem_euclid(86_400_000) / 3_600_000) as usize;
        if rng.gen_range(0.0..8.0) < HOUR_WEIGHTS[hour] {
            return t;
        }
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
