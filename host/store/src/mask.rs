//! Masking of personal data in what models see and what leaves the host.
//!
//! - citizen ID: first 6 (the region) and the check character kept
//!   (`110105***********X`). Not the last 4: a model without a clear grant
//!   may be given an ID's derived birth date and sex (schemas' `[[derived]]`)
//!   and put them in a lead beside the masked ID, and the 8 digits a
//!   first-6-last-4 mask hides are exactly the birth date. Hiding the
//!   sequence digits leaves about fifty IDs that fit all three;
//! - phone: first 3 and last 4 kept (`138****5678`);
//! - name: surname kept (`张*`, `欧阳**` is not guessed: one character kept);
//! - other: everything replaced by `*`.

use serde::{Deserialize, Serialize};

/// What kind of personal data a field holds, which decides how it is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonalKind {
    Id,
    Phone,
    Name,
    Other,
}

fn keep_ends(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// Masks `value` as personal data of `kind`.
pub fn mask(kind: PersonalKind, value: &str) -> String {
    match kind {
        PersonalKind::Id => keep_ends(value, 6, 1),
        PersonalKind::Phone => keep_ends(value, 3, 4),
        PersonalKind::Name => {
            let mut chars = value.chars();
            match chars.next() {
                None => String::new(),
                Some(first) => {
                    let rest = chars.count().max(1);
                    std::iter::once(first)
                        .chain(std::iter::repeat_n('*', rest))
                        .collect()
                }
            }
        }
        PersonalKind::Other => "*".repeat(value.chars().count()),
    }
}

/// Masks a value whose kind is not known (lead evidence marked personal):
/// IDs and phone numbers by their shape, anything else keeps its first
/// character.
pub fn mask_guess(value: &str) -> String {
    let n = value.chars().count();
    if n == 18 && looks_like_citizen_id(value) {
        mask(PersonalKind::Id, value)
    } else if n == 11 && value.chars().all(|c| c.is_ascii_digit()) {
        mask(PersonalKind::Phone, value)
    } else {
        mask(PersonalKind::Name, value)
    }
}

/// Whether `s` has the shape of a citizen ID number: 17 digits and a check
/// character.
fn looks_like_citizen_id(s: &str) -> bool {
    s.len() == 18 && s.as_bytes()[..17].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_follow_the_domain_rules() {
        assert_eq!(
            mask(PersonalKind::Id, "11010519491231002X"),
            "110105***********X"
        );
        assert_eq!(mask(PersonalKind::Phone, "13812345678"), "138****5678");
        assert_eq!(mask(PersonalKind::Name, "张三"), "张*");
        assert_eq!(mask(PersonalKind::Name, "张"), "张*");
        assert_eq!(mask(PersonalKind::Other, "abc"), "***");
        assert_eq!(mask(PersonalKind::Id, "123"), "***");
    }

    #[test]
    fn an_id_mask_keeps_nothing_its_derived_values_do_not_already_give_but_the_check() {
        // Region 110105, born 1949-12-31, sequence 002 (odd: male), check X.
        let masked = mask(PersonalKind::Id, "11010519491231002X");
        // The birth date and sex a model may be given, beside the mask,
        // leave the three sequence digits unknown.
        assert_eq!(&masked[6..17], "***********");
        assert_eq!(&masked[..6], "110105");
        assert!(masked.ends_with('X'));
    }

    #[test]
    fn guess_masks_ids_phones_and_names() {
        assert_eq!(mask_guess("11010519491231002X"), "110105***********X");
        assert_eq!(mask_guess("13812345678"), "138****5678");
        assert_eq!(mask_guess("李四光"), "李**");
    }
}
