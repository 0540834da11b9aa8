//! `jiandu model diff NAME@A NAME@B`: what changed between two versions of
//! a plan, in the words of [`crate::explain()`]: parameters whose default,
//! unit or type changed, steps added, removed, moved or changed (with the
//! old and new sentence), changes of the legal basis, of the Chinese
//! labels and of the description: everything that changes the plan's hash.

use crate::catalog::Catalog;
use crate::explain::{value_text, Words};
use crate::plan::Plan;

/// What changed from `old` (with its catalog) to `new`, as Chinese
/// sentences; one sentence saying nothing changed when nothing did.
pub fn diff(old: &Plan, old_catalog: &Catalog, new: &Plan, new_catalog: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    let label = |name: &str| match new.label(name).or_else(|| old.label(name)) {
        Some(l) => format!("{l}（{name}）"),
        None => name.to_owned(),
    };
    for p in &new_catalog.params {
        match old_catalog.param(&p.name) {
            None => out.push(format!(
                "新增参数 {}，类型 {}，默认值 {}。",
                label(&p.name),
                p.ty.chinese(),
                value_text(&p.default)
            )),
            Some((_, q)) => {
                if q.ty != p.ty {
                    out.push(format!(
                        "参数 {} 的类型由{}改为{}。",
                        label(&p.name),
                        q.ty.chinese(),
                        p.ty.chinese()
                    ));
                } else if q.default != p.default {
                    out.push(format!(
                        "参数 {} 的默认值由 {} 改为 {}。",
                        label(&p.name),
                        value_text(&q.default),
                        value_text(&p.default)
                    ));
                }
                if q.unit != p.unit {
                    out.push(format!(
                        "参数 {} 的单位由“{}”改为“{}”。",
                        label(&p.name),
                        q.unit.as_deref().unwrap_or("无"),
                        p.unit.as_deref().unwrap_or("无")
                    ));
                }
            }
        }
    }
    for q in &old_catalog.params {
        if new_catalog.param(&q.name).is_none() {
            out.push(format!(
                "删除参数 {}（原默认值 {}）。",
                label(&q.name),
                value_text(&q.default)
            ));
        }
    }
    let (ow, nw) = (
        Words {
            plan: old,
            catalog: old_catalog,
        },
        Words {
            plan: new,
            catalog: new_catalog,
        },
    );
    let json = |p: &Plan, i: usize| p.to_json()["steps"][i].clone();
    for (i, s) in new.steps.iter().enumerate() {
        match old.steps.iter().position(|o| o.name.value == s.name.value) {
            None => out.push(format!(
                "新增第 {} 步（{}）：{}",
                i + 1,
                s.name.value,
                nw.step(s)
            )),
            Some(j) => {
                let changed = json(old, j) != json(new, i);
                if changed {
                    out.push(format!(
                        "第 {} 步（{}）改为：{}原为：{}",
                        i + 1,
                        s.name.value,
                        nw.step(s),
                        ow.step(&old.steps[j])
                    ));
                } else if i != j {
                    out.push(format!(
                        "步骤 {} 由第 {} 步移至第 {} 步。",
                        s.name.value,
                        j + 1,
                        i + 1
                    ));
                }
            }
        }
    }
    for (j, o) in old.steps.iter().enumerate() {
        if new.step(&o.name.value).is_none() {
            out.push(format!(
                "删除原第 {} 步（{}）：{}",
                j + 1,
                o.name.value,
                ow.step(o)
            ));
        }
    }
    for b in &new_catalog.legal_basis {
        if !old_catalog.legal_basis.contains(b) {
            out.push(format!("新增法律依据：{b}。"));
        }
    }
    for b in &old_catalog.legal_basis {
        if !new_catalog.legal_basis.contains(b) {
            out.push(format!("删除法律依据：{b}。"));
        }
    }
    for (name, l) in &new.labels {
        match old.label(&name.value) {
            None => out.push(format!("新增名称 {} 的中文标签“{l}”。", name.value)),
            Some(was) if was != l => out.push(format!(
                "名称 {} 的中文标签由“{was}”改为“{l}”。",
                name.value
            )),
            Some(_) => {}
        }
    }
    for (name, was) in &old.labels {
        if new.label(&name.value).is_none() {
            out.push(format!("删除名称 {} 的中文标签“{was}”。", name.value));
        }
    }
    if old.description != new.description {
        out.push(format!(
            "说明由“{}”改为“{}”。",
            old.description.as_deref().unwrap_or(""),
            new.description.as_deref().unwrap_or("")
        ));
    }
    if out.is_empty() {
        out.push("两个版本的规则、参数和法律依据相同。".into());
    }
    out
}
