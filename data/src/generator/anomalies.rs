//! Lays out the events: normal traffic first, then the labelled constructs placed so that each
//! rule's definition holds (or, for near misses, just fails) by construction.

use rand::Rng;
use rand::seq::index::sample;
use rand_distr::{Distribution, Exp};

use super::population::{self, FAR_COUNTRIES, HOME_COUNTRIES, Population, round2, round3};
use super::{BAD_KINDS, Event, GeneratorConfig, Kind};

/// The longest gap a construct needs inside an account's timeline (a near miss of up to 180 s),
/// plus room on both sides, so no other transaction of the account falls between its rows.
const CONSTRUCT_ROOM_MS: i64 = 1_000 + 180_000 + 2_000;

pub fn build_events(rng: &mut impl Rng, config: &GeneratorConfig, pop: &Population) -> Vec<Event> {
    let share = |f: f64| (config.rows as f64 * f).round() as usize;
    let n_pairs = share(config.pair_fraction);
    let n_near = share(config.near_miss_fraction);
    let planned = (n_pairs + n_near).min(config.rows / 4);

    let mut events: Vec<Event> = (0..config.rows - 2 * planned)
        .map(|_| normal_event(rng, config, pop))
        .collect();

    // Constructs go into gaps of an account's own timeline, right after an "anchor" event.
    events.sort_by_key(|e| (e.account, e.time_ms));
    let gaps: Vec<usize> = (0..events.len())
        .filter(|&i| {
            i + 1 == events.len()
                || events[i + 1].account != events[i].account
                || events[i + 1].time_ms - events[i].time_ms > CONSTRUCT_ROOM_MS
        })
        .collect();
    let n_constructs = planned.min(gaps.len());
    let mut anchors: Vec<usize> = sample(rng, gaps.len(), n_constructs)
        .into_iter()
        .map(|g| gaps[g])
        .collect();
    anchors.sort_unstable();
    let mut constructs = Vec::with_capacity(2 * n_constructs);
    for (j, &anchor) in anchors.iter().enumerate() {
        let shape = if j < n_pairs {
            0
        } else {
            1 + ((j - n_pairs) % 3) as u8
        };
        constructs.extend(construct(rng, &events[anchor], pop, shape));
    }
    // Too few gaps (tiny data sets): keep the row count with normal events.
    for _ in 0..2 * (planned - n_constructs) {
        events.push(normal_event(rng, config, pop));
    }

    // Outliers, spikes and bad lines each take a distinct normal event.
    let n_outliers = share(config.outlier_fraction);
    let n_spikes = share(config.spike_fraction);
    let n_bad = share(config.bad_fraction);
    let total = (n_outliers + n_spikes + n_bad).min(events.len());
    let picks = sample(rng, events.len(), total).into_vec();
    for (j, &i) in picks.iter().enumerate() {
        if j < n_outliers {
            make_outlier(rng, &mut events[i]);
        } else if j < n_outliers + n_spikes {
            make_spike(rng, &mut events[i], pop);
        } else {
            events[i].kind = Kind::BadRecord;
            events[i].bad = Some(BAD_KINDS[rng.gen_range(0..BAD_KINDS.len())]);
        }
    }

    events.extend(constructs);
    // Stable: equal times keep the (account, time) order above, so the output is deterministic.
    events.sort_by_key(|e| e.time_ms);
    fill_seconds_since_last(rng, &mut events, pop.accounts.len());
    events
}

fn normal_event(rng: &mut impl Rng, config: &GeneratorConfig, pop: &Population) -> Event {
    let account = rng.gen_range(0..pop.accounts.len());
    let acct = &pop.accounts[account];
    let user = acct.users[rng.gen_range(0..acct.users.len())];
    let category = population::category(rng);
    let unit_cost = population::unit_cost(rng, category, acct.spend_factor);
    let quantity = rng.gen_range(1..=pop.users[user as usize].usual_quantity);
    let abroad = rng.gen_range(0..100) < 3;
    let country = if abroad {
        HOME_COUNTRIES[rng.gen_range(0..HOME_COUNTRIES.len())]
    } else {
        HOME_COUNTRIES[acct.home_country as usize]
    };
    let distance_km = if abroad {
        round3(rng.gen_range(300.0..2000.0))
    } else {
        population::home_distance(rng)
    };
    Event {
        time_ms: population::event_time(rng, config.start_ms, config.span_ms),
        account: account as u32,
        user,
        kind: Kind::Normal,
        bad: None,
        amount: round2(unit_cost * quantity as f64),
        quantity,
        unit_cost,
        category,
        product: category as u32 * population::PRODUCTS_PER_CATEGORY
            + rng.gen_range(0..population::PRODUCTS_PER_CATEGORY),
        channel: population::channel(rng),
        country,
        distance_km,
        seconds_since_last: 0.0,
    }
}

/// Two events right after `anchor` in its account's timeline.
/// shape 0: small (< 1.00) then large (> 500.00) within 60 s — the anomaly;
/// 1: the same with a gap over 60 s; 2: exactly 1.00 then large; 3: small then exactly 500.00.
fn construct(rng: &mut impl Rng, anchor: &Event, pop: &Population, shape: u8) -> [Event; 2] {
    let small = rng.gen_range(1..=99) as f64 / 100.0;
    let large = rng.gen_range(50_001..=250_000) as f64 / 100.0;
    let (first_amount, second_amount, gap_ms, kind) = match shape {
        0 => (
            small,
            large,
            rng.gen_range(1_000..=59_000),
            Kind::SmallThenLarge,
        ),
        1 => (
            small,
            large,
            rng.gen_range(61_000..=180_000),
            Kind::NearMiss,
        ),
        2 => (1.0, large, rng.gen_range(1_000..=59_000), Kind::NearMiss),
        _ => (small, 500.0, rng.gen_range(1_000..=59_000), Kind::NearMiss),
    };
    let acct = &pop.accounts[anchor.account as usize];
    let first_time = anchor.time_ms + rng.gen_range(1..=1_000);
    let mut event = |time_ms: i64, amount: f64, category: u8| Event {
        time_ms,
        account: anchor.account,
        user: acct.users[rng.gen_range(0..acct.users.len())],
        kind,
        bad: None,
        amount,
        quantity: 1,
        unit_cost: amount,
        category,
        product: category as u32 * population::PRODUCTS_PER_CATEGORY,
        channel: 1,
        country: HOME_COUNTRIES[acct.home_country as usize],
        distance_km: population::home_distance(rng),
        seconds_since_last: 0.0,
    };
    [
        event(first_time, first_amount, 6),
        event(first_time + gap_ms, second_amount, 4),
    ]
}

/// Extreme in several features at once: a large online or ATM amount, far from home, abroad.
fn make_outlier(rng: &mut impl Rng, e: &mut Event) {
    e.kind = Kind::Outlier;
    e.quantity = 1;
    e.amount = round2(rng.gen_range(1_500.0..9_000.0));
    e.unit_cost = e.amount;
    e.category = if rng.gen_bool(0.5) { 4 } else { 5 };
    e.channel = if rng.gen_bool(0.7) { 1 } else { 2 };
    e.country = FAR_COUNTRIES[rng.gen_range(0..FAR_COUNTRIES.len())];
    e.distance_km = round3(rng.gen_range(1_000.0..9_000.0));
}

/// More than three times the user's usual maximum quantity.
fn make_spike(rng: &mut impl Rng, e: &mut Event, pop: &Population) {
    let usual = pop.users[e.user as usize].usual_quantity;
    e.kind = Kind::QuantitySpike;
    e.quantity = 3 * usual + rng.gen_range(1..=12);
    e.amount = round2(e.unit_cost * e.quantity as f64);
}

fn fill_seconds_since_last(rng: &mut impl Rng, events: &mut [Event], n_accounts: usize) {
    let mut last: Vec<Option<i64>> = vec![None; n_accounts];
    let before_day = Exp::new(1.0 / 43_200.0).expect("valid rate");
    for e in events.iter_mut() {
        e.seconds_since_last = match last[e.account as usize] {
            Some(t) => (e.time_ms - t) as f64 / 1000.0,
            None => round3(before_day.sample(rng)),
        };
        last[e.account as usize] = Some(e.time_ms);
    }
}
