//! serde support: a record deserializes into the author's own struct, which
//! may name only some of the dataset's fields.

use crate::record::{DecodeError, RecordRef, Value};
use core::fmt;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

/// Why a record did not fit the author's type.
#[derive(Debug)]
pub struct DeError(pub String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }

    /// A struct field the records do not carry: most often a field the
    /// model reads but did not declare (the host hands a model only the
    /// fields its `model.toml` declares).
    fn missing_field(field: &'static str) -> Self {
        DeError(format!(
            "no field `{field}` in its records: declare it in model.toml (add \"{field}\" to this dataset's `fields` under [datasets]), or make the struct field an `Option` if it may be absent"
        ))
    }
}

impl From<DecodeError> for DeError {
    fn from(e: DecodeError) -> Self {
        DeError(e.to_string())
    }
}

/// Deserializes `T` from one encoded record whose fields are named `names`.
pub fn from_record<'de, T: de::Deserialize<'de>>(
    names: &'de [String],
    bytes: &'de [u8],
) -> Result<T, DeError> {
    from_record_with(names, bytes, &mut FieldPlan::default())
}

/// Which of a dataset's fields a struct names, worked out from the first
/// record and reused for the rest of a scan: the others are skipped
/// without handing their names to the struct.
#[derive(Default)]
pub struct FieldPlan {
    /// The struct's field list (serde's `FIELDS`, by address) and the
    /// record positions of the fields it names (`None`: all of them).
    plan: Option<(usize, usize, Option<Vec<usize>>)>,
}

impl FieldPlan {
    #[inline]
    fn positions(&mut self, names: &[String], fields: &'static [&'static str]) -> Option<&[usize]> {
        let id = (fields.as_ptr() as usize, fields.len());
        if !matches!(&self.plan, Some((p, n, _)) if (*p, *n) == id) {
            self.replan(names, fields, id);
        }
        self.plan.as_ref().and_then(|(_, _, w)| w.as_deref())
    }

    #[cold]
    fn replan(&mut self, names: &[String], fields: &'static [&'static str], id: (usize, usize)) {
        let wanted: Vec<usize> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| fields.contains(&n.as_str()))
            .map(|(i, _)| i)
            .collect();
        let wanted = (wanted.len() < names.len()).then_some(wanted);
        self.plan = Some((id.0, id.1, wanted));
    }
}

/// [`from_record`] reusing `plan` from record to record of one scan.
pub fn from_record_with<'de, T: de::Deserialize<'de>>(
    names: &'de [String],
    bytes: &'de [u8],
    plan: &mut FieldPlan,
) -> Result<T, DeError> {
    from_record_ref(names, RecordRef::new(bytes)?, plan)
}

/// [`from_record_with`] of a record already checked.
#[inline]
pub fn from_record_ref<'de, T: de::Deserialize<'de>>(
    names: &'de [String],
    rec: RecordRef<'de>,
    plan: &mut FieldPlan,
) -> Result<T, DeError> {
    T::deserialize(RecordDeserializer { names, rec, plan })
}

struct RecordDeserializer<'de, 'p> {
    names: &'de [String],
    rec: RecordRef<'de>,
    plan: &'p mut FieldPlan,
}

impl<'de> de::Deserializer<'de> for RecordDeserializer<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(Fields {
            names: self.names,
            rec: self.rec,
            positions: None,
            next: 0,
            pending: None,
        })
    }

    /// A struct: only the fields it names are visited.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let positions = self.plan.positions(self.names, fields);
        visitor.visit_map(Fields {
            names: self.names,
            rec: self.rec,
            positions,
            next: 0,
            pending: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct Fields<'de, 'p> {
    names: &'de [String],
    rec: RecordRef<'de>,
    /// The record positions to visit (all when `None`).
    positions: Option<&'p [usize]>,
    next: usize,
    /// The field whose key was just handed out; its value is decoded only
    /// if the author's type reads it.
    pending: Option<usize>,
}

impl<'de> MapAccess<'de> for Fields<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let count = match self.positions {
            Some(p) => p.len(),
            None => self.names.len().min(self.rec.len()),
        };
        while self.next < count {
            let i = match self.positions {
                Some(p) => p[self.next],
                None => self.next,
            };
            self.next += 1;
            if self.rec.has(i) {
                self.pending = Some(i);
                let key: de::value::BorrowedStrDeserializer<'de, DeError> =
                    de::value::BorrowedStrDeserializer::new(self.names[i].as_str());
                return seed.deserialize(key).map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let i = self
            .pending
            .take()
            .ok_or_else(|| DeError("value requested before its key".into()))?;
        let name = &self.names[i];
        seed.deserialize(LazyValue { rec: self.rec, i })
            .map_err(|e| DeError(format!("field `{name}`: {e}")))
    }
}

/// A field value decoded only when asked for: fields the author's type
/// does not name are skipped without decoding (or UTF-8 checking) them.
struct LazyValue<'de> {
    rec: RecordRef<'de>,
    i: usize,
}

impl<'de> LazyValue<'de> {
    #[inline]
    fn value(&self) -> Result<ValueDeserializer<'de>, DeError> {
        Ok(ValueDeserializer(
            self.rec.field(self.i)?.unwrap_or(Value::Null),
        ))
    }
}

macro_rules! decode_then {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                de::Deserializer::$method(self.value()?, visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for LazyValue<'de> {
    type Error = DeError;

    decode_then! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_unit_struct(self.value()?, name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_newtype_struct(self.value()?, name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_tuple(self.value()?, len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_tuple_struct(self.value()?, name, len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_struct(self.value()?, name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_enum(self.value()?, name, variants, visitor)
    }
}

/// Deserializes one field value.
pub struct ValueDeserializer<'de>(pub Value<'de>);

impl<'de> de::Deserializer<'de> for ValueDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::Float(f) => visitor.visit_f64(f),
            Value::Str(s) | Value::Decimal(s) | Value::Date(s) => visitor.visit_borrowed_str(s),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Str(s) => visitor.visit_enum(s.into_deserializer()),
            other => Err(DeError(format!(
                "expected text for an enum, found {other:?}"
            ))),
        }
    }

    /// Numbers stored as text (decimals) can be read into integer types when
    /// they have no fractional part, and integers into `String`.
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Int(i) => visitor.visit_string(i.to_string()),
            Value::Bool(b) => visitor.visit_string(b.to_string()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Decimal(s) | Value::Str(s) => match s.parse::<i64>() {
                Ok(i) => visitor.visit_i64(i),
                Err(_) => Err(DeError(format!("`{s}` is not an integer"))),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i128 u8 u16 u128 f32 f64 char
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::encode;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Employer {
        credit_code: String,
        staff: u32,
        wage: crate::Decimal,
        founded: crate::Date,
        note: Option<String>,
    }

    fn names() -> Vec<String> {
        [
            "credit_code",
            "name",
            "staff",
            "wage",
            "founded",
            "note",
            "extra",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn a_field_the_records_lack_says_to_declare_it() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct WantsRegion {
            credit_code: String,
            region: String,
        }
        let names = vec!["credit_code".to_string()];
        let bytes = encode(&[Some(Value::Str("91350100M000100Y43"))]).unwrap();
        let err = from_record::<WantsRegion>(&names, &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no field `region`") && err.contains("declare it in model.toml"),
            "{err}"
        );
    }

    #[test]
    fn struct_reads_only_the_fields_it_names() {
        let bytes = encode(&[
            Some(Value::Str("91350100M000100Y43")),
            Some(Value::Str("某某公司")),
            Some(Value::Int(120)),
            Some(Value::Decimal("86000.50")),
            Some(Value::Date("2001-03-04")),
            Some(Value::Null),
            None,
        ])
        .unwrap();
        let names = names();
        let e: Employer = from_record(&names, &bytes).unwrap();
        assert_eq!(e.credit_code, "91350100M000100Y43");
        assert_eq!(e.staff, 120);
        assert_eq!(e.wage.to_string(), "86000.50");
        assert_eq!(e.founded.to_string(), "2001-03-04");
        assert_eq!(e.note, None);
    }

    #[test]
    fn missing_required_field_names_it() {
        let bytes = encode(&[Some(Value::Str("x")), None, None, None, None, None, None]).unwrap();
        let names = names();
        let err = from_record::<Employer>(&names, &bytes).unwrap_err();
        assert!(err.0.contains("staff"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let bytes = encode(&[
            Some(Value::Str("x")),
            None,
            Some(Value::Str("many")),
            Some(Value::Decimal("1")),
            Some(Value::Date("2001-03-04")),
            None,
            None,
        ])
        .unwrap();
        let names = names();
        let err = from_record::<Employer>(&names, &bytes).unwrap_err();
        assert!(err.0.contains("staff"), "{err}");
    }
}
