//! The limits of one run, and the bounds within which the sandbox can
//! enforce them. The host policy (a layer above) sets them; the record
//! keeps its own copy of the values a run ran under.

use serde::{Deserialize, Serialize};

/// The largest wasm stack a policy may allow, in KiB: a run's thread gets
/// this much native stack and more.
pub const MAX_STACK_KIB: u64 = 64 * 1024;
/// The smallest wasm stack a policy may set, in KiB.
pub const MIN_STACK_KIB: u64 = 64;
/// The largest memory a policy may allow, in MiB (all of a model's linear
/// memories together; one 32-bit wasm memory cannot exceed 4 GiB anyway).
pub const MAX_MEMORY_MIB: u64 = 4096;
/// The longest wall time a policy may allow: 30 days.
pub const MAX_WALL_SECONDS: u64 = 30 * 24 * 3600;
/// The largest lead a policy may allow, in bytes.
pub const MAX_LEAD_BYTES: u64 = 16 << 20;
/// The most bytes of leads a policy may let one run emit, in MiB (they wait
/// in spill files on disk, not in memory).
pub const MAX_LEAD_MIB: u64 = 64 * 1024;

/// Resource limits of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub memory_mib: u64,
    pub fuel: u64,
    pub wall_seconds: u64,
    pub stack_kib: u64,
    pub max_leads: u64,
    pub max_lead_bytes: u64,
    /// All the leads of one run together, in MiB.
    pub max_lead_mib: u64,
    pub max_log_lines: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 256,
            fuel: 100_000_000_000,
            wall_seconds: 300,
            stack_kib: 1024,
            max_leads: 1_000_000,
            max_lead_bytes: 16 * 1024,
            max_lead_mib: 1024,
            max_log_lines: 1_000,
        }
    }
}

impl Limits {
    /// The policy's `[maximum]` when it sets none.
    pub fn maximum() -> Self {
        Limits {
            memory_mib: 1024,
            fuel: 200_000_000_000,
            wall_seconds: 3600,
            stack_kib: 1024,
            max_leads: 1_000_000,
            max_lead_bytes: 64 * 1024,
            max_lead_mib: 4096,
            max_log_lines: 10_000,
        }
    }
}

impl Limits {
    /// `(key, value)` of each limit, in file order.
    pub fn entries(&self) -> [(&'static str, u64); 8] {
        [
            ("memory_mib", self.memory_mib),
            ("fuel", self.fuel),
            ("wall_seconds", self.wall_seconds),
            ("stack_kib", self.stack_kib),
            ("max_leads", self.max_leads),
            ("max_lead_bytes", self.max_lead_bytes),
            ("max_lead_mib", self.max_lead_mib),
            ("max_log_lines", self.max_log_lines),
        ]
    }

    /// Each limit lowered to `cap`'s.
    pub fn capped(&self, cap: &Limits) -> Limits {
        Limits {
            memory_mib: self.memory_mib.min(cap.memory_mib),
            fuel: self.fuel.min(cap.fuel),
            wall_seconds: self.wall_seconds.min(cap.wall_seconds),
            stack_kib: self.stack_kib.min(cap.stack_kib),
            max_leads: self.max_leads.min(cap.max_leads),
            max_lead_bytes: self.max_lead_bytes.min(cap.max_lead_bytes),
            max_lead_mib: self.max_lead_mib.min(cap.max_lead_mib),
            max_log_lines: self.max_log_lines.min(cap.max_log_lines),
        }
    }

    /// Checks that every limit is one the sandbox can enforce.
    pub fn check(&self, table: &str) -> std::result::Result<(), String> {
        for (key, value) in self.entries() {
            let (min, max) = match key {
                "memory_mib" => (1, MAX_MEMORY_MIB),
                "fuel" => (1, u64::MAX),
                "wall_seconds" => (1, MAX_WALL_SECONDS),
                "stack_kib" => (MIN_STACK_KIB, MAX_STACK_KIB),
                "max_lead_bytes" => (1, MAX_LEAD_BYTES),
                "max_lead_mib" => (1, MAX_LEAD_MIB),
                _ => (0, u64::MAX),
            };
            if value < min || value > max {
                return Err(format!(
                    "[{table}] {key} = {value} is outside what the sandbox enforces ({min} to {max})"
                ));
            }
        }
        Ok(())
    }
}
