//! Plans that are wrong are refused at build with the file, line and
//! column, and with what was expected.

mod common;
use common::check_err;

const READ_PEOPLE: &str = "[[step]]\nname = \"people\"\nop = \"read\"\ndataset = \"people\"\n";

fn with_people(rest: &str) -> String {
    format!("{READ_PEOPLE}\n{rest}")
}

#[test]
fn unknown_key_is_named_with_the_accepted_keys() {
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwher = \"true\"\n",
    ));
    assert!(
        e.starts_with("test.plan.toml:9:1: unknown key `wher` in step `f` (filter)"),
        "{e}"
    );
    assert!(
        e.contains("expected one of: name, op, note, basis, input, where"),
        "{e}"
    );
}

#[test]
fn unknown_op_lists_the_operators() {
    let e = check_err("[[step]]\nname = \"x\"\nop = \"merge\"\n");
    assert!(
        e.starts_with("test.plan.toml:3:6: unknown op `merge`"),
        "{e}"
    );
    assert!(
        e.contains(
            "read, filter, derive, select, join, group, sort, rank, window, emit, union, lookup"
        ),
        "{e}"
    );
}

#[test]
fn missing_argument_is_reported_at_its_step() {
    let e = check_err(&with_people("[[step]]\nname = \"f\"\nop = \"filter\"\n"));
    assert!(
        e.starts_with("test.plan.toml:6:1: step `f` (filter) needs `where`"),
        "{e}"
    );
}

#[test]
fn invalid_toml_points_at_the_spot() {
    let e = check_err("[[step]]\nname = \"x\nop = \"read\"\n");
    assert!(e.starts_with("test.plan.toml:2:"), "{e}");
    assert!(e.contains("not valid TOML"), "{e}");
}

#[test]
fn unknown_field_in_an_expression_points_inside_the_text() {
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"region == '650100' && agee > 3\"\n",
    ));
    // The value starts in column 10; `agee` is 22 characters into it.
    assert!(
        e.starts_with("test.plan.toml:9:32: unknown field `agee`"),
        "{e}"
    );
    assert!(
        e.contains("expected one of: person_id, name, region, score, born"),
        "{e}"
    );
}

#[test]
fn a_parameter_written_as_a_field_gets_a_hint() {
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"born <= as_of\"\n",
    ));
    assert!(e.contains("`as_of` is a parameter: write `$as_of`"), "{e}");
}

#[test]
fn wrong_types_say_what_was_expected_and_found() {
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"born + 1 > 3\"\n",
    ));
    assert!(
        e.contains("`+`: expected a number, found date; for dates use days_between"),
        "{e}"
    );
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"region\"\n",
    ));
    assert!(e.contains("`where`: expected bool, found string"), "{e}");
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"days_between(born)\"\n",
    ));
    assert!(
        e.contains("`days_between` takes 2 arguments, found 1"),
        "{e}"
    );
}

#[test]
fn decimal_and_float_never_mix_silently() {
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"score > $min_amount\"\n",
    ));
    assert!(e.contains("decimal and float never mix silently"), "{e}");
}

#[test]
fn datasets_and_fields_must_be_declared_for_the_model() {
    let e = check_err("[[step]]\nname = \"x\"\nop = \"read\"\ndataset = \"employers\"\n");
    assert!(
        e.starts_with("test.plan.toml:4:11: unknown dataset `employers`"),
        "{e}"
    );
    assert!(e.contains("people, places, visits"), "{e}");
    let e = check_err("[[step]]\nname = \"x\"\nop = \"read\"\ndataset = \"people\"\nfields = [\"person_id\", \"secret\"]\n");
    assert!(
        e.starts_with(
            "test.plan.toml:5:24: field `secret` of `people` is not declared for this model"
        ),
        "{e}"
    );
}

#[test]
fn join_keys_must_have_equal_types_and_lead_both_orders() {
    let plan = with_people(
        "[[step]]\nname = \"v\"\nop = \"read\"\ndataset = \"visits\"\n\n[[step]]\nname = \"j\"\nop = \"join\"\ninput = \"people\"\nwith = \"v\"\non = \"born\"\nwith_on = \"seen_at\"\n",
    );
    let e = check_err(&plan);
    assert!(
        e.contains(
            "join key `seen_at` of `v`: expected date like `born` of `people`, found string"
        ),
        "{e}"
    );
    let plan = with_people(
        "[[step]]\nname = \"v\"\nop = \"read\"\ndataset = \"visits\"\n\n[[step]]\nname = \"j\"\nop = \"join\"\ninput = \"people\"\nwith = \"v\"\non = \"region\"\nwith_on = \"place_id\"\n",
    );
    let e = check_err(&plan);
    assert!(e.contains("step `people` is sorted by (person_id)"), "{e}");
    assert!(e.contains("add a `sort` step"), "{e}");
}

#[test]
fn personal_values_must_be_marked_when_emitted() {
    let emit = |extra: &str| {
        with_people(&format!(
            "[[step]]\nname = \"e\"\nop = \"emit\"\nsubject = \"region\"\ntitle = \"t\"\nevidence = {{ who = \"name\" }}\n{extra}"
        ))
    };
    let e = check_err(&emit(""));
    assert!(
        e.contains("evidence `who` shows personal data (name); add \"who\" to `personal`"),
        "{e}"
    );
    let plan = common::parse(&emit("personal = [\"who\"]\n")).unwrap();
    jiandu_plan::check_plan(&plan, &common::catalog()).unwrap();
    let e = check_err(&with_people(
        "[[step]]\nname = \"e\"\nop = \"emit\"\nsubject = \"person_id\"\ntitle = \"t\"\n",
    ));
    assert!(e.contains("set `subject_personal = true`"), "{e}");
    let e = check_err(&with_people(
        "[[step]]\nname = \"e\"\nop = \"emit\"\nsubject = \"region\"\ntitle = \"{name}\"\n",
    ));
    assert!(e.contains("the title shows personal data"), "{e}");
}

#[test]
fn a_pseudonym_is_never_compared_with_text_in_the_plan() {
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"person_id == '110105194912310021'\"\n",
    ));
    assert!(
        e.contains("`person_id` is personal data (id): the model sees a pseudonym"),
        "{e}"
    );
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"person_id.starts_with('1101')\"\n",
    ));
    assert!(e.contains("pseudonym"), "{e}");
}

#[test]
fn steps_read_only_earlier_steps_and_all_are_used() {
    let e =
        check_err("[[step]]\nname = \"f\"\nop = \"filter\"\ninput = \"later\"\nwhere = \"true\"\n");
    assert!(e.contains("`later` is not an earlier step"), "{e}");
    let e = check_err(&with_people("[[step]]\nname = \"unused\"\nop = \"read\"\ndataset = \"places\"\n\n[[step]]\nname = \"e\"\nop = \"emit\"\ninput = \"people\"\nsubject = \"region\"\ntitle = \"t\"\n"));
    assert!(e.contains("step `unused` is never used"), "{e}");
    let e = check_err(READ_PEOPLE);
    assert!(e.contains("expected an `emit` step"), "{e}");
    let e = check_err(&with_people(
        "[[step]]\nname = \"people\"\nop = \"filter\"\nwhere = \"true\"\n",
    ));
    assert!(e.contains("a step called `people` already exists"), "{e}");
}

#[test]
fn aggregates_are_checked_by_type() {
    let e = check_err(&with_people("[[step]]\nname = \"g\"\nop = \"group\"\nby = \"region\"\naggregates = { n = \"sum(name)\" }\n"));
    assert!(e.contains("`sum`: expected a number, found string"), "{e}");
    let e = check_err(&with_people("[[step]]\nname = \"g\"\nop = \"group\"\nby = \"region\"\naggregates = { n = \"median(score)\" }\n"));
    assert!(e.contains("unknown aggregate `median`; expected one of: count, sum, min, max, any, all, collect_distinct"), "{e}");
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"sum(score) > 1\"\n",
    ));
    assert!(e.contains("`sum` is an aggregate"), "{e}");
}

#[test]
fn hostile_expressions_are_refused_not_crashed_on() {
    let deep = format!("{}true{}", "(".repeat(2000), ")".repeat(2000));
    let e = check_err(&with_people(&format!(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"{deep}\"\n"
    )));
    assert!(
        e.contains("expected at most 64 operators, calls or parentheses chained or nested, found more; split the expression over several derive steps"),
        "{e}"
    );
    let e = check_err(&with_people("[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"score > 123456789012345678901234567890\"\n"));
    assert!(
        e.contains("expected an integer of at most")
            && e.contains("write it with a point: `123456789012345678901234567890.0`"),
        "{e}"
    );
    // A date compared with text: the fix named.
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"born > '2000-01-01'\"\n",
    ));
    assert!(
        e.contains("expected date, found string; write a date as date('2024-01-01')"),
        "{e}"
    );
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"born == date('2023-02-29')\"\n",
    ));
    assert!(
        e.contains("date: expected a date YYYY-MM-DD, found \"2023-02-29\""),
        "{e}"
    );
}

#[test]
fn a_multibyte_line_still_gets_the_right_column() {
    // Columns count characters: 新疆 is two columns, not six bytes.
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"region == '新疆' && zz\"\n",
    ));
    assert!(
        e.starts_with("test.plan.toml:9:28: unknown field `zz`"),
        "{e}"
    );
}

#[test]
fn a_join_of_a_personal_key_with_a_clear_one_is_refused_at_its_key() {
    // An anti join on such keys would flag every row: a pseudonym never
    // equals a clear value.
    let e = check_err(&with_people(
        "[[step]]\nname = \"places\"\nop = \"read\"\ndataset = \"places\"\n\n[[step]]\nname = \"j\"\nop = \"join\"\nkind = \"anti\"\ninput = \"people\"\nwith = \"places\"\non = \"person_id\"\nwith_on = \"place_id\"\n",
    ));
    assert!(
        e.starts_with("test.plan.toml:18:11: join key `place_id` of `places`: expected personal data like `person_id` of `people` (id), which the model sees as pseudonyms, found a value that is not personal data; both keys must be personal data of the same kind, or neither"),
        "{e}"
    );
    let e = check_err(&with_people(
        "[[step]]\nname = \"places\"\nop = \"read\"\ndataset = \"places\"\n\n[[step]]\nname = \"j\"\nop = \"join\"\ninput = \"places\"\nwith = \"people\"\non = \"place_id\"\nwith_on = \"person_id\"\n",
    ));
    assert!(
        e.starts_with("test.plan.toml:17:11: join key `person_id` of `people` is personal data (id), which the model sees as pseudonyms, but `place_id` of `places` is not; they would never be equal: both keys must be personal data of the same kind, or neither"),
        "{e}"
    );
}

#[test]
fn a_join_of_personal_keys_of_different_kinds_is_refused() {
    let e = check_err(&with_people(
        "[[step]]\nname = \"again\"\nop = \"read\"\ndataset = \"people\"\n\n[[step]]\nname = \"j\"\nop = \"join\"\ninput = \"people\"\nwith = \"again\"\non = \"person_id\"\nwith_on = \"name\"\n",
    ));
    assert!(
        e.starts_with("test.plan.toml:17:11: join key `name` of `again` is personal data (name), but `person_id` of `people` is personal data of another kind (id); their pseudonyms would never be equal"),
        "{e}"
    );
}

#[test]
fn a_brace_inside_quoted_text_in_a_title_says_templates_cannot_hold_it() {
    let e = check_err(&with_people(
        "[[step]]\nname = \"e\"\nop = \"emit\"\nsubject = \"region\"\ntitle = \"{region == 'a' ? '{a}' : 'b'}\"\n",
    ));
    // The `}` that ended the expression early, inside `'{a}'`.
    assert_eq!(
        e,
        "test.plan.toml:10:30: an expression in a template cannot contain `}`: this one ends the expression inside a quoted text; compute the text in a `derive` step and show that field"
    );
}

#[test]
fn a_schema_field_the_model_does_not_declare_gets_the_advice_in_an_expression_too() {
    let e = check_err(&with_people(
        "[[step]]\nname = \"f\"\nop = \"filter\"\nwhere = \"secret == 'x'\"\n",
    ));
    assert_eq!(
        e,
        "test.plan.toml:9:10: unknown field `secret` (`secret` is a field of `people` that this model does not declare: add it to model.toml [datasets] people fields (declared: person_id, name, region, score, born)); expected one of: person_id, name, region, score, born"
    );
}

#[test]
fn more_evidence_than_a_lead_carries_is_refused_at_the_field_past_the_limit() {
    let fields: String = (0..65).map(|i| format!("e{i} = \"1\"\n")).collect();
    let e = check_err(&with_people(&format!(
        "[[step]]\nname = \"out\"\nop = \"emit\"\nsubject = \"'x'\"\ntitle = \"x\"\n[step.evidence]\n{fields}"
    )));
    // Line 6 is the emit step; its evidence table starts at line 11,
    // the 65th field is on line 76.
    assert!(
        e.starts_with("test.plan.toml:76:1: expected at most 64 evidence fields (what a lead carries), found 65"),
        "{e}"
    );
    // 64 are fine.
    let fields: String = (0..64).map(|i| format!("e{i} = \"1\"\n")).collect();
    let plan = common::parse(&with_people(&format!(
        "[[step]]\nname = \"out\"\nop = \"emit\"\nsubject = \"'x'\"\ntitle = \"x\"\n[step.evidence]\n{fields}"
    )))
    .unwrap();
    jiandu_plan::check_plan(&plan, &common::catalog()).unwrap();
}

#[test]
fn a_derived_field_a_model_declares_is_read_like_a_stored_one_and_is_not_personal() {
    let schema = r#"
name = "cases"
department = "公安局"
primary_key = ["case_id"]
fields = [
  { name = "case_id", type = "string" },
  { name = "suspect_id", type = "string", personal = "id" },
]
[[derived]]
name = "suspect_birth_date"
from = "suspect_id"
value = "birth_date"
[[derived]]
name = "suspect_region"
from = "suspect_id"
value = "region"
"#;
    let model = |fields: &str| format!("[datasets]\ncases = {{ fields = [{fields}] }}\n");
    let catalog = jiandu_plan::Catalog::from_toml(
        &model(r#""case_id", "suspect_birth_date", "suspect_region""#),
        &[schema],
    )
    .unwrap();
    let plan = common::parse(
        "[[step]]\nname = \"c\"\nop = \"read\"\ndataset = \"cases\"\n\n\
         [[step]]\nname = \"young\"\nop = \"filter\"\nwhere = \"suspect_birth_date > date('2006-01-01')\"\n\n\
         [[step]]\nname = \"out\"\nop = \"emit\"\nsubject = \"case_id\"\ntitle = \"{case_id} {suspect_region}\"\n",
    )
    .unwrap();
    jiandu_plan::check_plan(&plan, &catalog).unwrap();
    // Not declared: not there.
    let catalog = jiandu_plan::Catalog::from_toml(&model(r#""case_id""#), &[schema]).unwrap();
    let e = jiandu_plan::check_plan(&plan, &catalog)
        .unwrap_err()
        .to_string();
    assert!(e.contains("suspect_birth_date"), "{e}");
}

/// A plan that takes the step before twice (two filters of it, then
/// their union), `doublings` times, then emits: 2^doublings reads at once.
fn doubled_reads(doublings: usize) -> String {
    let mut text = String::new();
    let mut last = "people".to_string();
    for i in 0..doublings {
        for side in ["a", "b"] {
            text.push_str(&format!(
                "[[step]]\nname = \"{side}{i}\"\nop = \"filter\"\ninput = \"{last}\"\nwhere = \"true\"\n\n"
            ));
        }
        text.push_str(&format!(
            "[[step]]\nname = \"d{i}\"\nop = \"union\"\ninputs = [\"a{i}\", \"b{i}\"]\n\n"
        ));
        last = format!("d{i}");
    }
    text.push_str(&format!(
        "[[step]]\nname = \"out\"\nop = \"emit\"\ninput = \"{last}\"\nsubject = \"region\"\ntitle = \"x\"\n"
    ));
    with_people(&text)
}

#[test]
fn an_emit_over_more_reads_than_a_run_may_hold_open_is_refused_at_build() {
    // 2^6 = 64 reads at once: the limit, fine.
    let plan = common::parse(&doubled_reads(6)).unwrap();
    jiandu_plan::check_plan(&plan, &common::catalog()).unwrap();
    // 2^7 = 128: refused at the emit, saying why and what to do.
    let e = check_err(&doubled_reads(7));
    assert!(e.contains("step `out` would read datasets through 128 reads at once, more than the 64 a run may hold open"), "{e}");
    assert!(e.contains("read each dataset once"), "{e}");
    // 2^70 reads: counted without overflow.
    let e = check_err(&doubled_reads(70));
    assert!(e.contains("more than can be counted"), "{e}");
}
