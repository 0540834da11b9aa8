//! Review of leads (研判): what people decided about each lead.
//!
//! A run says whether a model still finds a lead ([`crate::leads::Status`]:
//! new, open, resolved); people say what it is worth. Each lead has a
//! review state, `pending` until someone acts:
//!
//! | action     | state after   | needs                                   |
//! |------------|---------------|-----------------------------------------|
//! | `confirm`  | `confirmed` (成案) | not confirmed already              |
//! | `dismiss`  | `dismissed` (排除) | a reason; `other` needs words      |
//! | `transfer` | `transferred` (移送) | the body it goes to            |
//! | `reopen`   | `pending`     | a decision to take back                 |
//! | `assign`   | unchanged     | a person of this store who reviews leads |
//! | `note`     | unchanged     | words                                   |
//!
//! Every action is a `lead-reviewed` ledger entry (actor, state before and
//! after, reason) written in the same transaction as the new state, which
//! `meta` keeps under `review/<model>/<subject>`. The person's words (a
//! note, an `other` reason) may name people and the chain is forever, so
//! they sit beside the entry and can be redacted (`audit redact`).
//!
//! What the console shows combines both ([`Shown`]): a dismissed lead that a
//! later run produces again is **regressed** (a run other than the one the
//! person saw it in still finds it), a confirmed lead that runs no longer
//! produce is **rectified** (整改到位).

use crate::leads::{Lead, Status};
use crate::ledger::{self, Draft, Entry, Review};
use crate::users::{self, Action};
use crate::{Error, Result, Store};
use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

const PREFIX: &str = "review/";

/// The longest note or reason a person may write, in bytes.
pub const MAX_TEXT: usize = 4000;

/// The longest name of a body a lead is transferred to, in characters.
pub const MAX_TARGET: usize = 100;

/// What people decided about a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// No decision yet (待研判).
    #[default]
    Pending,
    /// Confirmed as a case (已成案).
    Confirmed,
    /// Dismissed with a reason (已排除).
    Dismissed,
    /// Transferred to another body (已移送).
    Transferred,
}

impl State {
    pub const ALL: [State; 4] = [
        State::Pending,
        State::Confirmed,
        State::Dismissed,
        State::Transferred,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Confirmed => "confirmed",
            State::Dismissed => "dismissed",
            State::Transferred => "transferred",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            State::Pending => "待研判",
            State::Confirmed => "已成案",
            State::Dismissed => "已排除",
            State::Transferred => "已移送",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Why a lead was dismissed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// 误报: the model was wrong about it.
    FalsePositive,
    /// 重复: another lead covers it.
    Duplicate,
    /// 不属管辖: not this unit's to handle.
    OutsideJurisdiction,
    /// 其他: the person says why.
    Other,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::FalsePositive,
        Reason::Duplicate,
        Reason::OutsideJurisdiction,
        Reason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::FalsePositive => "false-positive",
            Reason::Duplicate => "duplicate",
            Reason::OutsideJurisdiction => "outside-jurisdiction",
            Reason::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Reason::FalsePositive => "误报",
            Reason::Duplicate => "重复线索",
            Reason::OutsideJurisdiction => "不属本院管辖",
            Reason::Other => "其他",
        }
    }

    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// One action on a lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    Confirm,
    Dismiss {
        reason: Reason,
        text: Option<String>,
    },
    Transfer {
        to: String,
    },
    Reopen,
    Assign {
        to: String,
    },
    Note {
        text: String,
    },
}

impl Act {
    pub fn as_str(&self) -> &'static str {
        match self {
            Act::Confirm => "confirm",
            Act::Dismiss { .. } => "dismiss",
            Act::Transfer { .. } => "transfer",
            Act::Reopen => "reopen",
            Act::Assign { .. } => "assign",
            Act::Note { .. } => "note",
        }
    }

    pub fn label(&self) -> &'static str {
        action_label(self.as_str())
    }
}

/// The Chinese name of an action as entries spell it.
pub fn action_label(action: &str) -> &'static str {
    match action {
        "confirm" => "确认成案",
        "dismiss" => "排除",
        "transfer" => "移送",
        "reopen" => "重新研判",
        "assign" => "指派",
        "note" => "备注",
        _ => "其他操作",
    }
}

/// A lead's review, as `meta` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Record {
    pub state: State,
    /// The dismissal's reason, while dismissed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Who reviews the lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// The body it went to, while transferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferred_to: Option<String>,
    /// The run whose leads the last decision was taken on.
    pub seen_in_run: String,
    /// Who took the last action, and when.
    pub by: String,
    pub at: String,
    /// Notes written so far.
    #[serde(default)]
    pub notes: u32,
}

/// What the console shows for a lead: the review state, or what later
/// runs made of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shown {
    Pending,
    Confirmed,
    Dismissed,
    Transferred,
    /// Dismissed, and a later run produced it again.
    Regressed,
    /// Confirmed, and runs no longer produce it.
    Rectified,
}

impl Shown {
    pub const ALL: [Shown; 6] = [
        Shown::Pending,
        Shown::Confirmed,
        Shown::Dismissed,
        Shown::Transferred,
        Shown::Regressed,
        Shown::Rectified,
    ];

    pub fn of(record: Option<&Record>, lead: &Lead) -> Shown {
        Shown::given(record, lead.status, &lead.last_run)
    }

    /// [`Shown::of`] a lead whose run status is `status` and whose last
    /// producing run is `last_run`.
    pub fn given(record: Option<&Record>, status: Status, last_run: &str) -> Shown {
        let Some(r) = record else {
            return Shown::Pending;
        };
        match r.state {
            State::Dismissed if status != Status::Resolved && last_run != r.seen_in_run => {
                Shown::Regressed
            }
            State::Confirmed if status == Status::Resolved => Shown::Rectified,
            State::Pending => Shown::Pending,
            State::Confirmed => Shown::Confirmed,
            State::Dismissed => Shown::Dismissed,
            State::Transferred => Shown::Transferred,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Shown::Pending => "pending",
            Shown::Confirmed => "confirmed",
            Shown::Dismissed => "dismissed",
            Shown::Transferred => "transferred",
            Shown::Regressed => "regressed",
            Shown::Rectified => "rectified",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Shown::Pending => "待研判",
            Shown::Confirmed => "已成案",
            Shown::Dismissed => "已排除",
            Shown::Transferred => "已移送",
            Shown::Regressed => "排除后再现",
            Shown::Rectified => "已整改",
        }
    }

    pub fn parse(text: &str) -> Option<Shown> {
        Shown::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

fn key(model: &str, subject: &str) -> String {
    format!("{PREFIX}{model}/{subject}")
}

fn unreadable(key: &str, e: serde_json::Error) -> Error {
    Error::Other(format!("meta `{key}` (a lead's review) is unreadable: {e}"))
}

/// The review of one lead, if anyone acted on it.
pub fn get(store: &Store, model: &str, subject: &str) -> Result<Option<Record>> {
    let key = key(model, subject);
    match store.meta.get(&key)? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| unreadable(&key, e)),
    }
}

/// Every review, by model, then subject.
pub fn all(store: &Store) -> Result<HashMap<String, HashMap<String, Record>>> {
    let mut out: HashMap<String, HashMap<String, Record>> = HashMap::new();
    for item in store.meta.scan_prefix(PREFIX) {
        let (k, raw) = item?;
        let k = String::from_utf8_lossy(&k).into_owned();
        let Some((model, subject)) = k[PREFIX.len()..].split_once('/') else {
            continue;
        };
        let record: Record = serde_json::from_slice(&raw).map_err(|e| unreadable(&k, e))?;
        out.entry(model.to_string())
            .or_default()
            .insert(subject.to_string(), record);
    }
    Ok(out)
}

/// Why an action cannot be taken: shown to the person as it is.
fn refuse(message: impl Into<String>) -> Error {
    Error::Refused(message.into())
}

/// The words of an action, checked: trimmed, not empty, not too long.
fn words(text: &str, what: &str) -> Result<String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(refuse(format!("{what}不能为空")));
    }
    if t.len() > MAX_TEXT {
        return Err(refuse(format!("{what}过长（最多 {MAX_TEXT} 字节）")));
    }
    Ok(t.to_string())
}

/// The record after `act` on `before`, with the free text that goes
/// beside its entry; or why the action cannot be taken.
fn next(
    store: &Store,
    before: &Record,
    act: &Act,
    lead: &Lead,
) -> Result<(Record, Option<String>)> {
    let mut after = Record {
        seen_in_run: lead.last_run.clone(),
        ..before.clone()
    };
    let mut text = None;
    let decided = |after: &mut Record, state: State| {
        if before.state == state {
            return Err(refuse(format!("该线索已是“{}”", state.label())));
        }
        after.state = state;
        after.reason = None;
        after.transferred_to = None;
        Ok(())
    };
    match act {
        Act::Confirm => decided(&mut after, State::Confirmed)?,
        Act::Dismiss { reason, text: t } => {
            decided(&mut after, State::Dismissed)?;
            after.reason = Some(*reason);
            text = match (reason, t.as_deref().map(str::trim)) {
                (Reason::Other, None | Some("")) => {
                    return Err(refuse("排除原因为“其他”时须写明理由"));
                }
                (_, None | Some("")) => None,
                (_, Some(t)) => Some(words(t, "理由")?),
            };
        }
        Act::Transfer { to } => {
            let to = to.trim();
            if to.is_empty() || to.chars().count() > MAX_TARGET {
                return Err(refuse(format!(
                    "移送须写明接收单位（1 至 {MAX_TARGET} 个字）"
                )));
            }
            decided(&mut after, State::Transferred)?;
            after.transferred_to = Some(to.to_string());
        }
        Act::Reopen => {
            if before.state == State::Pending {
                return Err(refuse("该线索尚未研判，无需重新研判"));
            }
            after.state = State::Pending;
            after.reason = None;
            after.transferred_to = None;
        }
        Act::Assign { to } => {
            let person = users::get(store, to)?
                .filter(|u| u.may(Action::ReviewLeads))
                .ok_or_else(|| refuse(format!("“{to}”不是可以研判线索的用户")))?;
            if before.assignee.as_deref() == Some(person.name.as_str()) {
                return Err(refuse(format!("该线索已指派给“{}”", person.name)));
            }
            after.assignee = Some(person.name);
        }
        Act::Note { text: t } => {
            text = Some(words(t, "备注")?);
            after.notes += 1;
        }
    }
    Ok((after, text))
}

/// Takes `act` on `lead` as `operator`: a `lead-reviewed` entry and the new
/// review state, in one transaction. Refused (with a message for the
/// person) when the action makes no sense in the lead's state.
pub fn act(store: &Store, unit: &str, operator: &str, lead: &Lead, act: &Act) -> Result<Entry> {
    let key = key(&lead.model, &lead.subject);
    for _ in 0..8 {
        let raw = store.meta.get(&key)?;
        let before: Record = match &raw {
            None => Record::default(),
            Some(raw) => serde_json::from_slice(raw).map_err(|e| unreadable(&key, e))?,
        };
        let (mut after, text) = next(store, &before, act, lead)?;
        let review = Review {
            model: lead.model.clone(),
            subject: lead.subject.clone(),
            action: act.as_str().to_string(),
            from: before.state.as_str().to_string(),
            to: after.state.as_str().to_string(),
            reason: after
                .reason
                .filter(|_| matches!(act, Act::Dismiss { .. }))
                .map(|r| r.as_str().to_string()),
            target: match act {
                Act::Assign { .. } => after.assignee.clone(),
                Act::Transfer { .. } => after.transferred_to.clone(),
                _ => None,
            },
            seen_in_run: lead.last_run.clone(),
            text_sha256: None,
            text_len: None,
        };
        after.by = operator.to_string();
        after.at = crate::time::now_text();
        let draft = Draft::review(unit.to_string(), operator.to_string(), review, text);
        let stale = AtomicBool::new(false);
        let bytes = serde_json::to_vec(&after).expect("a review serializes");
        let result = ledger::append_with(store, &draft, |meta| {
            if meta.get(&key)? != raw {
                stale.store(true, Ordering::Relaxed);
                return Err(ConflictableTransactionError::Abort(Error::Other(
                    "the lead's review changed meanwhile".into(),
                )));
            }
            meta.insert(key.as_bytes(), bytes.clone())?;
            Ok(())
        });
        match result {
            Ok(entry) => return Ok(entry),
            Err(_) if stale.load(Ordering::Relaxed) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Other(format!(
        "the review of lead {} of {} kept changing; try again",
        lead.subject, lead.model
    )))
}

/// One action on a lead, as its page lists them (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub seq: u64,
    pub at: String,
    pub by: String,
    pub action: String,
    pub from: String,
    pub to: String,
    pub reason: Option<String>,
    pub target: Option<String>,
    pub seen_in_run: String,
    /// The person's words, unless redacted since.
    pub text: Option<String>,
    pub redacted: bool,
}

/// Every action taken on one lead, from the ledger, oldest first.
pub fn history(store: &Store, model: &str, subject: &str) -> Result<Vec<Step>> {
    let mut out = Vec::new();
    // Entries are scanned whole; one that names no review is skipped
    // without being parsed.
    let needle = b"\"lead-reviewed\"";
    for item in ledger::entries(store, 1) {
        let (seq, bytes) = item?;
        if memchr::memmem::find(&bytes, needle).is_none() {
            continue;
        }
        let Ok(entry) = serde_json::from_slice::<ledger::view::EntryView>(&bytes) else {
            continue;
        };
        let Some(r) = entry.review else { continue };
        if r.model != model || r.subject != subject {
            continue;
        }
        let (text, redacted) = match r.text_sha256 {
            None => (None, false),
            Some(_) => match ledger::aside::read(store, seq)? {
                Some(Ok(a)) => (Some(a.text), false),
                _ => (None, true),
            },
        };
        out.push(Step {
            seq,
            at: entry.at,
            by: entry.operator,
            action: r.action,
            from: r.from,
            to: r.to,
            reason: r.reason,
            target: r.target,
            seen_in_run: r.seen_in_run,
            text,
            redacted,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::Role;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        (dir, store)
    }

    fn lead(status: Status, last_run: &str) -> Lead {
        Lead {
            model: "m".into(),
            model_version: "1.0.0".into(),
            subject: "91110000MA01/X".into(),
            subject_personal: false,
            title: "t".into(),
            amount: Some("1.00".into()),
            evidence: Vec::new(),
            status,
            first_run: "r1".into(),
            last_run: last_run.into(),
            resolved_by: None,
            updated_at: "2026-12-01T09:00:00.000+08:00".into(),
        }
    }

    fn refused(e: Error) -> String {
        match e {
            Error::Refused(m) => m,
            e => panic!("not a refusal: {e}"),
        }
    }

    #[test]
    fn each_action_moves_the_state_on_the_record_and_nonsense_is_refused() {
        let (_d, s) = store();
        let l = lead(Status::New, "r1");
        let e = act(&s, "unit", "李明", &l, &Act::Confirm).unwrap();
        let r = e.review.unwrap();
        assert_eq!(
            (r.action.as_str(), r.from.as_str(), r.to.as_str()),
            ("confirm", "pending", "confirmed")
        );
        assert_eq!(e.operator, "李明");
        assert_eq!(
            get(&s, "m", &l.subject).unwrap().unwrap().state,
            State::Confirmed
        );
        assert!(
            refused(act(&s, "unit", "李明", &l, &Act::Confirm).unwrap_err()).contains("已成案")
        );

        let other = Act::Dismiss {
            reason: Reason::Other,
            text: None,
        };
        assert!(refused(act(&s, "unit", "李明", &l, &other).unwrap_err()).contains("其他"));
        let dismiss = Act::Dismiss {
            reason: Reason::Duplicate,
            text: None,
        };
        let e = act(&s, "unit", "李明", &l, &dismiss).unwrap();
        assert_eq!(
            e.review.as_ref().unwrap().reason.as_deref(),
            Some("duplicate")
        );
        assert_eq!(e.review.unwrap().from, "confirmed");

        assert!(refused(
            act(&s, "unit", "李明", &l, &Act::Transfer { to: " ".into() }).unwrap_err()
        )
        .contains("接收单位"));
        act(
            &s,
            "unit",
            "李明",
            &l,
            &Act::Transfer {
                to: "区市场监管局".into(),
            },
        )
        .unwrap();
        let r = get(&s, "m", &l.subject).unwrap().unwrap();
        assert_eq!(
            (r.state, r.transferred_to.as_deref(), r.reason),
            (State::Transferred, Some("区市场监管局"), None)
        );
        act(&s, "unit", "李明", &l, &Act::Reopen).unwrap();
        assert!(
            refused(act(&s, "unit", "李明", &l, &Act::Reopen).unwrap_err()).contains("尚未研判")
        );
        assert!(refused(
            act(&s, "unit", "李明", &l, &Act::Note { text: "  ".into() }).unwrap_err()
        )
        .contains("备注"));
        let long = "字".repeat(MAX_TEXT);
        assert!(
            refused(act(&s, "unit", "李明", &l, &Act::Note { text: long }).unwrap_err())
                .contains("过长")
        );
    }

    #[test]
    fn only_people_who_review_leads_can_be_assigned() {
        let (_d, s) = store();
        let password = "correct horse battery";
        crate::users::add(&s, "张三", Role::Reviewer, password, crate::time::now()).unwrap();
        crate::users::add(&s, "审计员", Role::Auditor, password, crate::time::now()).unwrap();
        let l = lead(Status::New, "r1");
        for nobody in ["审计员", "无此人"] {
            let e = act(&s, "u", "李明", &l, &Act::Assign { to: nobody.into() }).unwrap_err();
            assert!(refused(e).contains(nobody));
        }
        let e = act(
            &s,
            "u",
            "李明",
            &l,
            &Act::Assign {
                to: "张三".into()
            },
        )
        .unwrap();
        assert_eq!(e.review.unwrap().target.as_deref(), Some("张三"));
        let r = get(&s, "m", &l.subject).unwrap().unwrap();
        assert_eq!(
            (r.state, r.assignee.as_deref()),
            (State::Pending, Some("张三"))
        );
        crate::users::disable(&s, "张三").unwrap();
        let again = act(
            &s,
            "u",
            "李明",
            &l,
            &Act::Assign {
                to: "张三".into()
            },
        );
        assert!(
            matches!(again, Err(Error::Refused(_))),
            "a disabled person reviews nothing"
        );
    }

    #[test]
    fn a_persons_words_stay_beside_the_entry_and_can_be_redacted() {
        let (_d, s) = store();
        let l = lead(Status::Open, "r1");
        let words = "经核实，张三（110105194912310021）已补缴";
        let e = act(&s, "u", "李明", &l, &Act::Note { text: words.into() }).unwrap();
        let stored = s.ledger.get(e.seq.to_be_bytes()).unwrap().unwrap();
        let stored = String::from_utf8(stored.to_vec()).unwrap();
        assert!(!stored.contains("110105194912310021"), "{stored}");
        assert!(stored.contains("text_sha256"), "{stored}");
        let steps = history(&s, "m", &l.subject).unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].text.as_deref(), Some(words));
        assert!(crate::audit::verify::local(&s).unwrap().problem.is_none());

        ledger::aside::redact(&s, e.seq, "u".into(), "审计员".into(), "含身份证号").unwrap();
        let steps = history(&s, "m", &l.subject).unwrap();
        assert_eq!((steps[0].text.as_deref(), steps[0].redacted), (None, true));
        assert!(crate::audit::verify::local(&s).unwrap().problem.is_none());
    }

    #[test]
    fn words_removed_around_the_ledger_are_found_by_verify() {
        let (_d, s) = store();
        let l = lead(Status::Open, "r1");
        let e = act(
            &s,
            "u",
            "李明",
            &l,
            &Act::Note {
                text: "备注".into(),
            },
        )
        .unwrap();
        s.ledger_text.remove(e.seq.to_be_bytes()).unwrap();
        let v = crate::audit::verify::local(&s).unwrap();
        assert_eq!(v.problem.map(|p| p.check), Some("text"));
    }

    #[test]
    fn a_dismissed_lead_produced_again_is_regressed_and_a_confirmed_one_gone_is_rectified() {
        let (_d, s) = store();
        let seen = lead(Status::New, "r1");
        let dismiss = Act::Dismiss {
            reason: Reason::FalsePositive,
            text: None,
        };
        act(&s, "u", "李明", &seen, &dismiss).unwrap();
        let r = get(&s, "m", &seen.subject).unwrap();
        assert_eq!(Shown::of(r.as_ref(), &seen), Shown::Dismissed);
        assert_eq!(
            Shown::of(r.as_ref(), &lead(Status::Open, "r2")),
            Shown::Regressed
        );
        assert_eq!(
            Shown::of(r.as_ref(), &lead(Status::Resolved, "r1")),
            Shown::Dismissed
        );

        act(&s, "u", "李明", &lead(Status::Open, "r2"), &Act::Confirm).unwrap();
        let r = get(&s, "m", &seen.subject).unwrap();
        assert_eq!(
            Shown::of(r.as_ref(), &lead(Status::Open, "r3")),
            Shown::Confirmed
        );
        assert_eq!(
            Shown::of(r.as_ref(), &lead(Status::Resolved, "r2")),
            Shown::Rectified
        );
        assert_eq!(Shown::of(None, &seen), Shown::Pending);
    }

    #[test]
    fn reviews_of_subjects_with_slashes_are_listed_under_their_model() {
        let (_d, s) = store();
        let mut a = lead(Status::New, "r1");
        a.model = "m".into();
        let mut b = a.clone();
        b.model = "m-2".into();
        b.subject = "x/y/z".into();
        act(&s, "u", "p", &a, &Act::Confirm).unwrap();
        act(&s, "u", "p", &b, &Act::Confirm).unwrap();
        let all = all(&s).unwrap();
        assert!(all["m"].contains_key(&a.subject));
        assert!(all["m-2"].contains_key("x/y/z"));
        assert_eq!(all.values().map(HashMap::len).sum::<usize>(), 2);
    }
}
