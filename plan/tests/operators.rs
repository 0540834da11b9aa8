//! Each operator, run through the executor on in-memory data.

mod common;
use common::*;
use jiandu_plan::exec::MemoryInput;
use jiandu_plan::{RunError, Value};

const PEOPLE: &str = "[[step]]\nname = \"people\"\nop = \"read\"\ndataset = \"people\"\n\n";
const VISITS: &str = "[[step]]\nname = \"visits\"\nop = \"read\"\ndataset = \"visits\"\n\n";

fn plan(parts: &[&str]) -> String {
    parts.concat()
}

fn emit(input: &str, subject: &str, evidence: &str) -> String {
    format!(
        "[[step]]\nname = \"out\"\nop = \"emit\"\ninput = \"{input}\"\nsubject = \"{subject}\"\nsubject_personal = true\ntitle = \"t\"\nevidence = {{ {evidence} }}\n"
    )
}

#[test]
fn semi_and_anti_joins_keep_or_drop_rows_by_partner() {
    let join = |kind: &str| {
        plan(&[
            PEOPLE,
            VISITS,
            &format!("[[step]]\nname = \"j\"\nop = \"join\"\nkind = \"{kind}\"\ninput = \"people\"\nwith = \"visits\"\non = \"person_id\"\n\n"),
            &emit("j", "person_id", "r = \"region\""),
        ])
    };
    assert_eq!(subjects(&run(&join("semi"))), ["p1", "p2"]);
    assert_eq!(subjects(&run(&join("anti"))), ["p3"]);
}

#[test]
fn inner_join_pairs_every_partner_and_left_join_keeps_the_lonely() {
    let inner = plan(&[
        PEOPLE,
        VISITS,
        "[[step]]\nname = \"j\"\nop = \"join\"\ninput = \"people\"\nwith = \"visits\"\non = \"person_id\"\n\n",
        &emit("j", "visit_id", "r = \"region\""),
    ]);
    assert_eq!(subjects(&run(&inner)), ["v1", "v2", "v3", "v4", "v5"]);
    let left = plan(&[
        PEOPLE,
        VISITS,
        "[[step]]\nname = \"n\"\nop = \"group\"\nby = \"person_id\"\naggregates = { visits = \"count()\" }\n\n",
        "[[step]]\nname = \"j\"\nop = \"join\"\nkind = \"left\"\ninput = \"people\"\nwith = \"n\"\non = \"person_id\"\n\n",
        &emit("j", "person_id", "n = \"coalesce(visits, 0)\", raw = \"visits\""),
    ]);
    let leads = run(&left);
    assert_eq!(subjects(&leads), ["p1", "p2", "p3"]);
    assert_eq!(ev(&leads[0], "n"), "4");
    assert_eq!(ev(&leads[2], "n"), "0");
    // A null shows as empty evidence.
    assert_eq!(ev(&leads[2], "raw"), "");
}

#[test]
fn streaming_group_computes_every_aggregate() {
    let p = plan(&[
        VISITS,
        "[[step]]\nname = \"g\"\nop = \"group\"\nby = \"person_id\"\n[step.aggregates]\nn = \"count()\"\ntotal = \"sum(amount)\"\nok_n = \"count(ok)\"\nsome_bad = \"any(!ok)\"\nall_ok = \"all(ok)\"\nfirst = \"min(seen_at)\"\nbiggest = \"max(amount)\"\nplaces = \"collect_distinct(place_id)\"\n\n",
        &emit("g", "person_id", "n = \"n\", total = \"total\", ok_n = \"ok_n\", some_bad = \"some_bad\", all_ok = \"all_ok\", first = \"first\", biggest = \"biggest\", places = \"places\""),
    ]);
    let leads = run(&p);
    assert_eq!(subjects(&leads), ["p1", "p2", "p4"]);
    let got: Vec<&str> = leads[0].evidence.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(
        got,
        [
            "4",
            "36",
            "3",
            "true",
            "false",
            "2024-12-01 09:10",
            "20",
            "A,B"
        ]
    );
    let got: Vec<&str> = leads[1].evidence.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(
        got,
        [
            "1",
            "30",
            "1",
            "false",
            "true",
            "2024-12-20 10:15",
            "30",
            "B"
        ]
    );
}

#[test]
fn group_on_keys_that_do_not_lead_the_order_still_groups_all_rows() {
    let p = plan(&[
        VISITS,
        "[[step]]\nname = \"g\"\nop = \"group\"\nby = \"place_id\"\naggregates = { n = \"count()\" }\n\n",
        &emit("g", "place_id", "n = \"n\""),
    ]);
    let leads = run(&p);
    assert_eq!(subjects(&leads), ["A", "B", "C"]);
    let counts: Vec<&str> = leads.iter().map(|l| ev(l, "n")).collect();
    assert_eq!(counts, ["3", "2", "1"]);
}

#[test]
fn rank_overall_gives_the_top_share_of_places() {
    let p = plan(&[
        VISITS,
        "[[step]]\nname = \"g\"\nop = \"group\"\nby = \"place_id\"\naggregates = { n = \"count()\" }\n\n",
        "[[step]]\nname = \"r\"\nop = \"rank\"\norder_by = \"n desc\"\nsize = \"places\"\n\n",
        "[[step]]\nname = \"top\"\nop = \"filter\"\nwhere = \"rank <= ceil(places * $share)\"\n\n",
        &emit("top", "place_id", "rank = \"rank\""),
    ]);
    // Three places, top 50 % rounds up to two.
    let leads = run(&p);
    assert_eq!(subjects(&leads), ["A", "B"]);
    assert_eq!(ev(&leads[1], "rank"), "2");
}

#[test]
fn rank_within_groups_shares_ranks_on_ties() {
    let p = plan(&[
        VISITS,
        "[[step]]\nname = \"b\"\nop = \"derive\"\nset = { big = \"amount >= 10 ? 1 : 0\" }\n\n",
        "[[step]]\nname = \"r\"\nop = \"rank\"\nby = \"person_id\"\norder_by = \"big desc\"\n\n",
        &emit("r", "visit_id", "rank = \"rank\""),
    ]);
    let leads = run(&p);
    let ranks: Vec<(&str, &str)> = leads
        .iter()
        .map(|l| (l.subject.as_str(), ev(l, "rank")))
        .collect();
    assert_eq!(
        ranks,
        [
            ("v1", "1"),
            ("v2", "3"),
            ("v3", "1"),
            ("v4", "3"),
            ("v5", "1"),
            ("v6", "1")
        ]
    );
}

#[test]
fn the_busiest_hour_of_each_place() {
    let p = plan(&[
        VISITS,
        "[[step]]\nname = \"h\"\nop = \"derive\"\nset = { hour = \"hour(seen_at)\" }\n\n",
        "[[step]]\nname = \"g\"\nop = \"group\"\nby = [\"place_id\", \"hour\"]\naggregates = { n = \"count()\" }\n\n",
        "[[step]]\nname = \"r\"\nop = \"rank\"\nby = \"place_id\"\norder_by = [\"n desc\", \"hour\"]\n\n",
        "[[step]]\nname = \"top\"\nop = \"filter\"\nwhere = \"rank == 1\"\n\n",
        &emit("top", "place_id", "hour = \"hour\""),
    ]);
    let leads = run(&p);
    let hours: Vec<(&str, &str)> = leads
        .iter()
        .map(|l| (l.subject.as_str(), ev(l, "hour")))
        .collect();
    assert_eq!(hours, [("A", "9"), ("B", "10"), ("C", "23")]);
}

#[test]
fn window_counts_three_times_in_seven_days_both_ends_included() {
    let p = plan(&[
        VISITS,
        "[[step]]\nname = \"w\"\nop = \"window\"\nby = [\"person_id\", \"place_id\"]\ntime = \"date(seen_at)\"\ndays = \"$days\"\ncount = \"recent\"\n\n",
        &emit("w", "visit_id", "recent = \"recent\""),
    ]);
    let leads = run(&p);
    let counts: Vec<&str> = leads.iter().map(|l| ev(l, "recent")).collect();
    // v3 (12-08) sees v1 (12-01, exactly 7 days before) and v2.
    assert_eq!(counts, ["1", "2", "3", "1", "1", "1"]);
    let plan = common::parse(&p).unwrap();
    let checked = jiandu_plan::check_plan(&plan, &catalog()).unwrap();
    let mut leads = Vec::new();
    checked
        .bind(&[("days", Value::Int(6))])
        .unwrap()
        .run(&mut data(), &mut leads)
        .unwrap();
    assert_eq!(ev(&leads[2], "recent"), "2");
}

#[test]
fn a_group_without_keys_gives_one_row_even_over_no_rows() {
    // "No visit at all" is a rule: count() = 0 must be there to filter on.
    let total = |cond: &str| {
        plan(&[
            VISITS,
            &format!("[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"{cond}\"\n\n"),
            "[[step]]\nname = \"g\"\nop = \"group\"\nby = []\naggregates = { n = \"count()\", total = \"sum(amount)\", low = \"min(amount)\", some = \"any(ok)\", every = \"all(ok)\", places = \"collect_distinct(place_id)\", seen = \"list(visit_id, ',')\" }\n\n",
            "[[step]]\nname = \"none\"\nop = \"filter\"\nwhere = \"n == 0\"\n\n",
            "[[step]]\nname = \"out\"\nop = \"emit\"\nsubject = \"'all'\"\ntitle = \"t\"\nevidence = { n = \"n\", total = \"total\", low = \"has(low)\", some = \"some\", every = \"every\", places = \"has(places)\", seen = \"has(seen)\" }\n",
        ])
    };
    let leads = run(&total("amount > 1000"));
    assert_eq!(subjects(&leads), ["all"]);
    let evidence: Vec<(&str, &str)> = leads[0]
        .evidence
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(
        evidence,
        [
            ("n", "0"),
            ("total", "0"),
            ("low", "false"),
            ("some", "false"),
            ("every", "true"),
            ("places", "false"),
            ("seen", "false"),
        ]
    );
    // Over some rows there is still one row, and it is not "none".
    assert!(run(&total("amount > 10")).is_empty());
}

#[test]
fn collecting_aggregates_over_only_nulls_are_null_not_empty_text() {
    let p = plan(&[
        VISITS,
        "[[step]]\nname = \"g\"\nop = \"group\"\nby = \"person_id\"\naggregates = { d = \"collect_distinct(amount > 1000 ? place_id : null)\", l = \"list(amount > 1000 ? place_id : null, ',')\", s = \"sum(amount > 1000 ? amount : null)\" }\n\n",
        &emit("g", "person_id", "d = \"has(d)\", l = \"has(l)\", s = \"s\""),
    ]);
    let leads = run(&p);
    assert_eq!(leads.len(), 3);
    for l in &leads {
        assert_eq!(
            (ev(l, "d"), ev(l, "l"), ev(l, "s")),
            ("false", "false", "0")
        );
    }
}

fn window_days(days: &str) -> String {
    plan(&[
        VISITS,
        &format!("[[step]]\nname = \"w\"\nop = \"window\"\nby = [\"person_id\", \"place_id\"]\ntime = \"date(seen_at)\"\ndays = \"{days}\"\ncount = \"recent\"\n\n"),
        &emit("w", "visit_id", "recent = \"recent\""),
    ])
}

#[test]
fn window_days_written_in_the_plan_are_checked_at_build() {
    let e = check_err(&window_days("-1"));
    assert!(
        e.starts_with("test.plan.toml:11:9: `days`: expected a number of days from 0 to 36600 (100 years), found -1"),
        "{e}"
    );
    let e = check_err(&window_days("36601"));
    assert!(e.contains("found 36601"), "{e}");
    // The largest window counts every earlier visit of the group.
    let leads = run(&window_days("36600"));
    let counts: Vec<&str> = leads.iter().map(|l| ev(l, "recent")).collect();
    assert_eq!(counts, ["1", "2", "3", "1", "1", "1"]);
    let leads = run(&window_days("0"));
    assert_eq!(ev(&leads[2], "recent"), "1");
}

#[test]
fn a_window_reaching_before_the_year_1_counts_from_the_first_date() {
    // It used to fall back to counting the same day only.
    let mut input = MemoryInput::default();
    input.add(
        "visits",
        &[
            "person_id",
            "visit_id",
            "place_id",
            "seen_at",
            "amount",
            "ok",
        ],
        &["person_id", "visit_id"],
        ["0001-01-01 09:00", "0001-03-01 09:00"]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                vec![
                    s("p1"),
                    s(&format!("v{i}")),
                    s("A"),
                    s(t),
                    Value::Null,
                    Value::Null,
                ]
            })
            .collect(),
    );
    let leads = run_with(&window_days("36600"), &[], input).unwrap();
    let counts: Vec<&str> = leads.iter().map(|l| ev(l, "recent")).collect();
    assert_eq!(counts, ["1", "2"]);
}

#[test]
fn window_days_from_a_parameter_are_checked_when_bound_naming_the_step() {
    let checked =
        jiandu_plan::check_plan(&common::parse(&window_days("$days")).unwrap(), &catalog())
            .unwrap();
    for bad in [-1, 36_601, i64::MAX] {
        let e = checked.bind(&[("days", Value::Int(bad))]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("test.plan.toml:11:9: step `w`: `days`: expected a number of days from 0 to 36600 (100 years), found {bad}")
        );
    }
    assert!(checked.bind(&[("days", Value::Int(36_600))]).is_ok());
}

#[test]
fn sort_lets_a_join_merge_on_another_key() {
    let p = plan(&[
        VISITS,
        "[[step]]\nname = \"places\"\nop = \"read\"\ndataset = \"places\"\n\n",
        "[[step]]\nname = \"s\"\nop = \"sort\"\ninput = \"visits\"\nby = [\"place_id\", \"visit_id desc\"]\n\n",
        "[[step]]\nname = \"j\"\nop = \"join\"\ninput = \"s\"\nwith = \"places\"\non = \"place_id\"\n\n",
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"in_list(kind, $kinds)\"\n\n",
        &emit("f", "visit_id", "kind = \"kind\""),
    ]);
    assert_eq!(subjects(&run(&p)), ["v3", "v2", "v1", "v5", "v4"]);
}

#[test]
fn nulls_compare_false_and_are_tested_with_has() {
    let f = |cond: &str| {
        run(&plan(&[
            PEOPLE,
            &format!("[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"{cond}\"\n\n"),
            &emit("f", "person_id", "r = \"region\""),
        ]))
    };
    assert_eq!(subjects(&f("score > 1.0")), ["p1", "p2"]);
    assert_eq!(subjects(&f("score != 2.0")), ["p1", "p3"]);
    assert_eq!(subjects(&f("!has(born)")), ["p3"]);
    assert_eq!(subjects(&f("born == null")), ["p3"]);
    assert_eq!(subjects(&f("region in ['650100', '650300']")), ["p1", "p3"]);
    // 1990-02-28 is within 34 years before 2024-02-29 (which reads 28 Feb).
    assert_eq!(
        subjects(&f("within_years_before(born, date('2024-02-29'), 34)")),
        ["p1"]
    );
    assert_eq!(
        subjects(&f("years_before(date('2024-02-29'), 34) == born")),
        ["p1"]
    );
}

#[test]
fn amounts_round_half_up_to_the_fen_and_titles_fill_in() {
    let p = plan(&[
        VISITS,
        "[[step]]\nname = \"m\"\nop = \"derive\"\nset = { fee = \"amount / 8\" }\n\n",
        "[[step]]\nname = \"out\"\nop = \"emit\"\nsubject = \"visit_id\"\ntitle = \"{visit_id} 在 {place_id}{{场所}} 应缴 {yuan(fee)}\"\namount = \"fee\"\n",
    ]);
    let leads = run(&p);
    // 3 / 8 = 0.375 → 0.38; 1 / 8 = 0.125 → 0.13; 5 / 8 = 0.625 → 0.63.
    let amounts: Vec<&str> = leads.iter().map(|l| l.amount.as_deref().unwrap()).collect();
    assert_eq!(amounts, ["1.50", "0.38", "2.50", "0.13", "3.75", "0.63"]);
    assert_eq!(leads[1].title, "v2 在 A{场所} 应缴 0.38");
}

#[test]
fn division_by_zero_at_run_is_an_error_that_names_the_spot() {
    let p = plan(&[
        VISITS,
        "[[step]]\nname = \"m\"\nop = \"derive\"\nset = { x = \"amount / (amount - amount)\" }\n\n",
        &emit("m", "visit_id", "x = \"x\""),
    ]);
    let err = run_with(&p, &[], data()).unwrap_err();
    assert!(matches!(err, RunError::Eval { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "test.plan.toml:9:21: step `m`: division by zero"
    );
}

#[test]
fn rows_out_of_the_promised_order_stop_the_run() {
    let mut input = data();
    // The visits again, sorted by visit id in reverse: p4 comes first.
    let rows = [("p1", "v1"), ("p4", "v0"), ("p1", "v2")];
    input.add(
        "visits",
        &[
            "person_id",
            "visit_id",
            "place_id",
            "seen_at",
            "amount",
            "ok",
        ],
        &[],
        rows.iter()
            .map(|(p, v)| {
                vec![
                    s(p),
                    s(v),
                    s("A"),
                    s("2024-12-01 09:00"),
                    d("1"),
                    Value::Bool(true),
                ]
            })
            .collect(),
    );
    let p = plan(&[
        VISITS,
        "[[step]]\nname = \"g\"\nop = \"group\"\nby = \"person_id\"\naggregates = { n = \"count()\" }\n\n",
        &emit("g", "person_id", "n = \"n\""),
    ]);
    let err = run_with(&p, &[], input).unwrap_err();
    assert!(matches!(err, RunError::Unsorted { .. }), "{err}");
    assert!(
        err.to_string().contains("not sorted on the group key"),
        "{err}"
    );
}

#[test]
fn a_value_of_the_wrong_type_from_the_host_is_reported() {
    let mut input = data();
    input.add(
        "people",
        &["person_id", "name", "region", "score", "born"],
        &["person_id"],
        vec![vec![s("p1"), s("张三"), s("650100"), d("1.5"), Value::Null]],
    );
    let p = plan(&[PEOPLE, &emit("people", "person_id", "r = \"region\"")]);
    let err = run_with(&p, &[], input).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dataset `people`, field `score`: expected float, found decimal 1.5"
    );
}

#[test]
fn parameters_bind_by_name_and_type() {
    let p = plan(&[PEOPLE, &emit("people", "person_id", "r = \"region\"")]);
    let checked = jiandu_plan::check_plan(&common::parse(&p).unwrap(), &catalog()).unwrap();
    let e = checked.bind(&[("nope", Value::Int(1))]).unwrap_err();
    assert!(e.message.contains("unknown parameter `nope`"), "{e}");
    let e = checked.bind(&[("as_of", Value::Int(1))]).unwrap_err();
    assert!(
        e.message
            .contains("parameter `as_of`: expected date, found int"),
        "{e}"
    );
    let program = checked.bind(&[("min_amount", Value::Int(3))]).unwrap();
    assert_eq!(program.params()[1], ("min_amount".to_string(), d("3")));
}

#[test]
fn stats_count_rows_read_and_leads() {
    let p = plan(&[PEOPLE, &emit("people", "person_id", "r = \"region\"")]);
    let checked = jiandu_plan::check_plan(&common::parse(&p).unwrap(), &catalog()).unwrap();
    let mut leads = Vec::new();
    let stats = checked
        .bind(&[])
        .unwrap()
        .run(&mut data(), &mut leads)
        .unwrap();
    assert_eq!(stats.leads, 3);
    assert_eq!(stats.rows_read["people"], 3);
    assert_eq!(stats.without_subject, 0);
}

#[test]
fn rows_without_a_subject_are_counted_not_emitted() {
    let p = plan(&[PEOPLE, &emit("people", "string(born)", "r = \"region\"")]);
    let checked = jiandu_plan::check_plan(&common::parse(&p).unwrap(), &catalog()).unwrap();
    let mut leads = Vec::new();
    let stats = checked
        .bind(&[])
        .unwrap()
        .run(&mut data(), &mut leads)
        .unwrap();
    assert_eq!((stats.leads, stats.without_subject), (2, 1));
}
