//! Ingests one file into a fresh store in a temporary folder, the library
//! call `jiandu dataset ingest` makes (stage, then commit), and prints the
//! rows per second: a way to time and profile ingest building only this
//! crate.
//!
//! ```text
//! ingest_file <schema.toml> <file>     ingest <file> with that schema
//! ingest_file gen <rows> <file.csv>    write the benchmark's ten-column
//!                                      declarations (bench/src/data.rs)
//! ```
//!
//! `gen` writes rows of the benchmark's shape (valid credit codes, a name,
//! the region code, an industry, year, staff, revenue, tax, a date, a
//! flag) with a generator of its own: the same sizes, not the same bytes.
//! Its schema is `bench/datasets/tax_declarations.toml`.

use jiandu_store::dataset::{self, ingest, Schema};
use jiandu_store::ids::make_credit_code;
use jiandu_store::Store;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [gen, rows, file] if gen == "gen" => generate(Path::new(file), rows.parse()?),
        [schema, file] => ingest_one(Path::new(schema), Path::new(file)),
        _ => Err("usage: ingest_file <schema.toml> <file> | gen <rows> <file.csv>".into()),
    }
}

fn ingest_one(schema: &Path, file: &Path) -> Result<()> {
    let schema = Schema::parse(
        &schema.display().to_string(),
        &std::fs::read_to_string(schema)?,
    )?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
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
