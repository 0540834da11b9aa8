//! 盗窃高危预警模型: people with theft records seen at theft hotspots, scored
//! by a transparent, fully parameterised score; an alert at 60 or more. See
//! README.md beside this file for the score in plain words.

use jiandu_sdk::{export_model, Context, Date, Lead, Model, Result};
use serde::Deserialize;
use std::collections::BTreeSet;

pub mod rule;

#[derive(Deserialize)]
struct Incident {
    incident_id: String,
    place_id: String,
    occurred_at: String,
}

#[derive(Deserialize)]
struct SightingRow {
    sighting_id: String,
    person_id: String,
    place_id: String,
    seen_at: String,
    tags: Option<String>,
}

#[derive(Deserialize)]
struct PriorRecord {
    person_id: String,
    kind: String,
    decided_on: Date,
}

#[derive(Deserialize)]
struct Address {
    person_id: String,
    kind: String,
    place_id: String,
    since: Option<Date>,
}

pub struct RepeatTheftWarning;

impl Model for RepeatTheftWarning {
    fn run(ctx: &mut Context) -> Result<()> {
        let p = rule::Params::from_context(ctx)?;
        let mut density = rule::Density::default();
        let mut bad_times = 0u64;
        for row in ctx.read("theft_incidents").into::<Incident>()? {
            let i = row?;
            match rule::parse_time(&i.occurred_at) {
                Some((date, hour)) => p.count_incident(&mut density, &i.place_id, date, hour),
                None => {
                    bad_times += 1;
                    ctx.debug(format!(
                        "incident {}: unreadable time `{}`",
                        i.incident_id, i.occurred_at
                    ));
                }
            }
        }
        let hotspots = p.hotspots(&density);
        ctx.info(format!(
            "{} places with thefts in the {} days to {}: {} hotspots (at least {} thefts)",
            hotspots.places_with_thefts,
            p.hotspot_days,
            p.as_of,
            hotspots.places.len(),
            hotspots.threshold
        ));
        // Sightings are sorted by person; prior records are read through
        // their by_person index and addresses by their key, so all three
        // stream side by side.
        let mut priors = ctx
            .read("prior_records")
            .by("by_person")
            .into::<PriorRecord>()?
            .keyed(|r| r.person_id.clone());
        let mut addresses = ctx
            .read("addresses")
            .into::<Address>()?
            .keyed(|a| a.person_id.clone());
        let mut alerts = 0u64;
        let mut sightings = ctx.read("sightings").into::<SightingRow>()?.peekable();
        while let Some(first) = sightings.next() {
            let first = first?;
            let person = first.person_id.clone();
            let mut rows = vec![first];
            while let Some(Ok(next)) = sightings.peek() {
                if next.person_id != person {
                    break;
                }
                rows.push(sightings.next().expect("peeked")?);
            }
            if let Some(Err(_)) = sightings.peek() {
                sightings.next().expect("peeked")?;
            }
            let mut all = Vec::with_capacity(rows.len());
            for r in rows {
                match rule::parse_time(&r.seen_at) {
                    Some((date, hour)) => all.push(rule::Sighting {
                        id: r.sighting_id,
                        place: r.place_id,
                        date,
                        hour,
                        time: r.seen_at,
                        tags: r.tags.unwrap_or_default(),
                    }),
                    None => {
                        bad_times += 1;
                        ctx.debug(format!(
                            "sighting {}: unreadable time `{}`",
                            r.sighting_id, r.seen_at
                        ));
                    }
                }
            }
            let person_priors: Vec<(String, Date)> = priors
                .take(&person)?
                .into_iter()
                .map(|r| (r.kind, r.decided_on))
                .collect();
            let links: BTreeSet<String> = addresses
                .take(&person)?
                .into_iter()
                .filter(|a| p.link_kinds.contains(&a.kind) && a.since.is_none_or(|s| s <= p.as_of))
                .map(|a| a.place_id)
                .collect();
            let Some((s, sc)) = p.alert(&all, &person_priors, &links, &hotspots) else {
                continue;
            };
            let peak = hotspots
                .places
                .get(&s.place)
                .map(|(_, h)| {
                    h.iter()
                        .map(|h| format!("{h:02}时"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            alerts += 1;
            ctx.emit(
                Lead::new(&person)
                    .personal_subject()
                    .title(format!("盗窃高危预警：评分{}（{}出现）", sc.total, s.place))
                    .evidence("score", sc.total)
                    .evidence(
                        "score_parts",
                        format!(
                            "前科{} + 热点{} + 高发时段{} + 反复出现{} + 伪装{}",
                            sc.priors, sc.hotspot, sc.hour, sc.repeat, sc.disguise
                        ),
                    )
                    .evidence("theft_priors_in_window", sc.prior_count)
                    .evidence("sighting_id", &s.id)
                    .evidence("seen_at", &s.time)
                    .evidence("place_id", &s.place)
                    .evidence("place_thefts_in_window", density.count(&s.place))
                    .evidence("place_is_hotspot", hotspots.places.contains_key(&s.place))
                    .evidence("hotspot_min_thefts", hotspots.threshold)
                    .evidence("place_high_risk_hours", peak)
                    .evidence("appearances_in_window", sc.appearances)
                    .evidence("tags", &s.tags)
                    .evidence("alert_score", p.alert_score),
            )?;
        }
        if bad_times > 0 {
            ctx.warn(format!(
                "{bad_times} records with unreadable times were skipped"
            ));
        }
        ctx.info(format!("as of {}: {alerts} alerts", p.as_of));
        Ok(())
    }
}

export_model!(RepeatTheftWarning);
