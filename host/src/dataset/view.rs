//! What one model sees of a dataset: only the fields it declared, with
//! personal fields masked unless policy lets it see them in clear.
//!
//! When a model sees every field in clear, blocks go to it exactly as stored;
//! otherwise each record is re-encoded with only the visible fields.

use super::block::Block;
use super::schema::Schema;
use crate::mask::{mask, PersonalKind};
use jiandu_sdk::record::{encode_into, RecordRef, Value};

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
        Ok(View {
            names,
            actions,
            passthrough,
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

    /// One record as the model sees it.
    pub fn record(&self, stored: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if self.passthrough {
            out.extend_from_slice(stored);
            return Ok(());
        }
        let rec = RecordRef::new(stored).map_err(|e| e.to_string())?;
        let mut masked: Vec<Option<String>> = Vec::with_capacity(self.actions.len());
        for a in &self.actions {
            masked.push(match *a {
                Action::Mask(i, kind) => match rec.field(i).map_err(|e| e.to_string())? {
                    Some(Value::Null) | None => None,
                    Some(v) => Some(mask(kind, &v.to_string())),
                },
                Action::Keep(_) => None,
            });
        }
        let mut values = Vec::with_capacity(self.actions.len());
        for (a, m) in self.actions.iter().zip(&masked) {
            values.push(match (a, m) {
                (Action::Mask(..), Some(text)) => Some(Value::Str(text.as_str())),
                (Action::Mask(i, _), None) | (Action::Keep(i), _) => {
                    rec.field(*i).map_err(|e| e.to_string())?
                }
            });
        }
        encode_into(out, &values).map_err(|e| e.to_string())
    }

    /// A stored block as the model's batch: (data, offsets).
    pub fn batch(&self, block: &Block<'_>) -> Result<(Vec<u8>, Vec<u32>), String> {
        if self.passthrough {
            return Ok((block.data().to_vec(), block.offsets()));
        }
        let mut data = Vec::with_capacity(block.data().len());
        let mut offsets = Vec::with_capacity(block.len() + 1);
        offsets.push(0);
        for i in 0..block.len() {
            self.record(block.record(i), &mut data)?;
            offsets.push(data.len() as u32);
        }
        Ok((data, offsets))
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
