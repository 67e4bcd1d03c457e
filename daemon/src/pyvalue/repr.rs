//! Python's `repr()` of a [`PyValue`] (for logs, job descriptions and fingerprints): parsing
//! the text back with [`super::parse_literal`] gives an equal value.

use std::fmt::Write;

use super::value::{Kwargs, PyValue};

impl PyValue {
    /// The text Python's `repr()` gives for this value (for logs and job
    /// descriptions). Parsing it back yields an equal value. Differences from
    /// CPython: unassigned code points are printed as they are (CPython escapes
    /// them), which only matters for display.
    pub fn to_python_repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    /// Writes the `repr()` into `out` (a `String`, or a hasher that never builds the text).
    fn write_repr<W: Write>(&self, out: &mut W) {
        match self {
            PyValue::None => out.push_str("None"),
            PyValue::Bool(true) => out.push_str("True"),
            PyValue::Bool(false) => out.push_str("False"),
            PyValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            PyValue::BigInt(b) => {
                let _ = write!(out, "{b}");
            }
            PyValue::Float(f) => out.push_str(&float_repr(*f)),
            PyValue::Str(s) => str_repr(s, out),
            PyValue::Bytes(b) => bytes_repr(b, out),
            PyValue::List(items) => {
                out.push('[');
                write_items(items, out);
                out.push(']');
            }
            PyValue::Tuple(items) => {
                out.push('(');
                write_items(items, out);
                if items.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            PyValue::Dict(items) => {
                out.push('{');
                for (n, (k, v)) in items.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    k.write_repr(out);
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
        }
    }
}

/// `String`'s `push` and `push_str` for any [`Write`] the repr is written into (a `String` or
/// a hasher, neither of which can fail).
trait Push: Write {
    fn push(&mut self, c: char) {
        let _ = self.write_char(c);
    }
    fn push_str(&mut self, s: &str) {
        let _ = self.write_str(s);
    }
}

impl<W: Write + ?Sized> Push for W {}

/// `repr()` of keyword arguments as a dict.
pub fn kwargs_repr(kwargs: &Kwargs) -> String {
    let mut out = String::new();
    write_kwargs_repr(kwargs, &mut out);
    out
}

/// [`kwargs_repr`] written into `out` (the rebuild hashes it into a schedule's fingerprint
/// for every row, so it is not built as a `String` there).
pub fn write_kwargs_repr<W: Write>(kwargs: &Kwargs, out: &mut W) {
    out.push('{');
    for (n, (k, v)) in kwargs.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        str_repr(k, out);
        out.push_str(": ");
        v.write_repr(out);
    }
    out.push('}');
}

fn write_items<W: Write>(items: &[PyValue], out: &mut W) {
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        item.write_repr(out);
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form when the
/// decimal point would sit before the 4th leading zero or after 16 digits.
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `1.5e-7`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let decpt = exp + 1; // value = 0.DIGITS × 10^decpt
    let sign = if f < 0.0 { "-" } else { "" };
    let n = digits.len() as i32;
    if decpt <= -4 || decpt > 16 {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let e = decpt - 1;
        let esign = if e < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", e.abs())
    } else if decpt <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{sign}{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (a, b) = digits.split_at(decpt as usize);
        format!("{sign}{a}.{b}")
    }
}

/// Code points CPython's `str.isprintable()` rejects that we can name without
/// Unicode tables: controls, format characters, separators other than the
/// space, private use. Unassigned code points are not detected.
fn is_unprintable(c: char) -> bool {
    let u = c as u32;
    matches!(u,
        0x00..=0x1f | 0x7f..=0xa0 | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f
        | 0x1680 | 0x180e | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064
        | 0x2066..=0x206f | 0x3000 | 0xd800..=0xf8ff | 0xfeff | 0xfff9..=0xfffb
        | 0x110bd | 0x110cd | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001
        | 0xe0020..=0xe007f | 0xf0000..=0x10ffff)
}

fn str_repr<W: Write>(s: &str, out: &mut W) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    // Printable ASCII other than the quote and the backslash stands for itself: written in
    // one piece (keys and most values are such text; every row's fingerprint writes them).
    if s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\' && b != quote as u8) {
        out.push_str(s);
        out.push(quote);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_unprintable(c) => {
                let u = c as u32;
                let _ = if u <= 0xff {
                    write!(out, "\\x{u:02x}")
                } else if u <= 0xffff {
                    write!(out, "\\u{u:04x}")
                } else {
                    write!(out, "\\U{u:08x}")
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

fn bytes_repr<W: Write>(b: &[u8], out: &mut W) {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') { b'"' } else { b'\'' };
    out.push('b');
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(quote as char);
}
