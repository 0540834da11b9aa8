//! Building a lead.

use crate::backend::LeadData;
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
///     .personal_evidence("legal_rep_id", "110105********002X");
/// assert_eq!(lead.subject(), "91350100M000100Y43");
/// ```
#[derive(Clone)]
pub struct Lead {
    subject: String,
    subject_personal: bool,
    title: String,
    /// Rounded to the fen.
    amount: Option<Decimal>,
    /// Evidence fields as they will cross the boundary (see
    /// [`encoded_lead`]): no `String` per field.
    evidence: Vec<u8>,
    count: u32,
}

/// An amount as a lead shows it: two decimals.
struct Yuan(Decimal);

impl Display for Yuan {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

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
    /// to 0.01 yuan for output.
    ///
    /// ```
    /// use jiandu_sdk::{Decimal, Lead};
    /// // 12,345.675 yuan due is shown as 12345.68.
    /// let lead = Lead::new("91350100M000100Y43").amount(Decimal::new(12345675, 3));
    /// assert!(format!("{lead:?}").contains("\"12345.68\""));
    /// ```
    pub fn amount(mut self, yuan: Decimal) -> Self {
        let rounded =
            yuan.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        self.amount = Some(rounded);
        self
    }

    /// An evidence field.
    ///
    /// ```
    /// use jiandu_sdk::{Date, Lead};
    /// let lead = Lead::new("91350100M000100Y43")
    ///     .evidence("staff", 120)
    ///     .evidence("paid_on", Date::from_ymd_opt(2024, 7, 15).unwrap());
    /// assert!(format!("{lead:?}").contains("\"2024-07-15\""));
    /// ```
    pub fn evidence(mut self, name: impl AsRef<str>, value: impl Display) -> Self {
        encoded_lead::put_evidence(&mut self.evidence, name.as_ref(), value, false);
        self.count += 1;
        self
    }

    /// An evidence field that is personal data: masked in output by default.
    ///
    /// ```
    /// let lead = jiandu_sdk::Lead::new("91350100M000100Y43")
    ///     .personal_evidence("legal_rep", "张三");
    /// assert_eq!(lead.subject(), "91350100M000100Y43");
    /// ```
    pub fn personal_evidence(mut self, name: impl AsRef<str>, value: impl Display) -> Self {
        encoded_lead::put_evidence(&mut self.evidence, name.as_ref(), value, true);
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
        let amount = self.amount.map(Yuan);
        encoded_lead::put_lead(
            out,
            &self.subject,
            self.subject_personal,
            &self.title,
            amount.as_ref().map(|a| a as &dyn Display),
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
    }
}
