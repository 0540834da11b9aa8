//! Building a lead.

use crate::backend::LeadData;
use crate::decimal_text::Text;
use crate::encoded_lead;
use crate::Decimal;
use core::fmt::Display;

/// A lead (线索) about one subject, with the evidence that made it a lead.
///
/// ```
/// use jiandu_sdk::{Decimal, Lead};
/// let lead = Lead::new("91350100M000100Y43")
///     .title("残保金未足额缴纳")
///     .amount(Decimal::new(1234550, 2))
///     .evidence("staff", 120)
///     .personal_evidence("legal_rep_id", "110105***********X");
/// assert_eq!(lead.subject(), "91350100M000100Y43");
/// ```
#[derive(Clone)]
pub struct Lead {
    subject: String,
    subject_personal: bool,
    title: String,
    /// As given: rounded to the fen as it is written (see [`Lead::amount`]).
    amount: Option<Decimal>,
    /// Evidence fields as they will cross the boundary (see
    /// [`encoded_lead`]): no `String` per field.
    evidence: Vec<u8>,
    count: u32,
}

/// Bytes of evidence a lead makes room for with its first field. Grown
/// from empty, the buffer of a dozen fields (300-odd bytes) was allocated
/// six times over; at 256 it is allocated once or twice, and a smaller
/// lead's buffer is still one of the wasm allocator's small blocks
/// (`alloc.rs`), reused at the cost of a pointer swap.
const EVIDENCE_BYTES: usize = 256;

impl core::fmt::Debug for Lead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.to_data().fmt(f)
    }
}

impl Lead {
    /// A lead about `subject`: its stable key (credit code, case number…).
    ///
    /// ```
    /// let lead = jiandu_sdk::Lead::new("91350100M000100Y43");
    /// assert_eq!(lead.subject(), "91350100M000100Y43");
    /// ```
    pub fn new(subject: impl Into<String>) -> Self {
        Lead {
            subject: subject.into(),
            subject_personal: false,
            title: String::new(),
            amount: None,
            evidence: Vec::new(),
            count: 0,
        }
    }

    /// Marks the subject key as personal data (a citizen ID number, say).
    ///
    /// ```
    /// let lead = jiandu_sdk::Lead::new("110105199001010012")
    ///     .personal_subject()
    ///     .title("醉驾未吊销驾驶证");
    /// assert_eq!(lead.subject(), "110105199001010012");
    /// ```
    pub fn personal_subject(mut self) -> Self {
        self.subject_personal = true;
        self
    }

    /// A one-line description for the reviewer.
    ///
    /// ```
    /// let lead = jiandu_sdk::Lead::new("91350100M000100Y43").title("某某公司 2024 年度残保金未缴");
    /// assert_eq!(lead.subject(), "91350100M000100Y43");
    /// ```
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The amount in yuan (arrears, fee, penalty), exact. Rounded half-up
    /// (away from zero) to 0.01 yuan for output, as [`Yuan`](crate::Yuan)
    /// writes it.
    ///
    /// ```
    /// use jiandu_sdk::{Decimal, Lead};
    /// // 12,345.675 yuan due is shown as 12345.68.
    /// let lead = Lead::new("91350100M000100Y43").amount(Decimal::new(12345675, 3));
    /// assert!(format!("{lead:?}").contains("\"12345.68\""));
    /// ```
    pub fn amount(mut self, yuan: Decimal) -> Self {
        self.amount = Some(yuan);
        self
    }

    /// An evidence field.
    ///
    /// Any `Display` value will do. For money, [`Yuan`](crate::Yuan) writes
    /// it rounded to the fen; [`Exact`](crate::Exact) writes any other
    /// `Decimal` as its `Display` does, both several times faster than
    /// `format!`.
    ///
    /// ```
    /// use jiandu_sdk::{Date, Lead};
    /// let lead = Lead::new("91350100M000100Y43")
    ///     .evidence("staff", 120)
    ///     .evidence("paid_on", Date::from_ymd_opt(2024, 7, 15).unwrap());
    /// assert!(format!("{lead:?}").contains("\"2024-07-15\""));
    /// ```
    pub fn evidence(self, name: impl AsRef<str>, value: impl Display) -> Self {
        self.with_evidence(|out| encoded_lead::put_evidence(out, name.as_ref(), value, false))
    }

    /// An evidence field that is personal data: masked in output by default.
    ///
    /// ```
    /// let lead = jiandu_sdk::Lead::new("91350100M000100Y43")
    ///     .personal_evidence("legal_rep", "张三");
    /// assert_eq!(lead.subject(), "91350100M000100Y43");
    /// ```
    pub fn personal_evidence(self, name: impl AsRef<str>, value: impl Display) -> Self {
        self.with_evidence(|out| encoded_lead::put_evidence(out, name.as_ref(), value, true))
    }

    /// An evidence field that is already text: the same as
    /// [`Lead::evidence`] of it, copied instead of formatted (for a caller
    /// that has its values as text, such as the plan interpreter).
    ///
    /// ```
    /// let lead = jiandu_sdk::Lead::new("91350100M000100Y43").evidence_text("staff", "120");
    /// assert!(format!("{lead:?}").contains("\"120\""));
    /// ```
    pub fn evidence_text(self, name: &str, value: &str) -> Self {
        self.with_evidence(|out| encoded_lead::put_evidence_text(out, name, value, false))
    }

    /// [`Lead::personal_evidence`] of a value that is already text, copied
    /// instead of formatted.
    ///
    /// ```
    /// let lead = jiandu_sdk::Lead::new("91350100M000100Y43")
    ///     .personal_evidence_text("legal_rep", "张三");
    /// assert_eq!(lead.subject(), "91350100M000100Y43");
    /// ```
    pub fn personal_evidence_text(self, name: &str, value: &str) -> Self {
        self.with_evidence(|out| encoded_lead::put_evidence_text(out, name, value, true))
    }

    /// Adds one evidence field, which `put` encodes into the evidence.
    fn with_evidence(mut self, put: impl FnOnce(&mut Vec<u8>)) -> Self {
        if self.evidence.capacity() == 0 {
            self.evidence.reserve(EVIDENCE_BYTES);
        }
        put(&mut self.evidence);
        self.count += 1;
        self
    }

    /// The subject given to [`Lead::new`].
    ///
    /// ```
    /// let lead = jiandu_sdk::Lead::new("91350100M000100Y43").title("残保金未足额缴纳");
    /// assert_eq!(lead.subject(), "91350100M000100Y43");
    /// ```
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Appends the lead to a batch, in the encoding of [`encoded_lead`].
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let amount = self.amount.map(Text::yuan);
        encoded_lead::put_lead(
            out,
            &self.subject,
            self.subject_personal,
            &self.title,
            amount.as_ref().map(Text::as_str),
            self.count,
            &self.evidence,
        );
    }

    /// The lead as owned data.
    pub(crate) fn to_data(&self) -> LeadData {
        let mut out = Vec::new();
        self.encode(&mut out);
        encoded_lead::decode(&out)
            .expect("a lead the SDK encoded decodes")
            .0
            .to_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_rounds_half_up_to_fen() {
        let lead = Lead::new("x").amount(Decimal::new(12345, 3));
        assert_eq!(lead.to_data().amount.as_deref(), Some("12.35"));
        let lead = Lead::new("x").amount(Decimal::new(100, 0));
        assert_eq!(lead.to_data().amount.as_deref(), Some("100.00"));
        let lead = Lead::new("x").amount(Decimal::new(-12345, 3));
        assert_eq!(lead.to_data().amount.as_deref(), Some("-12.35"));
    }

    /// The encoding before `Yuan`: the amount rounded with rust_decimal and
    /// written with `{:.2}`, every value through `core::fmt`.
    fn encode_by_format(
        amount: Option<Decimal>,
        evidence: &[(&str, &dyn Display, bool)],
    ) -> Vec<u8> {
        let rounded = amount.map(|a| {
            a.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        });
        let text = rounded.map(|r| format!("{r:.2}"));
        let mut fields = Vec::new();
        for (name, value, personal) in evidence {
            encoded_lead::put_evidence(&mut fields, name, value, *personal);
        }
        let mut out = Vec::new();
        encoded_lead::put_lead(
            &mut out,
            "s",
            false,
            "t",
            text.as_deref(),
            evidence.len() as u32,
            &fields,
        );
        out
    }

    #[test]
    fn a_lead_encodes_as_it_did_through_core_fmt() {
        let amounts = [
            Decimal::new(12345675, 3),
            Decimal::new(-12345675, 3),
            Decimal::new(-4, 3),
            -Decimal::new(0, 4),
            Decimal::MAX,
            Decimal::from_i128_with_scale(123_456_789_012_345_678_901_234_567, 27),
        ];
        for a in amounts {
            let ratio = Decimal::new(15, 3);
            let lead = Lead::new("s")
                .title("t")
                .amount(a)
                .evidence("employer", "某某公司")
                .evidence("staff_n", 120u32)
                .evidence("ratio", crate::Exact(ratio))
                .personal_evidence("gap", crate::Yuan(a));
            let mut out = Vec::new();
            lead.encode(&mut out);
            let gap = format!(
                "{:.2}",
                a.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
            );
            let expected = encode_by_format(
                Some(a),
                &[
                    ("employer", &"某某公司", false),
                    ("staff_n", &120u32, false),
                    ("ratio", &ratio, false),
                    ("gap", &gap, true),
                ],
            );
            assert_eq!(out, expected, "amount {a:?}");
        }
        let mut out = Vec::new();
        Lead::new("s").title("t").encode(&mut out);
        assert_eq!(out, encode_by_format(None, &[]));
        // Text evidence copied encodes as text evidence formatted.
        let (mut copied, mut formatted) = (Vec::new(), Vec::new());
        Lead::new("s")
            .evidence_text("employer", "某某公司")
            .personal_evidence_text("legal_rep", "张三")
            .evidence_text("empty", "")
            .encode(&mut copied);
        Lead::new("s")
            .evidence("employer", "某某公司")
            .personal_evidence("legal_rep", "张三")
            .evidence("empty", "")
            .encode(&mut formatted);
        assert_eq!(copied, formatted);
    }
}
