//! The SQLite baseline of the 残保金 collision: the same generated files
//! loaded into indexed tables, and the rule of
//! `plugins/disability-fund-arrears/src/rule.rs` as one SQL query.
//!
//! Money is exact: amounts are loaded as integer fen (every source amount
//! has at most two decimals; a value with more is refused), ratios as
//! integer millionths, and the whole assessment — W rounded half-up to the
//! fen, the relief tiers, the small-enterprise exemption, the amount due
//! rounded half-up to the fen, the gap — is integer arithmetic inside SQL.
//! No REAL is involved anywhere, so SQLite's answer can be compared with
//! the model's to the fen.
//!
//! The primary keys of the datasets are the tables' clustered keys, and
//! every join and filter of the query is on a prefix of one of them.

use anyhow::{bail, ensure, Context as _, Result};
use jiandu::dataset::ingest::{decode_text, Encoding};
use rusqlite::{named_params, Connection};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The tables, by dataset name, clustered on their primary keys (`WITHOUT
/// ROWID`): like a Jiandu dataset version, each table is stored sorted by
/// its key, so the per-employer aggregates read neighbouring rows. (With
/// rowid tables and the same keys as secondary indexes, every index entry
/// costs a random table lookup and the query is several times slower.) The
/// columns are in the order of the generated files' columns, so that the
/// `sqlite3` tool's `.import` fills them by position (`crate::ingest4`).
pub const TABLES: [(&str, &str); 4] = [
    (
        "employers",
        "CREATE TABLE employers (credit_code TEXT NOT NULL PRIMARY KEY, name TEXT, entity_type TEXT,
                        status TEXT, region TEXT, legal_rep TEXT, synthetic INTEGER) WITHOUT ROWID;",
    ),
    (
        "social_insurance",
        "CREATE TABLE social_insurance (credit_code TEXT NOT NULL, year INTEGER NOT NULL, staff INTEGER,
                               wage_total_fen INTEGER, synthetic INTEGER,
                               PRIMARY KEY (credit_code, year)) WITHOUT ROWID;",
    ),
    (
        "disabled_employees",
        "CREATE TABLE disabled_employees (employer_credit_code TEXT NOT NULL, year INTEGER NOT NULL,
                                 person_id TEXT NOT NULL, person_name TEXT, certificate_no TEXT,
                                 grade INTEGER, insured INTEGER, monthly_wage_fen INTEGER,
                                 synthetic INTEGER,
                                 PRIMARY KEY (employer_credit_code, year, person_id)) WITHOUT ROWID;",
    ),
    (
        "fund_payments",
        "CREATE TABLE fund_payments (credit_code TEXT NOT NULL, levy_year INTEGER NOT NULL,
                            payment_id TEXT NOT NULL, amount_fen INTEGER, paid_on TEXT,
                            synthetic INTEGER,
                            PRIMARY KEY (credit_code, levy_year, payment_id)) WITHOUT ROWID;",
    ),
];

/// The `CREATE TABLE` statement of `dataset`'s table in [`TABLES`].
pub fn create_table(dataset: &str) -> Option<&'static str> {
    TABLES
        .iter()
        .find(|(name, _)| *name == dataset)
        .map(|(_, sql)| *sql)
}

/// Statistics for the query planner once the data is in.
const INDEXES: &str = "ANALYZE;";

/// The assessment, shared by both query forms; `base` has one row per
/// employer with a headcount: enterprise, staff, wage_fen (W, capped),
/// counted (D) and paid_fen.
const ASSESS: &str = "
assessed AS (
  SELECT credit_code, staff, wage_fen, counted, paid_fen,
         staff * :ratio_u - counted * 1000000 AS short_u,
         CASE WHEN NOT :relief THEN 10
              WHEN counted * 1000000 >= staff * :low_u THEN 5
              ELSE 9 END AS relief_t
  FROM base
  WHERE NOT (:relief AND enterprise AND staff <= :small_staff)
),
due AS (
  -- shortfall × W × relief in fen is short_u × wage_fen × relief_t / 10^7;
  -- (2x + 10^7) / (2 × 10^7) rounds it half-up in integer arithmetic.
  SELECT credit_code, paid_fen,
         (2 * short_u * wage_fen * relief_t + 10000000) / 20000000 AS due_fen
  FROM assessed
  WHERE short_u > 0
)
SELECT credit_code, due_fen - paid_fen AS gap_fen
FROM due
WHERE due_fen > paid_fen
ORDER BY credit_code
";

/// `base` with pre-aggregated disabled employees and payments joined in.
const BASE_GROUPED: &str = "
WITH d AS (
  SELECT employer_credit_code AS code,
         SUM(CASE WHEN insured = 0 OR monthly_wage_fen < :min_wage_fen THEN 0
                  WHEN grade <= 2 THEN 2 ELSE 1 END) AS counted
  FROM disabled_employees WHERE year = :data_year
  GROUP BY employer_credit_code
),
p AS (
  SELECT credit_code AS code, SUM(amount_fen) AS paid_fen
  FROM fund_payments WHERE levy_year = :levy_year AND paid_on <= :as_of
  GROUP BY credit_code
),
base AS (
  SELECT e.credit_code, e.entity_type = '企业' AS enterprise, s.staff,
         MIN((2 * s.wage_total_fen + s.staff) / (2 * s.staff), :cap_fen) AS wage_fen,
         COALESCE(d.counted, 0) AS counted, COALESCE(p.paid_fen, 0) AS paid_fen
  FROM employers e
  JOIN social_insurance s ON s.credit_code = e.credit_code AND s.year = :data_year
  LEFT JOIN d ON d.code = e.credit_code
  LEFT JOIN p ON p.code = e.credit_code
  WHERE s.staff > 0
),
";

/// `base` with one indexed subquery per employer for each aggregate.
const BASE_CORRELATED: &str = "
WITH base AS (
  SELECT e.credit_code, e.entity_type = '企业' AS enterprise, s.staff,
         MIN((2 * s.wage_total_fen + s.staff) / (2 * s.staff), :cap_fen) AS wage_fen,
         (SELECT COALESCE(SUM(CASE WHEN d.insured = 0 OR d.monthly_wage_fen < :min_wage_fen THEN 0
                                   WHEN d.grade <= 2 THEN 2 ELSE 1 END), 0)
            FROM disabled_employees d
           WHERE d.employer_credit_code = e.credit_code AND d.year = :data_year) AS counted,
         (SELECT COALESCE(SUM(p.amount_fen), 0)
            FROM fund_payments p
           WHERE p.credit_code = e.credit_code AND p.levy_year = :levy_year
             AND p.paid_on <= :as_of) AS paid_fen
  FROM employers e
  JOIN social_insurance s ON s.credit_code = e.credit_code AND s.year = :data_year
  WHERE s.staff > 0
),
";

/// The two ways a unit would write the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Aggregate each table once (GROUP BY), then join.
    Grouped,
    /// One indexed subquery per employer and aggregate.
    Correlated,
}

impl Form {
    pub const ALL: [Form; 2] = [Form::Grouped, Form::Correlated];

    pub fn name(self) -> &'static str {
        match self {
            Form::Grouped => "joins + GROUP BY",
            Form::Correlated => "correlated subqueries",
        }
    }

    /// The full SQL text of this form.
    pub fn sql(self) -> String {
        let base = match self {
            Form::Grouped => BASE_GROUPED,
            Form::Correlated => BASE_CORRELATED,
        };
        format!("{}\n{}", base.trim_end(), ASSESS.trim_start())
    }
}

/// The model's parameters in the integer units of the query.
#[derive(Debug, Clone)]
pub struct Params {
    pub levy_year: i64,
    pub data_year: i64,
    pub ratio_u: i64,
    pub low_u: i64,
    pub cap_fen: i64,
    pub min_wage_fen: i64,
    pub small_staff: i64,
    pub relief: bool,
    pub as_of: String,
}

fn scaled(name: &str, text: &str, scale: i64) -> Result<i64> {
    let d: Decimal = text.parse().with_context(|| format!("{name} = `{text}`"))?;
    let x = d * Decimal::from(scale);
    ensure!(
        x.fract().is_zero(),
        "{name} = {text} has more decimals than the SQL baseline keeps (1/{scale})"
    );
    i64::try_from(x).with_context(|| format!("{name} = {text} is out of range"))
}

impl Params {
    /// From the model's resolved parameters (`name` → text).
    pub fn from_model(p: &BTreeMap<String, String>) -> Result<Params> {
        let get = |k: &str| -> Result<&str> {
            p.get(k)
                .map(String::as_str)
                .with_context(|| format!("the model has no parameter `{k}`"))
        };
        let int = |k: &str| -> Result<i64> {
            get(k)?.parse().with_context(|| format!("parameter `{k}`"))
        };
        let levy_year = int("levy_year")?;
        let cap: Decimal = get("local_avg_wage")?.parse::<Decimal>()?
            * get("wage_cap_multiple")?.parse::<Decimal>()?;
        Ok(Params {
            levy_year,
            data_year: levy_year - 1,
            ratio_u: scaled("ratio", get("ratio")?, 1_000_000)?,
            low_u: scaled("relief_low_ratio", get("relief_low_ratio")?, 1_000_000)?,
            cap_fen: scaled("wage cap", &cap.to_string(), 100)?,
            min_wage_fen: scaled("min_monthly_wage", get("min_monthly_wage")?, 100)?,
            small_staff: int("small_enterprise_staff")?,
            relief: (int("relief_first_year")?..=int("relief_last_year")?).contains(&levy_year),
            as_of: get("as_of")?.to_string(),
        })
    }
}

/// How long loading took.
#[derive(Debug, Clone)]
pub struct Load {
    pub rows: u64,
    pub insert: Duration,
    pub index: Duration,
    pub db_bytes: u64,
}

/// Opens (creating) the database with the settings of a careful bulk
/// load: no journal, no fsync, and the same 256 MiB of page cache the
/// Jiandu store gets.
pub fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("{}", path.display()))?;
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}

fn db_bytes(conn: &Connection) -> Result<u64> {
    let bytes: i64 = conn.query_row(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        [],
        |r| r.get(0),
    )?;
    Ok(bytes as u64)
}

fn fen(file: &str, line: usize, text: &str) -> Result<i64> {
    scaled(&format!("{file}:{line}"), text, 100)
}

fn yes(text: &str) -> i64 {
    matches!(text.trim(), "true" | "1" | "是" | "yes") as i64
}

/// Reads a generated CSV file (UTF-8, BOM or GBK) and calls `row` with the
/// line number and the cells in the order of `columns` (header names).
fn read_csv(
    path: &Path,
    columns: &[&str],
    mut row: impl FnMut(usize, &[&str]) -> Result<()>,
) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let text = decode_text(path, &bytes, Encoding::Auto)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers()?.clone();
    let at: Vec<usize> = columns
        .iter()
        .map(|c| {
            headers
                .iter()
                .position(|h| h.trim() == *c)
                .with_context(|| format!("{}: no column `{c}`", path.display()))
        })
        .collect::<Result<_>>()?;
    let mut record = csv::StringRecord::new();
    let mut line = 1;
    while reader.read_record(&mut record)? {
        line += 1;
        let cells: Vec<&str> = at.iter().map(|&i| record.get(i).unwrap_or("")).collect();
        row(line, &cells)?;
    }
    Ok(())
}

/// Loads the four generated files in `dir` and indexes them.
pub fn load(conn: &mut Connection, dir: &Path) -> Result<Load> {
    let t = Instant::now();
    for (_, sql) in TABLES {
        conn.execute_batch(sql)?;
    }
    let tx = conn.transaction()?;
    let mut rows = 0u64;
    {
        let mut st = tx.prepare("INSERT INTO employers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
        let cols = [
            "统一社会信用代码",
            "单位名称",
            "单位类型",
            "登记状态",
            "行政区划代码",
            "法定代表人",
            "synthetic",
        ];
        read_csv(&dir.join("employers.csv"), &cols, |_, c| {
            st.execute((c[0], c[1], c[2], c[3], c[4], c[5], yes(c[6])))?;
            rows += 1;
            Ok(())
        })?;
        let mut st = tx.prepare("INSERT INTO social_insurance VALUES (?1, ?2, ?3, ?4, ?5)")?;
        let cols = ["credit_code", "year", "staff", "wage_total", "synthetic"];
        read_csv(&dir.join("social_insurance.csv"), &cols, |line, c| {
            let year: i64 = c[1].parse()?;
            let staff: i64 = c[2].parse()?;
            st.execute((
                c[0],
                year,
                staff,
                fen("social_insurance.csv", line, c[3])?,
                yes(c[4]),
            ))?;
            rows += 1;
            Ok(())
        })?;
        let mut st = tx.prepare(
            "INSERT INTO disabled_employees VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let cols = [
            "用人单位统一社会信用代码",
            "年度",
            "身份证号",
            "姓名",
            "残疾人证号",
            "残疾等级",
            "是否缴纳社保",
            "月工资",
            "synthetic",
        ];
        read_csv(&dir.join("disabled_employees.csv"), &cols, |line, c| {
            let year: i64 = c[1].parse()?;
            let grade: i64 = c[5].parse()?;
            st.execute((
                c[0],
                year,
                c[2],
                c[3],
                c[4],
                grade,
                yes(c[6]),
                fen("disabled_employees.csv", line, c[7])?,
                yes(c[8]),
            ))?;
            rows += 1;
            Ok(())
        })?;
        let mut st = tx.prepare("INSERT INTO fund_payments VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        let path = dir.join("fund_payments.jsonl");
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("fund_payments.jsonl:{}", i + 1))?;
            let s = |k: &str| -> Result<String> {
                Ok(match &v[k] {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => bail!("fund_payments.jsonl:{}: no `{k}`", i + 1),
                    other => other.to_string(),
                })
            };
            st.execute((
                s("credit_code")?,
                s("levy_year")?.parse::<i64>()?,
                s("payment_id")?,
                fen("fund_payments.jsonl", i + 1, &s("amount")?)?,
                s("paid_on")?,
                yes(&s("synthetic")?),
            ))?;
            rows += 1;
        }
    }
    tx.commit()?;
    let insert = t.elapsed();
    let t = Instant::now();
    conn.execute_batch(INDEXES)?;
    let index = t.elapsed();
    Ok(Load {
        rows,
        insert,
        index,
        db_bytes: db_bytes(conn)?,
    })
}

/// Loads the ten-column tax declaration file into one table with the same
/// two indexes as the dataset (primary key and region); the baseline of
/// the ingest figure. Amounts become fen; nothing else is checked.
pub fn load_declarations(conn: &mut Connection, path: &Path) -> Result<Load> {
    let t = Instant::now();
    conn.execute_batch(
        "CREATE TABLE tax_declarations (credit_code TEXT NOT NULL, name TEXT, region TEXT,
            industry TEXT, year INTEGER, staff INTEGER, revenue_fen INTEGER, tax_paid_fen INTEGER,
            declared_on TEXT, synthetic INTEGER);",
    )?;
    let tx = conn.transaction()?;
    let mut rows = 0u64;
    {
        let mut st = tx.prepare(
            "INSERT INTO tax_declarations VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        let cols = [
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
        ];
        read_csv(path, &cols, |line, c| {
            let year: i64 = c[4].parse()?;
            let staff: i64 = c[5].parse()?;
            st.execute((
                c[0],
                c[1],
                c[2],
                c[3],
                year,
                staff,
                fen("tax_declarations.csv", line, c[6])?,
                fen("tax_declarations.csv", line, c[7])?,
                c[8],
                yes(c[9]),
            ))?;
            rows += 1;
            Ok(())
        })?;
    }
    tx.commit()?;
    let insert = t.elapsed();
    let t = Instant::now();
    conn.execute_batch(
        "CREATE UNIQUE INDEX tax_declarations_pk ON tax_declarations (credit_code);
         CREATE INDEX tax_declarations_by_region ON tax_declarations (region);",
    )?;
    let index = t.elapsed();
    Ok(Load {
        rows,
        insert,
        index,
        db_bytes: db_bytes(conn)?,
    })
}

/// Runs the query in `form`; returns subject → gap in yuan, and the time
/// the query took (prepare, execute, read every row).
pub fn query(
    conn: &Connection,
    form: Form,
    p: &Params,
) -> Result<(Duration, BTreeMap<String, Decimal>)> {
    let t = Instant::now();
    let mut st = conn.prepare(&form.sql())?;
    let mut rows = st.query(named_params! {
        ":data_year": p.data_year,
        ":levy_year": p.levy_year,
        ":ratio_u": p.ratio_u,
        ":low_u": p.low_u,
        ":cap_fen": p.cap_fen,
        ":min_wage_fen": p.min_wage_fen,
        ":small_staff": p.small_staff,
        ":relief": p.relief,
        ":as_of": p.as_of,
    })?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let code: String = r.get(0)?;
        let gap: i64 = r.get(1)?;
        out.push((code, gap));
    }
    let elapsed = t.elapsed();
    Ok((
        elapsed,
        out.into_iter()
            .map(|(c, g)| (c, Decimal::new(g, 2)))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_fen_and_extra_decimals_are_refused() {
        assert_eq!(fen("f", 1, "12.5").unwrap(), 1250);
        assert_eq!(fen("f", 1, "30000000.03").unwrap(), 3_000_000_003);
        assert!(fen("f", 1, "1.005").is_err());
    }

    #[test]
    fn rounding_in_sql_is_half_up_to_the_fen() {
        let conn = Connection::open_in_memory().unwrap();
        // Shortfall 0.015 × W 100.01 yuan × relief 0.9 = 135.0135 fen → 135;
        // exactly half a fen rounds up, just under half rounds down.
        let due = |short_u: i64, wage_fen: i64, relief_t: i64| -> i64 {
            conn.query_row(
                "SELECT (2 * ?1 * ?2 * ?3 + 10000000) / 20000000",
                (short_u, wage_fen, relief_t),
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(due(15_000, 10_001, 9), 135);
        assert_eq!(due(500_000, 1, 10), 1);
        assert_eq!(due(499_999, 1, 10), 0);
    }
}
