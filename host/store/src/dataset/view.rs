//! What one model sees of a dataset: only the fields it declared, with
//! personal fields as keyed pseudonyms unless policy lets it see them in
//! clear (see [`crate::pseudonym`]), and the derived fields it declared.
//!
//! When a model sees every field in clear, blocks go to it exactly as stored;
//! otherwise each record is re-encoded with only the visible fields.

use super::schema::{Computed, Derivation, Schema};
use crate::mask::PersonalKind;
use crate::pseudonym::Pseudonymizer;
use jiandu_sdk::record::{encode_parts_into, project_into, Part, RecordRef, Value};

/// How a model receives personal values.
#[derive(Debug, Clone)]
pub enum Personal {
    /// In clear: only with a clear grant.
    Clear,
    /// As keyed pseudonyms.
    Pseudonyms(Pseudonymizer),
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Keep(usize),
    Pseudonym(usize, PersonalKind),
    Derive(usize, Derivation),
}

/// A model's view of one dataset version.
#[derive(Debug, Clone)]
pub struct View {
    names: Vec<String>,
    actions: Vec<Action>,
    passthrough: bool,
    /// When nothing is rewritten: the stored positions of the visible fields.
    kept: Option<Vec<usize>>,
    pseudonymizer: Option<Pseudonymizer>,
}

impl View {
    /// The view for a model that declared `fields` (all stored fields when
    /// `None`) and receives personal values as `personal` says. Unknown
    /// declared fields are an error naming them.
    pub fn new(
        schema: &Schema,
        fields: Option<&[String]>,
        personal: Personal,
    ) -> Result<View, String> {
        if let Some(fields) = fields {
            let unknown: Vec<&str> = fields
                .iter()
                .filter(|f| schema.field_index(f).is_none() && schema.derived(f).is_none())
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return Err(format!(
                    "declares field(s) {} that dataset `{}` does not have",
                    unknown.join(", "),
                    schema.name
                ));
            }
        }
        let pseudonymizer = match personal {
            Personal::Clear => None,
            Personal::Pseudonyms(p) => Some(p),
        };
        let declared = |name: &str| fields.is_none_or(|d| d.iter().any(|n| n == name));
        let mut names = Vec::new();
        let mut actions = Vec::new();
        for (i, f) in schema.fields.iter().enumerate() {
            if !declared(&f.name) {
                continue;
            }
            names.push(f.name.clone());
            actions.push(match f.personal {
                Some(kind) if pseudonymizer.is_some() => Action::Pseudonym(i, kind),
                _ => Action::Keep(i),
            });
        }
        // Derived fields only when named: a model that declares nothing
        // gets the stored fields.
        for d in &schema.derived {
            if fields.is_some_and(|f| f.iter().any(|n| n == &d.name)) {
                let from = schema.field_index(&d.from).expect("checked at parse");
                names.push(d.name.clone());
                actions.push(Action::Derive(from, d.value));
            }
        }
        let passthrough = actions.len() == schema.fields.len()
            && actions.iter().all(|a| matches!(a, Action::Keep(_)));
        let kept = actions
            .iter()
            .map(|a| match a {
                Action::Keep(i) => Some(*i),
                _ => None,
            })
            .collect();
        Ok(View {
            names,
            actions,
            passthrough,
            kept,
            pseudonymizer,
        })
    }

    /// Field names the model sees, in encoding order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether the model sees `field` (declared, stored or derived).
    pub fn sees(&self, field: &str) -> bool {
        self.names.iter().any(|n| n == field)
    }

    /// The pseudonymizer, when personal values reach the model as
    /// pseudonyms.
    pub fn pseudonymizer(&self) -> Option<&Pseudonymizer> {
        self.pseudonymizer.as_ref()
    }

    /// Whether stored bytes go to the model unchanged.
    pub fn is_passthrough(&self) -> bool {
        self.passthrough
    }

    /// One record as the model sees it. Kept fields are copied still
    /// encoded; only pseudonymized and derived fields are decoded.
    pub fn record(&self, stored: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if self.passthrough {
            out.extend_from_slice(stored);
            return Ok(());
        }
        let rec = RecordRef::new(stored).map_err(|e| e.to_string())?;
        if let Some(kept) = &self.kept {
            return project_into(out, &rec, kept).map_err(|e| e.to_string());
        }
        // The computed texts first (one per rewritten field, in order), so
        // that parts can borrow them.
        let mut computed: Vec<Option<Computed>> = Vec::new();
        for a in &self.actions {
            match *a {
                Action::Keep(_) => {}
                Action::Pseudonym(i, kind) => {
                    let p = self.pseudonymizer.as_ref().expect("pseudonyms have a key");
                    computed.push(match rec.field(i).map_err(|e| e.to_string())? {
                        Some(Value::Null) | None => None,
                        Some(v) => {
                            let text = v.to_string();
                            (!text.is_empty()).then(|| Computed::Str(p.pseudonym(kind, &text)))
                        }
                    })
                }
                Action::Derive(i, how) => {
                    computed.push(match rec.field(i).map_err(|e| e.to_string())? {
                        Some(Value::Null) | None => None,
                        Some(v) => how.apply(&v.to_string()),
                    })
                }
            }
        }
        let mut computed = computed.iter();
        let mut parts = Vec::with_capacity(self.actions.len());
        for a in &self.actions {
            match *a {
                Action::Keep(i) => parts.push(match rec.raw(i).map_err(|e| e.to_string())? {
                    Some(raw) => Part::Raw(raw),
                    None => Part::Absent,
                }),
                Action::Pseudonym(..) | Action::Derive(..) => {
                    parts.push(match computed.next().expect("one per rewritten field") {
                        Some(Computed::Str(s)) => Part::Value(Value::Str(s)),
                        Some(Computed::Date(s)) => Part::Value(Value::Date(s)),
                        None => Part::Value(Value::Null),
                    })
                }
            }
        }
        encode_parts_into(out, &parts).map_err(|e| e.to_string())
    }

    /// A block's records area and offsets as the model's batch: each record
    /// through [`View::record`] (the caller passes stored bytes through
    /// untouched when the view [`is_passthrough`](View::is_passthrough)).
    pub fn project(&self, data: &[u8], offsets: &[u32]) -> Result<(Vec<u8>, Vec<u32>), String> {
        let mut out = Vec::with_capacity(data.len());
        let mut out_offsets = Vec::with_capacity(offsets.len());
        out_offsets.push(0);
        let records = offsets
            .windows(2)
            .map(|w| &data[w[0] as usize..w[1] as usize]);
        match &self.kept {
            // The common case, a loop of its own: nothing rewritten, every
            // visible field copied still encoded.
            Some(kept) if !self.passthrough => {
                for stored in records {
                    RecordRef::new(stored)
                        .and_then(|rec| project_into(&mut out, &rec, kept))
                        .map_err(|e| e.to_string())?;
                    out_offsets.push(out.len() as u32);
                }
            }
            _ => {
                for stored in records {
                    self.record(stored, &mut out)?;
                    out_offsets.push(out.len() as u32);
                }
            }
        }
        Ok((out, out_offsets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiandu_sdk::record::encode;

    fn schema() -> Schema {
        Schema::parse(
            "t.toml",
            r#"
name = "people"
department = "公安"
primary_key = ["id"]
[[fields]]
name = "id"
type = "string"
personal = "id"
[[fields]]
name = "city"
type = "string"
[[fields]]
name = "age"
type = "int"
[[derived]]
name = "born"
from = "id"
value = "birth_date"
[[derived]]
name = "sex"
from = "id"
value = "sex"
[[derived]]
name = "region"
from = "id"
value = "region"
"#,
        )
        .unwrap()
    }

    fn stored() -> Vec<u8> {
        encode(&[
            Some(Value::Str("11010519491231002X")),
            Some(Value::Str("北京")),
            Some(Value::Int(75)),
        ])
        .unwrap()
    }

    fn pseudonyms() -> Personal {
        Personal::Pseudonyms(Pseudonymizer::from_secret(b"test secret"))
    }

    #[test]
    fn personal_fields_become_pseudonyms_and_undeclared_fields_are_dropped() {
        let fields = vec!["id".to_string(), "age".to_string()];
        let view = View::new(&schema(), Some(&fields), pseudonyms()).unwrap();
        assert_eq!(view.names(), ["id", "age"]);
        let mut out = Vec::new();
        view.record(&stored(), &mut out).unwrap();
        let rec = RecordRef::new(&out).unwrap();
        assert_eq!(rec.len(), 2);
        let want = Pseudonymizer::from_secret(b"test secret")
            .pseudonym(PersonalKind::Id, "11010519491231002X");
        assert_eq!(rec.field(0).unwrap(), Some(Value::Str(&want)));
        assert_eq!(rec.field(1).unwrap(), Some(Value::Int(75)));
    }

    #[test]
    fn derived_fields_reach_the_model_when_declared_and_nothing_else_of_the_id() {
        let fields: Vec<String> = ["born", "sex", "region", "city"].map(String::from).to_vec();
        let view = View::new(&schema(), Some(&fields), pseudonyms()).unwrap();
        assert_eq!(view.names(), ["city", "born", "sex", "region"]);
        let mut out = Vec::new();
        view.record(&stored(), &mut out).unwrap();
        let rec = RecordRef::new(&out).unwrap();
        assert_eq!(rec.field(0).unwrap(), Some(Value::Str("北京")));
        assert_eq!(rec.field(1).unwrap(), Some(Value::Date("1949-12-31")));
        assert_eq!(rec.field(2).unwrap(), Some(Value::Str("女")));
        assert_eq!(rec.field(3).unwrap(), Some(Value::Str("110105")));
        // Not declared: a model that names no fields gets the stored ones.
        let all = View::new(&schema(), None, pseudonyms()).unwrap();
        assert_eq!(all.names(), ["id", "city", "age"]);
    }

    #[test]
    fn a_malformed_id_derives_nothing() {
        let fields = vec!["born".to_string()];
        let view = View::new(&schema(), Some(&fields), Personal::Clear).unwrap();
        let bad = encode(&[Some(Value::Str("1101051949123")), None, None]).unwrap();
        let mut out = Vec::new();
        view.record(&bad, &mut out).unwrap();
        let rec = RecordRef::new(&out).unwrap();
        assert_eq!(rec.field(0).unwrap(), Some(Value::Null));
    }

    #[test]
    fn clear_grant_with_all_fields_passes_bytes_through() {
        let view = View::new(&schema(), None, Personal::Clear).unwrap();
        assert!(view.is_passthrough());
        let mut out = Vec::new();
        view.record(&stored(), &mut out).unwrap();
        assert_eq!(out, stored());
    }

    #[test]
    fn unknown_declared_field_is_named() {
        let fields = vec!["salary".to_string()];
        let err = View::new(&schema(), Some(&fields), pseudonyms()).unwrap_err();
        assert!(err.contains("salary"), "{err}");
    }
}
