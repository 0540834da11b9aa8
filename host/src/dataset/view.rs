//! What one model sees of a dataset: only the fields it declared, with
//! personal fields masked unless policy lets it see them in clear.
//!
//! When a model sees every field in clear, blocks go to it exactly as stored;
//! otherwise each record is re-encoded with only the visible fields.

use super::schema::Schema;
use crate::mask::{mask, PersonalKind};
use jiandu_sdk::record::{encode_parts_into, project_into, Part, RecordRef, Value};

#[derive(Debug, Clone, Copy)]
enum Action {
    Keep(usize),
    Mask(usize, PersonalKind),
}

/// A model's view of one dataset version.
#[derive(Debug, Clone)]
pub struct View {
    names: Vec<String>,
    actions: Vec<Action>,
    passthrough: bool,
    /// When nothing is masked: the stored positions of the visible fields.
    kept: Option<Vec<usize>>,
}

impl View {
    /// The view for a model that declared `fields` (all fields when `None`)
    /// and may or may not see personal fields in clear. Unknown declared
    /// fields are an error naming them.
    pub fn new(
        schema: &Schema,
        fields: Option<&[String]>,
        clear_personal: bool,
    ) -> Result<View, String> {
        if let Some(fields) = fields {
            let unknown: Vec<&str> = fields
                .iter()
                .filter(|f| schema.field_index(f).is_none())
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
        let mut names = Vec::new();
        let mut actions = Vec::new();
        for (i, f) in schema.fields.iter().enumerate() {
            if fields.is_some_and(|d| !d.iter().any(|n| n == &f.name)) {
                continue;
            }
            names.push(f.name.clone());
            actions.push(match f.personal {
                Some(kind) if !clear_personal => Action::Mask(i, kind),
                _ => Action::Keep(i),
            });
        }
        let passthrough = actions.len() == schema.fields.len()
            && actions.iter().all(|a| matches!(a, Action::Keep(_)));
        let kept = actions
            .iter()
            .map(|a| match a {
                Action::Keep(i) => Some(*i),
                Action::Mask(..) => None,
            })
            .collect();
        Ok(View {
            names,
            actions,
            passthrough,
            kept,
        })
    }

    /// Field names the model sees, in encoding order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether stored bytes go to the model unchanged.
    pub fn is_passthrough(&self) -> bool {
        self.passthrough
    }

    /// One record as the model sees it. Kept fields are copied still
    /// encoded; only masked fields are decoded (and re-encoded as text).
    pub fn record(&self, stored: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if self.passthrough {
            out.extend_from_slice(stored);
            return Ok(());
        }
        let rec = RecordRef::new(stored).map_err(|e| e.to_string())?;
        if let Some(kept) = &self.kept {
            return project_into(out, &rec, kept).map_err(|e| e.to_string());
        }
        // The masked texts first (one per masked field, in order; no
        // allocation when nothing is masked), so that parts can borrow them.
        let mut masked = Vec::new();
        for a in &self.actions {
            if let Action::Mask(i, kind) = *a {
                masked.push(match rec.field(i).map_err(|e| e.to_string())? {
                    Some(Value::Null) | None => None,
                    Some(v) => Some(mask(kind, &v.to_string())),
                });
            }
        }
        let mut masked = masked.iter();
        let mut parts = Vec::with_capacity(self.actions.len());
        for a in &self.actions {
            let i = match *a {
                Action::Mask(i, _) => match masked.next().expect("one text per masked field") {
                    Some(text) => {
                        parts.push(Part::Value(Value::Str(text)));
                        continue;
                    }
                    None => i,
                },
                Action::Keep(i) => i,
            };
            parts.push(match rec.raw(i).map_err(|e| e.to_string())? {
                Some(raw) => Part::Raw(raw),
                None => Part::Absent,
            });
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
            // The common case, a loop of its own: no masking, every
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

    #[test]
    fn personal_fields_are_masked_and_undeclared_fields_dropped() {
        let fields = vec!["id".to_string(), "age".to_string()];
        let view = View::new(&schema(), Some(&fields), false).unwrap();
        assert_eq!(view.names(), ["id", "age"]);
        let mut out = Vec::new();
        view.record(&stored(), &mut out).unwrap();
        let rec = RecordRef::new(&out).unwrap();
        assert_eq!(rec.len(), 2);
        assert_eq!(
            rec.field(0).unwrap(),
            Some(Value::Str("110105********002X"))
        );
        assert_eq!(rec.field(1).unwrap(), Some(Value::Int(75)));
    }

    #[test]
    fn clear_grant_with_all_fields_passes_bytes_through() {
        let view = View::new(&schema(), None, true).unwrap();
        assert!(view.is_passthrough());
        let mut out = Vec::new();
        view.record(&stored(), &mut out).unwrap();
        assert_eq!(out, stored());
    }

    #[test]
    fn unknown_declared_field_is_named() {
        let fields = vec!["salary".to_string()];
        let err = View::new(&schema(), Some(&fields), false).unwrap_err();
        assert!(err.contains("salary"), "{err}");
    }
}
