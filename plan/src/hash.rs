//! The plan's identity for the ledger: SHA-256 of the RFC 8785 (JCS)
//! canonical JSON of the parsed plan.
//!
//! The JSON is built from the parsed plan, not from its text: comments,
//! whitespace, key order, quoting style, `$x` versus `params.x` and
//! redundant parentheses do not change it; any change of meaning does
//! (expressions are written in their canonical form,
//! [`crate::expr::print::canonical`]). Defaulted inputs are written out,
//! so leaving out `input = "<previous step>"` hashes the same as writing it.

use crate::expr::print::canonical;
use crate::plan::{Op, Plan, TemplatePart};
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};

impl Plan {
    /// The plan as JSON, before canonicalisation.
    pub fn to_json(&self) -> Json {
        let steps: Vec<Json> = self.steps.iter().map(step_json).collect();
        let mut root = Map::new();
        root.insert("format".into(), json!(self.format));
        if let Some(d) = &self.description {
            root.insert("description".into(), json!(d));
        }
        if !self.labels.is_empty() {
            // Pairs, not an object: a label list keeps the author's order.
            let labels: Vec<Json> = self
                .labels
                .iter()
                .map(|(n, l)| json!([n.value, l]))
                .collect();
            root.insert("labels".into(), Json::Array(labels));
        }
        root.insert("steps".into(), Json::Array(steps));
        Json::Object(root)
    }

    /// The RFC 8785 canonical JSON text of the plan.
    pub fn canonical_json(&self) -> String {
        let mut out = String::new();
        write_jcs(&self.to_json(), &mut out);
        out
    }

    /// The plan's hash: lowercase hex SHA-256 of [`Plan::canonical_json`].
    ///
    /// ```
    /// let a = jiandu_plan::Plan::parse("a", "[[step]]\nname = \"e\"\nop = \"read\"\ndataset = \"employers\"").unwrap();
    /// let b = jiandu_plan::Plan::parse("b", "# same\n[[step]]\nop = 'read'\ndataset = 'employers'\nname = 'e'\n").unwrap();
    /// assert_eq!(a.hash(), b.hash());
    /// ```
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.canonical_json().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn names(list: &[crate::plan::Name]) -> Json {
    Json::Array(list.iter().map(|n| json!(n.value)).collect())
}

fn pairs<T>(list: &[(crate::plan::Name, T)], f: impl Fn(&T) -> String) -> Json {
    Json::Array(list.iter().map(|(n, x)| json!([n.value, f(x)])).collect())
}

fn sort_keys(keys: &[crate::plan::SortKey]) -> Json {
    Json::Array(
        keys.iter()
            .map(|k| {
                json!(if k.descending {
                    format!("{} desc", k.field.value)
                } else {
                    k.field.value.clone()
                })
            })
            .collect(),
    )
}

/// A title as canonical template text.
pub(crate) fn template_text(t: &crate::plan::Template) -> String {
    let mut out = String::new();
    for p in &t.parts {
        match p {
            TemplatePart::Text(s) => out.push_str(&s.replace('{', "{{").replace('}', "}}")),
            TemplatePart::Expr(e) => {
                out.push('{');
                out.push_str(&canonical(e));
                out.push('}');
            }
        }
    }
    out
}

fn step_json(s: &crate::plan::Step) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), json!(s.name.value));
    m.insert("op".into(), json!(s.op.name()));
    if let Some(n) = &s.note {
        m.insert("note".into(), json!(n));
    }
    if let Some(b) = &s.basis {
        m.insert("basis".into(), json!(b));
    }
    let mut put = |k: &str, v: Json| {
        m.insert(k.into(), v);
    };
    match &s.op {
        Op::Read { dataset, fields } => {
            put("dataset", json!(dataset.value));
            if let Some(f) = fields {
                put("fields", names(f));
            }
        }
        Op::Filter { input, cond } => {
            put("input", json!(input.value));
            put("where", json!(canonical(cond)));
        }
        Op::Derive { input, fields } => {
            put("input", json!(input.value));
            put("set", pairs(fields, canonical));
        }
        Op::Select { input, fields } => {
            put("input", json!(input.value));
            put("fields", names(fields));
        }
        Op::Join {
            input,
            with,
            kind,
            on,
            with_on,
            prefix,
        } => {
            put("input", json!(input.value));
            put("with", json!(with.value));
            put("kind", json!(kind.name()));
            put("on", names(on));
            put("with_on", names(with_on));
            if let Some(p) = prefix {
                put("prefix", json!(p.value));
            }
        }
        Op::Lookup {
            input,
            dataset,
            index,
            key,
            kind,
            fields,
            prefix,
        } => {
            put("input", json!(input.value));
            put("dataset", json!(dataset.value));
            put("index", json!(index.value));
            put("key", json!(canonical(key)));
            put("kind", json!(kind.name()));
            if let Some(f) = fields {
                put("fields", names(f));
            }
            if let Some(p) = prefix {
                put("prefix", json!(p.value));
            }
        }
        Op::Group {
            input,
            by,
            aggregates,
        } => {
            put("input", json!(input.value));
            put("by", names(by));
            put(
                "aggregates",
                pairs(aggregates, |a| match (&a.arg, &a.sep) {
                    (Some(e), None) => format!("{}({})", a.func.name(), canonical(e)),
                    (None, _) => format!("{}()", a.func.name()),
                    (Some(_), Some(_)) => canonical(&a.call()),
                }),
            );
        }
        Op::Sort { input, by } => {
            put("input", json!(input.value));
            put("by", sort_keys(by));
        }
        Op::Rank {
            input,
            by,
            order,
            rank,
            size,
            ties_in_order,
        } => {
            put("input", json!(input.value));
            put("by", names(by));
            put("order_by", sort_keys(order));
            put("rank", json!(rank.value));
            if let Some(sz) = size {
                put("size", json!(sz.value));
            }
            if *ties_in_order {
                put("ties", json!("in_order"));
            }
        }
        Op::Window {
            input,
            by,
            time,
            days,
            count,
        } => {
            put("input", json!(input.value));
            put("by", names(by));
            put("time", json!(canonical(time)));
            put("days", json!(canonical(days)));
            put("count", json!(count.value));
        }
        Op::Emit {
            input,
            subject,
            subject_personal,
            title,
            amount,
            evidence,
            personal,
            optional,
        } => {
            put("input", json!(input.value));
            put("subject", json!(canonical(subject)));
            put("subject_personal", json!(subject_personal));
            put("title", json!(template_text(title)));
            if let Some(a) = amount {
                put("amount", json!(canonical(a)));
            }
            put("evidence", pairs(evidence, canonical));
            put("personal", names(personal));
            // Absent when empty, so plans written before `optional`
            // existed keep their hash.
            if !optional.is_empty() {
                put("optional", names(optional));
            }
        }
        Op::Union { inputs } => {
            put("inputs", names(inputs));
        }
    }
    Json::Object(m)
}

/// Writes `v` as RFC 8785 canonical JSON: no whitespace, object members
/// sorted by the UTF-16 code units of their names, strings with only the
/// required escapes, numbers (integers here) in their shortest form.
pub fn write_jcs(v: &Json, out: &mut String) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => {
            // The plan has only small integers; an ES6 number would print
            // floats differently, and none occur.
            out.push_str(&n.to_string());
        }
        Json::String(s) => jcs_string(s, out),
        Json::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_jcs(x, out);
            }
            out.push(']');
        }
        Json::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                jcs_string(k, out);
                out.push(':');
                write_jcs(&m[k], out);
            }
            out.push('}');
        }
    }
}

fn jcs_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_members_by_utf16_and_escapes_minimally() {
        let v = json!({"b": 1, "a": [true, null, "x\n\u{1}\"é"], "\u{e000}": 0, "\u{1f600}": 0});
        let mut out = String::new();
        write_jcs(&v, &mut out);
        // U+1F600 is a surrogate pair (D83D…), which sorts before U+E000.
        assert_eq!(
            out,
            "{\"a\":[true,null,\"x\\n\\u0001\\\"é\"],\"b\":1,\"\u{1f600}\":0,\"\u{e000}\":0}"
        );
    }
}
