//! A model that tries to learn personal values it was not granted, through
//! every host call the contract offers: the records it scans, gets and
//! lookups with clear candidate values, the order of scans by key and by
//! index over personal fields, and keys over fields it did not declare.
//! Whatever it learns it writes into leads, unmarked, for the test to read.

use jiandu_sdk::{export_model, Context, Lead, Model, Result};
use serde::Deserialize;

#[derive(Deserialize)]
struct Person {
    id_number: String,
    name: Option<String>,
    city: Option<String>,
    birth_date: Option<String>,
    sex: Option<String>,
}

#[derive(Deserialize)]
struct Licence {
    holder_id: String,
    status: String,
}

#[derive(Deserialize)]
struct Case {
    suspect_id: Option<String>,
}

pub struct Snoop;

fn ascending(keys: &[String]) -> bool {
    keys.windows(2).all(|w| w[0] <= w[1])
}

impl Model for Snoop {
    fn run(ctx: &mut Context) -> Result<()> {
        let attack: String = ctx.param("attack")?;
        let candidates: String = ctx.param("candidates")?;
        let candidates: Vec<&str> = candidates.split(',').filter(|c| !c.is_empty()).collect();
        match attack.as_str() {
            // Everything it sees, unmarked, in every part of a lead.
            "dump" => {
                for p in ctx.read("people").into::<Person>()? {
                    let p = p?;
                    let name = p.name.clone().unwrap_or_default();
                    ctx.emit(
                        Lead::new(&p.id_number)
                            .title(format!("{name} {}", p.id_number))
                            .evidence("id", &p.id_number)
                            .evidence("name", &name)
                            .evidence("city", p.city.unwrap_or_default())
                            .evidence("birth_date", p.birth_date.unwrap_or_default())
                            .evidence("sex", p.sex.unwrap_or_default()),
                    )?;
                }
                for l in ctx.read("licences").into::<Licence>()? {
                    let l = l?;
                    ctx.emit(Lead::new(format!("licence {}", l.holder_id)).title(l.status))?;
                }
                for c in ctx.read("cases").into::<Case>()? {
                    let c = c?;
                    let s = c.suspect_id.unwrap_or_default();
                    ctx.emit(Lead::new(format!("case {s}")).title(s))?;
                }
            }
            // Clear values as keys: every hit is a lead. The pseudonyms it
            // was given are tried too, and must work.
            "enumerate" => {
                for c in &candidates {
                    if ctx.get::<Person>("people", &[c])?.is_some() {
                        ctx.emit(Lead::new(format!("HIT get people {c}")))?;
                    }
                    if ctx.get::<Licence>("licences", &[c])?.is_some() {
                        ctx.emit(Lead::new(format!("HIT get licences {c}")))?;
                    }
                    if !ctx.lookup::<Person>("people", "by_name", c)?.is_empty() {
                        ctx.emit(Lead::new(format!("HIT lookup by_name {c}")))?;
                    }
                }
                let people: Vec<Person> = ctx
                    .read("people")
                    .into::<Person>()?
                    .collect::<Result<_>>()?;
                for p in people {
                    if ctx.get::<Person>("people", &[&p.id_number])?.is_some() {
                        ctx.emit(Lead::new(format!("OK get people {}", p.id_number)))?;
                    }
                    if ctx.get::<Licence>("licences", &[&p.id_number])?.is_some() {
                        ctx.emit(Lead::new(format!("OK get licences {}", p.id_number)))?;
                    }
                    if let Some(name) = &p.name {
                        let found = ctx.lookup::<Person>("people", "by_name", name)?;
                        if found.iter().any(|f| f.id_number == p.id_number) {
                            ctx.emit(Lead::new(format!("OK lookup by_name {name}")))?;
                        }
                    }
                }
            }
            // The order of scans by a personal key and by an index over a
            // personal field.
            "order" => {
                let by_key: Vec<String> = ctx
                    .read("people")
                    .into::<Person>()?
                    .map(|p| p.map(|p| p.id_number))
                    .collect::<Result<_>>()?;
                let by_name: Vec<String> = ctx
                    .read("people")
                    .by("by_name")
                    .into::<Person>()?
                    .map(|p| p.map(|p| p.name.unwrap_or_default()))
                    .collect::<Result<_>>()?;
                // An index over a field that is not personal: records of one
                // city come in pseudonym order, not in the order of their IDs.
                let by_city: Vec<String> = ctx
                    .read("people")
                    .by("by_city")
                    .into::<Person>()?
                    .map(|p| p.map(|p| format!("{}|{}", p.city.unwrap_or_default(), p.id_number)))
                    .collect::<Result<_>>()?;
                let in_city: Vec<String> = ctx
                    .lookup::<Person>("people", "by_city", "北京")?
                    .into_iter()
                    .map(|p| p.id_number)
                    .collect();
                let licences: Vec<String> = ctx
                    .read("licences")
                    .into::<Licence>()?
                    .map(|l| l.map(|l| l.holder_id))
                    .collect::<Result<_>>()?;
                for (what, keys) in [
                    ("people", by_key),
                    ("by_name", by_name),
                    ("by_city", by_city),
                    ("lookup by_city", in_city),
                    ("licences", licences),
                ] {
                    ctx.emit(
                        Lead::new(format!("order {what}"))
                            .evidence("ascending", ascending(&keys))
                            .evidence("keys", keys.join(",")),
                    )?;
                }
            }
            // A get by a primary key the model did not declare.
            "undeclared-key" => {
                let c: Option<Case> = ctx.get("cases", &["C1"])?;
                ctx.emit(Lead::new("undeclared key").title(format!("{}", c.is_some())))?;
            }
            // A lookup through an index over a field the model did not declare.
            "undeclared-index" => {
                let found = ctx.lookup::<Case>("cases", "by_status", "立案")?;
                ctx.emit(Lead::new("undeclared index").title(format!("{}", found.len())))?;
            }
            other => {
                return Err(jiandu_sdk::Error::msg(format!("unknown attack `{other}`")));
            }
        }
        Ok(())
    }
}

export_model!(Snoop);
