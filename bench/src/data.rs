//! Benchmark data: the 残保金 sample data (from `jiandu_demo::generate`) and a
//! ten-column tax declaration file for the scan, ingest and memory figures,
//! written row by row so that ten million rows cost no memory to generate.

use anyhow::{Context as _, Result};
use jiandu::dataset::{self, ingest, Schema};
use jiandu::Store;
use jiandu_demo::generate::{credit_code, disability};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Name of the ten-column benchmark dataset.
pub const DECLARATIONS: &str = "tax_declarations";

const DECLARATIONS_SCHEMA: &str = include_str!("../datasets/tax_declarations.toml");

/// The schema of [`DECLARATIONS`].
pub fn declarations_schema() -> Schema {
    Schema::parse("bench/datasets/tax_declarations.toml", DECLARATIONS_SCHEMA)
        .expect("the benchmark schema is valid")
}

/// The schema of a benchmark dataset: ours or a shipped sample schema.
pub fn schema(dataset: &str) -> Option<Schema> {
    if dataset == DECLARATIONS {
        Some(declarations_schema())
    } else {
        jiandu_demo::generate::schema(dataset)
    }
}

/// A tax declaration file written by [`write_declarations`].
#[derive(Debug, Clone)]
pub struct Declarations {
    pub path: PathBuf,
    pub rows: u64,
    /// Rows whose tax paid is below 1% of revenue: the leads of
    /// `scan-one-percent` with its default `min_rate`.
    pub low: u64,
    pub bytes: u64,
}

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

/// Writes `rows` synthetic tax declarations (ten columns, valid credit
/// codes, one row in a hundred paying less than 1% of revenue) to `path`.
pub fn write_declarations(path: &Path, rows: u64, seed: u64) -> Result<Declarations> {
    let file = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
    w.write_record([
        "纳税人识别号",
        "纳税人名称",
        "行政区划代码",
        "行业",
        "所属年度",
        "从业人数",
        "营业收入",
        "已缴税额",
        "申报日期",
        "synthetic",
    ])?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut low = 0;
    let fen = |x: u64| format!("{}.{:02}", x / 100, x % 100);
    for i in 0..rows {
        let code = credit_code(&mut rng, "91", i);
        let name = format!(
            "阿克苏{}{}有限公司（{i}）",
            WORDS[rng.gen_range(0..WORDS.len())],
            WORDS[rng.gen_range(0..WORDS.len())]
        );
        let revenue: u64 = rng.gen_range(100_000..=50_000_000_000);
        // Tax in basis points of revenue: below 100 (1%) for one row in a
        // hundred. Integer division keeps it strictly below or at/above.
        let bp = if i % 100 == 7 {
            low += 1;
            rng.gen_range(0..100)
        } else {
            rng.gen_range(150..=1300)
        };
        let tax = revenue * bp / 10_000;
        let declared = format!(
            "2025-{:02}-{:02}",
            rng.gen_range(1..=5),
            rng.gen_range(1..=28)
        );
        w.write_record([
            code.as_str(),
            name.as_str(),
            &code[2..8],
            INDUSTRIES[rng.gen_range(0..INDUSTRIES.len())],
            "2024",
            &rng.gen_range(1..=3000u32).to_string(),
            &fen(revenue),
            &fen(tax),
            &declared,
            "true",
        ])?;
    }
    let mut inner = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    inner.flush()?;
    let bytes = std::fs::metadata(path)?.len();
    Ok(Declarations {
        path: path.to_path_buf(),
        rows,
        low,
        bytes,
    })
}

/// Registers `dataset`'s schema in `store` and ingests `file` into it.
pub fn ingest_file(store: &Store, dataset: &str, file: &Path) -> Result<ingest::Report> {
    let schema = schema(dataset).with_context(|| format!("no schema for `{dataset}`"))?;
    dataset::register_schema(store, schema)?;
    let report = jiandu::ingest::ingest(
        store,
        dataset,
        file,
        &ingest::Options {
            operator: "jiandu-bench".into(),
            ..Default::default()
        },
        jiandu::policy::store_unit_label(store)?,
    )?;
    Ok(report)
}

/// The host policy of every benchmark store: default limits, except the
/// policy maximum of fuel (the 残保金 model over 1M employers needs more
/// than the default 2·10¹⁰) and room for the leads of a scan of ten
/// million records.
pub const POLICY: &str = "[defaults]\nfuel = 200_000_000_000\nmax_leads = 1_000_000\n";

/// Opens (creating) a benchmark store with [`POLICY`].
pub fn open_store(dir: &Path) -> Result<Store> {
    let store = Store::open(dir)?;
    std::fs::write(store.policy_path(), POLICY)?;
    Ok(store)
}

/// The 残保金 sample data for `employers` employers.
pub fn generate_collision(
    dir: &Path,
    employers: usize,
    seed: u64,
) -> Result<disability::Generated> {
    disability::generate(dir, employers, seed)
        .with_context(|| format!("generating into {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_valid_ten_column_rows_with_one_percent_low() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        let d = write_declarations(&path, 1000, 1).unwrap();
        assert_eq!(d.low, 10);
        let schema = declarations_schema();
        assert_eq!(schema.fields.len(), 10);
        let bytes = std::fs::read(&path).unwrap();
        let parsed = ingest::parse(&schema, &path, &bytes, &ingest::Options::default()).unwrap();
        assert_eq!(parsed.rows.rows.len(), 1000);
        assert_eq!(parsed.warning_count, 0);
    }
}
