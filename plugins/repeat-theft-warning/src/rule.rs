//! The repeat-theft score as pure functions: every weight and window is a
//! parameter, and every part of a score is reported with the lead.
//!
//! A person's score is the best score of their sightings in the last
//! `recent_days` before `as_of`. A sighting on day d at place P scores:
//! - priors: `prior_points` when the person has a theft prior decided within
//!   `prior_years` before d, plus `further_prior_points` for each further
//!   one in that window (at most `further_prior_max`);
//! - `hotspot_points` when P is among the top `hotspot_share` of places by
//!   theft count in the `hotspot_days` before `as_of`;
//! - `hour_points` when P is such a hotspot and the sighting falls in P's
//!   high-risk hour (the hour of day with most thefts there; ties all count);
//! - `repeat_points` when P is a hotspot, the person was seen there at least
//!   `repeat_count` times on days d − `repeat_days` … d, and has no home or
//!   work address there;
//! - `disguise_points` when the sighting carries a disguise tag.
//!
//! "Within N days before d" reads like DOMAIN.md's "within N years": from
//! d − N up to d, both included.

use jiandu_sdk::dates::{days_between, years_before};
use jiandu_sdk::{Context, Date, Decimal, Result};
use std::collections::{BTreeMap, BTreeSet};

/// The model's parameters (model.toml documents each one).
#[derive(Debug, Clone)]
pub struct Params {
    pub as_of: Date,
    pub recent_days: i64,
    pub theft_kinds: Vec<String>,
    pub prior_years: u32,
    pub prior_points: u32,
    pub further_prior_points: u32,
    pub further_prior_max: u32,
    pub hotspot_days: i64,
    pub hotspot_share: Decimal,
    pub hotspot_points: u32,
    pub hour_points: u32,
    pub repeat_count: u32,
    pub repeat_days: i64,
    pub repeat_points: u32,
    pub link_kinds: Vec<String>,
    pub disguise_tags: Vec<String>,
    pub disguise_points: u32,
    pub alert_score: u32,
}

/// Splits a comma-separated list parameter (`,` or `，`).
pub fn list(text: &str) -> Vec<String> {
    text.split([',', '，'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl Params {
    pub fn from_context(ctx: &Context) -> Result<Self> {
        Ok(Params {
            as_of: ctx.param("as_of")?,
            recent_days: ctx.param("recent_days")?,
            theft_kinds: list(&ctx.param::<String>("theft_kinds")?),
            prior_years: ctx.param("prior_years")?,
            prior_points: ctx.param("prior_points")?,
            further_prior_points: ctx.param("further_prior_points")?,
            further_prior_max: ctx.param("further_prior_max")?,
            hotspot_days: ctx.param("hotspot_days")?,
            hotspot_share: ctx.param("hotspot_share")?,
            hotspot_points: ctx.param("hotspot_points")?,
            hour_points: ctx.param("hour_points")?,
            repeat_count: ctx.param("repeat_count")?,
            repeat_days: ctx.param("repeat_days")?,
            repeat_points: ctx.param("repeat_points")?,
            link_kinds: list(&ctx.param::<String>("link_kinds")?),
            disguise_tags: list(&ctx.param::<String>("disguise_tags")?),
            disguise_points: ctx.param("disguise_points")?,
            alert_score: ctx.param("alert_score")?,
        })
    }
}

/// A local date and time as departments write it: `YYYY-MM-DD HH:MM[:SS]`
/// (or with `T`, or `/` in the date). Returns the date and the hour.
pub fn parse_time(text: &str) -> Option<(Date, u32)> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T'])?;
    let date = date.trim().replace('/', "-");
    let date: Date = Date::parse_from_str(&date, "%Y-%m-%d").ok()?;
    let hour: u32 = time.trim().split(':').next()?.parse().ok()?;
    (hour < 24).then_some((date, hour))
}

/// Theft counts per place in the hotspot window.
#[derive(Debug, Default, Clone)]
pub struct Density {
    /// place → (count, count per hour of day)
    places: BTreeMap<String, (u32, [u32; 24])>,
}

impl Density {
    /// Thefts at `place` in the window.
    pub fn count(&self, place: &str) -> u32 {
        self.places.get(place).map_or(0, |(c, _)| *c)
    }
}

/// The hotspots of a run.
#[derive(Debug, Clone)]
pub struct Hotspots {
    /// place → (theft count, high-risk hours)
    pub places: BTreeMap<String, (u32, Vec<u32>)>,
    /// The smallest count that makes a hotspot.
    pub threshold: u32,
    /// Places with at least one theft in the window.
    pub places_with_thefts: usize,
}

impl Params {
    /// Whether `date` falls within `days` before `end` (both included).
    pub fn within_days(date: Date, end: Date, days: i64) -> bool {
        date <= end && days_between(date, end) <= days
    }

    /// Adds a theft incident to `density` when it falls in the window.
    pub fn count_incident(&self, density: &mut Density, place: &str, date: Date, hour: u32) {
        if !Params::within_days(date, self.as_of, self.hotspot_days) {
            return;
        }
        let e = density
            .places
            .entry(place.to_string())
            .or_insert((0, [0; 24]));
        e.0 += 1;
        e.1[hour as usize % 24] += 1;
    }

    /// The top `hotspot_share` of places with thefts in the window: k =
    /// ⌈share × places⌉ (at least 1), and every place with at least the
    /// k-th largest count (ties included).
    pub fn hotspots(&self, density: &Density) -> Hotspots {
        let n = density.places.len();
        let mut counts: Vec<u32> = density.places.values().map(|(c, _)| *c).collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let k = (self.hotspot_share * Decimal::from(n as u64)).ceil();
        let k = u64::try_from(k).unwrap_or(0).max(1) as usize;
        let threshold = counts
            .get(k.min(n).saturating_sub(1))
            .copied()
            .unwrap_or(u32::MAX);
        let places = density
            .places
            .iter()
            .filter(|(_, (c, _))| *c >= threshold)
            .map(|(p, (c, hours))| {
                let top = *hours.iter().max().expect("24 hours");
                let peak = (0..24u32).filter(|h| hours[*h as usize] == top).collect();
                (p.clone(), (*c, peak))
            })
            .collect();
        Hotspots {
            places,
            threshold,
            places_with_thefts: n,
        }
    }

    /// Points for theft priors decided within `prior_years` before `day`
    /// (and not after `as_of`); also returns how many counted.
    pub fn prior_points(&self, priors: &[(String, Date)], day: Date) -> (u32, u32) {
        let from = years_before(day, self.prior_years);
        let n = priors
            .iter()
            .filter(|(kind, on)| {
                self.theft_kinds.contains(kind) && *on >= from && *on <= day && *on <= self.as_of
            })
            .count() as u32;
        let points = if n == 0 {
            0
        } else {
            self.prior_points + self.further_prior_points * (n - 1).min(self.further_prior_max)
        };
        (points, n)
    }
}

/// One sighting of a person.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub id: String,
    pub place: String,
    pub date: Date,
    pub hour: u32,
    pub time: String,
    pub tags: String,
}

/// A scored sighting: each part and the total.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Score {
    pub priors: u32,
    pub prior_count: u32,
    pub hotspot: u32,
    pub hour: u32,
    pub repeat: u32,
    pub appearances: u32,
    pub disguise: u32,
    pub total: u32,
}

impl Params {
    /// Scores `s`, one of `all` (the person's sightings); `priors` are
    /// (kind, decided on); `links` the places of the person's home and work
    /// addresses.
    pub fn score(
        &self,
        s: &Sighting,
        all: &[Sighting],
        priors: &[(String, Date)],
        links: &BTreeSet<String>,
        hotspots: &Hotspots,
    ) -> Score {
        let mut sc = Score::default();
        (sc.priors, sc.prior_count) = self.prior_points(priors, s.date);
        if let Some((_, peak)) = hotspots.places.get(&s.place) {
            sc.hotspot = self.hotspot_points;
            if peak.contains(&s.hour) {
                sc.hour = self.hour_points;
            }
            sc.appearances = all
                .iter()
                .filter(|o| {
                    o.place == s.place
                        && o.date <= self.as_of
                        && Params::within_days(o.date, s.date, self.repeat_days)
                })
                .count() as u32;
            if sc.appearances >= self.repeat_count && !links.contains(&s.place) {
                sc.repeat = self.repeat_points;
            }
        }
        if s.tags
            .split([',', ';', '，', '；', '|', ' '])
            .any(|t| self.disguise_tags.iter().any(|d| d == t.trim()))
        {
            sc.disguise = self.disguise_points;
        }
        sc.total = sc.priors + sc.hotspot + sc.hour + sc.repeat + sc.disguise;
        sc
    }

    /// The person's best-scoring recent sighting (ties: the latest), if it
    /// reaches the alert score.
    pub fn alert<'s>(
        &self,
        all: &'s [Sighting],
        priors: &[(String, Date)],
        links: &BTreeSet<String>,
        hotspots: &Hotspots,
    ) -> Option<(&'s Sighting, Score)> {
        let mut best: Option<(&Sighting, Score)> = None;
        for s in all {
            if !Params::within_days(s.date, self.as_of, self.recent_days) {
                continue;
            }
            let sc = self.score(s, all, priors, links, hotspots);
            let better = match &best {
                None => true,
                Some((b, bs)) => {
                    (sc.total, s.date, s.hour, &s.time, &s.id)
                        > (bs.total, b.date, b.hour, &b.time, &b.id)
                }
            };
            if better {
                best = Some((s, sc));
            }
        }
        best.filter(|(_, sc)| sc.total >= self.alert_score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn params() -> Params {
        Params {
            as_of: d("2024-12-31"),
            recent_days: 7,
            theft_kinds: list("盗窃"),
            prior_years: 5,
            prior_points: 40,
            further_prior_points: 10,
            further_prior_max: 3,
            hotspot_days: 90,
            hotspot_share: "0.10".parse().unwrap(),
            hotspot_points: 20,
            hour_points: 15,
            repeat_count: 3,
            repeat_days: 7,
            repeat_points: 15,
            link_kinds: list("居住,工作,户籍"),
            disguise_tags: list("伪装"),
            disguise_points: 10,
            alert_score: 60,
        }
    }

    fn theft(on: &str) -> (String, Date) {
        ("盗窃".to_string(), d(on))
    }

    /// Ten places: H has 10 thefts (5 at 22h), the others 1 each.
    fn hotspots(p: &Params) -> Hotspots {
        let mut density = Density::default();
        for i in 0..10 {
            let h = if i < 5 { 22 } else { i };
            p.count_incident(&mut density, "H", d("2024-12-01"), h);
        }
        for i in 0..9 {
            p.count_incident(&mut density, &format!("P{i}"), d("2024-12-01"), 10);
        }
        p.hotspots(&density)
    }

    fn seen(id: &str, place: &str, time: &str, tags: &str) -> Sighting {
        let (date, hour) = parse_time(time).unwrap();
        Sighting {
            id: id.into(),
            place: place.into(),
            date,
            hour,
            time: time.into(),
            tags: tags.into(),
        }
    }

    #[test]
    fn prior_theft_within_five_years_scores_forty_and_one_day_older_nothing() {
        let p = params();
        let day = d("2024-12-30");
        assert_eq!(p.prior_points(&[theft("2019-12-30")], day), (40, 1));
        assert_eq!(p.prior_points(&[theft("2019-12-29")], day), (0, 0));
        // Other kinds do not count.
        assert_eq!(
            p.prior_points(&[("饮酒驾驶".to_string(), d("2024-01-01"))], day),
            (0, 0)
        );
    }

    #[test]
    fn further_priors_add_ten_each_up_to_three() {
        let p = params();
        let day = d("2024-12-30");
        let priors: Vec<_> = (1..=6).map(|m| theft(&format!("2023-0{m}-01"))).collect();
        assert_eq!(p.prior_points(&priors[..2], day), (50, 2));
        assert_eq!(p.prior_points(&priors[..4], day), (70, 4));
        assert_eq!(p.prior_points(&priors, day), (70, 6));
    }

    #[test]
    fn top_ten_percent_of_places_and_their_peak_hour() {
        let p = params();
        let h = hotspots(&p);
        assert_eq!(h.places_with_thefts, 10);
        assert_eq!(h.places.len(), 1);
        assert_eq!(h.places["H"], (10, vec![22]));
    }

    #[test]
    fn ties_at_the_threshold_are_all_hotspots() {
        let p = params();
        let mut density = Density::default();
        for place in ["A", "B"] {
            for _ in 0..3 {
                p.count_incident(&mut density, place, d("2024-12-01"), 1);
            }
        }
        for i in 0..8 {
            p.count_incident(&mut density, &format!("P{i}"), d("2024-12-01"), 1);
        }
        assert_eq!(p.hotspots(&density).places.len(), 2);
    }

    #[test]
    fn thefts_outside_the_ninety_days_do_not_count() {
        let p = params();
        let mut density = Density::default();
        p.count_incident(&mut density, "A", d("2024-10-02"), 1); // 90 days
        p.count_incident(&mut density, "A", d("2024-10-01"), 1); // 91 days
        p.count_incident(&mut density, "A", d("2025-01-01"), 1); // after as_of
        assert_eq!(p.hotspots(&density).places["A"].0, 1);
    }

    #[test]
    fn a_full_profile_scores_every_part() {
        let p = params();
        let h = hotspots(&p);
        let all = vec![
            seen("1", "H", "2024-12-24 21:00:00", ""),
            seen("2", "H", "2024-12-27 10:00:00", ""),
            seen("3", "H", "2024-12-31 22:15:00", "口罩;伪装"),
        ];
        let sc = p.score(&all[2], &all, &[theft("2023-01-01")], &BTreeSet::new(), &h);
        assert_eq!(
            sc,
            Score {
                priors: 40,
                prior_count: 1,
                hotspot: 20,
                hour: 15,
                repeat: 15,
                appearances: 3,
                disguise: 10,
                total: 100,
            }
        );
    }

    #[test]
    fn repeat_needs_three_appearances_within_seven_days_and_no_home_or_work_there() {
        let p = params();
        let h = hotspots(&p);
        let all = vec![
            seen("1", "H", "2024-12-23 10:00", ""), // 8 days before: outside
            seen("2", "H", "2024-12-27 10:00", ""),
            seen("3", "H", "2024-12-31 10:00", ""),
        ];
        let sc = p.score(&all[2], &all, &[], &BTreeSet::new(), &h);
        assert_eq!((sc.appearances, sc.repeat), (2, 0));
        let all = vec![
            seen("1", "H", "2024-12-24 10:00", ""), // exactly 7 days before
            seen("2", "H", "2024-12-27 10:00", ""),
            seen("3", "H", "2024-12-31 10:00", ""),
        ];
        let sc = p.score(&all[2], &all, &[], &BTreeSet::new(), &h);
        assert_eq!((sc.appearances, sc.repeat), (3, 15));
        let home: BTreeSet<String> = ["H".to_string()].into();
        assert_eq!(p.score(&all[2], &all, &[], &home, &h).repeat, 0);
    }

    #[test]
    fn alert_is_at_sixty_not_below() {
        let p = params();
        let h = hotspots(&p);
        // 40 + 20 = 60 at a hotspot, off-peak, once.
        let all = vec![seen("1", "H", "2024-12-30 10:00", "")];
        let (_, sc) = p
            .alert(&all, &[theft("2023-01-01")], &BTreeSet::new(), &h)
            .unwrap();
        assert_eq!(sc.total, 60);
        // 40 + 10 = 50 elsewhere, disguised: no alert.
        let all = vec![seen("1", "P1", "2024-12-30 10:00", "伪装")];
        assert!(p
            .alert(&all, &[theft("2023-01-01")], &BTreeSet::new(), &h)
            .is_none());
    }

    #[test]
    fn only_recent_sightings_raise_an_alert() {
        let p = params();
        let h = hotspots(&p);
        let priors = [theft("2023-01-01"), theft("2023-02-01")];
        let old = vec![seen("1", "H", "2024-12-23 22:00", "")];
        assert!(p.alert(&old, &priors, &BTreeSet::new(), &h).is_none());
        let recent = vec![seen("1", "H", "2024-12-24 22:00", "")];
        assert!(p.alert(&recent, &priors, &BTreeSet::new(), &h).is_some());
        let future = vec![seen("1", "H", "2025-01-01 22:00", "")];
        assert!(p.alert(&future, &priors, &BTreeSet::new(), &h).is_none());
    }

    #[test]
    fn times_in_department_formats() {
        assert_eq!(
            parse_time("2024-12-31 22:15:00"),
            Some((d("2024-12-31"), 22))
        );
        assert_eq!(parse_time("2024/12/31 08:05"), Some((d("2024-12-31"), 8)));
        assert_eq!(parse_time("2024-12-31T23:59"), Some((d("2024-12-31"), 23)));
        assert_eq!(parse_time("2024-12-31"), None);
        assert_eq!(parse_time("2024-12-31 24:00"), None);
    }
}
