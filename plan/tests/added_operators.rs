//! The operators and functions added for the sample models: `union`,
//! `rank` with `ties = "in_order"`, the `list` aggregate, emit `optional`,
//! and their checker errors.

mod common;
use common::*;

const VISITS: &str = "[[step]]\nname = \"visits\"\nop = \"read\"\ndataset = \"visits\"\n\n";

#[test]
fn union_merges_inputs_on_their_shared_order() {
    let p = [
        VISITS,
        "[[step]]\nname = \"big\"\nop = \"filter\"\nwhere = \"amount >= 12\"\n\n",
        "[[step]]\nname = \"small\"\nop = \"filter\"\ninput = \"visits\"\nwhere = \"amount < 12\"\n\n",
        "[[step]]\nname = \"all\"\nop = \"union\"\ninputs = [\"big\", \"small\"]\n\n",
        // A group streams only if the union kept the (person_id, visit_id) order.
        "[[step]]\nname = \"per\"\nop = \"group\"\nby = [\"person_id\", \"visit_id\"]\naggregates = { n = \"count()\" }\n\n",
        "[[step]]\nname = \"out\"\nop = \"emit\"\ninput = \"all\"\nsubject = \"visit_id\"\ntitle = \"t\"\n\n",
        "[[step]]\nname = \"out2\"\nop = \"emit\"\ninput = \"per\"\nsubject = \"visit_id\"\ntitle = \"t\"\n",
    ]
    .concat();
    let leads = run(&p);
    let out: Vec<&str> = leads
        .iter()
        .filter(|l| l.step == "out")
        .map(|l| l.subject.as_str())
        .collect();
    assert_eq!(out, ["v1", "v2", "v3", "v4", "v5", "v6"]);
    let plan = parse(&p).unwrap();
    let checked = jiandu_plan::check_plan(&plan, &catalog()).unwrap();
    assert_eq!(checked.sorted_by("all").unwrap(), ["person_id", "visit_id"]);
}

#[test]
fn union_refuses_inputs_with_other_fields() {
    let e = check_err(
        &[
            VISITS,
            "[[step]]\nname = \"a\"\nop = \"select\"\nfields = [\"visit_id\"]\n\n",
            "[[step]]\nname = \"all\"\nop = \"union\"\ninputs = [\"visits\", \"a\"]\n\n",
            "[[step]]\nname = \"out\"\nop = \"emit\"\nsubject = \"visit_id\"\ntitle = \"t\"\n",
        ]
        .concat(),
    );
    assert!(
        e.contains("14:21: step `a` has the fields (visit_id string); expected the same fields"),
        "{e}"
    );
    let e = check_err(
        &[
            VISITS,
            "[[step]]\nname = \"all\"\nop = \"union\"\ninputs = [\"visits\"]\n\n",
        ]
        .concat(),
    );
    assert!(e.contains("expected at least two"), "{e}");
}

#[test]
fn rank_in_order_numbers_ties_in_input_order_and_list_keeps_it() {
    let p = [
        VISITS,
        "[[step]]\nname = \"r\"\nop = \"rank\"\nby = \"person_id\"\norder_by = \"place_id\"\nrank = \"pos\"\nties = \"in_order\"\n\n",
        "[[step]]\nname = \"g\"\nop = \"group\"\nby = \"person_id\"\naggregates = { seq = \"list(visit_id + '#' + string(pos), '; ')\", none = \"list(ok ? null : visit_id, ',')\" }\n\n",
        "[[step]]\nname = \"out\"\nop = \"emit\"\nsubject = \"person_id\"\nsubject_personal = true\ntitle = \"t\"\noptional = [\"skipped\"]\n[step.evidence]\nseq = \"seq\"\nskipped = \"none\"\n",
    ]
    .concat();
    let leads = run(&p);
    assert_eq!(ev(&leads[0], "seq"), "v1#1; v2#2; v3#3; v4#4");
    assert_eq!(ev(&leads[0], "skipped"), "v2");
    // p2's visit was ok: `list` gives null, and optional evidence is left out.
    assert_eq!(leads[1].evidence.len(), 1);
    assert_eq!(leads[1].evidence[0].name, "seq");
}

#[test]
fn optional_must_name_evidence_and_list_needs_a_written_separator() {
    let e = check_err(&[
        VISITS,
        "[[step]]\nname = \"out\"\nop = \"emit\"\nsubject = \"visit_id\"\ntitle = \"t\"\nevidence = { a = \"place_id\" }\noptional = [\"b\"]\n",
    ]
    .concat());
    assert!(
        e.contains("`optional` names `b`, which is not evidence; expected one of: a"),
        "{e}"
    );
    let e = check_err(&[
        VISITS,
        "[[step]]\nname = \"g\"\nop = \"group\"\nby = \"person_id\"\naggregates = { s = \"list(visit_id, place_id)\" }\n",
    ]
    .concat());
    assert!(
        e.contains("argument 2 of `list`: expected the separator as text in quotes"),
        "{e}"
    );
    let e = check_err(
        &[
            VISITS,
            "[[step]]\nname = \"r\"\nop = \"rank\"\norder_by = \"amount\"\nties = \"dense\"\n",
        ]
        .concat(),
    );
    assert!(e.contains("unknown `ties` `dense`"), "{e}");
}
