//! Number literals: ints of any size (`_` separators, `0x`/`0o`/`0b`) and floats.

use std::borrow::Cow;

use num_bigint::BigInt;

use super::{LiteralError, Parser};
use crate::pyvalue::value::{PyValue, canonical_int};

impl Parser<'_> {
    /// One leading `+` or `-` (whitespace may follow it) and the number it applies to.
    pub(super) fn signed_number(&mut self) -> Result<PyValue, LiteralError> {
        let start = self.pos;
        self.pos += 1;
        self.skip_ws();
        let c = self.expect_more("a number after the sign")?;
        if !(c.is_ascii_digit() || (c == b'.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()))) {
            return Err(self.err_at(start, "a sign must be followed by a number literal"));
        }
        let v = self.number()?;
        if self.b[start] == b'-' { Ok(negate(v)) } else { Ok(v) }
    }

    pub(super) fn number(&mut self) -> Result<PyValue, LiteralError> {
        let start = self.pos;
        let radix_prefix =
            self.peek() == Some(b'0') && matches!(self.peek_at(1), Some(b'x' | b'X' | b'o' | b'O' | b'b' | b'B'));
        while let Some(c) = self.peek() {
            let sign_in_exp = (c == b'+' || c == b'-')
                && self.pos > start
                && matches!(self.b[self.pos - 1], b'e' | b'E')
                && !radix_prefix;
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || sign_in_exp {
                self.pos += 1;
            } else {
                break;
            }
        }
        let tok = &self.src[start..self.pos];
        let bad = |reason: &str| LiteralError::at(self.src, start, format!("{reason}: {tok:?}"));
        if tok.ends_with(['j', 'J']) {
            return Err(bad("complex numbers are not supported"));
        }
        if radix_prefix {
            let radix = match tok.as_bytes()[1] {
                b'x' | b'X' => 16,
                b'o' | b'O' => 8,
                _ => 2,
            };
            let body = &tok[2..];
            // An underscore may follow the prefix (`0x_ff`), then groups.
            let body = body.strip_prefix('_').unwrap_or(body);
            if !digit_groups(body, |c| c.is_digit(radix)) {
                return Err(bad("invalid number literal"));
            }
            let digits: String = body.chars().filter(|&c| c != '_').collect();
            return BigInt::parse_bytes(digits.as_bytes(), radix)
                .map(canonical_int)
                .ok_or_else(|| bad("invalid number literal"));
        }
        if is_decimal_int(tok) {
            // Most ints have no separators: no copy then (every schedule's overrides are read
            // on every rebuild).
            let digits: Cow<str> = if tok.contains('_') {
                Cow::Owned(tok.chars().filter(|&c| c != '_').collect())
            } else {
                Cow::Borrowed(tok)
            };
            if digits.len() > 1 && digits.starts_with('0') && digits.bytes().any(|d| d != b'0') {
                return Err(bad("leading zeros in decimal integer literals are not permitted"));
            }
            if let Ok(i) = digits.parse::<i64>() {
                return Ok(PyValue::Int(i));
            }
            return BigInt::parse_bytes(digits.as_bytes(), 10)
                .map(canonical_int)
                .ok_or_else(|| bad("invalid number literal"));
        }
        if is_float(tok) {
            let cleaned: String = tok.chars().filter(|&c| c != '_').collect();
            // Rust's parser accepts every form `is_float` lets through
            // (`1.`, `.5`, `1e5`); overflow gives inf, as in Python.
            return cleaned.parse::<f64>().map(PyValue::Float).map_err(|_| bad("invalid number literal"));
        }
        Err(bad("invalid number literal"))
    }
}

/// `d(_?d)*` over the whole text.
fn digit_groups(s: &str, is_digit: impl Fn(char) -> bool) -> bool {
    let mut prev_digit = false;
    let mut any = false;
    for c in s.chars() {
        if c == '_' {
            if !prev_digit {
                return false;
            }
            prev_digit = false;
        } else if is_digit(c) {
            prev_digit = true;
            any = true;
        } else {
            return false;
        }
    }
    any && prev_digit
}

fn is_decimal_int(tok: &str) -> bool {
    digit_groups(tok, |c| c.is_ascii_digit())
}

/// Python's float literal grammar: `digits? . digits? exponent?` with at least
/// one digit in the mantissa, or `digits exponent`.
fn is_float(tok: &str) -> bool {
    let dec = |s: &str| digit_groups(s, |c| c.is_ascii_digit());
    let (mantissa, exponent) = match tok.find(['e', 'E']) {
        Some(i) => (&tok[..i], Some(&tok[i + 1..])),
        None => (tok, None),
    };
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if !dec(e) {
            return false;
        }
    }
    match mantissa.split_once('.') {
        Some((a, b)) => (!a.is_empty() || !b.is_empty()) && (a.is_empty() || dec(a)) && (b.is_empty() || dec(b)),
        None => exponent.is_some() && dec(mantissa),
    }
}

fn negate(v: PyValue) -> PyValue {
    match v {
        PyValue::Int(i) => match i.checked_neg() {
            Some(n) => PyValue::Int(n),
            None => PyValue::BigInt(-BigInt::from(i)),
        },
        PyValue::BigInt(b) => canonical_int(-b),
        PyValue::Float(f) => PyValue::Float(-f),
        // `number()` only returns the three variants above.
        other => other,
    }
}
