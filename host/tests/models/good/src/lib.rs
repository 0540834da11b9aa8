//! A well-behaved model for the sandbox tests: one lead per person at or
//! above `min_age`, with the personal fields exactly as the host showed
//! them (masked unless policy grants this model the clear values).

use jiandu_sdk::{export_model, Context, Lead, Model, Result};
use serde::Deserialize;

#[derive(Deserialize)]
struct Person {
    id_number: String,
    name: String,
    city: String,
    age: i64,
}

pub struct Good;

impl Model for Good {
    fn run(ctx: &mut Context) -> Result<()> {
        let min_age: i64 = ctx.param("min_age")?;
        for person in ctx.read("people").into::<Person>()? {
            let p = person?;
            if p.age >= min_age {
                ctx.emit(
                    Lead::new(&p.id_number)
                        .personal_subject()
                        .title(format!("{} aged {}", p.city, p.age))
                        .personal_evidence("id_number", &p.id_number)
                        .personal_evidence("name", &p.name)
                        .evidence("city", &p.city),
                )?;
            }
        }
        Ok(())
    }
}

export_model!(Good);
