//! A model for the output tests: it emits one lead whose title, evidence
//! and log line are its parameters, so a test decides exactly what text a
//! model hands the host, control characters included (written in the
//! parameters as `\xNN` or `\u{…}`, which the model decodes).

use jiandu_sdk::{export_model, Context, Lead, Model, Result};

pub struct Printer;

impl Model for Printer {
    fn run(ctx: &mut Context) -> Result<()> {
        let text = |name: &str| -> Result<String> { Ok(unescape(&ctx.param::<String>(name)?)) };
        let log = text("log")?;
        if !log.is_empty() {
            match ctx.param::<String>("log_level")?.as_str() {
                "debug" => ctx.debug(&log),
                "warn" => ctx.warn(&log),
                _ => ctx.info(&log),
            }
        }
        let mut lead = Lead::new(text("subject")?)
            .title(text("title")?)
            .evidence(text("evidence_name")?, text("evidence_value")?);
        let personal = text("personal")?;
        if !personal.is_empty() {
            lead = lead.personal_evidence("name", personal);
        }
        ctx.emit(lead)?;
        let fail = text("fail")?;
        if !fail.is_empty() {
            if ctx.param::<String>("fail_as")? == "error" {
                return Err(jiandu_sdk::Error::msg(fail));
            }
            panic!("{fail}");
        }
        Ok(())
    }
}

/// Decodes `\xNN` (two hex digits) and `\u{…}` escapes; anything else,
/// a lone backslash included, stays as it is.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        let decoded = if let Some(hex) = tail.strip_prefix('x').and_then(|t| t.get(..2)) {
            u32::from_str_radix(hex, 16).ok().map(|n| (n, 3))
        } else if let Some(body) = tail.strip_prefix("u{") {
            body.find('}').and_then(|end| {
                u32::from_str_radix(&body[..end], 16)
                    .ok()
                    .map(|n| (n, end + 3))
            })
        } else {
            None
        };
        match decoded.and_then(|(n, len)| char::from_u32(n).map(|c| (c, len))) {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('\\');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

export_model!(Printer);

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn escapes_decode_and_the_rest_stays() {
        assert_eq!(unescape("a\\x1b[31m\\u{7}b"), "a\u{1b}[31m\u{7}b");
        assert_eq!(unescape("\\u{9b}残"), "\u{9b}残");
        assert_eq!(unescape("C:\\path\\xZZ\\"), "C:\\path\\xZZ\\");
    }
}
