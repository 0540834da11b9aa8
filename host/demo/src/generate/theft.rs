//! Synthetic data for the 盗窃高危预警 model (sample model 4): theft
//! incidents, sightings, addresses and prior records, with planted alerts
//! and near misses.
//!
//! The score constants match the model's defaults (as of 2024-12-31;
//! sightings of the last 7 days are scored; +40 for a theft prior within 5
//! years, +10 per further prior up to 3; +20 at a top-10% place of the last
//! 90 days, +15 at its peak hour, +15 for 3 appearances there within 7 days
//! without a home or work address there, +10 for a disguise tag; alert at
//! 60). Expected alerts are computed here from the generated records, not by
//! the model's code.

use super::{date, person_name, ymd, DataFile, Files, People};
use chrono::NaiveDate;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The assessment date the data is built around (the model's default).
pub fn as_of() -> NaiveDate {
    date(2024, 12, 31)
}

const PEOPLE_SERIALS: u64 = 2_000_000;
const PLACES: usize = 200;
const HOTSPOTS: usize = 20;

/// What the generator planted for one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// No theft record in the window; seen anywhere.
    Ordinary,
    /// Theft records older than five years.
    Reformed,
    /// A recent theft record; recently seen away from hotspots only.
    ThiefAwayFromHotspots,
    /// Alert (60): a prior and a hotspot sighting off its peak hour.
    PriorAtHotspot,
    /// Alert (85): two priors, a hotspot at its peak hour.
    PriorsAtPeakHour,
    /// Alert (75): a prior and three appearances at a hotspot in a week.
    RepeatVisitor,
    /// Alert (70): five priors; only three further ones score.
    ManyPriors,
    /// Alert (60) without priors: hotspot, peak hour, repeated, disguised.
    NoPriorsFullPattern,
    /// Alert (60): a prior exactly five years before the sighting.
    PriorExactlyFiveYears,
    /// Near miss (35): the prior is five years and one day old.
    PriorFiveYearsOneDay,
    /// Near miss (50): a prior and a disguise, away from hotspots.
    BelowSixty,
    /// Near miss (45): the full pattern at the hotspot they live at.
    LivesAtHotspot,
    /// Near miss (45): three appearances spread over more than a week.
    RepeatSpreadOut,
    /// Near miss: 85 points, but eight days before as_of.
    OldSighting,
    /// Near miss (40): a place that was a hotspot more than 90 days ago.
    OldHotspot,
    /// Near miss (35): the prior is for drink driving, not theft.
    OtherKindPrior,
    /// Near miss: 85 points on a sighting dated after as_of.
    FutureSighting,
}

impl Scenario {
    /// The score planted, for an alert.
    pub fn alert(self) -> Option<u32> {
        use Scenario::*;
        match self {
            PriorAtHotspot | NoPriorsFullPattern | PriorExactlyFiveYears => Some(60),
            PriorsAtPeakHour => Some(85),
            RepeatVisitor => Some(75),
            ManyPriors => Some(70),
            _ => None,
        }
    }

    pub fn is_violation(self) -> bool {
        self.alert().is_some()
    }

    pub fn is_near_miss(self) -> bool {
        use Scenario::*;
        matches!(
            self,
            PriorFiveYearsOneDay
                | BelowSixty
                | LivesAtHotspot
                | RepeatSpreadOut
                | OldSighting
                | OldHotspot
                | OtherKindPrior
                | FutureSighting
        )
    }
}

/// An expected alert, computed by the generator's own reading of the score.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub person_id: String,
    pub scenario: Scenario,
    pub score: u32,
}

/// The files written and what they should produce.
#[derive(Debug, Clone)]
pub struct Generated {
    pub files: Vec<DataFile>,
    pub expected: Vec<Expected>,
    pub near_misses: Vec<(String, Scenario)>,
    pub planted: Vec<(String, Scenario)>,
    pub persons: usize,
}

struct Sighting {
    place: usize,
    day: NaiveDate,
    hour: u32,
    minute: u32,
    tags: &'static str,
}

struct Person {
    id: String,
    scenario: Scenario,
    /// (kind, decided on)
    priors: Vec<(&'static str, NaiveDate)>,
    sightings: Vec<Sighting>,
    /// (kind, place)
    addresses: Vec<(&'static str, usize)>,
}

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

use super::years_earlier;

fn place_id(p: usize) -> String {
    format!("652901-W{:04}", p + 1)
}

/// Hotspots from the incidents: place → peak hours, by the generator's own
/// reading (top tenth of places with thefts in the 90 days to as_of).
fn hotspots(incidents: &[(usize, NaiveDate, u32)]) -> BTreeMap<usize, Vec<u32>> {
    let as_of = as_of();
    let mut per_place: BTreeMap<usize, [u32; 24]> = BTreeMap::new();
    for &(place, day, hour) in incidents {
        if day <= as_of && day >= as_of - days(90) {
            per_place.entry(place).or_insert([0; 24])[hour as usize] += 1;
        }
    }
    let mut totals: Vec<u32> = per_place.values().map(|h| h.iter().sum()).collect();
    totals.sort_unstable_by(|a, b| b.cmp(a));
    let k = totals.len().div_ceil(10).max(1);
    let Some(&threshold) = totals.get(k - 1) else {
        return BTreeMap::new();
    };
    per_place
        .into_iter()
        .filter(|(_, h)| h.iter().sum::<u32>() >= threshold)
        .map(|(p, h)| {
            let top = *h.iter().max().expect("24 hours");
            (p, (0..24).filter(|&x| h[x as usize] == top).collect())
        })
        .collect()
}

/// The generator's own reading of the score (DOMAIN.md, sample model 4).
fn expected_alert(p: &Person, hot: &BTreeMap<usize, Vec<u32>>) -> Option<Expected> {
    let as_of = as_of();
    let links: BTreeSet<usize> = p.addresses.iter().map(|a| a.1).collect();
    let mut best: Option<u32> = None;
    for s in &p.sightings {
        if s.day > as_of || s.day < as_of - days(7) {
            continue;
        }
        let from = years_earlier(s.day, 5);
        let n = p
            .priors
            .iter()
            .filter(|(k, on)| *k == "盗窃" && *on >= from && *on <= s.day)
            .count() as u32;
        let mut score = if n > 0 { 40 + 10 * (n - 1).min(3) } else { 0 };
        if let Some(peak) = hot.get(&s.place) {
            score += 20;
            if peak.contains(&s.hour) {
                score += 15;
            }
            let seen = p
                .sightings
                .iter()
                .filter(|o| {
                    o.place == s.place
                        && o.day <= s.day
                        && o.day >= s.day - days(7)
                        && o.day <= as_of
                })
                .count();
            if seen >= 3 && !links.contains(&s.place) {
                score += 15;
            }
        }
        if s.tags.split(';').any(|t| t == "伪装") {
            score += 10;
        }
        best = best.max(Some(score));
    }
    best.filter(|&s| s >= 60).map(|score| Expected {
        person_id: p.id.clone(),
        scenario: p.scenario,
        score,
    })
}

fn pick_scenario(rng: &mut ChaCha8Rng, i: usize) -> Scenario {
    use Scenario::*;
    const FIXED: [Scenario; 17] = [
        PriorFiveYearsOneDay,
        BelowSixty,
        LivesAtHotspot,
        RepeatSpreadOut,
        OldSighting,
        OldHotspot,
        OtherKindPrior,
        FutureSighting,
        PriorAtHotspot,
        PriorsAtPeakHour,
        RepeatVisitor,
        ManyPriors,
        NoPriorsFullPattern,
        PriorExactlyFiveYears,
        Ordinary,
        Reformed,
        ThiefAwayFromHotspots,
    ];
    if i < FIXED.len() {
        return FIXED[i];
    }
    const WEIGHTS: [(Scenario, u32); 17] = [
        (Ordinary, 780),
        (Reformed, 40),
        (ThiefAwayFromHotspots, 60),
        (PriorAtHotspot, 12),
        (PriorsAtPeakHour, 8),
        (RepeatVisitor, 8),
        (ManyPriors, 5),
        (NoPriorsFullPattern, 5),
        (PriorExactlyFiveYears, 4),
        (PriorFiveYearsOneDay, 8),
        (BelowSixty, 15),
        (LivesAtHotspot, 8),
        (RepeatSpreadOut, 8),
        (OldSighting, 8),
        (OldHotspot, 8),
        (OtherKindPrior, 8),
        (FutureSighting, 7),
    ];
    let mut roll = rng.gen_range(0..WEIGHTS.iter().map(|w| w.1).sum::<u32>());
    for (s, w) in WEIGHTS {
        if roll < w {
            return s;
        }
        roll -= w;
    }
    unreachable!("the roll is below the sum of the weights")
}

/// The places of the run: which are hotspots (with their peak hour) and
/// which were hot only long ago.
struct Map {
    hot: Vec<(usize, u32)>,
    cold: Vec<usize>,
    formerly_hot: Vec<usize>,
}

/// One person planted for `scenario`, the next of `people`.
fn make_person(rng: &mut ChaCha8Rng, people: &mut People, map: &Map, scenario: Scenario) -> Person {
    use Scenario::*;
    let as_of = as_of();
    let id = people.next_id(rng);
    let (hot, peak) = map.hot[rng.gen_range(0..map.hot.len())];
    let spot = Spot { map, hot, peak };
    let mut addresses = vec![("居住", spot.cold(rng))];
    if rng.gen_bool(0.5) {
        addresses.push(("工作", spot.cold(rng)));
    }
    let mut history = History::default();
    let background = matches!(scenario, Ordinary | Reformed | ThiefAwayFromHotspots);
    if background {
        plant_background(rng, &spot, scenario, &mut history);
    } else if scenario.is_violation() {
        plant_alert(rng, &spot, scenario, &mut history);
    } else {
        plant_near_miss(rng, &spot, scenario, &mut history);
    }
    if scenario == LivesAtHotspot {
        addresses[0] = ("居住", hot);
    }
    if !background {
        // Older sightings away from hotspots: history that scores nothing.
        for _ in 0..rng.gen_range(0..4) {
            history.seen(
                spot.cold(rng),
                as_of - days(rng.gen_range(9..60)),
                rng.gen_range(6..24),
                "",
            );
        }
    }
    for s in &mut history.sightings {
        s.minute = rng.gen_range(0..60);
    }
    Person {
        id,
        scenario,
        priors: history.priors,
        sightings: history.sightings,
        addresses,
    }
}

/// A person's hotspot and its peak hour, on the map of the run.
struct Spot<'a> {
    map: &'a Map,
    hot: usize,
    peak: u32,
}

impl Spot<'_> {
    /// A place that is not a hotspot.
    fn cold(&self, rng: &mut ChaCha8Rng) -> usize {
        self.map.cold[rng.gen_range(0..self.map.cold.len())]
    }

    /// An hour from 7:00 that is not the hotspot's peak.
    fn off_peak(&self, rng: &mut ChaCha8Rng) -> u32 {
        loop {
            let h = rng.gen_range(7..24);
            if h != self.peak {
                return h;
            }
        }
    }
}

/// A person's prior records, (kind, decided on), and sightings, as planted.
#[derive(Default)]
struct History {
    priors: Vec<(&'static str, NaiveDate)>,
    sightings: Vec<Sighting>,
}

impl History {
    /// Seen at `place` on `day` at `hour` (the minute is drawn later).
    fn seen(&mut self, place: usize, day: NaiveDate, hour: u32, tags: &'static str) {
        self.sightings.push(Sighting {
            place,
            day,
            hour,
            minute: 0,
            tags,
        });
    }
}

/// A day in the week to as_of.
fn recent(rng: &mut ChaCha8Rng) -> NaiveDate {
    as_of() - days(rng.gen_range(0..=7))
}

/// A theft prior decided 60 days to under five years before `day`.
fn theft_within(rng: &mut ChaCha8Rng, day: NaiveDate) -> (&'static str, NaiveDate) {
    ("盗窃", day - days(rng.gen_range(60..1700)))
}

/// Plants the history of someone who is neither an alert nor a near miss.
fn plant_background(rng: &mut ChaCha8Rng, spot: &Spot, scenario: Scenario, h: &mut History) {
    use Scenario::*;
    let as_of = as_of();
    match scenario {
        Ordinary => {
            for _ in 0..rng.gen_range(1..8) {
                let place = if rng.gen_bool(0.2) {
                    spot.map.hot[rng.gen_range(0..spot.map.hot.len())].0
                } else {
                    spot.cold(rng)
                };
                let day = as_of - days(rng.gen_range(0..60));
                h.seen(
                    place,
                    day,
                    rng.gen_range(6..24),
                    ["", "", "口罩"][rng.gen_range(0..3)],
                );
            }
            if rng.gen_bool(0.05) {
                h.priors
                    .push(("其他", as_of - days(rng.gen_range(100..3000))));
            }
        }
        Reformed => {
            for _ in 0..rng.gen_range(1..3) {
                h.priors.push((
                    "盗窃",
                    years_earlier(as_of, 5) - days(rng.gen_range(9..1500)),
                ));
            }
            for _ in 0..rng.gen_range(1..6) {
                let place = if rng.gen_bool(0.3) {
                    spot.hot
                } else {
                    spot.cold(rng)
                };
                h.seen(
                    place,
                    as_of - days(rng.gen_range(0..40)),
                    rng.gen_range(6..24),
                    "",
                );
            }
        }
        ThiefAwayFromHotspots => {
            h.priors.push(theft_within(rng, as_of - days(8)));
            for _ in 0..rng.gen_range(1..5) {
                h.seen(spot.cold(rng), recent(rng), rng.gen_range(6..24), "");
            }
            // Seen at hotspots, but not in the last week.
            h.seen(spot.hot, as_of - days(rng.gen_range(9..40)), spot.peak, "");
        }
        _ => unreachable!("{scenario:?} is an alert or a near miss"),
    }
}

/// Plants the history of someone an alert is expected for.
fn plant_alert(rng: &mut ChaCha8Rng, spot: &Spot, scenario: Scenario, h: &mut History) {
    use Scenario::*;
    let (hot, peak) = (spot.hot, spot.peak);
    // Every alert is for a sighting in the week to as_of.
    let day = recent(rng);
    match scenario {
        PriorAtHotspot => {
            h.priors.push(theft_within(rng, day));
            h.seen(hot, day, spot.off_peak(rng), "");
        }
        PriorsAtPeakHour => {
            h.priors.push(theft_within(rng, day));
            h.priors.push(theft_within(rng, day));
            h.seen(hot, day, peak, ["", "口罩"][rng.gen_range(0..2)]);
        }
        RepeatVisitor => {
            h.priors.push(theft_within(rng, day));
            for back in [6, 3, 0] {
                h.seen(hot, day - days(back), spot.off_peak(rng), "");
            }
        }
        ManyPriors => {
            for _ in 0..5 {
                h.priors.push(theft_within(rng, day));
            }
            h.seen(spot.cold(rng), day, rng.gen_range(6..24), "");
        }
        NoPriorsFullPattern => full_pattern(rng, spot, day, h),
        PriorExactlyFiveYears => {
            h.priors.push(("盗窃", years_earlier(day, 5)));
            h.seen(hot, day, spot.off_peak(rng), "");
        }
        _ => unreachable!("{scenario:?} is not an alert"),
    }
}

/// Plants the history of a near miss: close to an alert, but none.
fn plant_near_miss(rng: &mut ChaCha8Rng, spot: &Spot, scenario: Scenario, h: &mut History) {
    use Scenario::*;
    let as_of = as_of();
    let (hot, peak) = (spot.hot, spot.peak);
    match scenario {
        LivesAtHotspot => {
            let day = recent(rng);
            full_pattern(rng, spot, day, h);
        }
        PriorFiveYearsOneDay => {
            let day = recent(rng);
            h.priors.push(("盗窃", years_earlier(day, 5) - days(1)));
            h.seen(hot, day, peak, "");
        }
        BelowSixty => {
            let day = recent(rng);
            h.priors.push(theft_within(rng, day));
            h.seen(spot.cold(rng), day, rng.gen_range(6..24), "伪装");
        }
        RepeatSpreadOut => {
            let day = recent(rng);
            h.seen(hot, day - days(12), spot.off_peak(rng), "");
            h.seen(hot, day - days(8), spot.off_peak(rng), "");
            h.seen(hot, day, peak, "伪装");
        }
        OldSighting => {
            let day = as_of - days(8);
            h.priors.push(theft_within(rng, day));
            h.priors.push(theft_within(rng, day));
            h.seen(hot, day, peak, "");
        }
        OldHotspot => {
            let day = recent(rng);
            h.priors.push(theft_within(rng, day));
            let place = spot.map.formerly_hot[rng.gen_range(0..spot.map.formerly_hot.len())];
            h.seen(place, day, rng.gen_range(6..24), "");
        }
        OtherKindPrior => {
            let day = recent(rng);
            h.priors
                .push(("饮酒驾驶", day - days(rng.gen_range(60..1700))));
            h.seen(hot, day, peak, "");
        }
        FutureSighting => {
            let day = as_of + days(rng.gen_range(1..10));
            h.priors.push(theft_within(rng, as_of));
            h.priors.push(theft_within(rng, as_of));
            h.seen(hot, day, peak, "");
        }
        _ => unreachable!("{scenario:?} is not a near miss"),
    }
}

/// Three appearances at the hotspot in the week to `day`, the last at its
/// peak hour in disguise: without priors, alert 60 unless they live there.
fn full_pattern(rng: &mut ChaCha8Rng, spot: &Spot, day: NaiveDate, h: &mut History) {
    h.seen(spot.hot, day - days(7), spot.off_peak(rng), "");
    h.seen(spot.hot, day - days(2), spot.off_peak(rng), "");
    h.seen(spot.hot, day, spot.peak, "口罩;伪装");
}

/// Generates `persons` people's data (and the theft incidents of 200
/// places) into `dir` from `seed`.
pub fn generate(dir: &Path, persons: usize, seed: u64) -> std::io::Result<Generated> {
    std::fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let map = make_map(&mut rng);
    let incidents = make_incidents(&mut rng, &map);
    let hot_computed = hotspots(&incidents);
    let mut people = People::new(PEOPLE_SERIALS);
    let mut all = Vec::with_capacity(persons);
    for i in 0..persons {
        let scenario = pick_scenario(&mut rng, i);
        all.push(make_person(&mut rng, &mut people, &map, scenario));
    }
    let mut rows = Rows::default();
    let mut expected = Vec::new();
    for p in &all {
        rows.add(&mut rng, p);
        if let Some(e) = expected_alert(p, &hot_computed) {
            expected.push(e);
        }
    }
    let files = rows.write(dir, &incidents)?;
    expected.sort_by(|a, b| a.person_id.cmp(&b.person_id));
    let pick = |f: fn(Scenario) -> bool| {
        all.iter()
            .filter(|p| f(p.scenario))
            .map(|p| (p.id.clone(), p.scenario))
            .collect()
    };
    Ok(Generated {
        files,
        expected,
        near_misses: pick(Scenario::is_near_miss),
        planted: pick(Scenario::is_violation),
        persons,
    })
}

/// The places in a random order: the first [`HOTSPOTS`] are hotspots, each
/// with a peak hour, the rest are not, and five of those were hot long ago.
fn make_map(rng: &mut ChaCha8Rng) -> Map {
    let mut order: Vec<usize> = (0..PLACES).collect();
    order.shuffle(rng);
    let hot: Vec<(usize, u32)> = order[..HOTSPOTS]
        .iter()
        .map(|&p| (p, rng.gen_range(9..23)))
        .collect();
    let formerly_hot: Vec<usize> = order[HOTSPOTS..HOTSPOTS + 5].to_vec();
    let cold: Vec<usize> = order[HOTSPOTS..].to_vec();
    Map {
        hot,
        cold,
        formerly_hot,
    }
}

/// A day in the 90 days to as_of, the window hotspots are computed over.
fn in_window(rng: &mut ChaCha8Rng) -> NaiveDate {
    as_of() - days(rng.gen_range(0..=90))
}

/// The theft incidents, (place, day, hour): every place has a few in the 90
/// days to as_of, hotspots many, with one clear peak hour; older ones (and
/// a few formerly hot places) lie outside the window, and a few are dated
/// after as_of.
fn make_incidents(rng: &mut ChaCha8Rng, map: &Map) -> Vec<(usize, NaiveDate, u32)> {
    let as_of = as_of();
    let mut incidents: Vec<(usize, NaiveDate, u32)> = Vec::new();
    for &(place, peak) in &map.hot {
        add_hotspot_incidents(rng, place, peak, &mut incidents);
    }
    for &place in &map.cold {
        for _ in 0..rng.gen_range(1..=6) {
            incidents.push((place, in_window(rng), rng.gen_range(0..24)));
        }
    }
    for &place in &map.formerly_hot {
        for _ in 0..40 {
            incidents.push((
                place,
                as_of - days(rng.gen_range(91..300)),
                rng.gen_range(0..24),
            ));
        }
    }
    for _ in 0..PLACES * 3 {
        incidents.push((
            rng.gen_range(0..PLACES),
            as_of - days(rng.gen_range(91..400)),
            rng.gen_range(0..24),
        ));
    }
    for _ in 0..20 {
        incidents.push((
            rng.gen_range(0..PLACES),
            as_of + days(rng.gen_range(1..30)),
            rng.gen_range(0..24),
        ));
    }
    incidents
}

/// 15 to 30 incidents at a hotspot in the window: seven at its `peak` hour,
/// at most three at any other.
fn add_hotspot_incidents(
    rng: &mut ChaCha8Rng,
    place: usize,
    peak: u32,
    incidents: &mut Vec<(usize, NaiveDate, u32)>,
) {
    let total = rng.gen_range(15..=30);
    for _ in 0..7 {
        incidents.push((place, in_window(rng), peak));
    }
    let mut per_hour = [0u32; 24];
    let mut placed = 7;
    while placed < total {
        let h = rng.gen_range(0..24);
        if h != peak && per_hour[h as usize] < 3 {
            per_hour[h as usize] += 1;
            incidents.push((place, in_window(rng), h));
            placed += 1;
        }
    }
}

/// The rows of the incidents file.
fn incident_rows(incidents: &[(usize, NaiveDate, u32)]) -> Vec<serde_json::Value> {
    let categories = ["入户盗窃", "扒窃", "盗窃电动车", "盗窃财物"];
    incidents
        .iter()
        .enumerate()
        .map(|(i, &(place, day, hour))| {
            serde_json::json!({
                "incident_id": format!("J{}{:07}", day.format("%Y%m%d"), i),
                "place_id": place_id(place),
                "occurred_at": format!("{} {hour:02}:{:02}:00", ymd(day), (i * 7) % 60),
                "category": categories[i % categories.len()],
                "synthetic": true,
            })
        })
        .collect()
}

/// The rows of the people's files, added person by person.
#[derive(Default)]
struct Rows {
    sightings: Vec<serde_json::Value>,
    addresses: Vec<Vec<String>>,
    priors: Vec<Vec<String>>,
    sighting_serial: u64,
    prior_serial: u64,
}

impl Rows {
    /// Adds the rows of person `p` to every file, the person given a name.
    fn add(&mut self, rng: &mut ChaCha8Rng, p: &Person) {
        let name = person_name(rng);
        self.add_sightings(p);
        self.add_addresses(rng, p);
        self.add_priors(p, &name);
    }

    /// Where the person was seen.
    fn add_sightings(&mut self, p: &Person) {
        for s in &p.sightings {
            self.sighting_serial += 1;
            let serial = self.sighting_serial;
            self.sightings.push(serde_json::json!({
                "person_id": p.id,
                "sighting_id": format!("GJ{serial:09}"),
                "place_id": place_id(s.place),
                "seen_at": format!("{} {:02}:{:02}:{:02}", ymd(s.day), s.hour, s.minute, serial % 60),
                "tags": s.tags,
                "synthetic": true,
            }));
        }
    }

    /// Where the person lives and works, each registered on some day.
    fn add_addresses(&mut self, rng: &mut ChaCha8Rng, p: &Person) {
        for (kind, place) in &p.addresses {
            self.addresses.push(vec![
                p.id.clone(),
                kind.to_string(),
                place_id(*place),
                format!(
                    "阿克苏市{}街道{}号",
                    ["英巴格", "新城", "南城", "多浪"][place % 4],
                    place * 3 + 1
                ),
                ymd(date(2015, 1, 1) + days(rng.gen_range(0..3000))),
                "是".to_string(),
            ]);
        }
    }

    /// The person's prior records.
    fn add_priors(&mut self, p: &Person, name: &str) {
        for (kind, on) in &p.priors {
            self.prior_serial += 1;
            self.priors.push(vec![
                format!("DQ{:08}", self.prior_serial),
                p.id.clone(),
                name.to_string(),
                kind.to_string(),
                ymd(*on),
                if *kind == "盗窃" {
                    "阿克苏市人民法院"
                } else {
                    "阿克苏地区公安局交通警察支队"
                }
                .to_string(),
                String::new(),
                "true".to_string(),
            ]);
        }
    }

    /// Writes the four files into `dir`, the incidents first.
    fn write(
        &self,
        dir: &Path,
        incidents: &[(usize, NaiveDate, u32)],
    ) -> std::io::Result<Vec<DataFile>> {
        let mut files = Files::new(dir);
        files.jsonl("theft_incidents", &incident_rows(incidents))?;
        files.jsonl("sightings", &self.sightings)?;
        files.csv(
            "addresses",
            &[
                "身份证号",
                "地址类别",
                "地点编码",
                "详细地址",
                "登记日期",
                "synthetic",
            ],
            &self.addresses,
            true,
            false,
        )?;
        files.csv(
            "prior_records",
            &super::PRIOR_RECORDS_HEADER,
            &self.priors,
            false,
            true,
        )?;
        Ok(files.into_list())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_alerts_are_exactly_the_planted_ones_with_their_scores() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate(dir.path(), 1500, 42).unwrap();
        for e in &g.expected {
            assert_eq!(Some(e.score), e.scenario.alert(), "{e:?}");
        }
        assert_eq!(g.expected.len(), g.planted.len());
        let ids: BTreeSet<_> = g.expected.iter().map(|e| e.person_id.as_str()).collect();
        assert!(g.near_misses.iter().all(|(p, _)| !ids.contains(p.as_str())));
    }

    #[test]
    fn the_planted_hotspots_are_the_top_tenth() {
        let incidents: Vec<_> = (0..10)
            .flat_map(|p| (0..=p).map(move |k| (p, as_of() - days(k as i64), 10)))
            .collect();
        let hot = hotspots(&incidents);
        assert_eq!(hot.keys().copied().collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn same_seed_same_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ga = generate(a.path(), 150, 9).unwrap();
        generate(b.path(), 150, 9).unwrap();
        for f in &ga.files {
            let name = f.path.file_name().unwrap();
            assert_eq!(
                std::fs::read(&f.path).unwrap(),
                std::fs::read(b.path().join(name)).unwrap(),
                "{name:?}"
            );
        }
    }
}
