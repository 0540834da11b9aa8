//! Dataset schemas: `datasets/<name>.toml`.
//!
//! ```toml
//! name = "employers"
//! department = "市场监督管理局"
//! description = "Registered market entities"
//! primary_key = ["credit_code"]
//!
//! [[fields]]
//! name = "credit_code"
//! type = "string"          # string | int | decimal | date | bool | float
//! check = "credit_code"    # identifier check (a failure is a warning)
//! aliases = ["统一社会信用代码"]   # other header names seen in department files
//!
//! [[fields]]
//! name = "legal_rep_id"
//! type = "string"
//! personal = "id"          # id | name | phone | other: masked in output
//!
//! [indexes]
//! by_rep = "legal_rep_id"  # secondary index name = field
//!
//! [[derived]]              # computed from a personal value when a model reads it
//! name = "rep_birth_date"
//! from = "legal_rep_id"    # a field with personal = "id"
//! value = "birth_date"     # birth_date | birth_year | sex | region
//! ```
//!
//! A model that is not granted clear personal values receives personal
//! fields as pseudonyms (see [`crate::pseudonym`]); what it needs of a
//! person beyond a join key (an age on a date, the sex, the region of
//! registration) the schema offers as a declared derived field, and the
//! model reads it like any other field it declares.

use crate::mask::PersonalKind;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Int,
    Decimal,
    Date,
    Bool,
    Float,
}

/// Identifier checks applied at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Unified social credit code (GB 32100-2015).
    CreditCode,
    /// Citizen ID number (GB 11643-1999).
    CitizenId,
}

/// One field of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// A row without a value here is rejected. Primary-key fields are always
    /// required.
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<PersonalKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    /// Allowed values, when the field is an enumeration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Files may lack this column altogether (it is then empty in every
    /// record). Without it, a header that lacks an optional column is
    /// refused: a misspelt header would otherwise empty it silently.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub may_be_absent: bool,
}

/// What a derived field takes from a citizen ID number (GB 11643-1999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Derivation {
    /// The date of birth, `YYYY-MM-DD` (a date).
    BirthDate,
    /// The year of birth, `YYYY` (text).
    BirthYear,
    /// `男` or `女`, from the parity of the sequence number (text).
    Sex,
    /// The six-digit administrative region code of registration (text).
    Region,
}

/// A value derived for the model, by its type.
pub(crate) enum Computed {
    Str(String),
    Date(String),
}

impl Derivation {
    /// The derived value of an ID `id`, if it has the shape to give one.
    pub(crate) fn apply(self, id: &str) -> Option<Computed> {
        let id = id.trim();
        let b = id.as_bytes();
        if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let birth = || {
            let date = chrono::NaiveDate::parse_from_str(&id[6..14], "%Y%m%d").ok()?;
            Some(date)
        };
        match self {
            Derivation::BirthDate => {
                birth().map(|d| Computed::Date(d.format("%Y-%m-%d").to_string()))
            }
            Derivation::BirthYear => birth().map(|_| Computed::Str(id[6..10].to_string())),
            Derivation::Sex => Some(Computed::Str(
                if (b[16] - b'0') % 2 == 1 {
                    "男"
                } else {
                    "女"
                }
                .to_string(),
            )),
            Derivation::Region => Some(Computed::Str(id[..6].to_string())),
        }
    }

    /// The type a model reads the derived field as.
    pub fn field_type(self) -> FieldType {
        match self {
            Derivation::BirthDate => FieldType::Date,
            _ => FieldType::String,
        }
    }
}

/// A field computed from a personal value when a model reads it: what a
/// model may learn of a person without the value itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    pub name: String,
    /// The personal field it is computed from (`personal = "id"`).
    pub from: String,
    pub value: Derivation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A dataset schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    pub name: String,
    /// A Chinese title (`最低生活保障金发放`), which `model explain` reads
    /// a plan's datasets by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub department: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub primary_key: Vec<String>,
    pub fields: Vec<Field>,
    /// Secondary indexes: name → field.
    #[serde(default)]
    pub indexes: BTreeMap<String, String>,
    /// Fields computed from personal values for models (not in files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<Derived>,
}

impl Schema {
    /// Parses and checks a schema file's text; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Schema> {
        let mut schema: Schema = toml::from_str(text).map_err(|e| Error::Schema {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        schema.check(path)?;
        for key in schema.primary_key.clone() {
            if let Some(f) = schema.fields.iter_mut().find(|f| f.name == key) {
                f.required = true;
            }
        }
        Ok(schema)
    }

    /// Reads a schema file.
    pub fn load(path: &std::path::Path) -> Result<Schema> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        Schema::parse(&path.display().to_string(), &text)
    }

    fn check(&self, path: &str) -> Result<()> {
        let bad = |message: String| Error::Schema {
            path: path.to_string(),
            message,
        };
        crate::names::check_name(&self.name).map_err(|e| bad(format!("name: {e}")))?;
        if self.fields.is_empty() {
            return Err(bad("no fields".into()));
        }
        if self.fields.len() > 1000 {
            return Err(bad(format!("{} fields (at most 1000)", self.fields.len())));
        }
        let mut seen = std::collections::BTreeSet::new();
        for f in &self.fields {
            if f.name.is_empty() || !f.name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(bad(format!(
                    "field name `{}` must be letters, digits or _",
                    f.name
                )));
            }
            if !seen.insert(f.name.as_str()) {
                return Err(bad(format!("field `{}` is listed twice", f.name)));
            }
        }
        if self.primary_key.is_empty() {
            return Err(bad("primary_key is empty".into()));
        }
        for k in &self.primary_key {
            if self.field_index(k).is_none() {
                return Err(bad(format!("primary key field `{k}` is not a field")));
            }
        }
        for (name, field) in &self.indexes {
            crate::names::check_name(name).map_err(|e| bad(format!("index `{name}`: {e}")))?;
            if self.field_index(field).is_none() {
                return Err(bad(format!(
                    "index `{name}` is on `{field}`, which is not a field"
                )));
            }
        }
        for d in &self.derived {
            if d.name.is_empty() || !d.name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(bad(format!(
                    "derived field name `{}` must be letters, digits or _",
                    d.name
                )));
            }
            if !seen.insert(d.name.as_str()) {
                return Err(bad(format!("field `{}` is listed twice", d.name)));
            }
            match self.field_index(&d.from).map(|i| &self.fields[i]) {
                Some(f) if f.personal == Some(PersonalKind::Id) => {}
                Some(_) => {
                    return Err(bad(format!(
                        "derived field `{}` is computed from `{}`, which is not a personal ID field (personal = \"id\")",
                        d.name, d.from
                    )))
                }
                None => {
                    return Err(bad(format!(
                        "derived field `{}` is computed from `{}`, which is not a field",
                        d.name, d.from
                    )))
                }
            }
        }
        Ok(())
    }

    /// The derived field called `name`.
    pub fn derived(&self, name: &str) -> Option<&Derived> {
        self.derived.iter().find(|d| d.name == name)
    }

    /// Whether primary-key field or index field `name` holds personal data.
    pub fn is_personal(&self, name: &str) -> bool {
        self.field_index(name)
            .is_some_and(|i| self.fields[i].personal.is_some())
    }

    /// Whether field `name` is checked as a citizen ID number.
    pub fn is_citizen_id(&self, name: &str) -> bool {
        self.field_index(name)
            .is_some_and(|i| self.fields[i].check == Some(Check::CitizenId))
    }

    /// Position of a field.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Positions of the primary key fields.
    pub fn key_indexes(&self) -> Vec<usize> {
        self.primary_key
            .iter()
            .map(|k| self.field_index(k).expect("checked at parse"))
            .collect()
    }

    /// Field names in encoding order.
    pub fn field_names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name.clone()).collect()
    }

    /// Whether any field holds personal data.
    pub fn has_personal(&self) -> bool {
        self.fields.iter().any(|f| f.personal.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPLOYERS: &str = r#"
name = "employers"
department = "市场监督管理局"
primary_key = ["credit_code"]
[[fields]]
name = "credit_code"
type = "string"
check = "credit_code"
[[fields]]
name = "rep_id"
type = "string"
personal = "id"
[indexes]
by_rep = "rep_id"
"#;

    #[test]
    fn primary_key_fields_become_required() {
        let s = Schema::parse("employers.toml", EMPLOYERS).unwrap();
        assert!(s.fields[0].required);
        assert!(!s.fields[1].required);
        assert_eq!(s.indexes["by_rep"], "rep_id");
    }

    #[test]
    fn unknown_key_field_is_named() {
        let text = EMPLOYERS.replace(
            "primary_key = [\"credit_code\"]",
            "primary_key = [\"nope\"]",
        );
        let err = Schema::parse("employers.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("employers.toml") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn unknown_type_is_refused() {
        let text = EMPLOYERS.replacen("type = \"string\"", "type = \"blob\"", 1);
        assert!(Schema::parse("employers.toml", &text).is_err());
    }
}
