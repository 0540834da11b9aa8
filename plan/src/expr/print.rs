//! Printing expressions: the canonical text (what the plan hash covers,
//! so that spacing and redundant parentheses do not change it) and the
//! Chinese reading used by `model explain`.

use super::{BinaryOp, Expr, ExprKind, UnaryOp};

/// The canonical text of an expression: single spaces around binary
/// operators, parentheses only where precedence needs them, methods as
/// calls, parameters as `$name`, text in double quotes.
pub fn canonical(e: &Expr) -> String {
    let mut out = String::new();
    write(e, &mut out, &Style::Canonical);
    out
}

/// How names and constant parts read in Chinese.
pub(crate) struct Chinese<'a> {
    /// A field's reading (its label, or its name).
    pub field: &'a dyn Fn(&str) -> String,
    /// A parameter's reading: label and value.
    pub param: &'a dyn Fn(&str) -> String,
    /// The value of a subexpression made of parameters and literals only,
    /// when it can be computed.
    pub fold: &'a dyn Fn(&Expr) -> Option<String>,
}

enum Style<'a> {
    Canonical,
    Chinese(&'a Chinese<'a>),
}

/// The Chinese reading of an expression.
pub(crate) fn chinese(e: &Expr, names: &Chinese<'_>) -> String {
    let mut out = String::new();
    write(e, &mut out, &Style::Chinese(names));
    out
}

fn prec(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Cond(..) => 0,
        ExprKind::Binary(op, ..) => op.precedence(),
        ExprKind::In(..) => 3,
        ExprKind::Unary(..) => 6,
        ExprKind::Int(v) if *v < 0 => 6,
        ExprKind::Decimal(v) if v.is_sign_negative() => 6,
        _ => 7,
    }
}

fn child(e: &Expr, min: u8, out: &mut String, style: &Style<'_>) {
    if prec(e) < min {
        let (open, close) = match style {
            Style::Canonical => ('(', ')'),
            Style::Chinese(_) => ('（', '）'),
        };
        out.push(open);
        write(e, out, style);
        out.push(close);
    } else {
        write(e, out, style);
    }
}

fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn chinese_op(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Or => "或",
        BinaryOp::And => "且",
        BinaryOp::Eq => "=",
        BinaryOp::Ne => "≠",
        BinaryOp::Lt => "<",
        BinaryOp::Le => "≤",
        BinaryOp::Gt => ">",
        BinaryOp::Ge => "≥",
        BinaryOp::Add => "+",
        BinaryOp::Sub => "−",
        BinaryOp::Mul => "×",
        BinaryOp::Div => "÷",
        BinaryOp::Rem => "除以后的余数",
    }
}

fn has_field(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Field(_) => true,
        ExprKind::Unary(_, a) => has_field(a),
        ExprKind::Binary(_, a, b) => has_field(a) || has_field(b),
        ExprKind::Cond(a, b, c) => has_field(a) || has_field(b) || has_field(c),
        ExprKind::In(a, l) => has_field(a) || l.iter().any(has_field),
        ExprKind::Call(_, args) => args.iter().any(has_field),
        _ => false,
    }
}

fn write(e: &Expr, out: &mut String, style: &Style<'_>) {
    if let Style::Chinese(names) = style {
        let compound = !matches!(
            e.kind,
            ExprKind::Param(_)
                | ExprKind::Int(_)
                | ExprKind::Decimal(_)
                | ExprKind::Str(_)
                | ExprKind::Bool(_)
                | ExprKind::Null
        );
        if compound && !has_field(e) {
            if let Some(v) = (names.fold)(e) {
                write_plain(e, out, style);
                out.push('（');
                out.push_str(&v);
                out.push('）');
                return;
            }
        }
    }
    write_plain(e, out, style);
}

fn write_plain(e: &Expr, out: &mut String, style: &Style<'_>) {
    let zh = match style {
        Style::Chinese(n) => Some(*n),
        Style::Canonical => None,
    };
    match &e.kind {
        ExprKind::Int(v) => out.push_str(&v.to_string()),
        ExprKind::Decimal(v) => out.push_str(&v.to_string()),
        ExprKind::Str(s) => match zh {
            Some(_) => {
                out.push('“');
                out.push_str(s);
                out.push('”');
            }
            None => quote(s, out),
        },
        ExprKind::Bool(b) => out.push_str(match (zh, b) {
            (None, true) => "true",
            (None, false) => "false",
            (Some(_), true) => "是",
            (Some(_), false) => "否",
        }),
        ExprKind::Null => out.push_str(if zh.is_some() { "空" } else { "null" }),
        ExprKind::Field(f) => match zh {
            Some(n) => out.push_str(&(n.field)(f)),
            None => out.push_str(f),
        },
        ExprKind::Param(p) => match zh {
            Some(n) => out.push_str(&(n.param)(p)),
            None => {
                out.push('$');
                out.push_str(p);
            }
        },
        ExprKind::Unary(op, a) => match (op, zh, &a.kind) {
            // `!has(x)` reads as `x 为空`, not `并非x 不为空`.
            (UnaryOp::Not, Some(_), ExprKind::Call(name, args))
                if name == "has" && args.len() == 1 =>
            {
                child(&args[0], 7, out, style);
                out.push_str(" 为空");
            }
            // In words a call is several words: `并非（…）` shows what
            // the negation covers.
            (UnaryOp::Not, Some(_), ExprKind::Call(..)) => {
                out.push_str("并非（");
                write(a, out, style);
                out.push('）');
            }
            _ => {
                match (op, zh) {
                    (UnaryOp::Not, None) => out.push('!'),
                    (UnaryOp::Not, Some(_)) => out.push_str("并非"),
                    (UnaryOp::Neg, _) => out.push('-'),
                }
                child(a, 7, out, style);
            }
        },
        ExprKind::Binary(op, a, b) => {
            let p = op.precedence();
            child(a, p, out, style);
            out.push(' ');
            out.push_str(if zh.is_some() {
                chinese_op(*op)
            } else {
                op.symbol()
            });
            out.push(' ');
            child(b, p + 1, out, style);
        }
        ExprKind::Cond(c, a, b) => {
            if zh.is_some() {
                out.push_str("若 ");
                child(c, 1, out, style);
                out.push_str(" 则 ");
                child(a, 1, out, style);
                out.push_str("，否则 ");
                child(b, 1, out, style);
            } else {
                child(c, 1, out, style);
                // Nested conditionals get parentheses: legal, and readable.
                out.push_str(" ? ");
                child(a, 1, out, style);
                out.push_str(" : ");
                child(b, 1, out, style);
            }
        }
        ExprKind::In(a, items) => {
            child(a, 4, out, style);
            out.push_str(if zh.is_some() { " 属于 [" } else { " in [" });
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(if zh.is_some() { "、" } else { ", " });
                }
                write(item, out, style);
            }
            out.push(']');
        }
        ExprKind::Call(name, args) => match zh {
            Some(_) => call_chinese(name, args, out, style),
            None => {
                out.push_str(name);
                out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(a, out, style);
                }
                out.push(')');
            }
        },
    }
}

/// Function calls read as phrases; unknown names (refused by the checker
/// anyway) read as calls.
fn call_chinese(name: &str, args: &[Expr], out: &mut String, style: &Style<'_>) {
    let arg = |i: usize| {
        let mut s = String::new();
        if let Some(a) = args.get(i) {
            // In a phrase, any operator inside an argument is bracketed.
            child(a, 6, &mut s, style);
        }
        s
    };
    let text = match (name, args.len()) {
        ("days_between", 2) => format!("{} 至 {} 的天数", arg(0), arg(1)),
        ("add_days", 2) => format!("{} 加 {} 天", arg(0), arg(1)),
        ("add_months", 2) => format!("{} 加 {} 个月", arg(0), arg(1)),
        ("years_before", 2) => format!("{} 前 {} 年的同一日", arg(0), arg(1)),
        ("within_years_before", 3) => {
            format!("{} 在 {} 前 {} 年以内（含两端）", arg(0), arg(1), arg(2))
        }
        ("year", 1) => format!("{} 的年份", arg(0)),
        ("month", 1) => format!("{} 的月份", arg(0)),
        ("day", 1) => format!("{} 的日", arg(0)),
        ("date", 1) => format!("{} 的日期", arg(0)),
        ("hour", 1) => format!("{} 的小时", arg(0)),
        ("round_half_up", 2) => format!("{} 四舍五入到 {} 位小数", arg(0), arg(1)),
        ("yuan", 1) => format!("{}（元，四舍五入到分）", arg(0)),
        ("floor", 1) => format!("{} 向下取整", arg(0)),
        ("ceil", 1) => format!("{} 向上取整", arg(0)),
        ("abs", 1) => format!("{} 的绝对值", arg(0)),
        ("min", 2) => format!("{} 与 {} 中较小者", arg(0), arg(1)),
        ("max", 2) => format!("{} 与 {} 中较大者", arg(0), arg(1)),
        ("coalesce", 2) => format!("{}（为空时取 {}）", arg(0), arg(1)),
        ("has", 1) => format!("{} 不为空", arg(0)),
        ("starts_with", 2) => format!("{} 以 {} 开头", arg(0), arg(1)),
        ("ends_with", 2) => format!("{} 以 {} 结尾", arg(0), arg(1)),
        ("contains", 2) => format!("{} 包含 {}", arg(0), arg(1)),
        ("len", 1) => format!("{} 的字数", arg(0)),
        ("in_list", 2) => format!("{} 属于 {} 所列之一", arg(0), arg(1)),
        ("any_in_list", 2) => format!("{} 中有一项属于 {} 所列之一", arg(0), arg(1)),
        ("timestamp_date", 1) => format!("{} 的日期", arg(0)),
        ("timestamp_hour", 1) => format!("{} 的小时", arg(0)),
        ("join", n) if n >= 2 => format!(
            "{} 中不为空者以“{}”连接",
            (1..n).map(arg).collect::<Vec<_>>().join("、"),
            match &args[0].kind {
                ExprKind::Str(s) => s.clone(),
                _ => arg(0),
            }
        ),
        ("list", 2) => format!(
            "{} 按记录顺序以“{}”连接",
            arg(0),
            match &args[1].kind {
                ExprKind::Str(s) => s.clone(),
                _ => arg(1),
            }
        ),
        ("count", 0) => "记录数".to_string(),
        ("count", 1) => format!("满足 {} 的记录数", arg(0)),
        ("sum", 1) => format!("{} 之和", arg(0)),
        ("any", 1) => format!("是否有记录满足 {}", arg(0)),
        ("all", 1) => format!("是否所有记录满足 {}", arg(0)),
        ("min", 1) => format!("{} 的最小值", arg(0)),
        ("max", 1) => format!("{} 的最大值", arg(0)),
        ("collect_distinct", 1) => format!("{} 的不同取值", arg(0)),
        _ => {
            let list: Vec<String> = (0..args.len()).map(arg).collect();
            format!("{name}({})", list.join(", "))
        }
    };
    out.push_str(&text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{Origin, Pos};

    fn read(text: &str) -> String {
        let e = super::super::parser::parse_located(text, &Origin::exact(Pos::new(1, 1))).unwrap();
        let names = Chinese {
            field: &|f| f.to_string(),
            param: &|p| p.to_string(),
            fold: &|_| None,
        };
        chinese(&e, &names)
    }

    #[test]
    fn a_negation_reads_with_what_it_covers() {
        assert_eq!(read("!has(d) || d > 1"), "d 为空 或 d > 1");
        assert_eq!(read("!ok"), "并非ok");
        assert!(
            read("!contains(remark, 'x')").starts_with("并非（"),
            "{}",
            read("!contains(remark, 'x')")
        );
        assert!(read("!contains(remark, 'x')").ends_with('）'));
    }
}
