//! What a plan may refer to: the model's datasets (only the fields
//! model.toml declares) and its typed parameters.
//!
//! The host fills a [`Catalog`] from its schemas and the model's
//! model.toml; [`Catalog::from_toml`] does it from the texts of those
//! files, for the guest interpreter and for tests. Nothing here reads a
//! file.

use crate::value::{PersonalKind, Type, Value};
use serde::Deserialize;
use std::collections::BTreeMap;
use thiserror::Error;

/// The datasets and parameters a plan is checked against.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    /// The model's title (model.toml `title`), for explanations.
    pub title: Option<String>,
    /// Legal basis (model.toml `legal_basis`), for explanations.
    pub legal_basis: Vec<String>,
    /// The datasets the model declares, by name.
    pub datasets: BTreeMap<String, Dataset>,
    /// The parameters, in model.toml order.
    pub params: Vec<Param>,
    /// What model.toml's `[partition]` splits, when it declares one.
    pub partition: Option<Partition>,
}

/// A model's `[partition]`: the key a run may be split on, and the
/// datasets the host cuts into ranges of it, as the host decides (those
/// whose primary key begins with the field holding the key). The others
/// are read whole by every part.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Partition {
    /// The key, as model.toml names it.
    pub key: String,
    /// Split dataset → the field that holds the key in it.
    pub split: BTreeMap<String, String>,
}

/// A dataset as a model sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    /// Its name (`employers`).
    pub name: String,
    /// A Chinese title for explanations (`社会保险`), if the host has one.
    pub title: Option<String>,
    /// The department that supplies it.
    pub department: String,
    /// The fields the model declares, in schema order.
    pub fields: Vec<Field>,
    /// The schema's fields the model does not declare (named in errors).
    pub undeclared: Vec<String>,
    /// The primary key: rows are read sorted on it.
    pub primary_key: Vec<String>,
    /// Secondary indexes: index name → field.
    pub indexes: BTreeMap<String, String>,
}

impl Dataset {
    /// The declared field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// How explanations name the dataset: `社会保险（social_insurance）`, or
    /// without a title `social_insurance（人力资源和社会保障局）`.
    pub fn label(&self) -> String {
        match &self.title {
            Some(t) => format!("{t}（{}）", self.name),
            None if !self.department.is_empty() => format!("{}（{}）", self.name, self.department),
            None => self.name.clone(),
        }
    }
}

/// A field of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Whether every row has a value (primary-key fields always do).
    pub required: bool,
    /// Personal data: the model sees a pseudonym unless granted clear values.
    pub personal: Option<PersonalKind>,
    /// What it holds.
    pub description: Option<String>,
}

/// A parameter of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// The value used when a run does not set it.
    pub default: Value,
    /// Its unit (`yuan per year`), for explanations.
    pub unit: Option<String>,
    /// What it means.
    pub description: Option<String>,
}

impl Catalog {
    /// The dataset called `name`.
    pub fn dataset(&self, name: &str) -> Option<&Dataset> {
        self.datasets.get(name)
    }

    /// The parameter called `name` and its index.
    pub fn param(&self, name: &str) -> Option<(usize, &Param)> {
        self.params.iter().enumerate().find(|(_, p)| p.name == name)
    }

    /// Builds a catalog from the text of a model.toml and the texts of the
    /// dataset schemas it names (`datasets/<name>.toml`; extra schemas are
    /// ignored).
    pub fn from_toml(model_toml: &str, schemas: &[&str]) -> Result<Catalog, CatalogError> {
        let bad_model = |e: &dyn std::fmt::Display| CatalogError::Toml {
            file: "model.toml".into(),
            message: e.to_string(),
        };
        let mut model: ModelToml =
            toml_edit::de::from_str(model_toml).map_err(|e| bad_model(&e))?;
        // Parameters keep model.toml's order, which serde's map loses.
        let doc = toml_edit::ImDocument::parse(model_toml).map_err(|e| bad_model(&e))?;
        let order: Vec<String> = doc
            .get("params")
            .and_then(|p| p.as_table_like())
            .map(|t| t.iter().map(|(k, _)| k.to_owned()).collect())
            .unwrap_or_default();
        let mut parsed = BTreeMap::new();
        for text in schemas {
            let s: SchemaToml = toml_edit::de::from_str(text).map_err(|e| CatalogError::Toml {
                file: "schema".into(),
                message: e.to_string(),
            })?;
            parsed.insert(s.name.clone(), s);
        }
        let mut catalog = Catalog {
            title: model.title,
            legal_basis: model.legal_basis,
            ..Catalog::default()
        };
        for (name, decl) in model.datasets {
            let schema = parsed
                .get(&name)
                .ok_or_else(|| CatalogError::NoSchema(name.clone()))?;
            for f in &decl.fields {
                let derived = schema.derived.iter().any(|d| &d.name == f);
                if !derived && !schema.fields.iter().any(|s| &s.name == f) {
                    return Err(CatalogError::NoField {
                        dataset: name.clone(),
                        field: f.clone(),
                    });
                }
            }
            let mut ds = Dataset {
                name: name.clone(),
                title: schema.title.clone(),
                department: schema.department.clone(),
                primary_key: schema.primary_key.clone(),
                indexes: schema.indexes.clone(),
                ..Dataset::default()
            };
            for f in &schema.fields {
                if !decl.fields.contains(&f.name) {
                    ds.undeclared.push(f.name.clone());
                    continue;
                }
                let ty = Type::from_name(&f.ty).ok_or_else(|| CatalogError::Type {
                    what: format!("field `{}.{}`", name, f.name),
                    found: f.ty.clone(),
                })?;
                ds.fields.push(Field {
                    name: f.name.clone(),
                    ty,
                    required: f.required || schema.primary_key.contains(&f.name),
                    personal: f.personal,
                    description: f.description.clone(),
                });
            }
            // Derived fields come after the stored ones, as the host's
            // view of the dataset gives them, and only when declared.
            for d in &schema.derived {
                if !decl.fields.contains(&d.name) {
                    continue;
                }
                ds.fields.push(Field {
                    name: d.name.clone(),
                    ty: if d.value == "birth_date" {
                        Type::Date
                    } else {
                        Type::Str
                    },
                    // An ID without the shape to give a value gives null.
                    required: false,
                    personal: None,
                    description: d.description.clone(),
                });
            }
            catalog.datasets.insert(name, ds);
        }
        catalog.partition = model.partition.map(|p| Partition {
            split: catalog
                .datasets
                .values()
                .filter_map(|ds| {
                    let field = p.fields.get(&ds.name).unwrap_or(&p.key);
                    (ds.primary_key.first() == Some(field))
                        .then(|| (ds.name.clone(), field.clone()))
                })
                .collect(),
            key: p.key,
        });
        for name in order {
            let Some(p) = model.params.remove(&name) else {
                continue;
            };
            let ty = Type::from_name(&p.ty).ok_or_else(|| CatalogError::Type {
                what: format!("parameter `{name}`"),
                found: p.ty.clone(),
            })?;
            let default = default_value(ty, &p.default).ok_or_else(|| CatalogError::Default {
                param: name.clone(),
                ty,
                found: p.default.to_string(),
            })?;
            catalog.params.push(Param {
                name,
                ty,
                default,
                unit: p.unit,
                description: p.description,
            });
        }
        Ok(catalog)
    }
}

/// A default as model.toml writes it.
#[derive(Deserialize)]
#[serde(untagged)]
enum DefaultToml {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl std::fmt::Display for DefaultToml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefaultToml::Bool(b) => write!(f, "{b}"),
            DefaultToml::Int(i) => write!(f, "{i}"),
            DefaultToml::Float(x) => write!(f, "{x} (a float)"),
            DefaultToml::Str(s) => write!(f, "\"{s}\""),
        }
    }
}

fn default_value(ty: Type, v: &DefaultToml) -> Option<Value> {
    match (ty, v) {
        (Type::Int, DefaultToml::Int(i)) => Some(Value::Int(*i)),
        (Type::Float, DefaultToml::Float(f)) => Some(Value::Float(*f)),
        (Type::Float, DefaultToml::Int(i)) => Some(Value::Float(*i as f64)),
        (Type::Bool, DefaultToml::Bool(b)) => Some(Value::Bool(*b)),
        (Type::Decimal, DefaultToml::Int(i)) => Some(Value::Decimal((*i).into())),
        // A float default for a decimal would already have been rounded
        // by the TOML reader: decimals are written as text.
        (_, DefaultToml::Str(s)) => Value::parse(ty, s),
        _ => None,
    }
}

/// A model.toml or schema that cannot make a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CatalogError {
    /// Not TOML of the expected shape.
    #[error("{file}: {message}")]
    Toml {
        /// Which file.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// model.toml names a dataset without a schema.
    #[error("model.toml declares dataset `{0}`, but no schema for it was given")]
    NoSchema(String),
    /// model.toml declares a field the schema lacks.
    #[error("model.toml declares field `{field}` of `{dataset}`, which its schema lacks")]
    NoField {
        /// The dataset.
        dataset: String,
        /// The field.
        field: String,
    },
    /// An unknown type name.
    #[error("{what}: expected a type string, int, decimal, float, date or bool, found `{found}`")]
    Type {
        /// What has the type.
        what: String,
        /// The type name found.
        found: String,
    },
    /// A default that is not of the parameter's type.
    #[error("parameter `{param}`: expected a default of type {ty} (decimals as text, e.g. \"0.015\"), found {found}")]
    Default {
        /// The parameter.
        param: String,
        /// Its type.
        ty: Type,
        /// The default as written.
        found: String,
    },
}

#[derive(Deserialize)]
struct ModelToml {
    title: Option<String>,
    #[serde(default)]
    legal_basis: Vec<String>,
    #[serde(default)]
    datasets: BTreeMap<String, DatasetDecl>,
    #[serde(default)]
    params: BTreeMap<String, ParamToml>,
    partition: Option<PartitionToml>,
}

#[derive(Deserialize)]
struct PartitionToml {
    key: String,
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct DatasetDecl {
    fields: Vec<String>,
}

#[derive(Deserialize)]
struct SchemaToml {
    name: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    department: String,
    primary_key: Vec<String>,
    fields: Vec<FieldToml>,
    #[serde(default)]
    indexes: BTreeMap<String, String>,
    #[serde(default)]
    derived: Vec<DerivedToml>,
}

/// A field the host computes from a personal ID for models (`[[derived]]`
/// in a schema): not personal itself, read like a stored field.
#[derive(Deserialize)]
struct DerivedToml {
    name: String,
    value: String,
    description: Option<String>,
}

#[derive(Deserialize)]
struct FieldToml {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    required: bool,
    personal: Option<PersonalKind>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct ParamToml {
    #[serde(rename = "type")]
    ty: String,
    default: DefaultToml,
    unit: Option<String>,
    description: Option<String>,
}
