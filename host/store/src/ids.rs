//! Chinese identifiers: unified social credit codes (GB 32100-2015) and
//! citizen ID numbers (GB 11643-1999): check characters, validation and
//! generation of synthetic ones.

const CREDIT_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8] = b"10X98765432";

fn credit_value(c: u8) -> Option<u32> {
    CREDIT_ALPHABET
        .iter()
        .position(|&a| a == c)
        .map(|p| p as u32)
}

/// The check character for the first 17 characters of a credit code.
pub fn credit_code_check(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (i, &b) in bytes.iter().enumerate() {
        sum += credit_value(b)? * CREDIT_WEIGHTS[i];
    }
    let check = (31 - sum % 31) % 31;
    Some(CREDIT_ALPHABET[check as usize] as char)
}

/// Why a credit code fails its check, or `None` when it is valid.
pub fn credit_code_problem(code: &str) -> Option<String> {
    if code.len() != 18 || !code.is_ascii() {
        return Some(format!("credit code `{code}` is not 18 characters"));
    }
    if let Some(c) = code.bytes().find(|&b| credit_value(b).is_none()) {
        return Some(format!(
            "credit code `{code}` has `{}`, outside the code alphabet",
            c as char
        ));
    }
    let expected = credit_code_check(&code[..17])?;
    if code.as_bytes()[17] as char != expected {
        return Some(format!(
            "credit code `{code}` has check character `{}`, expected `{expected}`",
            &code[17..]
        ));
    }
    None
}

/// The check character for the first 17 digits of a citizen ID.
pub fn citizen_id_check(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(&b, w)| (b - b'0') as u32 * w)
        .sum();
    Some(ID_CHECK[(sum % 11) as usize] as char)
}

/// Why a citizen ID fails its check, or `None` when it is valid.
pub fn citizen_id_problem(id: &str) -> Option<String> {
    if id.len() != 18 || !id.is_ascii() {
        return Some(format!(
            "ID number `{}` is not 18 characters",
            crate::mask::mask_guess(id)
        ));
    }
    let Some(expected) = citizen_id_check(&id[..17]) else {
        return Some("ID number has non-digits in its first 17 characters".to_string());
    };
    if !is_date_yyyymmdd(&id[6..14]) {
        return Some(format!(
            "ID number {} has an impossible birth date",
            crate::mask::mask(crate::mask::PersonalKind::Id, id)
        ));
    }
    if id.as_bytes()[17].to_ascii_uppercase() as char != expected {
        return Some(format!(
            "ID number {} has a wrong check character",
            crate::mask::mask(crate::mask::PersonalKind::Id, id)
        ));
    }
    None
}

/// `id`, an 18-character ID number ending in its check character `X` or
/// `x`, with that character written `check`; `None` for other text. The
/// standard writes it `X` (GB 11643): `…x` and `…X` are one person.
pub fn citizen_id_spelt(id: &str, check: char) -> Option<String> {
    (id.len() == 18 && (id.ends_with('x') || id.ends_with('X'))).then(|| {
        let mut spelt = id[..17].to_string();
        spelt.push(check);
        spelt
    })
}

/// Whether `text` (ASCII digits) is a date written YYYYMMDD.
fn is_date_yyyymmdd(text: &str) -> bool {
    let number = |digits: &str| digits.parse::<u32>().ok();
    let (Some(year), Some(month), Some(day)) =
        (number(&text[..4]), number(&text[4..6]), number(&text[6..8]))
    else {
        return false;
    };
    chrono::NaiveDate::from_ymd_opt(year as i32, month, day).is_some()
}

/// A valid credit code built from its parts (authority + type digits,
/// 6-digit region, 9-character organisation code).
pub fn make_credit_code(kind: &str, region: &str, org: &str) -> String {
    let first17 = format!("{kind}{region}{org}");
    let check = credit_code_check(&first17).expect("parts use the code alphabet");
    format!("{first17}{check}")
}

/// A valid citizen ID from region, birth date (YYYYMMDD) and sequence.
pub fn make_citizen_id(region: &str, birth: &str, seq: u32) -> String {
    let first17 = format!("{region}{birth}{seq:03}");
    let check = citizen_id_check(&first17).expect("digits");
    format!("{first17}{check}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_credit_codes_are_valid() {
        assert_eq!(credit_code_problem("91350100M000100Y43"), None);
        assert_eq!(credit_code_problem("91110108551385082Q"), None);
        assert!(credit_code_problem("91110108551385082R").is_some());
        assert!(credit_code_problem("9111010855138508IQ").is_some());
    }

    #[test]
    fn known_citizen_id_is_valid() {
        assert_eq!(citizen_id_problem("11010519491231002X"), None);
        assert!(citizen_id_problem("110105194912310021").is_some());
        assert!(citizen_id_problem("110105194913310021").is_some());
    }

    #[test]
    fn birth_dates_in_ids_are_real_dates() {
        for (birth, real) in [
            ("19491231", true),
            ("20000229", true),
            ("19000229", false),
            ("19491301", false),
            ("19490100", false),
        ] {
            let id = make_citizen_id("110105", birth, 2);
            assert_eq!(citizen_id_problem(&id).is_none(), real, "{birth}");
        }
    }

    #[test]
    fn generated_identifiers_pass_their_checks() {
        let code = make_credit_code("91", "350100", "M000100Y4");
        assert_eq!(code, "91350100M000100Y43");
        let id = make_citizen_id("110105", "19491231", 2);
        assert_eq!(id, "11010519491231002X");
    }
}
