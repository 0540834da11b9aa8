//! Building a lead.

use crate::backend::{EvidenceData, LeadData};
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
#[derive(Debug, Clone)]
pub struct Lead {
    data: LeadData,
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
            data: LeadData {
                subject: subject.into(),
                subject_personal: false,
                title: String::new(),
                amount: None,
                evidence: Vec::new(),
            },
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
        self.data.subject_personal = true;
        self
    }

    /// A one-line description for the reviewer.
    ///
    /// ```
    /// let lead = jiandu_sdk::Lead::new("91350100M000100Y43").title("某某公司 2024 年度残保金未缴");
    /// assert_eq!(lead.subject(), "91350100M000100Y43");
    /// ```
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.data.title = title.into();
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
        self.data.amount = Some(format!("{rounded:.2}"));
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
    pub fn evidence(mut self, name: impl Into<String>, value: impl Display) -> Self {
        self.data.evidence.push(EvidenceData {
            name: name.into(),
            value: value.to_string(),
            personal: false,
        });
        self
    }

    /// An evidence field that is personal data: masked in output by default.
    ///
    /// ```
    /// let lead = jiandu_sdk::Lead::new("91350100M000100Y43")
    ///     .personal_evidence("legal_rep", "张三");
    /// assert_eq!(lead.subject(), "91350100M000100Y43");
    /// ```
    pub fn personal_evidence(mut self, name: impl Into<String>, value: impl Display) -> Self {
        self.data.evidence.push(EvidenceData {
            name: name.into(),
            value: value.to_string(),
            personal: true,
        });
        self
    }

    /// The subject given to [`Lead::new`].
    ///
    /// ```
    /// let lead = jiandu_sdk::Lead::new("91350100M000100Y43").title("残保金未足额缴纳");
    /// assert_eq!(lead.subject(), "91350100M000100Y43");
    /// ```
    pub fn subject(&self) -> &str {
        &self.data.subject
    }

    pub(crate) fn into_data(self) -> LeadData {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_rounds_half_up_to_fen() {
        let lead = Lead::new("x").amount(Decimal::new(12345, 3));
        assert_eq!(lead.into_data().amount.as_deref(), Some("12.35"));
        let lead = Lead::new("x").amount(Decimal::new(100, 0));
        assert_eq!(lead.into_data().amount.as_deref(), Some("100.00"));
    }
}
