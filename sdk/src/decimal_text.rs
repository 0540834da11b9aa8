//! Decimals as leads show them: [`Yuan`] for money, [`Exact`] for every
//! other decimal.
//!
//! A model emits a dozen figures per lead, and at a quarter of a million
//! leads their text was an eighth of a run: `Decimal`'s `Display` divides
//! the 96-bit mantissa by ten once per digit and pushes characters one by
//! one, `round_dp_with_strategy` works on the mantissa as three 32-bit
//! words, and `format!` allocates a `String` that is copied into the lead
//! and freed. Here the mantissa is read once, rounded and split into
//! integer and fraction with `u64` arithmetic (`u128` only for mantissas of
//! 2⁶⁴ and more), and the digits are written right to left into a buffer
//! on the stack, two at a time, then handed to the formatter in one
//! `write_str`.
//!
//! The text is byte for byte what `rust_decimal` writes, sign of zero
//! included: the tests beside this code compare the two on random and
//! boundary values of every scale.

use crate::Decimal;
use core::fmt;

/// An amount of money as a lead shows it: rounded half away from zero to
/// the fen, with two decimals.
///
/// `Yuan(x)` writes exactly what
/// `format!("{:.2}", x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))`
/// writes, without allocating and at a fraction of the cost, so it is the
/// way to put money in evidence. [`Lead::amount`](crate::Lead::amount)
/// writes its amount this way.
///
/// ```
/// use jiandu_sdk::{Decimal, Lead, Yuan};
/// assert_eq!(Yuan(Decimal::new(12345675, 3)).to_string(), "12345.68");
/// assert_eq!(Yuan(Decimal::new(-5, 3)).to_string(), "-0.01");
/// assert_eq!(Yuan(Decimal::from(100)).to_string(), "100.00");
/// let lead = Lead::new("91350100M000100Y43").evidence("late_fee", Yuan(Decimal::new(7204, 1)));
/// assert!(format!("{lead:?}").contains("\"720.40\""));
/// ```
///
/// Width, fill and alignment apply (`{:>12}` writes what `{:>12.2}` writes
/// for the rounded decimal); a precision is ignored: money has two
/// decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Yuan(pub Decimal);

/// A decimal written as `Decimal`'s `Display` writes it (every digit of its
/// scale, nothing rounded), without its cost.
///
/// For ratios, rates and figures that are not rounded money; a `Decimal`
/// given to [`Lead::evidence`](crate::Lead::evidence) as it is writes the
/// same text, more slowly.
///
/// ```
/// use jiandu_sdk::{Decimal, Exact};
/// let ratio = Decimal::new(15, 3);
/// assert_eq!(Exact(ratio).to_string(), ratio.to_string());
/// assert_eq!(Exact(ratio).to_string(), "0.015");
/// assert_eq!(Exact(Decimal::new(-12000, 2)).to_string(), "-120.00");
/// ```
///
/// Every formatting option behaves as it does for `Decimal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exact(pub Decimal);

impl fmt::Display for Yuan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = Text::yuan(self.0);
        if f.width().is_none() && !f.sign_plus() {
            f.write_str(text.as_str())
        } else {
            f.pad_integral(!text.negative, "", text.unsigned())
        }
    }
}

impl fmt::Display for Exact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.precision().is_some() {
            // Truncates or pads the fraction: rare, and rust_decimal's own.
            return fmt::Display::fmt(&self.0, f);
        }
        let text = Text::exact(self.0);
        if f.width().is_none() && !f.sign_plus() {
            f.write_str(text.as_str())
        } else {
            f.pad_integral(!text.negative, "", text.unsigned())
        }
    }
}

/// 10⁰ to 10¹⁹: every power of ten a `u64` holds.
const POW10: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// "00", "01", … "99": two digits per division.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// The text of one decimal, built right to left.
///
/// A 96-bit mantissa has at most 29 digits; padded to its scale (at most
/// 28) with a leading `0` it has at most 29 too. Two more fen digits, a
/// point and a sign: 33 bytes at most.
pub(crate) struct Text {
    buf: [u8; 40],
    start: usize,
    negative: bool,
}

impl Text {
    fn new() -> Self {
        Text {
            buf: [b'0'; 40],
            start: 40,
            negative: false,
        }
    }

    /// `d` rounded half away from zero to the fen, with two decimals: the
    /// text of [`Yuan`].
    pub(crate) fn yuan(d: Decimal) -> Self {
        let u = d.unpack();
        let mut t = Text::new();
        // A non-zero amount rounded to zero loses its sign, as
        // `round_dp_with_strategy` drops it; a zero keeps it.
        let m = u128::from(u.hi) << 64 | u128::from(u.mid) << 32 | u128::from(u.lo);
        let narrow = u64::try_from(m)
            .ok()
            .filter(|&m| u.scale >= 2 || m <= u64::MAX / 100);
        if let Some(m) = narrow {
            let fen = match u.scale {
                0 => m * 100,
                1 => m * 10,
                s => round_half_up(m, s - 2),
            };
            t.negative = u.negative && (fen != 0 || m == 0);
            t.push_pair((fen % 100) as usize);
            t.push(b'.');
            t.push_u64(fen / 100, 1);
        } else {
            // Mantissas of 2⁶⁴ and more (or whose fen are): the same steps
            // in u128.
            let fen = match u.scale {
                0 => m * 100,
                1 => m * 10,
                s => round_half_up_wide(m, s - 2),
            };
            t.negative = u.negative && fen != 0;
            t.push_pair((fen % 100) as usize);
            t.push(b'.');
            t.push_u128(fen / 100, 1);
        }
        if t.negative {
            t.push(b'-');
        }
        t
    }

    /// `d` with every digit of its scale: the text of [`Exact`].
    pub(crate) fn exact(d: Decimal) -> Self {
        let u = d.unpack();
        let scale = u.scale as usize;
        let mut t = Text::new();
        t.negative = u.negative;
        if u.hi == 0 {
            let m = u64::from(u.mid) << 32 | u64::from(u.lo);
            if scale == 0 {
                t.push_u64(m, 1);
            } else if scale < POW10.len() {
                t.push_u64(m % POW10[scale], scale);
                t.push(b'.');
                t.push_u64(m / POW10[scale], 1);
            } else {
                // 10^scale > u64::MAX ≥ m: all fraction.
                t.push_u64(m, scale);
                t.push(b'.');
                t.push(b'0');
            }
        } else {
            let m = u128::from(u.hi) << 64 | u128::from(u.mid) << 32 | u128::from(u.lo);
            let p = 10u128.pow(u.scale);
            if scale > 0 {
                t.push_u128(m % p, scale);
                t.push(b'.');
            }
            t.push_u128(m / p, 1);
        }
        if t.negative {
            t.push(b'-');
        }
        t
    }

    fn push(&mut self, b: u8) {
        self.start -= 1;
        self.buf[self.start] = b;
    }

    fn push_pair(&mut self, n: usize) {
        self.start -= 2;
        self.buf[self.start..self.start + 2].copy_from_slice(&PAIRS[2 * n..2 * n + 2]);
    }

    /// The digits of `n`, padded with zeros to at least `min` digits (`n`
    /// zero and `min` zero write nothing).
    fn push_u64(&mut self, mut n: u64, min: usize) {
        let end = self.start;
        while n >= 100 {
            self.push_pair((n % 100) as usize);
            n /= 100;
        }
        if n >= 10 {
            self.push_pair(n as usize);
        } else if n > 0 {
            self.push(b'0' + n as u8);
        }
        // The buffer starts as zeros: padding only moves the start.
        let written = end - self.start;
        if written < min {
            self.start = end - min;
        }
    }

    fn push_u128(&mut self, n: u128, min: usize) {
        match u64::try_from(n) {
            Ok(n) => self.push_u64(n, min),
            Err(_) => {
                let low = (n % u128::from(POW10[19])) as u64;
                self.push_u64(low, 19);
                self.push_u128(n / u128::from(POW10[19]), min.saturating_sub(19));
            }
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        let bytes = &self.buf[self.start..];
        debug_assert!(bytes.is_ascii());
        // SAFETY: the buffer starts as ASCII zeros and only ASCII digits, a
        // point and a minus sign are written into it, so every byte is
        // ASCII. Checking it again was a fifth of the cost of a figure.
        unsafe { core::str::from_utf8_unchecked(bytes) }
    }

    /// The text without its sign, for `Formatter::pad_integral`.
    fn unsigned(&self) -> &str {
        &self.as_str()[self.negative as usize..]
    }
}

/// `m / 10^places` rounded half away from zero.
fn round_half_up(m: u64, places: u32) -> u64 {
    let Some(&p) = POW10.get(places as usize) else {
        // 10^places > u64::MAX ≥ m: less than half, rounds to zero.
        return 0;
    };
    let (q, r) = (m / p, m % p);
    // r ≥ p/2 without overflow. q + 1 fits: for p = 1 it is never added,
    // and for p ≥ 10, q ≤ u64::MAX / 10.
    q + u64::from(r >= p - r)
}

/// [`round_half_up`] for mantissas of 2⁶⁴ and more (`places` ≤ 26).
fn round_half_up_wide(m: u128, places: u32) -> u128 {
    let p = 10u128.pow(places);
    let (q, r) = (m / p, m % p);
    q + u128::from(r >= p - r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::RoundingStrategy::MidpointAwayFromZero;

    /// What models wrote before `Yuan`.
    fn yuan_by_format(d: Decimal) -> String {
        format!("{:.2}", d.round_dp_with_strategy(2, MidpointAwayFromZero))
    }

    /// xorshift: a fixed, repeatable sequence.
    struct Numbers(u64);

    impl Numbers {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn check(d: Decimal) {
        assert_eq!(Yuan(d).to_string(), yuan_by_format(d), "Yuan of {d:?}");
        assert_eq!(Exact(d).to_string(), d.to_string(), "Exact of {d:?}");
    }

    /// `d` and its negation, which for a zero is a negative zero.
    fn check_both_signs(d: Decimal) {
        check(d);
        check(-d);
    }

    fn decimal(lo: u32, mid: u32, hi: u32, negative: bool, scale: u32) -> Decimal {
        Decimal::from_parts(lo, mid, hi, negative, scale)
    }

    #[test]
    fn random_mantissas_of_every_width_and_scale_write_what_rust_decimal_writes() {
        let mut r = Numbers(0x9e37_79b9_7f4a_7c15);
        for i in 0..200_000u64 {
            let scale = r.below(29) as u32;
            let negative = r.below(2) == 1;
            let (lo, mid, hi) = (r.next() as u32, r.next() as u32, r.next() as u32);
            // Widths from a few digits to all 96 bits.
            let d = match i % 4 {
                0 => decimal(lo % 1_000_000, 0, 0, negative, scale),
                1 => decimal(lo, mid % 1024, 0, negative, scale),
                2 => decimal(lo, mid, 0, negative, scale),
                _ => decimal(lo, mid, hi, negative, scale),
            };
            check_both_signs(d);
        }
    }

    #[test]
    fn ties_and_their_neighbours_round_away_from_zero() {
        let mut r = Numbers(0x1234_5678_9abc_def1);
        for scale in 3..=28u32 {
            let half = 5 * 10u128.pow(scale - 3);
            let fen = 10u128.pow(scale - 2);
            for _ in 0..500 {
                // Whole fen counts up to ~2^90, so that the tie fits 96 bits.
                let whole =
                    u128::from(r.next()) % (1u128 << (90 - 3 * scale)) + u128::from(r.below(3));
                let Some(base) = whole.checked_mul(fen) else {
                    continue;
                };
                for m in [
                    base + half - 1,
                    base + half,
                    base + half + 1,
                    base,
                    base + 1,
                ] {
                    if m >= 1 << 96 {
                        continue;
                    }
                    let d = Decimal::from_i128_with_scale(m as i128, scale);
                    check_both_signs(d);
                }
            }
        }
    }

    #[test]
    fn zeros_keep_or_lose_their_sign_as_rust_decimal_does() {
        for scale in 0..=28 {
            // A zero, and its negation (a negative zero).
            check_both_signs(Decimal::new(0, scale));
            // Non-zero amounts that round to zero.
            check_both_signs(Decimal::from_i128_with_scale(1, scale));
            check_both_signs(Decimal::from_i128_with_scale(4, scale));
            check_both_signs(Decimal::from_i128_with_scale(5, scale));
        }
        assert_eq!(Yuan(Decimal::new(-4, 3)).to_string(), "0.00");
        assert_eq!(Yuan(-Decimal::new(0, 3)).to_string(), "-0.00");
        assert_eq!(Yuan(-Decimal::new(0, 1)).to_string(), "-0.00");
        assert_eq!(Exact(-Decimal::new(0, 1)).to_string(), "-0.0");
    }

    #[test]
    fn boundaries_of_the_word_sizes_and_the_scale_write_what_rust_decimal_writes() {
        let mut edges: Vec<u128> = vec![0, 1, 9, 10, 99, 100, 101, 999, 1000];
        for bits in [31, 32, 33, 63, 64, 65, 95, 96] {
            let b = 1u128 << bits;
            edges.extend([b - 1, b, b + 1]);
        }
        for k in 1..=28 {
            let p = 10u128.pow(k);
            edges.extend([p - 1, p, p + 1, p / 2, p / 2 - 1]);
        }
        edges.push(u128::from(u64::MAX) * 100);
        for m in edges {
            if m >= 1 << 96 {
                continue;
            }
            for scale in 0..=28 {
                check_both_signs(Decimal::from_i128_with_scale(m as i128, scale));
            }
        }
        check(Decimal::MAX);
        check(Decimal::MIN);
    }

    #[test]
    fn formatting_options_apply_as_they_do_for_decimal() {
        for d in [
            Decimal::new(12345675, 3),
            Decimal::new(-12345675, 3),
            -Decimal::new(0, 3),
            Decimal::new(7, 0),
        ] {
            let r = d.round_dp_with_strategy(2, MidpointAwayFromZero);
            assert_eq!(format!("{:>14}", Yuan(d)), format!("{r:>14.2}"));
            assert_eq!(format!("{:<14}", Yuan(d)), format!("{r:<14.2}"));
            assert_eq!(format!("{:*^14}", Yuan(d)), format!("{r:*^14.2}"));
            assert_eq!(format!("{:+}", Yuan(d)), format!("{r:+.2}"));
            assert_eq!(format!("{:014}", Yuan(d)), format!("{r:014.2}"));
            assert_eq!(format!("{:.5}", Yuan(d)), yuan_by_format(d));
            assert_eq!(format!("{:>14}", Exact(d)), format!("{d:>14}"));
            assert_eq!(format!("{:+}", Exact(d)), format!("{d:+}"));
            assert_eq!(format!("{:014}", Exact(d)), format!("{d:014}"));
            assert_eq!(format!("{:.1}", Exact(d)), format!("{d:.1}"));
            assert_eq!(format!("{:.5}", Exact(d)), format!("{d:.5}"));
        }
    }
}
