//! The bytes of a lead, from the model to the commit: the SDK writes leads
//! in this encoding, sends them to the host a batch at a time
//! (`emit-leads`), and the host checks them where they lie, keeps them,
//! spills them to disk and plans the run's snapshot from them as they are,
//! without lifting each field into an allocation of its own.
//!
//! A batch is a run of leads, each a `u32` (little-endian) byte length and
//! that many bytes:
//!
//! ```text
//! lead     = text(subject) flag(subject_personal) text(title)
//!            (0 | 1 text(amount)) u32(count) evidence{count}
//! evidence = text(name) text(value) flag(personal)
//! text     = u32(length) UTF-8 bytes
//! flag     = 0 | 1
//! ```
//!
//! [`decode`] checks everything: lengths, flags, UTF-8, and that the lead's
//! bytes hold one lead and nothing more. [`decode_bytes`] checks all but
//! UTF-8, for bytes that [`decode`] has checked before (a host reading back
//! the leads it kept) and a reader that needs their bytes only.

use crate::backend::{EvidenceData, LeadData};
use core::fmt::{Display, Write as _};

/// Bytes of leads a model buffers before it sends them to the host.
pub const BATCH_BYTES: usize = 64 << 10;

/// Appends `s` as a text.
pub fn put_text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends `value` as a text, formatted in place (no `String` of its own).
pub fn put_display(out: &mut Vec<u8>, value: impl Display) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    // Writing into a Vec cannot fail; a Display that fails leaves what it
    // wrote.
    let _ = write!(VecWriter(out), "{value}");
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl core::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Appends one lead, its length first. `evidence` is `count` evidence
/// fields already encoded (as [`put_evidence`] writes them); `amount` is
/// the amount's text (two decimals, as [`crate::Yuan`] writes it).
pub fn put_lead(
    out: &mut Vec<u8>,
    subject: &str,
    subject_personal: bool,
    title: &str,
    amount: Option<&str>,
    count: u32,
    evidence: &[u8],
) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    put_text(out, subject);
    out.push(subject_personal as u8);
    put_text(out, title);
    match amount {
        Some(a) => {
            out.push(1);
            put_text(out, a);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(evidence);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Appends one evidence field.
///
/// Any `Display` value is written through `core::fmt`, formatted in place.
/// A value that is already text costs less through [`put_evidence_text`];
/// for money and decimals, [`crate::Yuan`] and [`crate::Exact`] write their
/// digits in one piece.
pub fn put_evidence(out: &mut Vec<u8>, name: &str, value: impl Display, personal: bool) {
    put_text(out, name);
    put_display(out, value);
    out.push(personal as u8);
}

/// [`put_evidence`] of a value that is already text: the same bytes, copied
/// rather than formatted.
pub fn put_evidence_text(out: &mut Vec<u8>, name: &str, value: &str, personal: bool) {
    put_text(out, name);
    put_text(out, value);
    out.push(personal as u8);
}

/// Appends `lead` as [`put_lead`] does.
pub fn put_data(out: &mut Vec<u8>, lead: &LeadData) {
    let mut evidence = Vec::new();
    for e in &lead.evidence {
        put_evidence_text(&mut evidence, &e.name, &e.value, e.personal);
    }
    put_lead(
        out,
        &lead.subject,
        lead.subject_personal,
        &lead.title,
        lead.amount.as_deref(),
        lead.evidence.len() as u32,
        &evidence,
    );
}

/// Why bytes are not an encoded lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

/// A lead read in place from its bytes.
#[derive(Debug, Clone, Copy)]
pub struct LeadView<'a> {
    /// Stable key of the subject.
    pub subject: &'a str,
    /// Whether the subject key is personal data.
    pub subject_personal: bool,
    /// One-line description.
    pub title: &'a str,
    /// Exact amount in yuan, as the model wrote it.
    pub amount: Option<&'a str>,
    count: u32,
    /// The evidence fields, encoded (checked by [`decode`]).
    evidence: &'a [u8],
}

/// An evidence field read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceView<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its value.
    pub value: &'a str,
    /// Personal data.
    pub personal: bool,
}

impl<'a> LeadView<'a> {
    /// Number of evidence fields.
    pub fn evidence_count(&self) -> usize {
        self.count as usize
    }

    /// The evidence fields, in the order the model gave them.
    pub fn evidence(&self) -> Evidence<'a> {
        Evidence {
            fields: self.bytes().evidence(),
        }
    }

    /// Bytes of text (subject, title, amount, evidence names and values):
    /// what the host's limits on a lead and a run's leads count.
    pub fn text_size(&self) -> u64 {
        // An evidence field is its name and value, 4 + 4 bytes of lengths
        // and a flag.
        (self.subject.len()
            + self.title.len()
            + self.amount.map_or(0, str::len)
            + self.evidence.len()
            - 9 * self.count as usize) as u64
    }

    /// The lead as owned data.
    pub fn to_data(&self) -> LeadData {
        LeadData {
            subject: self.subject.to_string(),
            subject_personal: self.subject_personal,
            title: self.title.to_string(),
            amount: self.amount.map(str::to_string),
            evidence: self
                .evidence()
                .map(|e| EvidenceData {
                    name: e.name.to_string(),
                    value: e.value.to_string(),
                    personal: e.personal,
                })
                .collect(),
        }
    }
}

impl<'a> LeadView<'a> {
    /// The same lead as bytes.
    pub fn bytes(&self) -> LeadBytes<'a> {
        LeadBytes {
            subject: self.subject.as_bytes(),
            subject_personal: self.subject_personal,
            title: self.title.as_bytes(),
            amount: self.amount.map(str::as_bytes),
            count: self.count,
            evidence: self.evidence,
        }
    }
}

/// A lead read in place as bytes ([`decode_bytes`]): its texts are not
/// checked for UTF-8 again, and stay bytes.
#[derive(Debug, Clone, Copy)]
pub struct LeadBytes<'a> {
    /// Stable key of the subject.
    pub subject: &'a [u8],
    /// Whether the subject key is personal data.
    pub subject_personal: bool,
    /// One-line description.
    pub title: &'a [u8],
    /// Exact amount in yuan, as the model wrote it.
    pub amount: Option<&'a [u8]>,
    count: u32,
    /// The evidence fields, encoded (their structure checked).
    evidence: &'a [u8],
}

/// An evidence field of a [`LeadBytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceBytes<'a> {
    /// Its name.
    pub name: &'a [u8],
    /// Its value.
    pub value: &'a [u8],
    /// Personal data.
    pub personal: bool,
}

impl<'a> LeadBytes<'a> {
    /// Number of evidence fields.
    pub fn evidence_count(&self) -> usize {
        self.count as usize
    }

    /// The evidence fields, in the order the model gave them.
    pub fn evidence(&self) -> EvidenceFields<'a> {
        EvidenceFields {
            cursor: Cursor {
                bytes: self.evidence,
                at: 0,
            },
            left: self.count,
        }
    }
}

/// [`LeadBytes::evidence`]: fields whose structure [`parse_body`] checked.
#[derive(Debug, Clone)]
pub struct EvidenceFields<'a> {
    cursor: Cursor<'a>,
    left: u32,
}

impl<'a> Iterator for EvidenceFields<'a> {
    type Item = EvidenceBytes<'a>;

    fn next(&mut self) -> Option<EvidenceBytes<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let c = &mut self.cursor;
        Some(EvidenceBytes {
            name: c.bytes_text().expect("checked when decoded"),
            value: c.bytes_text().expect("checked when decoded"),
            personal: c.flag().expect("checked when decoded"),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for EvidenceFields<'_> {}

/// [`LeadView::evidence`].
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    fields: EvidenceFields<'a>,
}

impl<'a> Iterator for Evidence<'a> {
    type Item = EvidenceView<'a>;

    fn next(&mut self) -> Option<EvidenceView<'a>> {
        self.fields.next().map(|e| EvidenceView {
            name: checked_text(e.name),
            value: checked_text(e.value),
            personal: e.personal,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.fields.size_hint()
    }
}

impl ExactSizeIterator for Evidence<'_> {}

/// A text of a [`LeadView`]'s evidence as `str`.
fn checked_text(bytes: &[u8]) -> &str {
    debug_assert!(core::str::from_utf8(bytes).is_ok());
    // SAFETY: a `LeadView` is only made by `decode_body`, which checked
    // that every text of its evidence is UTF-8; the bytes are borrowed
    // immutably from it, so they are the bytes it checked. Checking them
    // again was a tenth of the time spent planning a run's leads.
    unsafe { core::str::from_utf8_unchecked(bytes) }
}

#[derive(Debug, Clone)]
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(DecodeError("ends inside a field"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("a flag that is neither 0 nor 1")),
        }
    }

    /// A text's bytes, not checked for UTF-8.
    fn bytes_text(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// A text as `str` (most of a lead's texts are short and ASCII, checked
/// in line: [`crate::rows::utf8`]).
#[inline]
fn utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    crate::rows::utf8(bytes).ok_or(DecodeError("text that is not UTF-8"))
}

/// The body of the first lead of `bytes` (its length first) and the number
/// of bytes the lead took.
fn split_lead(bytes: &[u8]) -> Result<(&[u8], usize), DecodeError> {
    let mut outer = Cursor { bytes, at: 0 };
    let len = outer.u32()? as usize;
    let body = outer.take(len).map_err(|_| DecodeError("cut short"))?;
    Ok((body, 4 + len))
}

/// Checks a lead's structure (lengths, flags, nothing after the last
/// evidence field) and, with `evidence_utf8`, that its evidence texts are
/// UTF-8.
fn parse_body(body: &[u8], evidence_utf8: bool) -> Result<LeadBytes<'_>, DecodeError> {
    let mut c = Cursor { bytes: body, at: 0 };
    let subject = c.bytes_text()?;
    let subject_personal = c.flag()?;
    let title = c.bytes_text()?;
    let amount = if c.flag()? {
        Some(c.bytes_text()?)
    } else {
        None
    };
    let count = c.u32()?;
    let start = c.at;
    for _ in 0..count {
        let (name, value) = (c.bytes_text()?, c.bytes_text()?);
        if evidence_utf8 {
            utf8(name)?;
            utf8(value)?;
        }
        c.flag()?;
    }
    if c.at != body.len() {
        return Err(DecodeError("bytes after the last evidence field"));
    }
    Ok(LeadBytes {
        subject,
        subject_personal,
        title,
        amount,
        count,
        evidence: &body[start..],
    })
}

/// The first lead of `bytes` (its length, then the lead) and the number of
/// bytes it took.
pub fn decode(bytes: &[u8]) -> Result<(LeadView<'_>, usize), DecodeError> {
    let (body, used) = split_lead(bytes)?;
    Ok((decode_body(body)?, used))
}

/// A lead's bytes without their length.
pub fn decode_body(body: &[u8]) -> Result<LeadView<'_>, DecodeError> {
    let lead = parse_body(body, true)?;
    Ok(LeadView {
        subject: utf8(lead.subject)?,
        subject_personal: lead.subject_personal,
        title: utf8(lead.title)?,
        amount: lead.amount.map(utf8).transpose()?,
        count: lead.count,
        evidence: lead.evidence,
    })
}

/// The first lead of `bytes` as [`decode`] reads it, but with its texts
/// left as bytes and not checked for UTF-8: for bytes [`decode`] has
/// checked before.
pub fn decode_bytes(bytes: &[u8]) -> Result<(LeadBytes<'_>, usize), DecodeError> {
    let (body, used) = split_lead(bytes)?;
    Ok((parse_body(body, false)?, used))
}

/// The subject of an encoded lead (its length first), read without
/// checking the rest: for ordering leads already decoded once.
pub fn subject_bytes(lead: &[u8]) -> &[u8] {
    let n = u32::from_le_bytes(lead[4..8].try_into().expect("4 bytes")) as usize;
    &lead[8..8 + n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LeadData {
        LeadData {
            subject: "91350100M000100Y43".into(),
            subject_personal: false,
            title: "残保金未足额缴纳".into(),
            amount: Some("12.35".into()),
            evidence: vec![
                EvidenceData {
                    name: "staff".into(),
                    value: "120".into(),
                    personal: false,
                },
                EvidenceData {
                    name: "legal_rep_id".into(),
                    value: "110105***********X".into(),
                    personal: true,
                },
            ],
        }
    }

    #[test]
    fn a_lead_reads_back_as_it_was_written() {
        let mut out = Vec::new();
        put_data(&mut out, &sample());
        put_data(
            &mut out,
            &LeadData {
                amount: None,
                evidence: Vec::new(),
                ..sample()
            },
        );
        let (first, used) = decode(&out).unwrap();
        assert_eq!(first.to_data(), sample());
        let (second, rest) = decode(&out[used..]).unwrap();
        assert_eq!(second.amount, None);
        assert_eq!(second.evidence().count(), 0);
        assert_eq!(used + rest, out.len());
        assert_eq!(subject_bytes(&out), b"91350100M000100Y43");
    }

    #[test]
    fn bytes_read_back_as_the_checked_view_reads_them() {
        let mut out = Vec::new();
        put_data(&mut out, &sample());
        let (view, used) = decode(&out).unwrap();
        let (bytes, used_too) = decode_bytes(&out).unwrap();
        assert_eq!(used, used_too);
        let from_view = view.bytes();
        for lead in [bytes, from_view] {
            assert_eq!(lead.subject, b"91350100M000100Y43");
            assert!(!lead.subject_personal);
            assert_eq!(lead.title, "残保金未足额缴纳".as_bytes());
            assert_eq!(lead.amount, Some(&b"12.35"[..]));
            assert_eq!(lead.evidence_count(), 2);
            let evidence: Vec<_> = lead.evidence().collect();
            let expected: Vec<_> = view
                .evidence()
                .map(|e| EvidenceBytes {
                    name: e.name.as_bytes(),
                    value: e.value.as_bytes(),
                    personal: e.personal,
                })
                .collect();
            assert_eq!(evidence, expected);
        }
    }

    #[test]
    fn bytes_are_checked_for_everything_but_utf8() {
        let mut out = Vec::new();
        put_data(&mut out, &sample());
        for cut in 0..out.len() {
            assert!(decode_bytes(&out[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = out.clone();
        bad[4 + 4 + "91350100M000100Y43".len()] = 2;
        assert!(decode_bytes(&bad).is_err(), "a flag that is not 0 or 1");
        let mut longer = out.clone();
        longer.push(0);
        let len = (out.len() - 4 + 1) as u32;
        longer[..4].copy_from_slice(&len.to_le_bytes());
        assert!(decode_bytes(&longer).is_err(), "bytes after the lead");
        // Not UTF-8: refused by `decode`, read as bytes by `decode_bytes`.
        let mut not_utf8 = out.clone();
        not_utf8[8] = 0xff;
        assert!(decode(&not_utf8).is_err());
        assert_eq!(decode_bytes(&not_utf8).unwrap().0.subject[0], 0xff);
    }

    #[test]
    fn text_and_display_values_write_the_same_bytes() {
        let lead = sample();
        let mut evidence = Vec::new();
        for e in &lead.evidence {
            put_evidence(&mut evidence, &e.name, &e.value, e.personal);
        }
        let mut by_display = Vec::new();
        put_lead(
            &mut by_display,
            &lead.subject,
            lead.subject_personal,
            &lead.title,
            lead.amount.as_deref(),
            lead.evidence.len() as u32,
            &evidence,
        );
        let mut by_text = Vec::new();
        put_data(&mut by_text, &lead);
        assert_eq!(by_text, by_display);
    }

    #[test]
    fn text_size_counts_the_text_only() {
        let lead = sample();
        let mut out = Vec::new();
        put_data(&mut out, &lead);
        let text = lead.subject.len()
            + lead.title.len()
            + lead.amount.as_ref().map_or(0, String::len)
            + lead
                .evidence
                .iter()
                .map(|e| e.name.len() + e.value.len())
                .sum::<usize>();
        assert_eq!(decode(&out).unwrap().0.text_size(), text as u64);
    }

    #[test]
    fn every_cut_and_every_bad_byte_is_refused() {
        let mut out = Vec::new();
        put_data(&mut out, &sample());
        for cut in 0..out.len() {
            assert!(decode(&out[..cut]).is_err(), "cut at {cut}");
        }
        // A flag that is not 0 or 1.
        let mut bad = out.clone();
        let flag_at = 4 + 4 + "91350100M000100Y43".len();
        bad[flag_at] = 2;
        assert!(decode(&bad).is_err());
        // Text that is not UTF-8.
        let mut bad = out.clone();
        bad[8] = 0xff;
        assert!(decode(&bad).is_err());
        // A length that says more than there is, or less.
        let mut bad = out.clone();
        bad[0] = bad[0].wrapping_sub(1);
        assert!(decode(&bad).is_err());
        let mut longer = out.clone();
        longer.push(0);
        let len = (out.len() - 4 + 1) as u32;
        longer[..4].copy_from_slice(&len.to_le_bytes());
        assert_eq!(
            decode(&longer).unwrap_err(),
            DecodeError("bytes after the last evidence field")
        );
        // An evidence count far beyond the bytes.
        let body = {
            let mut b = Vec::new();
            put_text(&mut b, "s");
            b.push(0);
            put_text(&mut b, "t");
            b.push(0);
            b.extend_from_slice(&u32::MAX.to_le_bytes());
            b
        };
        assert!(decode_body(&body).is_err());
    }
}
