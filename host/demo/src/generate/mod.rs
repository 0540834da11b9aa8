//! Seeded synthetic department data for the sample models.
//!
//! Every generator is reproducible from its seed, uses identifiers with
//! valid check characters, marks every row `synthetic = true`, plants a known
//! set of violations and near misses, and computes the expected leads with
//! its own implementation of the rule in DOMAIN.md (independent of the
//! model's code), so tests and the demo can compare the two.

pub mod disability;
pub mod drunk;
pub mod land;
pub mod theft;

use crate::dataset::Schema;
use crate::ids;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// The schemas of the sample datasets, as shipped in `datasets/`.
pub const SCHEMAS: &[(&str, &str)] = &[
    (
        "employers",
        include_str!("../../../../datasets/employers.toml"),
    ),
    (
        "social_insurance",
        include_str!("../../../../datasets/social_insurance.toml"),
    ),
    (
        "disabled_employees",
        include_str!("../../../../datasets/disabled_employees.toml"),
    ),
    (
        "fund_payments",
        include_str!("../../../../datasets/fund_payments.toml"),
    ),
    (
        "police_cases",
        include_str!("../../../../datasets/police_cases.toml"),
    ),
    (
        "bac_tests",
        include_str!("../../../../datasets/bac_tests.toml"),
    ),
    (
        "driving_licences",
        include_str!("../../../../datasets/driving_licences.toml"),
    ),
    (
        "prior_records",
        include_str!("../../../../datasets/prior_records.toml"),
    ),
    (
        "land_contracts",
        include_str!("../../../../datasets/land_contracts.toml"),
    ),
    (
        "land_instalments",
        include_str!("../../../../datasets/land_instalments.toml"),
    ),
    (
        "land_payments",
        include_str!("../../../../datasets/land_payments.toml"),
    ),
    (
        "land_bids",
        include_str!("../../../../datasets/land_bids.toml"),
    ),
    (
        "dishonest_debtors",
        include_str!("../../../../datasets/dishonest_debtors.toml"),
    ),
    (
        "theft_incidents",
        include_str!("../../../../datasets/theft_incidents.toml"),
    ),
    (
        "sightings",
        include_str!("../../../../datasets/sightings.toml"),
    ),
    (
        "addresses",
        include_str!("../../../../datasets/addresses.toml"),
    ),
];

/// The shipped schema of `name`.
pub fn schema(name: &str) -> Option<Schema> {
    SCHEMAS.iter().find(|(n, _)| *n == name).map(|(n, text)| {
        Schema::parse(&format!("datasets/{n}.toml"), text).expect("shipped schemas are valid")
    })
}

/// A department file written by a generator.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub dataset: String,
    pub path: PathBuf,
    pub rows: usize,
}

/// Region codes used for synthetic identifiers (Xinjiang Aksu prefecture and
/// a few others).
const REGIONS: &[&str] = &[
    "652901", "652922", "652923", "650102", "650103", "350100", "110108", "440305",
];

const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// The header of the prior-records file both the 醉驾 and the 盗窃
/// generators write part of (the demo merges them into one department file).
pub const PRIOR_RECORDS_HEADER: [&str; 8] = [
    "记录编号",
    "身份证号",
    "姓名",
    "记录类别",
    "决定日期",
    "作出机关",
    "原案件编号",
    "synthetic",
];

/// A valid synthetic credit code; `serial` keeps codes unique.
pub fn credit_code(rng: &mut ChaCha8Rng, kind: &str, serial: u64) -> String {
    let region = REGIONS[rng.gen_range(0..REGIONS.len())];
    let mut org = String::with_capacity(9);
    // Three random characters, then six from the serial (base 31): unique.
    for _ in 0..3 {
        org.push(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char);
    }
    let mut s = serial;
    let mut tail = [b'0'; 6];
    for t in tail.iter_mut().rev() {
        *t = CODE_ALPHABET[(s % 31) as usize];
        s /= 31;
    }
    org.push_str(std::str::from_utf8(&tail).expect("ascii"));
    ids::make_credit_code(kind, region, &org)
}

/// A valid synthetic citizen ID; `serial` keeps IDs unique.
pub fn citizen_id(rng: &mut ChaCha8Rng, serial: u64) -> String {
    let region = REGIONS[rng.gen_range(0..REGIONS.len())];
    let year = rng.gen_range(1960..2002);
    let month = rng.gen_range(1..=12);
    let day = rng.gen_range(1..=28);
    // The birth date varies with the serial so the 3-digit sequence suffices.
    let birth = chrono::NaiveDate::from_ymd_opt(year, month, day).expect("valid")
        + chrono::Duration::days((serial / 1000) as i64 % 3000);
    ids::make_citizen_id(
        region,
        &birth.format("%Y%m%d").to_string(),
        (serial % 1000) as u32,
    )
}

const SURNAMES: &[&str] = &[
    "王",
    "李",
    "张",
    "刘",
    "陈",
    "杨",
    "赵",
    "黄",
    "周",
    "吴",
    "买买提",
    "阿不都",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "艾力", "古丽",
];

/// A synthetic personal name.
pub fn person_name(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{}{}",
        SURNAMES[rng.gen_range(0..SURNAMES.len())],
        GIVEN[rng.gen_range(0..GIVEN.len())]
    )
}

/// Money rounded half-up to the fen (the generators' own rounding).
pub(crate) fn round2(x: rust_decimal::Decimal) -> rust_decimal::Decimal {
    x.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// The same calendar day `n` years earlier (29 February → 28 February): the
/// generators' own reading, independent of `jiandu_sdk::dates`.
pub(crate) fn years_earlier(d: chrono::NaiveDate, n: i32) -> chrono::NaiveDate {
    use chrono::Datelike;
    chrono::NaiveDate::from_ymd_opt(d.year() - n, d.month(), d.day()).unwrap_or_else(|| {
        chrono::NaiveDate::from_ymd_opt(d.year() - n, 2, 28).expect("28 February exists")
    })
}

/// Writes CSV rows in UTF-8 (with a BOM when `bom`) or GBK.
pub fn write_csv(
    path: &Path,
    header: &[&str],
    rows: &[Vec<String>],
    gbk: bool,
    bom: bool,
) -> std::io::Result<()> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r)?;
    }
    let text = String::from_utf8(
        w.into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    let bytes = if gbk {
        let (b, _, unmappable) = encoding_rs::GBK.encode(&text);
        if unmappable {
            return Err(std::io::Error::other(
                "text has characters GBK cannot encode",
            ));
        }
        b.into_owned()
    } else if bom {
        let mut b = b"\xEF\xBB\xBF".to_vec();
        b.extend_from_slice(text.as_bytes());
        b
    } else {
        text.into_bytes()
    };
    std::fs::write(path, bytes)
}

pub use jiandu_store::dataset::xlsx::{write_xlsx, XlsxCell};

/// Concatenates CSV files written by [`write_csv`] with the same header and
/// encoding (the first file's BOM is kept) into `out`.
pub fn merge_csv(parts: &[PathBuf], out: &Path) -> std::io::Result<usize> {
    let mut bytes = Vec::new();
    let mut rows = 0;
    for (i, part) in parts.iter().enumerate() {
        let data = std::fs::read(part)?;
        let body = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&data);
        let mut lines = body.split_inclusive(|&b| b == b'\n');
        let header = lines.next().unwrap_or_default();
        if i == 0 {
            if data.starts_with(b"\xEF\xBB\xBF") {
                bytes.extend_from_slice(b"\xEF\xBB\xBF");
            }
            bytes.extend_from_slice(header);
        }
        for line in lines {
            bytes.extend_from_slice(line);
            rows += 1;
        }
    }
    std::fs::write(out, bytes)?;
    Ok(rows)
}

/// Unique synthetic citizen IDs: generators that share a dataset (prior
/// records) draw from disjoint serial ranges, and a repeat is redrawn.
pub struct People {
    serial: u64,
    seen: std::collections::HashSet<String>,
}

impl People {
    /// IDs drawn from serials starting at `first_serial`.
    pub fn new(first_serial: u64) -> People {
        People {
            serial: first_serial,
            seen: Default::default(),
        }
    }

    /// A new valid ID not handed out before by this generator.
    pub fn next_id(&mut self, rng: &mut ChaCha8Rng) -> String {
        loop {
            self.serial += 1;
            let id = citizen_id(rng, self.serial);
            if self.seen.insert(id.clone()) {
                return id;
            }
        }
    }
}

/// `YYYY-MM-DD` text of a date.
pub fn ymd(d: chrono::NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A calendar date from constant parts.
pub fn date(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// Writes JSON Lines.
pub fn write_jsonl(path: &Path, rows: &[serde_json::Value]) -> std::io::Result<()> {
    let mut out = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut out, r)?;
        out.push(b'\n');
    }
    std::fs::write(path, out)
}

/// The department files a generator writes into one folder, each named after
/// its dataset, listed in the order written.
pub(crate) struct Files<'a> {
    dir: &'a Path,
    written: Vec<DataFile>,
}

impl<'a> Files<'a> {
    /// No files yet, to be written into `dir`.
    pub(crate) fn new(dir: &'a Path) -> Files<'a> {
        Files {
            dir,
            written: Vec::new(),
        }
    }

    /// Writes `<dataset>.csv` (see [`write_csv`]).
    pub(crate) fn csv(
        &mut self,
        dataset: &str,
        header: &[&str],
        rows: &[Vec<String>],
        gbk: bool,
        bom: bool,
    ) -> std::io::Result<()> {
        let path = self.dir.join(format!("{dataset}.csv"));
        write_csv(&path, header, rows, gbk, bom)?;
        self.list(dataset, path, rows.len());
        Ok(())
    }

    /// Writes `<dataset>.jsonl`.
    pub(crate) fn jsonl(
        &mut self,
        dataset: &str,
        rows: &[serde_json::Value],
    ) -> std::io::Result<()> {
        let path = self.dir.join(format!("{dataset}.jsonl"));
        write_jsonl(&path, rows)?;
        self.list(dataset, path, rows.len());
        Ok(())
    }

    /// Writes `<dataset>.xlsx` with one sheet.
    pub(crate) fn xlsx(
        &mut self,
        dataset: &str,
        sheet: &str,
        header: &[&str],
        rows: &[Vec<XlsxCell>],
    ) -> std::io::Result<()> {
        let path = self.dir.join(format!("{dataset}.xlsx"));
        write_xlsx(&path, sheet, header, rows)?;
        self.list(dataset, path, rows.len());
        Ok(())
    }

    /// Records a file written.
    fn list(&mut self, dataset: &str, path: PathBuf, rows: usize) {
        self.written.push(DataFile {
            dataset: dataset.to_string(),
            path,
            rows,
        });
    }

    /// The files written, in order.
    pub(crate) fn into_list(self) -> Vec<DataFile> {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn synthetic_identifiers_are_valid_and_unique() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for i in 0..5000 {
            let code = credit_code(&mut rng, "91", i);
            assert_eq!(ids::credit_code_problem(&code), None, "{code}");
            assert!(seen.insert(code));
            let id = citizen_id(&mut rng, i);
            assert_eq!(ids::citizen_id_problem(&id), None, "{id}");
        }
    }

    #[test]
    fn shipped_schemas_parse() {
        for (name, _) in SCHEMAS {
            assert_eq!(schema(name).unwrap().name, *name);
        }
    }
}
