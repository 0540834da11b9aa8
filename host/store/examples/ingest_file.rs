//! Ingests one file into a fresh store in a temporary folder, the library
//! call `jiandu dataset ingest` makes (stage, then commit), and prints the
//! rows per second: a way to time and profile ingest building only this
//! crate.
//!
//! ```text
//! ingest_file <schema.toml> <file> [store]
//!                                      ingest <file> with that schema
//!                                      (into <store>, kept, if given)
//! ingest_file gen <rows> <file.csv>    write the benchmark's ten-column
//!                                      declarations (bench/src/data.rs)
//! ingest_file gen-disabled <rows> <file.csv>
//!                                      write rows shaped like a
//!                                      disabled_employees file
//! ```
//!
//! `gen` writes rows of the benchmark's shape (valid credit codes, a name,
//! the region code, an industry, year, staff, revenue, tax, a date, a
//! flag) with a generator of its own: the same sizes, not the same bytes.
//! Its schema is `bench/datasets/tax_declarations.toml`.
//!
//! `gen-disabled` writes rows of `datasets/disabled_employees.toml`, three
//! personal fields among eight columns: about three employees per
//! employer (valid credit codes), one row per person (a valid citizen ID,
//! a Chinese name, often shared, a certificate number), a grade from 1 to
//! 4, whether insured, a monthly wage with two decimals, year 2023. UTF-8,
//! Chinese headers; about 77 bytes a row, as the real file.

use jiandu_store::dataset::{self, ingest, Schema};
use jiandu_store::ids::{make_citizen_id, make_credit_code};
use jiandu_store::Store;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [gen, rows, file] if gen == "gen" => generate(Path::new(file), rows.parse()?),
        [gen, rows, file] if gen == "gen-disabled" => {
            generate_disabled(Path::new(file), rows.parse()?)
        }
        [schema, file] => ingest_one(Path::new(schema), Path::new(file), None),
        [schema, file, store] => {
            ingest_one(Path::new(schema), Path::new(file), Some(Path::new(store)))
        }
        _ => Err("usage: ingest_file <schema.toml> <file> [store] | gen <rows> <file.csv> | gen-disabled <rows> <file.csv>".into()),
    }
}

/// Ingests `file` into `store` (kept, with its secret: two ingests into
/// copies of one store write comparable runs), or into a fresh store in a
/// temporary folder.
fn ingest_one(schema: &Path, file: &Path, store: Option<&Path>) -> Result<()> {
    let schema = Schema::parse(
        &schema.display().to_string(),
        &std::fs::read_to_string(schema)?,
    )?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(store.unwrap_or(dir.path()))?;
    let name = schema.name.clone();
    dataset::register_schema(&store, schema)?;
    let opts = ingest::Options {
        operator: "ingest_file".into(),
        ..Default::default()
    };
    let start = Instant::now();
    let (staged, report) = ingest::stage(&store, &name, file, &opts)?;
    let info = staged.commit(&store)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} rows in {secs:.3} s: {:.0} rows/s ({} warnings, digest {})",
        info.records,
        info.records as f64 / secs,
        report.warning_count,
        &info.digest[..16],
    );
    Ok(())
}

const REGIONS: &[&str] = &[
    "652901", "652922", "652923", "650102", "650103", "350100", "110108", "440305",
];
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const INDUSTRIES: &[&str] = &[
    "批发和零售业",
    "制造业",
    "建筑业",
    "农、林、牧、渔业",
    "信息传输、软件和信息技术服务业",
    "交通运输、仓储和邮政业",
    "住宿和餐饮业",
    "租赁和商务服务业",
];
const WORDS: &[&str] = &[
    "华信", "天山", "丝路", "红旗", "金穗", "新源", "恒达", "瑞丰", "宏远", "博文", "塔河", "温宿",
];

/// splitmix64: reproducible rows without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

/// A unique, valid credit code for row `serial`.
fn credit_code(rng: &mut Rng, serial: u64) -> String {
    let region = rng.pick(REGIONS);
    let mut org = String::with_capacity(9);
    for _ in 0..3 {
        org.push(CODE_ALPHABET[rng.below(31) as usize] as char);
    }
    let mut s = serial;
    let mut tail = [b'0'; 6];
    for t in tail.iter_mut().rev() {
        *t = CODE_ALPHABET[(s % 31) as usize];
        s /= 31;
    }
    org.extend(tail.iter().map(|&b| b as char));
    make_credit_code("91", region, &org)
}

fn generate(path: &Path, rows: u64) -> Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(
        w,
        "纳税人识别号,纳税人名称,行政区划代码,行业,所属年度,从业人数,营业收入,已缴税额,申报日期,synthetic"
    )?;
    let mut rng = Rng(1);
    let fen = |x: u64| format!("{}.{:02}", x / 100, x % 100);
    for i in 0..rows {
        let code = credit_code(&mut rng, i);
        let name = format!(
            "阿克苏{}{}有限公司（{i}）",
            rng.pick(WORDS),
            rng.pick(WORDS)
        );
        let revenue = 100_000 + rng.below(50_000_000_000 - 100_000);
        let bp = if i % 100 == 7 {
            rng.below(100)
        } else {
            150 + rng.below(1150)
        };
        let industry = rng.pick(INDUSTRIES);
        writeln!(
            w,
            "{code},{name},{},{industry},2024,{},{},{},2025-{:02}-{:02},true",
            &code[2..8],
            1 + rng.below(3000),
            fen(revenue),
            fen(revenue * bp / 10_000),
            1 + rng.below(5),
            1 + rng.below(28),
        )?;
    }
    w.flush()?;
    Ok(())
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "艾", "买", "阿", "努",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "江", "热", "古", "丽", "提", "木",
];
/// Birth dates a citizen ID is given from: every day of 1960–1999.
const BIRTH_DAYS: u64 = 40 * 365;

/// A valid citizen ID, unique per `serial` (below 14.6M): the birth day
/// and sequence number are taken from it.
fn citizen_id(rng: &mut Rng, serial: u64) -> String {
    let region = rng.pick(REGIONS);
    let born = chrono::NaiveDate::from_ymd_opt(1960, 1, 1).expect("a date")
        + chrono::Days::new(serial % BIRTH_DAYS);
    let seq = (serial / BIRTH_DAYS) % 1000;
    make_citizen_id(region, &born.format("%Y%m%d").to_string(), seq as u32)
}

fn generate_disabled(path: &Path, rows: u64) -> Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(
        w,
        "用人单位统一社会信用代码,年度,身份证号,姓名,残疾人证号,残疾等级,是否缴纳社保,月工资"
    )?;
    let mut rng = Rng(7);
    let mut employer = credit_code(&mut rng, 0);
    let mut employers = 0;
    for i in 0..rows {
        // One to five employees each, three on average.
        if i > 0 && rng.below(3) == 0 {
            employers += 1;
            employer = credit_code(&mut rng, employers);
        }
        let id = citizen_id(&mut rng, i);
        let mut name = rng.pick(SURNAMES).to_string();
        for _ in 0..1 + rng.below(2) {
            name.push_str(rng.pick(GIVEN));
        }
        let grade = 1 + rng.below(4);
        let certificate = format!("{id}{}{grade}", 1 + rng.below(7));
        let insured = if rng.below(10) < 8 { "是" } else { "否" };
        let wage = 180_000 + rng.below(600_000);
        writeln!(
            w,
            "{employer},2023,{id},{name},{certificate},{grade},{insured},{}.{:02}",
            wage / 100,
            wage % 100,
        )?;
    }
    w.flush()?;
    Ok(())
}
