//! The browser console over HTTP, served by the real `jiandu serve --http`
//! on a temporary store: logging in, the leads list and its JSON twin,
//! actions on leads and their ledger entries, what later runs make of a
//! decision, the export, and what the console refuses.

use crate::common;

use common::console::{
    id_number, ok, run_model, store_with_leads, Served, ADMIN, AUDITOR, CITIES, GOOD_LEADS,
    PASSWORD, REVIEWER, REVIEWER2,
};
use common::http::{encode, input_value, unescape, Client, Response};
use common::{jiandu, ledger, stderr};
use serde_json::Value;
use std::path::Path;

/// What the console tells anyone whose login is refused.
const REFUSED: &str = "用户名或密码错误，或该账号暂时无法登录；如持续出现，请联系管理员";

/// The `printer` lead's subject when its parameters do not say.
const S1: &str = "S1";

/// A store with leads and people, and the console serving it.
fn served() -> (tempfile::TempDir, Served) {
    served_with(&[])
}

/// As [`served`], the `printer` lead made with `printer` parameters.
fn served_with(printer: &[&str]) -> (tempfile::TempDir, Served) {
    let store = store_with_leads(printer);
    let server = Served::start(store.path());
    (store, server)
}

fn entries_of(store: &Path, kind: &str) -> Vec<Value> {
    ledger(store)
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn lead_href(model: &str, subject: &str) -> String {
    format!("/lead?model={}&subject={}", encode(model), encode(subject))
}

/// A lead's page as JSON.
fn lead_json(c: &mut Client, model: &str, subject: &str) -> Value {
    let r = c.get(&format!(
        "/lead.json?model={}&subject={}",
        encode(model),
        encode(subject)
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The list's JSON twin for `query`.
fn list_json(c: &mut Client, query: &str) -> Value {
    let r = c.get(&format!("/leads.json?{query}"));
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    r.json()
}

/// The stored subjects (`subject_key`) of `model`'s leads, every page.
fn subjects(c: &mut Client, model: &str) -> Vec<String> {
    let mut out = Vec::new();
    for page in 1.. {
        let d = list_json(c, &format!("model={model}&page={page}"));
        for row in d["rows"].as_array().unwrap() {
            out.push(row["subject_key"].as_str().unwrap().to_string());
        }
        if page >= d["pages"].as_u64().unwrap() as usize {
            break;
        }
    }
    out
}

/// One action on one lead, as the lead page's forms post it.
fn act(c: &mut Client, model: &str, subject: &str, fields: &[(&str, &str)]) -> Response {
    let csrf = c.csrf();
    let mut all = vec![
        ("csrf", csrf.as_str()),
        ("model", model),
        ("subject", subject),
    ];
    all.extend_from_slice(fields);
    c.post("/lead/act", &all)
}

/// As [`act`], failing the test unless the console took the action.
fn act_ok(c: &mut Client, model: &str, subject: &str, fields: &[(&str, &str)]) {
    let r = act(c, model, subject, fields);
    assert_eq!(r.status, 303, "{fields:?}: {}", r.text());
    assert_eq!(r.location(), Some(lead_href(model, subject).as_str()));
}

/// The facet `name` of a list's JSON twin: value → count.
fn facet(d: &Value, name: &str) -> Vec<(String, u64)> {
    d["facets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no facet {name}: {d:#}"))["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_string(),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The text that follows `open` (an opening tag, or any markup just
/// before the text) in `html`, up to the next tag, with escapes decoded.
fn element_text(html: &str, open: &str) -> String {
    let at = html
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in {html}"))
        + open.len();
    let end = html[at..].find('<').map_or(html.len(), |e| at + e);
    unescape(&html[at..end])
}

/// The texts of the lead links of a list page, in order.
fn linked_subjects(html: &str) -> Vec<String> {
    html.split("class=\"lead-link\">")
        .skip(1)
        .map(|s| s[..s.find("</a>").unwrap()].to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Logging in

#[test]
fn wrong_passwords_and_unknown_names_get_the_same_refusal_and_five_lock_the_account() {
    let (store, server) = served();
    let mut c = server.client();
    let unknown = c.try_login("nobody", PASSWORD);
    assert_eq!(unknown.status, 401);
    assert!(unknown.text().contains(REFUSED), "{}", unknown.text());
    assert!(!c.cookies.contains_key("jiandu_session"));
    for _ in 0..5 {
        let r = c.try_login(REVIEWER, "not the password at all");
        assert_eq!(r.status, 401);
        assert!(r.text().contains(REFUSED), "{}", r.text());
    }
    // Locked: the right password is refused now, in the same words.
    let locked = c.try_login(REVIEWER, PASSWORD);
    assert_eq!(locked.status, 401);
    assert!(locked.text().contains(REFUSED), "{}", locked.text());
    assert!(!c.cookies.contains_key("jiandu_session"));
    // Someone else still logs in.
    c.login(REVIEWER2, PASSWORD);

    let refused = entries_of(store.path(), "login-refused");
    let seen: Vec<(String, Option<u64>, bool)> = refused
        .iter()
        .map(|e| {
            let l = &e["login"];
            (
                l["refusal"].as_str().unwrap().to_string(),
                l["failures"].as_u64(),
                l["locked_until"].is_string(),
            )
        })
        .collect();
    let wrong = |n| ("wrong-password".to_string(), Some(n), n == 5);
    assert_eq!(
        seen,
        [
            ("unknown-user".to_string(), None, false),
            wrong(1),
            wrong(2),
            wrong(3),
            wrong(4),
            wrong(5),
            ("locked".to_string(), None, true),
        ]
    );
    assert_eq!(refused[0]["login"]["name"], "nobody");
    assert!(refused.iter().all(|e| e["login"]["from"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:")));
    let good = entries_of(store.path(), "login-succeeded");
    assert_eq!(good.len(), 1, "{good:#?}");
    assert_eq!(good[0]["login"]["name"], REVIEWER2);
    // No entry holds a password, right or wrong.
    let all = serde_json::to_string(&ledger(store.path())).unwrap();
    assert!(!all.contains("not the password") && !all.contains("correct horse"));
}

#[test]
fn a_session_id_planted_before_login_is_not_taken_over() {
    let (_store, server) = served();
    let planted = "ab".repeat(32);
    let mut c = server.client();
    c.cookies.insert("jiandu_session".into(), planted.clone());
    let r = c.get("/leads");
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), Some("/login?next=%2Fleads"));
    assert_eq!(c.get("/leads.json").status, 401);

    c.login(REVIEWER, PASSWORD);
    let issued = c.cookies["jiandu_session"].clone();
    assert_ne!(issued, planted);
    assert_eq!(issued.len(), 64);
    assert_eq!(c.get("/leads.json").status, 200);
    // The planted id is still nobody's session.
    let mut attacker = server.client();
    attacker.cookies.insert("jiandu_session".into(), planted);
    assert_eq!(attacker.get("/leads.json").status, 401);
}

#[test]
fn a_logged_out_session_cannot_be_used_again() {
    let (store, server) = served();
    let mut c = server.login(REVIEWER);
    let before = c.clone();
    let csrf = c.csrf();
    let r = c.post("/logout", &[("csrf", &csrf)]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.location(), Some("/login"));
    assert!(
        !c.cookies.contains_key("jiandu_session"),
        "the cookie is cleared"
    );

    // The old cookie and token, replayed.
    let mut replay = before;
    assert_eq!(replay.get("/leads.json").status, 401);
    let page = replay.get("/leads");
    assert_eq!(page.status, 303);
    assert!(page.location().unwrap().starts_with("/login"));
    let r = replay.post(
        "/lead/act",
        &[
            ("csrf", &csrf),
            ("model", "printer"),
            ("subject", S1),
            ("action", "confirm"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(r.location().unwrap().starts_with("/login?"));
    assert!(entries_of(store.path(), "lead-reviewed").is_empty());
}

// ---------------------------------------------------------------------------
// The list

#[test]
fn the_leads_list_and_its_json_twin_show_the_same_leads() {
    let (_store, server) = served();
    let mut c = server.login(REVIEWER);
    let html = c.get("/leads");
    assert_eq!(html.status, 200);
    assert!(html
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let d = c.get("/leads.json").json();
    assert_eq!(c.get("/leads?format=json").json(), d);
    assert_eq!(d["total"], GOOD_LEADS + 1);
    assert_eq!(
        (d["page"].as_u64(), d["pages"].as_u64()),
        (Some(1), Some(2))
    );
    let rows = d["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    let shown: Vec<String> = rows
        .iter()
        .map(|r| r["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(linked_subjects(&html.text()), shown);
    let html = html.text();
    assert!(html.contains(&format!("<strong id=\"total\">{}</strong>", GOOD_LEADS + 1)));
    for r in rows {
        assert!(html.contains(r["title"].as_str().unwrap()), "{r:#}");
        assert_eq!(r["review"], "pending");
    }
    // Personal subjects are masked: no ID number in either.
    for i in 0..GOOD_LEADS + 3 {
        assert!(!html.contains(&id_number(i)));
        assert!(!d.to_string().contains(&id_number(i)));
    }
}

#[test]
fn facets_search_and_paging_narrow_the_list() {
    let (_store, server) = served_with(&["evidence_name=region", "evidence_value=东城区"]);
    let mut c = server.login(REVIEWER);
    let all = list_json(&mut c, "");
    assert_eq!(
        facet(&all, "model"),
        [
            ("good".to_string(), GOOD_LEADS as u64),
            ("printer".into(), 1)
        ]
    );
    assert_eq!(facet(&all, "region"), [("东城区".to_string(), 1)]);
    assert_eq!(
        facet(&all, "review"),
        [("pending".to_string(), GOOD_LEADS as u64 + 1)]
    );

    let printer = list_json(&mut c, "model=printer");
    assert_eq!(printer["total"], 1);
    assert_eq!(printer["rows"][0]["subject"], S1);
    let region = list_json(&mut c, &format!("region={}", encode("东城区")));
    assert_eq!(region["total"], 1);
    assert_eq!(region["rows"][0]["region"], "东城区");

    // Words match a lead's text; personal values are not searched.
    let city = CITIES[2];
    let found = list_json(&mut c, &format!("q={}", encode(city)));
    assert_eq!(found["total"], GOOD_LEADS / 3);
    assert!(found["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["title"].as_str().unwrap().starts_with(city)));
    let html = c.get(&format!("/leads?q={}", encode(city))).text();
    assert_eq!(linked_subjects(&html).len(), GOOD_LEADS / 3);
    assert_eq!(
        list_json(&mut c, &format!("q={}", encode("人1")))["total"],
        0
    );

    // Dates: nothing was updated before 2000, everything since.
    assert_eq!(list_json(&mut c, "to=2000-01-01")["total"], 0);
    assert_eq!(
        list_json(&mut c, "from=2000-01-01")["total"],
        GOOD_LEADS + 1
    );

    // Two pages, disjoint, together every lead; past the end is the last.
    let p1 = list_json(&mut c, "page=1");
    let p2 = list_json(&mut c, "page=2");
    assert_eq!(list_json(&mut c, "page=9"), p2);
    let keys = |d: &Value| -> Vec<String> {
        d["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["key"].as_str().unwrap().to_string())
            .collect()
    };
    let (k1, k2) = (keys(&p1), keys(&p2));
    assert_eq!((k1.len(), k2.len()), (50, GOOD_LEADS + 1 - 50));
    let mut every: Vec<String> = k1.iter().chain(&k2).cloned().collect();
    every.sort();
    every.dedup();
    assert_eq!(every.len(), GOOD_LEADS + 1);
    let html = c.get("/leads?page=2").text();
    assert!(html.contains("rel=\"prev\""));
    assert!(!html.contains("rel=\"next\""));

    // A facet once a decision is taken.
    act_ok(&mut c, "printer", S1, &[("action", "confirm")]);
    let d = list_json(&mut c, "review=confirmed");
    assert_eq!(d["total"], 1);
    assert_eq!(d["rows"][0]["key"], "printer/S1");
}

#[test]
fn the_export_is_a_workbook_with_chinese_headers_and_masked_values() {
    use calamine::Reader;
    let (_store, server) = served();
    let mut c = server.login(REVIEWER);
    let city = CITIES[0];
    let r = c.get(&format!("/leads.xlsx?model=good&q={}", encode(city)));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    assert!(r
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(&r.body[..4], b"PK\x03\x04", "a zip");
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(r.body.clone())).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    let header = &rows[0];
    for name in ["监督模型", "线索对象", "线索摘要"] {
        assert!(header.iter().any(|h| h == name), "{header:?}");
    }
    assert_eq!(rows.len() - 1, GOOD_LEADS / 3, "the list's query selects");
    let text = format!("{rows:?}");
    assert!(text.contains(city));
    for i in 0..GOOD_LEADS + 3 {
        assert!(!text.contains(&id_number(i)), "masked");
    }
}

// ---------------------------------------------------------------------------
// A lead and the actions on it

#[test]
fn the_lead_page_and_its_json_twin_show_one_lead() {
    let params = [
        "title=未按期缴纳",
        "evidence_name=gap",
        "evidence_value=1200.00",
    ];
    let (store, server) = served_with(&params);
    let mut c = server.login(REVIEWER);
    let d = lead_json(&mut c, "printer", S1);
    assert_eq!(d["title"], "未按期缴纳");
    assert_eq!(d["status"], "new");
    // Found again unchanged, by a run that keeps the snapshot file: the
    // page shows the lead open, not the status it was read with before.
    run_model(store.path(), "printer", &params);
    let d = lead_json(&mut c, "printer", S1);
    assert_eq!(d["status"], "open", "{d}");
    assert_eq!(d["title"], "未按期缴纳");
    assert_eq!(d["review"], "pending");
    assert_eq!(d["evidence"][0]["name"], "gap");
    assert_eq!(d["evidence"][0]["value"], "1200.00");
    let page = c.get(&lead_href("printer", S1));
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("<h2 id=\"lead-title\">未按期缴纳</h2>"),
        "{html}"
    );
    assert!(html.contains("<span class=\"badge pending\" id=\"review-state\">待研判</span>"));
    assert!(html.contains("1200.00"));
    assert_eq!(c.get(&lead_href("printer", "S9")).status, 404);
    assert_eq!(c.get("/lead?model=printer").status, 400);
}

#[test]
fn every_action_on_a_lead_is_a_ledger_entry_with_actor_states_and_reason() {
    let (store, server) = served();
    let mut c = server.login(REVIEWER);
    let reviewed = || entries_of(store.path(), "lead-reviewed");

    // A dismissal needs a reason, and `other` needs words.
    let r = act(&mut c, "printer", S1, &[("action", "dismiss")]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("排除须选择原因"), "{}", r.text());
    let r = act(
        &mut c,
        "printer",
        S1,
        &[("action", "dismiss"), ("reason", "other"), ("text", "  ")],
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("须写明理由"), "{}", r.text());
    assert!(reviewed().is_empty(), "a refused action writes nothing");
    assert_eq!(lead_json(&mut c, "printer", S1)["review"], "pending");

    act_ok(
        &mut c,
        "printer",
        S1,
        &[
            ("action", "dismiss"),
            ("reason", "other"),
            ("text", "企业已补缴"),
        ],
    );
    act_ok(&mut c, "printer", S1, &[("action", "confirm")]);
    let again = act(&mut c, "printer", S1, &[("action", "confirm")]);
    assert_eq!(again.status, 409, "{}", again.text());
    act_ok(
        &mut c,
        "printer",
        S1,
        &[("action", "transfer"), ("to", "区市场监管局")],
    );
    act_ok(
        &mut c,
        "printer",
        S1,
        &[("action", "assign"), ("to", REVIEWER2)],
    );
    let nobody = act(
        &mut c,
        "printer",
        S1,
        &[("action", "assign"), ("to", AUDITOR)],
    );
    assert_eq!(nobody.status, 409, "an auditor reviews no leads");
    let note = "已电话联系经办人张某 13800000000";
    act_ok(&mut c, "printer", S1, &[("action", "note"), ("text", note)]);

    let d = lead_json(&mut c, "printer", S1);
    assert_eq!(d["review"], "transferred");
    assert_eq!(d["transferred_to"], "区市场监管局");
    assert_eq!(d["assignee"], REVIEWER2);
    let steps: Vec<(&str, &str)> = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["action"].as_str().unwrap(), h["by"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("dismiss", REVIEWER),
            ("confirm", REVIEWER),
            ("transfer", REVIEWER),
            ("assign", REVIEWER),
            ("note", REVIEWER),
        ]
    );
    let html = c.get(&lead_href("printer", S1)).text();
    assert!(html.contains(note), "the note is shown on the lead's page");
    assert!(html.contains("企业已补缴"));

    let entries = reviewed();
    let seen: Vec<Value> = entries
        .iter()
        .map(|e| {
            let r = &e["review"];
            serde_json::json!([
                e["operator"],
                r["action"],
                r["from"],
                r["to"],
                r["reason"],
                r["target"]
            ])
        })
        .collect();
    assert_eq!(
        seen,
        [
            serde_json::json!([REVIEWER, "dismiss", "pending", "dismissed", "other", null]),
            serde_json::json!([REVIEWER, "confirm", "dismissed", "confirmed", null, null]),
            serde_json::json!([
                REVIEWER,
                "transfer",
                "confirmed",
                "transferred",
                null,
                "区市场监管局"
            ]),
            serde_json::json!([
                REVIEWER,
                "assign",
                "transferred",
                "transferred",
                null,
                REVIEWER2
            ]),
            serde_json::json!([REVIEWER, "note", "transferred", "transferred", null, null]),
        ]
    );
    for e in &entries {
        assert_eq!(e["review"]["model"], "printer");
        assert_eq!(e["review"]["subject"], S1);
    }
    // The note's words are beside its entry, not in it: the entry holds
    // their digest and length.
    let note_entry = &entries[4];
    assert_eq!(note_entry["review"]["text_len"], note.len());
    assert!(note_entry["review"]["text_sha256"].is_string());
    // `audit log` shows the words kept beside an entry as `model_text`,
    // apart from the entry as stored.
    assert_eq!(note_entry["model_text"]["text"], note);
    let mut stored = ledger(store.path());
    for e in &mut stored {
        e.as_object_mut().unwrap().remove("model_text");
    }
    let whole = serde_json::to_string(&stored).unwrap();
    assert!(!whole.contains("13800000000"), "{note_entry:#}");
    assert!(!whole.contains("企业已补缴"));
    // The lead's history reads them from beside the entry.
    let d = lead_json(&mut c, "printer", S1);
    let history = d["history"].as_array().unwrap();
    assert_eq!(history[4]["seq"], note_entry["seq"]);
    assert_eq!(history[4]["text"], note);
    assert_eq!(history[0]["text"], "企业已补缴");
    assert_eq!(history[1]["text"], Value::Null);
}

#[test]
fn a_bulk_action_does_the_leads_it_fits_and_lists_the_others_with_why() {
    let (store, server) = served();
    let mut c = server.login(REVIEWER);
    let good = subjects(&mut c, "good");
    act_ok(&mut c, "good", &good[0], &[("action", "confirm")]);
    let keys: Vec<String> = good[..3]
        .iter()
        .map(|s| format!("good/{s}"))
        .chain(["good/nobody".to_string(), "no-slash".to_string()])
        .collect();
    let csrf = c.csrf();
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("action", "confirm"),
        ("back", "/leads?model=good"),
    ];
    fields.extend(keys.iter().map(|k| ("key", k.as_str())));
    let r = c.post("/leads/act?format=json", &fields);
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json();
    assert_eq!(d["done"], serde_json::json!([keys[1], keys[2]]));
    let refused: Vec<&str> = d["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert_eq!(refused, [&keys[0], &keys[3], &keys[4]]);
    assert!(d["refused"][0][1].as_str().unwrap().contains("已成案"));
    assert_eq!(d["back"], "/leads?model=good");

    // The page says the same.
    let csrf = c.csrf();
    let r = c.post(
        "/leads/act",
        &[
            ("csrf", &csrf),
            ("action", "dismiss"),
            ("reason", "duplicate"),
            ("key", &keys[0]),
            ("key", &format!("good/{}", good[3])),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("完成 2 条"), "{}", r.text());

    // No key ticked: nothing to do.
    let csrf = c.csrf();
    let r = c.post("/leads/act", &[("csrf", &csrf), ("action", "confirm")]);
    assert_eq!(r.status, 400);

    let entries = entries_of(store.path(), "lead-reviewed");
    let seen: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["review"]["subject"].as_str().unwrap().to_string(),
                e["review"]["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let s = |i: usize, a: &str| (good[i].clone(), a.to_string());
    assert_eq!(
        seen,
        [
            s(0, "confirm"),
            s(1, "confirm"),
            s(2, "confirm"),
            s(0, "dismiss"),
            s(3, "dismiss"),
        ]
    );
    assert_eq!(list_json(&mut c, "review=confirmed&model=good")["total"], 2);
}

// ---------------------------------------------------------------------------
// What later runs make of a decision

#[test]
fn a_dismissed_lead_the_model_finds_again_shows_as_regressed() {
    let (store, server) = served();
    let mut c = server.login(REVIEWER);
    act_ok(
        &mut c,
        "printer",
        S1,
        &[("action", "dismiss"), ("reason", "false-positive")],
    );
    assert_eq!(lead_json(&mut c, "printer", S1)["review"], "dismissed");

    // The same run again (through the running server) still finds it.
    run_model(store.path(), "printer", &[]);
    let d = lead_json(&mut c, "printer", S1);
    assert_eq!(
        (d["status"].as_str(), d["review"].as_str()),
        (Some("open"), Some("regressed"))
    );
    let html = c.get(&lead_href("printer", S1)).text();
    assert!(
        html.contains("<span class=\"badge regressed\" id=\"review-state\">排除后再现</span>"),
        "{html}"
    );
    assert_eq!(list_json(&mut c, "review=regressed")["total"], 1);
}

#[test]
fn a_confirmed_lead_the_model_no_longer_finds_shows_as_rectified() {
    let (store, server) = served();
    let mut c = server.login(REVIEWER);
    act_ok(&mut c, "printer", S1, &[("action", "confirm")]);
    // A run that finds another subject: S1 is put right.
    run_model(store.path(), "printer", &["subject=S2"]);
    let d = lead_json(&mut c, "printer", S1);
    assert_eq!(
        (d["status"].as_str(), d["review"].as_str()),
        (Some("resolved"), Some("rectified"))
    );
    let html = c.get(&lead_href("printer", S1)).text();
    assert!(html.contains("id=\"review-state\">已整改</span>"), "{html}");
    assert_eq!(lead_json(&mut c, "printer", "S2")["review"], "pending");
}

// ---------------------------------------------------------------------------
// Security

#[test]
fn markup_a_model_puts_in_a_lead_is_shown_escaped() {
    let script = "<script>alert('xss')</script>";
    let img = "<img src=x onerror=alert(1)>";
    let title = format!("title={script}\"><b>bold</b>");
    let value = format!("evidence_value={img}");
    let (_store, server) = served_with(&[&title, "evidence_name=<i>n</i>", &value]);
    let mut c = server.login(REVIEWER);
    for target in [lead_href("printer", S1), "/leads?model=printer".to_string()] {
        let r = c.get(&target);
        assert_eq!(r.status, 200);
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let html = r.text();
        for raw in [script, img, "<b>bold</b>", "<i>n</i>"] {
            assert!(!html.contains(raw), "{target}: {raw} raw in {html}");
        }
        // Shown as the text it is.
        let title_cell = if target.starts_with("/lead?") {
            "<h2 id=\"lead-title\">"
        } else {
            "<td class=\"title\">"
        };
        assert_eq!(
            element_text(&html, title_cell),
            format!("{script}\"><b>bold</b>"),
            "{target}"
        );
        if target.starts_with("/lead?") {
            assert_eq!(element_text(&html, "<tr><td>"), "<i>n</i>");
            assert_eq!(element_text(&html, "</td><td>"), img);
        }
    }
    // The JSON twin carries the text as the model wrote it.
    let d = lead_json(&mut c, "printer", S1);
    assert_eq!(d["title"], format!("{script}\"><b>bold</b>"));
}

/// A confirm of the `printer` lead posted with `fields` and `headers`:
/// refused with 403, and nothing changed.
fn refused_as_forged(fields: &[(&str, &str)], headers: &[(&str, &str)]) {
    let (store, server) = served();
    let mut c = server.login(REVIEWER);
    let mut all = vec![("model", "printer"), ("subject", S1), ("action", "confirm")];
    all.extend_from_slice(fields);
    for target in ["/lead/act", "/leads/act"] {
        let mut all = all.clone();
        all.push(("key", "printer/S1"));
        let r = c.post_with(target, &all, headers);
        assert_eq!(r.status, 403, "{target}: {}", r.text());
        assert!(r.text().contains("CSRF"), "{}", r.text());
    }
    assert_eq!(lead_json(&mut c, "printer", S1)["review"], "pending");
    assert!(entries_of(store.path(), "lead-reviewed").is_empty());
    // The session still works for a real form.
    act_ok(&mut c, "printer", S1, &[("action", "confirm")]);
}

#[test]
fn a_form_without_the_csrf_token_is_refused_and_changes_nothing() {
    refused_as_forged(&[], &[]);
}

#[test]
fn a_form_with_a_wrong_csrf_token_is_refused_and_changes_nothing() {
    refused_as_forged(&[("csrf", &"0".repeat(64))], &[]);
}

#[test]
fn a_form_from_a_foreign_origin_is_refused_even_with_the_right_token() {
    let (store, server) = served();
    let mut c = server.login(REVIEWER);
    let csrf = c.csrf();
    let fields = [
        ("csrf", csrf.as_str()),
        ("model", "printer"),
        ("subject", S1),
        ("action", "confirm"),
    ];
    let own = format!("http://{}", server.addr);
    let lookalike = format!("http://{}.evil.example", server.addr);
    for (name, from) in [
        ("Origin", "http://evil.example"),
        ("Origin", lookalike.as_str()),
        // What a sandboxed frame of another site sends.
        ("Origin", "null"),
        ("Referer", "http://evil.example/page"),
    ] {
        let r = c.post_with("/lead/act", &fields, &[(name, from)]);
        assert_eq!(r.status, 403, "{name}: {from}: {}", r.text());
    }
    // A login form posted from elsewhere is refused too.
    let mut other = server.client();
    let page = other.get("/login");
    let token = input_value(&page.text(), "token").unwrap();
    let r = other.post_with(
        "/login",
        &[
            ("token", &token),
            ("name", REVIEWER),
            ("password", PASSWORD),
        ],
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(r.status, 403);
    assert!(!other.cookies.contains_key("jiandu_session"));

    assert_eq!(lead_json(&mut c, "printer", S1)["review"], "pending");
    assert!(entries_of(store.path(), "lead-reviewed").is_empty());
    // A browser names the console's origin on the console's own forms
    // only if the pages let it: `no-referrer` would make it send `null`.
    let page = c.get(&lead_href("printer", S1));
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    // From the console's own origin the same form goes through.
    let r = c.post_with("/lead/act", &fields, &[("Origin", &own)]);
    assert_eq!(r.status, 303, "{}", r.text());
}

#[test]
fn a_reviewer_cannot_reach_the_admin_and_audit_pages_nor_reveal() {
    let (store, server) = served();
    let mut c = server.login(REVIEWER);
    for page in [
        "/audit",
        "/runs",
        "/models",
        "/datasets",
        "/model?name=good",
    ] {
        assert_eq!(c.get(page).status, 403, "{page}");
        let json = c.get(&format!(
            "{page}{}format=json",
            if page.contains('?') { "&" } else { "?" }
        ));
        assert_eq!(json.status, 403, "{page} as JSON");
    }
    let csrf = c.csrf();
    let good = subjects(&mut c, "good");
    let r = c.post(
        "/lead/reveal",
        &[("csrf", &csrf), ("model", "good"), ("subject", &good[0])],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    for i in 0..GOOD_LEADS + 3 {
        assert!(!r.text().contains(&id_number(i)));
    }
    let r = c.post("/model/run", &[("csrf", &csrf), ("name", "good")]);
    assert_eq!(r.status, 403);
    assert!(entries_of(store.path(), "personal-data-revealed").is_empty());
    // What a reviewer's menu offers.
    let html = c.get("/leads").text();
    assert!(!html.contains("href=\"/audit\"") && !html.contains("href=\"/runs\""));
}

#[test]
fn an_auditor_cannot_reach_the_leads() {
    let (_store, server) = served();
    let mut c = server.login(AUDITOR);
    for page in [
        "/leads".to_string(),
        "/leads.json".to_string(),
        "/leads.xlsx".to_string(),
        lead_href("printer", S1),
    ] {
        assert_eq!(c.get(&page).status, 403, "{page}");
    }
    let csrf = c.csrf();
    let r = c.post(
        "/lead/act",
        &[
            ("csrf", &csrf),
            ("model", "printer"),
            ("subject", S1),
            ("action", "confirm"),
        ],
    );
    assert_eq!(r.status, 403);
    assert_eq!(c.get("/audit").status, 200);
    let home = c.get("/");
    assert_eq!(home.location(), Some("/audit"));
}

#[test]
fn an_admin_revealing_clear_values_writes_a_disclosure_entry_first() {
    let (store, server) = served();
    let mut c = server.login(ADMIN);
    let d = list_json(&mut c, "model=good&sort=subject&dir=asc");
    let row = &d["rows"][0];
    let subject = row["subject_key"].as_str().unwrap().to_string();
    let masked = c.get(&lead_href("good", &subject)).text();
    // The IDs the mask could stand for (region and check character).
    let shown = row["subject"].as_str().unwrap();
    let candidates: Vec<String> = (0..GOOD_LEADS + 3)
        .map(id_number)
        .filter(|id| id[..6] == shown[..6] && id[id.len() - 1..] == shown[shown.len() - 1..])
        .collect();
    assert!(!candidates.is_empty(), "{shown}");
    for id in &candidates {
        assert!(!masked.contains(id.as_str()));
    }
    assert!(masked.contains("id=\"reveal\""), "the admin is offered it");
    assert!(entries_of(store.path(), "personal-data-revealed").is_empty());

    let csrf = c.csrf();
    let r = c.post(
        "/lead/reveal",
        &[("csrf", &csrf), ("model", "good"), ("subject", &subject)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let html = r.text();
    assert!(html.contains("id=\"revealed\""), "{html}");
    let shown_ids: Vec<String> = (0..GOOD_LEADS + 3)
        .map(id_number)
        .filter(|id| html.contains(id.as_str()))
        .collect();
    assert_eq!(shown_ids.len(), 1, "one lead in clear: {shown_ids:?}");
    assert!(candidates.contains(&shown_ids[0]), "{shown_ids:?}");
    let entries = entries_of(store.path(), "personal-data-revealed");
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let e = &entries[0];
    assert_eq!(e["operator"], ADMIN);
    assert_eq!(e["disclosure"]["command"], "console lead");
    assert_eq!(e["disclosure"]["model"], "good");
    assert_eq!(e["disclosure"]["leads"], 1);
    // At least the subject, the ID number and the name.
    assert!(e["disclosure"]["values"].as_u64().unwrap() >= 3, "{e:#}");
}

#[test]
fn static_paths_that_leave_the_assets_are_not_found() {
    let (_store, server) = served();
    let mut c = server.client();
    let css = c.get("/assets/console.css");
    assert_eq!(css.status, 200);
    for path in [
        "/assets/../Cargo.toml",
        "/assets/%2e%2e%2fCargo.toml",
        "/assets/..%2fCargo.toml",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/assets/..%5cCargo.toml",
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("[package]"), "{path}");
    }
}

#[test]
fn the_console_refuses_a_non_loopback_address_without_http_unprotected() {
    let store = tempfile::tempdir().unwrap();
    let out = jiandu(store.path())
        .args(["serve", "--http", "0.0.0.0:0"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(!out.status.success(), "it refused");
    assert!(out.status.code().is_some(), "it exited by itself");
    let err = stderr(&out);
    assert!(
        err.contains("0.0.0.0:0") && err.contains("not loopback"),
        "{err}"
    );
    assert!(err.contains("--http-unprotected"), "{err}");
    assert!(
        !store.path().join("serve.sock").exists(),
        "nothing was served"
    );
}

#[test]
fn only_a_logged_in_person_sees_pages_and_the_login_goes_back_where_they_were() {
    let (_store, server) = served();
    let mut c = server.client();
    let target = lead_href("printer", S1);
    let r = c.get(&target);
    assert_eq!(r.status, 303);
    let login = r.location().unwrap().to_string();
    assert_eq!(login, format!("/login?next={}", encode(&target)));
    let page = c.get(&login);
    let token = input_value(&page.text(), "token").unwrap();
    let next = input_value(&page.text(), "next").unwrap();
    let r = c.post(
        "/login",
        &[
            ("token", &token),
            ("next", &next),
            ("name", REVIEWER),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.location(), Some(target.as_str()));
    let cookie = r
        .headers("set-cookie")
        .into_iter()
        .find(|s| s.starts_with("jiandu_session="))
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert_eq!(c.get(&target).status, 200);
}

#[test]
fn an_admin_rolls_a_dataset_back_on_the_record_and_a_reviewer_cannot() {
    let (store, server) = served();
    let files = tempfile::tempdir().unwrap();
    let csv = files.path().join("people-2.csv");
    std::fs::write(
        &csv,
        format!("id_number,name,city,age\n{},张三,北京,30\n", id_number(0)),
    )
    .unwrap();
    ok(jiandu(store.path())
        .args(["dataset", "ingest", "people"])
        .arg(&csv)
        .output()
        .unwrap());

    let mut reviewer = server.login(REVIEWER);
    let csrf = reviewer.csrf();
    let r = reviewer.post(
        "/dataset/rollback",
        &[("csrf", &csrf), ("name", "people"), ("to", "1")],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(entries_of(store.path(), "dataset-rolled-back").is_empty());

    let mut admin = server.login(ADMIN);
    assert!(admin.get("/datasets").text().contains("/dataset/rollback"));
    let csrf = admin.csrf();
    let r = admin.post(
        "/dataset/rollback?format=json",
        &[("csrf", &csrf), ("name", "people"), ("to", "1")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["from"].clone(), r.json()["to"].clone()),
        (2.into(), 1.into())
    );
    let rolled = entries_of(store.path(), "dataset-rolled-back");
    assert_eq!(rolled.len(), 1, "{rolled:#?}");
    assert_eq!(rolled[0]["operator"], ADMIN);
    let d = admin.get("/datasets.json").json();
    let people = d["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "people")
        .unwrap()
        .clone();
    assert_eq!(
        people["current"], 1,
        "version 1 is current again: {people:#}"
    );
    // A version that does not exist is refused, and nothing changes.
    let r = admin.post(
        "/dataset/rollback?format=json",
        &[("csrf", &csrf), ("name", "people"), ("to", "99")],
    );
    assert!(
        r.status == 409 || r.status == 400,
        "{} {}",
        r.status,
        r.text()
    );
    assert_eq!(entries_of(store.path(), "dataset-rolled-back").len(), 1);
}
