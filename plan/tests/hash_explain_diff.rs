//! The plan's hash, its Chinese explanation and the diff between versions,
//! on the 残保金 sample.

use jiandu_plan::{diff, explain, Catalog, Plan};

const PLAN: &str = include_str!("../../plugins/disability-fund-arrears/plan/rule.plan.toml");
const MODEL: &str = include_str!("../../plugins/disability-fund-arrears/model.toml");
const SCHEMAS: [&str; 4] = [
    include_str!("../../datasets/employers.toml"),
    include_str!("../../datasets/social_insurance.toml"),
    include_str!("../../datasets/disabled_employees.toml"),
    include_str!("../../datasets/fund_payments.toml"),
];

fn catalog() -> Catalog {
    Catalog::from_toml(MODEL, &SCHEMAS).unwrap()
}

fn plan(text: &str) -> Plan {
    Plan::parse("disability-fund-arrears.plan.toml", text).unwrap()
}

const SMALL: &str = r#"
[[step]]
name = "payments"
op = "read"
dataset = "fund_payments"

[[step]]
name = "this_year"
op = "filter"
where = "levy_year == $levy_year && paid_on <= $as_of"

[[step]]
name = "leads"
op = "emit"
subject = "credit_code"
title = "{credit_code} 缴款"
evidence = { amount = "amount", on = "paid_on" }
"#;

#[test]
fn reformatting_the_file_keeps_the_hash() {
    let reformatted = r#"
# The same plan, written differently.
[[step]]
op = 'read'
dataset = 'fund_payments'
name = 'payments'
[[step]]
name = "this_year"
input = "payments"            # the default, written out
op = "filter"
where = """(levy_year==params.levy_year) && (paid_on <= $as_of)"""
[[step]]
name = "leads"
op = "emit"
title = "{credit_code} 缴款"
subject = "(credit_code)"
[step.evidence]
amount = "amount"
on = "paid_on"
"#;
    assert_eq!(plan(SMALL).hash(), plan(reformatted).hash());
    assert_eq!(plan(SMALL).hash().len(), 64);
}

#[test]
fn changing_a_value_or_an_order_changes_the_hash() {
    let base = plan(SMALL).hash();
    let changed = SMALL.replace("paid_on <= $as_of", "paid_on < $as_of");
    assert_ne!(base, plan(&changed).hash());
    let swapped = SMALL.replace(
        "{ amount = \"amount\", on = \"paid_on\" }",
        "{ on = \"paid_on\", amount = \"amount\" }",
    );
    assert_ne!(
        base,
        plan(&swapped).hash(),
        "evidence order is part of the lead"
    );
    let retitled = SMALL.replace("缴款\"", "缴款记录\"");
    assert_ne!(base, plan(&retitled).hash());
}

#[test]
fn the_hash_is_sha256_of_the_canonical_json() {
    let p = plan(SMALL);
    let json = p.canonical_json();
    assert!(json.starts_with("{\"format\":1,\"steps\":[{\"dataset\":\"fund_payments\",\"name\":\"payments\",\"op\":\"read\"}"), "{json}");
    assert!(
        !json.contains(' ') || json.contains("缴款"),
        "no whitespace outside strings"
    );
    // Recomputed here from the canonical text.
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(json.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(p.hash(), hex);
}

#[test]
fn explain_gives_one_numbered_sentence_per_step_with_values_and_basis() {
    let lines = explain(&plan(PLAN), &catalog());
    assert_eq!(lines.len(), 21);
    assert_eq!(
        lines[2],
        "3. 从第 2 步（headcount）中筛选 year = 征收年度（2024） − 1（2023） 的记录。说明：职工人数与工资取征收年度上一年度的数据。"
    );
    assert!(
        lines[1].starts_with("2. 读取 social_insurance（人力资源和社会保障局）的记录"),
        "{}",
        lines[1]
    );
    assert!(
        lines[10].starts_with("11. 将第 10 步（with_headcount）与第 6 步（disabled_per_employer）按 credit_code = employer_credit_code 关联，第 6 步（disabled_per_employer）中没有对应记录的也保留"),
        "{}",
        lines[10]
    );
    assert!(
        lines[17].contains("缴费期限（2024-06-30） 至 评估日（2024-12-31） 的天数（184）"),
        "{}",
        lines[17]
    );
    assert!(
        lines[14].contains("安排比例（0.015，占职工人数的比例）"),
        "{}",
        lines[14]
    );
    assert!(
        lines[19]
            .starts_with("20. 对第 19 步（underpaid）的每条记录生成一条线索：对象为 credit_code"),
        "{}",
        lines[19]
    );
    assert!(
        lines[19].contains("依据：《残疾人就业保障金征收使用管理办法》第十九条"),
        "{}",
        lines[19]
    );
    assert!(
        lines[20]
            .starts_with("21. 法律依据：《残疾人就业保障金征收使用管理办法》（财税〔2015〕72号）"),
        "{}",
        lines[20]
    );
}

#[test]
fn diff_names_changed_defaults_and_steps_in_the_same_words() {
    let old_cat = catalog();
    let new_model = MODEL.replace("default = \"0.015\"", "default = \"0.02\"");
    let new_cat = Catalog::from_toml(&new_model, &SCHEMAS).unwrap();
    let new_plan = PLAN
        .replace("where = \"gap > 0\"", "where = \"gap > 100\"")
        .replace(
            "[[step]]\nname = \"below_ratio\"\nop = \"filter\"\nwhere = \"shortfall > 0\"\n\n",
            "",
        );
    let old = plan(PLAN);
    let new = plan(&new_plan);
    let lines = diff(&old, &old_cat, &new, &new_cat);
    assert_eq!(
        lines[0],
        "参数 安排比例（ratio） 的默认值由 0.015 改为 0.02。"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(
            "删除原第 16 步（below_ratio）：从第 15 步（shortfall）中筛选 shortfall > 0 的记录。"
        )),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("第 18 步（underpaid）改为：从第 17 步（gap）中筛选 gap > 100 的记录。原为：从第 18 步（gap）中筛选 gap > 0 的记录。")),
        "{lines:#?}"
    );
    // `due` now reads step 15 directly: a changed input is a change.
    assert!(
        lines.iter().any(|l| l.starts_with("第 16 步（due）改为")),
        "{lines:#?}"
    );
    assert_eq!(
        diff(&old, &old_cat, &old, &old_cat),
        ["两个版本的规则、参数和法律依据相同。"]
    );
}

#[test]
fn every_change_that_changes_the_hash_is_said_by_diff_labels_included() {
    let old = plan(PLAN);
    let relabelled = PLAN
        .replace("levy_year = \"征收年度\"", "levy_year = \"征收所属年度\"")
        .replace("paid = \"已缴金额\"\n", "");
    let new = plan(&relabelled);
    assert_ne!(old.hash(), new.hash());
    let lines = diff(&old, &catalog(), &new, &catalog());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("levy_year") && l.contains("由“征收年度”改为“征收所属年度”")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("删除名称 paid 的中文标签“已缴金额”")),
        "{lines:#?}"
    );
}

#[test]
fn explain_spaces_field_names_and_says_what_a_group_without_keys_does() {
    let text = r#"
[[step]]
name = "payments"
op = "read"
dataset = "fund_payments"

[[step]]
name = "w"
op = "window"
by = "credit_code"
time = "paid_on"
days = "6"
count = "n"

[[step]]
name = "total"
op = "group"
by = []
aggregates = { payments = "count()" }

[[step]]
name = "leads"
op = "emit"
subject = "string(payments)"
title = "t"
"#;
    let lines = explain(&plan(text), &catalog());
    assert_eq!(
        lines[1],
        "2. 对第 1 步（payments）的每条记录，统计 credit_code 相同的记录中 paid_on 在其前 6 天至当日（含两端）的记录数，记为 n。"
    );
    assert_eq!(
        lines[2],
        "3. 对第 2 步（w）的全部记录汇总（没有记录时也得出一行），计算：payments = 记录数。"
    );
}
