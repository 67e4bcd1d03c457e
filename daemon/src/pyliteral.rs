//! Python literal values (what `ast.literal_eval` reads), for task arguments.
//!
//! BTU stores a task's `arguments` and a schedule's `argument_overrides` as the
//! text of a Python dict literal. The daemon must turn that text into the very
//! Python objects the worker's function will receive (through a pickle written
//! by [`crate::rq`]), without running Python. This module is the pure reader:
//! no I/O, never a panic, bounded nesting depth.
//!
//! Supported, with `ast.literal_eval`'s meaning:
//! - `str` literals with `'`, `"`, triple quotes, the `r`/`u` prefixes, all
//!   escapes except `\N{name}`, and implicit concatenation of adjacent literals;
//! - `bytes` literals (`b''`, `rb''`);
//! - `int` (any size; `_` separators; `0x`/`0o`/`0b`), `float` (`1.`, `.5`,
//!   `1e-5`, `1_0.5`), one leading `+`/`-` on a number;
//! - `True`, `False`, `None`; `list`, `tuple` (`()`, `(1,)`, bare `1, 2` at
//!   the top level), `dict` (duplicate keys collapse the way Python does:
//!   first key's position, last value), nested, trailing commas, whitespace,
//!   newlines and `#` comments between tokens.
//!
//! Not supported (rejected with an error naming them): sets, complex numbers,
//! f-strings, `\N{...}` escapes, lone surrogates in `str` (Rust strings cannot
//! hold them).

use num_bigint::BigInt;
use std::fmt::Write as _;

/// Deepest nesting of containers accepted; deeper text is rejected rather than
/// risking the stack (Python's own parser also has a limit).
pub const MAX_DEPTH: usize = 64;

/// A Python value that a literal can denote.
///
/// Integers are canonical: a value that fits in `i64` is always [`PyValue::Int`],
/// only larger ones are [`PyValue::BigInt`] — so derived equality is value
/// equality.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    Int(i64),
    /// Integer outside the `i64` range.
    BigInt(BigInt),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<PyValue>),
    Tuple(Vec<PyValue>),
    /// Insertion-ordered, keys unique under Python equality.
    Dict(Vec<(PyValue, PyValue)>),
}

/// Keyword arguments: an insertion-ordered dict with `str` keys.
pub type Kwargs = Vec<(String, PyValue)>;

/// Why a literal could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at line {line}, column {column} (byte {offset})")]
pub struct LiteralError {
    /// What is wrong, e.g. `unterminated string`.
    pub reason: String,
    /// Byte offset in the text.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl LiteralError {
    fn at(text: &str, offset: usize, reason: impl Into<String>) -> Self {
        let offset = offset.min(text.len());
        // Clamp to a char boundary so slicing below cannot panic.
        let mut cut = offset;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let before = &text[..cut];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        LiteralError { reason: reason.into(), offset, line, column }
    }
}

/// Reads one Python literal (the whole text must be that literal).
pub fn parse_literal(text: &str) -> Result<PyValue, LiteralError> {
    let mut p = Parser { src: text, b: text.as_bytes(), pos: 0 };
    p.skip_ws();
    if p.pos >= p.b.len() {
        return Err(p.err("empty text, expected a literal"));
    }
    let first = p.value(0)?;
    p.skip_ws();
    let value = if p.peek() == Some(b',') {
        // `1, 2` at the top level is a tuple, as in `ast.literal_eval`.
        let mut items = vec![first];
        while p.peek() == Some(b',') {
            p.pos += 1;
            p.skip_ws();
            if p.pos >= p.b.len() {
                break;
            }
            items.push(p.value(1)?);
            p.skip_ws();
        }
        PyValue::Tuple(items)
    } else {
        first
    };
    p.skip_ws();
    if p.pos < p.b.len() {
        return Err(p.err("unexpected text after the literal"));
    }
    Ok(value)
}

/// Reads BTU argument text as keyword arguments.
///
/// `None`, empty or whitespace-only text, and the literal `None`, mean "no
/// arguments". Anything else must be a dict literal whose keys are all `str`.
pub fn parse_kwargs(text: Option<&str>) -> Result<Kwargs, LiteralError> {
    let Some(text) = text else { return Ok(Vec::new()) };
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let start = text.len() - text.trim_start().len();
    match parse_literal(text)? {
        PyValue::None => Ok(Vec::new()),
        PyValue::Dict(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (k, v) in items {
                match k {
                    PyValue::Str(s) => out.push((s, v)),
                    other => {
                        return Err(LiteralError::at(
                            text,
                            start,
                            format!("arguments must have str keys, found key {}", other.to_python_repr()),
                        ));
                    }
                }
            }
            Ok(out)
        }
        other => {
            Err(LiteralError::at(text, start, format!("arguments must be a dict literal, found {}", other.type_name())))
        }
    }
}

/// The task's arguments overridden by the schedule's: a key present in both
/// takes the schedule's value at the task's position; keys only in
/// `overrides` follow in their own order.
pub fn merge_kwargs(base: &Kwargs, overrides: &Kwargs) -> Kwargs {
    let mut out: Kwargs = base.clone();
    for (k, v) in overrides {
        match out.iter_mut().find(|(bk, _)| bk == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

impl PyValue {
    /// Python's type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "None",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) | PyValue::BigInt(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::Bytes(_) => "bytes",
            PyValue::List(_) => "list",
            PyValue::Tuple(_) => "tuple",
            PyValue::Dict(_) => "dict",
        }
    }

    /// Whether Python could use this value as a dict key.
    pub fn is_hashable(&self) -> bool {
        match self {
            PyValue::List(_) | PyValue::Dict(_) => false,
            PyValue::Tuple(items) => items.iter().all(PyValue::is_hashable),
            _ => true,
        }
    }

    /// Python's `==` between two hashable values (so `1 == 1.0 == True`),
    /// which decides when dict keys collapse.
    pub fn python_eq(&self, other: &PyValue) -> bool {
        use PyValue as V;
        match (self.as_number(), other.as_number()) {
            (Some(a), Some(b)) => return a.eq(&b),
            (Some(_), None) | (None, Some(_)) => return false,
            (None, None) => {}
        }
        match (self, other) {
            (V::None, V::None) => true,
            (V::Str(a), V::Str(b)) => a == b,
            (V::Bytes(a), V::Bytes(b)) => a == b,
            (V::Tuple(a), V::Tuple(b)) | (V::List(a), V::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.python_eq(y))
            }
            (V::Dict(a), V::Dict(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.iter().any(|(k2, v2)| k.python_eq(k2) && v.python_eq(v2)))
            }
            _ => false,
        }
    }

    fn as_number(&self) -> Option<Num<'_>> {
        match self {
            PyValue::Bool(b) => Some(Num::I(i64::from(*b))),
            PyValue::Int(i) => Some(Num::I(*i)),
            PyValue::BigInt(b) => Some(Num::B(b)),
            PyValue::Float(f) => Some(Num::F(*f)),
            _ => None,
        }
    }

    /// The text Python's `repr()` gives for this value (for logs and job
    /// descriptions). Parsing it back yields an equal value. Differences from
    /// CPython: unassigned code points are printed as they are (CPython escapes
    /// them), which only matters for display.
    pub fn to_python_repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    fn write_repr(&self, out: &mut String) {
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

/// `repr()` of keyword arguments as a dict.
pub fn kwargs_repr(kwargs: &Kwargs) -> String {
    let mut out = String::from("{");
    for (n, (k, v)) in kwargs.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        str_repr(k, &mut out);
        out.push_str(": ");
        v.write_repr(&mut out);
    }
    out.push('}');
    out
}

fn write_items(items: &[PyValue], out: &mut String) {
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        item.write_repr(out);
    }
}

/// A number seen the way Python compares numbers across int/float/bool.
enum Num<'a> {
    I(i64),
    B(&'a BigInt),
    F(f64),
}

impl Num<'_> {
    fn eq(&self, other: &Num<'_>) -> bool {
        match (self, other) {
            (Num::I(a), Num::I(b)) => a == b,
            (Num::B(a), Num::B(b)) => a == b,
            // Canonical form: a BigInt never equals an i64.
            (Num::I(_), Num::B(_)) | (Num::B(_), Num::I(_)) => false,
            (Num::F(a), Num::F(b)) => a == b,
            (Num::F(f), Num::I(i)) | (Num::I(i), Num::F(f)) => float_eq_int(*f, &BigInt::from(*i)),
            (Num::F(f), Num::B(b)) | (Num::B(b), Num::F(f)) => float_eq_int(*f, b),
        }
    }
}

/// Exact comparison of a float with an integer, as Python does it.
fn float_eq_int(f: f64, i: &BigInt) -> bool {
    if !f.is_finite() || f.fract() != 0.0 {
        return false;
    }
    // `{:.0}` prints an integral f64 exactly, so this is an exact conversion.
    match format!("{f:.0}").parse::<BigInt>() {
        Ok(fi) => &fi == i,
        Err(_) => false,
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form when the
/// decimal point would sit before the 4th leading zero or after 16 digits.
pub fn float_repr(f: f64) -> String {
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

fn str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
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

fn bytes_repr(b: &[u8], out: &mut String) {
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

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
}

enum StrPiece {
    Str(String),
    Bytes(Vec<u8>),
}

impl<'a> Parser<'a> {
    fn err(&self, reason: impl Into<String>) -> LiteralError {
        LiteralError::at(self.src, self.pos, reason)
    }

    fn err_at(&self, offset: usize, reason: impl Into<String>) -> LiteralError {
        LiteralError::at(self.src, offset, reason)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.b.get(self.pos + n).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.pos += 1,
                b'#' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn expect_more(&self, what: &str) -> Result<u8, LiteralError> {
        self.peek().ok_or_else(|| self.err(format!("unexpected end of text, expected {what}")))
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, LiteralError> {
        let c = self.expect_more("a value")?;
        match c {
            b'[' => self.list(depth + 1),
            b'(' => self.paren(depth + 1),
            b'{' => self.dict(depth + 1),
            b'+' | b'-' => {
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
            b'0'..=b'9' => self.number(),
            b'.' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => self.number(),
            _ if self.string_start().is_some() => self.strings(),
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => self.name(),
            _ => Err(self.err(format!("unexpected character {:?}", self.current_char()))),
        }
    }

    fn current_char(&self) -> char {
        self.src[self.pos..].chars().next().unwrap_or('\0')
    }

    fn enter(&self, depth: usize) -> Result<(), LiteralError> {
        if depth > MAX_DEPTH { Err(self.err(format!("nesting deeper than {MAX_DEPTH} levels"))) } else { Ok(()) }
    }

    /// Items up to `close`, comma-separated, trailing comma allowed; the
    /// opening bracket has been consumed.
    fn items(&mut self, close: u8, depth: usize) -> Result<Vec<PyValue>, LiteralError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.expect_more(&format!("{:?}", close as char))? == close {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.expect_more(&format!("',' or {:?}", close as char))? {
                b',' => self.pos += 1,
                c if c == close => {}
                _ => return Err(self.err(format!("expected ',' or {:?}", close as char))),
            }
        }
    }

    fn list(&mut self, depth: usize) -> Result<PyValue, LiteralError> {
        self.enter(depth)?;
        self.pos += 1;
        Ok(PyValue::List(self.items(b']', depth)?))
    }

    fn paren(&mut self, depth: usize) -> Result<PyValue, LiteralError> {
        self.enter(depth)?;
        self.pos += 1;
        self.skip_ws();
        if self.expect_more("')'")? == b')' {
            self.pos += 1;
            return Ok(PyValue::Tuple(Vec::new()));
        }
        let first = self.value(depth)?;
        self.skip_ws();
        match self.expect_more("',' or ')'")? {
            // Plain parentheses around one value: just that value.
            b')' => {
                self.pos += 1;
                Ok(first)
            }
            b',' => {
                self.pos += 1;
                let mut items = vec![first];
                items.extend(self.items(b')', depth)?);
                Ok(PyValue::Tuple(items))
            }
            _ => Err(self.err("expected ',' or ')'")),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<PyValue, LiteralError> {
        self.enter(depth)?;
        let open = self.pos;
        self.pos += 1;
        let mut items: Vec<(PyValue, PyValue)> = Vec::new();
        loop {
            self.skip_ws();
            if self.expect_more("'}'")? == b'}' {
                self.pos += 1;
                return Ok(PyValue::Dict(items));
            }
            let key_at = self.pos;
            let key = self.value(depth)?;
            self.skip_ws();
            match self.expect_more("':'")? {
                b':' => self.pos += 1,
                b',' | b'}' if items.is_empty() => {
                    return Err(self.err_at(open, "set literals are not supported"));
                }
                _ => return Err(self.err("expected ':' after a dict key")),
            }
            if !key.is_hashable() {
                return Err(self.err_at(key_at, format!("unhashable type: '{}' cannot be a dict key", key.type_name())));
            }
            self.skip_ws();
            let value = self.value(depth)?;
            // Python keeps the first key's position and the last value.
            match items.iter_mut().find(|(k, _)| k.python_eq(&key)) {
                Some(slot) => slot.1 = value,
                None => items.push((key, value)),
            }
            self.skip_ws();
            match self.expect_more("',' or '}'")? {
                b',' => self.pos += 1,
                b'}' => {}
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn name(&mut self) -> Result<PyValue, LiteralError> {
        let start = self.pos;
        let rest = &self.src[start..];
        let len = rest.char_indices().find(|&(_, c)| !(c.is_alphanumeric() || c == '_')).map_or(rest.len(), |(i, _)| i);
        let word = &rest[..len];
        self.pos += len;
        match word {
            "True" => Ok(PyValue::Bool(true)),
            "False" => Ok(PyValue::Bool(false)),
            "None" => Ok(PyValue::None),
            _ => Err(self.err_at(start, format!("name {word:?} is not a literal (only True, False and None are)"))),
        }
    }

    /// If a string literal starts here: (prefix length, raw, bytes).
    fn string_start(&self) -> Option<(usize, bool, bool)> {
        let mut n = 0;
        let (mut raw, mut bytes, mut uni) = (false, false, false);
        while let Some(c) = self.peek_at(n) {
            match c {
                b'\'' | b'"' => {
                    // `ur''` and `bu''` are not Python 3 syntax.
                    if uni && (raw || bytes) {
                        return None;
                    }
                    return Some((n, raw, bytes));
                }
                b'r' | b'R' if !raw && n < 2 => raw = true,
                b'b' | b'B' if !bytes && n < 2 => bytes = true,
                b'u' | b'U' if n == 0 => uni = true,
                _ => return None,
            }
            n += 1;
        }
        None
    }

    /// One or more adjacent string literals, concatenated.
    fn strings(&mut self) -> Result<PyValue, LiteralError> {
        let start = self.pos;
        let mut acc: Option<StrPiece> = None;
        while let Some((plen, raw, bytes)) = self.string_start() {
            let piece_at = self.pos;
            self.pos += plen;
            let piece = self.one_string(raw, bytes)?;
            acc = match (acc, piece) {
                (None, p) => Some(p),
                (Some(StrPiece::Str(mut a)), StrPiece::Str(b)) => {
                    a.push_str(&b);
                    Some(StrPiece::Str(a))
                }
                (Some(StrPiece::Bytes(mut a)), StrPiece::Bytes(b)) => {
                    a.extend_from_slice(&b);
                    Some(StrPiece::Bytes(a))
                }
                _ => return Err(self.err_at(piece_at, "cannot mix bytes and str literals")),
            };
            let before_ws = self.pos;
            self.skip_ws();
            if self.string_start().is_none() {
                self.pos = before_ws;
                break;
            }
        }
        match acc {
            Some(StrPiece::Str(s)) => Ok(PyValue::Str(s)),
            Some(StrPiece::Bytes(b)) => Ok(PyValue::Bytes(b)),
            None => Err(self.err_at(start, "expected a string literal")),
        }
    }

    fn one_string(&mut self, raw: bool, bytes: bool) -> Result<StrPiece, LiteralError> {
        let open_at = self.pos;
        let q = self.b[self.pos];
        let triple = self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q);
        self.pos += if triple { 3 } else { 1 };
        let mut s = String::new();
        let mut out_b: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err_at(open_at, "unterminated string literal"));
            };
            if c == q && (!triple || (self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q))) {
                self.pos += if triple { 3 } else { 1 };
                break;
            }
            if c == b'\n' && !triple {
                return Err(self.err_at(open_at, "unterminated string literal (newline inside)"));
            }
            if bytes && c >= 0x80 {
                return Err(self.err("bytes can only contain ASCII literal characters"));
            }
            if c == b'\\' {
                if raw {
                    // A raw string keeps the backslash and the next char; the
                    // pair never ends the literal.
                    let next = self.src[self.pos + 1..].chars().next();
                    let Some(next) = next else {
                        return Err(self.err_at(open_at, "unterminated string literal"));
                    };
                    if bytes && !next.is_ascii() {
                        return Err(self.err("bytes can only contain ASCII literal characters"));
                    }
                    let pair = &self.src[self.pos..self.pos + 1 + next.len_utf8()];
                    s.push_str(pair);
                    out_b.extend_from_slice(pair.as_bytes());
                    self.pos += pair.len();
                    continue;
                }
                self.escape(bytes, &mut s, &mut out_b)?;
                continue;
            }
            let ch = self.current_char();
            if bytes {
                out_b.push(c);
            } else {
                s.push(ch);
            }
            self.pos += ch.len_utf8();
        }
        Ok(if bytes { StrPiece::Bytes(out_b) } else { StrPiece::Str(s) })
    }

    fn escape(&mut self, bytes: bool, s: &mut String, b: &mut Vec<u8>) -> Result<(), LiteralError> {
        let at = self.pos;
        self.pos += 1; // the backslash
        let Some(c) = self.peek() else {
            return Err(self.err_at(at, "unterminated string literal"));
        };
        let simple = match c {
            b'\n' => Some(None),
            b'\r' => {
                if self.peek_at(1) == Some(b'\n') {
                    self.pos += 1;
                }
                Some(None)
            }
            b'\\' => Some(Some(b'\\')),
            b'\'' => Some(Some(b'\'')),
            b'"' => Some(Some(b'"')),
            b'a' => Some(Some(0x07)),
            b'b' => Some(Some(0x08)),
            b'f' => Some(Some(0x0c)),
            b'n' => Some(Some(b'\n')),
            b'r' => Some(Some(b'\r')),
            b't' => Some(Some(b'\t')),
            b'v' => Some(Some(0x0b)),
            _ => None,
        };
        if let Some(v) = simple {
            self.pos += 1;
            if let Some(v) = v {
                s.push(v as char);
                b.push(v);
            }
            return Ok(());
        }
        let code: u32 = match c {
            b'0'..=b'7' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 3 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            self.pos += 1;
                            n += 1;
                        }
                        _ => break,
                    }
                }
                if bytes && v > 0xff {
                    return Err(self.err_at(at, format!("octal escape \\{v:o} is out of range for bytes")));
                }
                v
            }
            b'x' => {
                self.pos += 1;
                self.hex_digits(2, at)?
            }
            b'u' if !bytes => {
                self.pos += 1;
                self.hex_digits(4, at)?
            }
            b'U' if !bytes => {
                self.pos += 1;
                self.hex_digits(8, at)?
            }
            b'N' if !bytes => {
                return Err(self.err_at(at, "\\N{name} escapes are not supported"));
            }
            _ => {
                // Unknown escape: Python keeps the backslash and the char.
                let ch = self.current_char();
                if bytes && !ch.is_ascii() {
                    return Err(self.err("bytes can only contain ASCII literal characters"));
                }
                s.push('\\');
                s.push(ch);
                b.push(b'\\');
                b.extend_from_slice(ch.to_string().as_bytes());
                self.pos += ch.len_utf8();
                return Ok(());
            }
        };
        if bytes {
            // Checked above: \x gives at most 0xff, octal checked for bytes.
            b.push(code as u8);
        } else {
            let ch = char::from_u32(code).ok_or_else(|| {
                self.err_at(
                    at,
                    if (0xd800..=0xdfff).contains(&code) {
                        format!("lone surrogate \\u{code:04x} cannot be represented")
                    } else {
                        format!("escape \\U{code:08x} is beyond the Unicode range")
                    },
                )
            })?;
            s.push(ch);
        }
        Ok(())
    }

    fn hex_digits(&mut self, n: usize, at: usize) -> Result<u32, LiteralError> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.peek().and_then(|d| (d as char).to_digit(16)) {
                Some(d) => {
                    v = v * 16 + d;
                    self.pos += 1;
                }
                None => {
                    return Err(self.err_at(at, format!("truncated escape: expected {n} hex digits")));
                }
            }
        }
        Ok(v)
    }

    fn number(&mut self) -> Result<PyValue, LiteralError> {
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
            let digits: String = tok.chars().filter(|&c| c != '_').collect();
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

fn canonical_int(b: BigInt) -> PyValue {
    match i64::try_from(&b) {
        Ok(i) => PyValue::Int(i),
        Err(_) => PyValue::BigInt(b),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> PyValue {
        match parse_literal(s) {
            Ok(v) => v,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    fn s(x: &str) -> PyValue {
        PyValue::Str(x.into())
    }

    #[test]
    fn scalars() {
        assert_eq!(p("None"), PyValue::None);
        assert_eq!(p(" True "), PyValue::Bool(true));
        assert_eq!(p("False"), PyValue::Bool(false));
        assert_eq!(p("42"), PyValue::Int(42));
        assert_eq!(p("-42"), PyValue::Int(-42));
        assert_eq!(p("+ 7"), PyValue::Int(7));
        assert_eq!(p("1_000_000"), PyValue::Int(1_000_000));
        assert_eq!(p("0x_FF"), PyValue::Int(255));
        assert_eq!(p("0o17"), PyValue::Int(15));
        assert_eq!(p("-0b1010"), PyValue::Int(-10));
        assert_eq!(p("000"), PyValue::Int(0));
        assert_eq!(p("-9223372036854775808"), PyValue::Int(i64::MIN));
        assert_eq!(p("9223372036854775808"), PyValue::BigInt(BigInt::from(i64::MAX) + 1));
        assert_eq!(p("-9223372036854775809"), PyValue::BigInt(BigInt::from(i64::MIN) - 1));
        assert_eq!(p("1.5"), PyValue::Float(1.5));
        assert_eq!(p("1."), PyValue::Float(1.0));
        assert_eq!(p(".5"), PyValue::Float(0.5));
        assert_eq!(p("1e5"), PyValue::Float(1e5));
        assert_eq!(p("1_0.2_5e-1_0"), PyValue::Float(10.25e-10));
        assert_eq!(p("-2.5E+3"), PyValue::Float(-2500.0));
        assert_eq!(p("1e999"), PyValue::Float(f64::INFINITY));
    }

    #[test]
    fn strings() {
        assert_eq!(p(r#"'a\'b'"#), s("a'b"));
        assert_eq!(p(r#""a\"b""#), s("a\"b"));
        assert_eq!(p(r"'\n\t\\\x41\u00e9\U0001F600\101\0'"), s("\n\t\\Aé😀A\0"));
        assert_eq!(p("'ab' \"cd\"\n 'ef'"), s("abcdef"));
        assert_eq!(p(r"r'\n\''"), s(r"\n\'"));
        assert_eq!(p("'''a\n'b'\"'''"), s("a\n'b'\""));
        assert_eq!(p("\"\"\"x\"\"\""), s("x"));
        assert_eq!(p("u'é'"), s("é"));
        assert_eq!(p(r"'\d'"), s(r"\d"));
        assert_eq!(p("'a\\\nb'"), s("ab"));
        assert_eq!(p(r"b'a\x00\xff\u'"), PyValue::Bytes(b"a\x00\xff\\u".to_vec()));
        assert_eq!(p(r"Rb'\x'"), PyValue::Bytes(b"\\x".to_vec()));
        assert_eq!(p("''"), s(""));
    }

    #[test]
    fn containers() {
        assert_eq!(p("()"), PyValue::Tuple(vec![]));
        assert_eq!(p("(1,)"), PyValue::Tuple(vec![PyValue::Int(1)]));
        assert_eq!(p("(1)"), PyValue::Int(1));
        assert_eq!(p("1, 2,"), PyValue::Tuple(vec![PyValue::Int(1), PyValue::Int(2)]));
        assert_eq!(p("[ ]"), PyValue::List(vec![]));
        assert_eq!(
            p("[1, [2, (3,)],]"),
            PyValue::List(vec![
                PyValue::Int(1),
                PyValue::List(vec![PyValue::Int(2), PyValue::Tuple(vec![PyValue::Int(3)])]),
            ])
        );
        assert_eq!(p("{}"), PyValue::Dict(vec![]));
        assert_eq!(
            p("{\n  'a': 1,  # comment\n  (1, 'x'): None,\n}"),
            PyValue::Dict(vec![
                (s("a"), PyValue::Int(1)),
                (PyValue::Tuple(vec![PyValue::Int(1), s("x")]), PyValue::None),
            ])
        );
        // Python: first key's position, last value; 1 == 1.0 == True.
        assert_eq!(
            p("{1: 'a', 'k': 0, True: 'b', 1.0: 'c'}"),
            PyValue::Dict(vec![(PyValue::Int(1), s("c")), (s("k"), PyValue::Int(0))])
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let cases = [
            ("", "empty"),
            ("{'a': }", "unexpected character"),
            ("{'a' 1}", "expected ':'"),
            ("[1, 2", "unexpected end"),
            ("'abc", "unterminated"),
            ("'a\nb'", "unterminated"),
            ("012", "leading zeros"),
            ("1__0", "invalid number"),
            ("1_", "invalid number"),
            ("1e", "invalid number"),
            ("1j", "complex"),
            ("0x", "invalid number"),
            ("foo", "not a literal"),
            ("{1, 2}", "set literals"),
            ("{[1]: 2}", "unhashable"),
            ("--1", "sign"),
            ("-True", "sign"),
            ("f'x'", "not a literal"),
            ("'a' b'b'", "mix bytes"),
            ("b'é'", "ASCII"),
            (r"'\ud800'", "surrogate"),
            (r"'\N{DASH}'", "\\N"),
            (r"'\x4'", "hex digits"),
            ("1 2", "after the literal"),
            ("{'a': 1} x", "after the literal"),
        ];
        for (text, want) in cases {
            match parse_literal(text) {
                Ok(v) => panic!("{text:?} parsed as {v:?}"),
                Err(e) => assert!(e.to_string().contains(want), "{text:?}: {e}"),
            }
        }
        let e = parse_literal("{'a': 1,\n 'b': @}").unwrap_err();
        assert_eq!((e.line, e.column, e.offset), (2, 7, 15), "{e}");
    }

    #[test]
    fn depth_is_bounded() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_literal(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse_literal(&deep).unwrap_err().reason.contains("nesting"));
        let huge = "(".repeat(100_000);
        assert!(parse_literal(&huge).is_err());
        let dicts = "{'a':".repeat(10_000);
        assert!(parse_literal(&dicts).is_err());
    }

    #[test]
    fn kwargs() {
        assert_eq!(parse_kwargs(None).unwrap(), vec![]);
        assert_eq!(parse_kwargs(Some("  \n")).unwrap(), vec![]);
        assert_eq!(parse_kwargs(Some("None")).unwrap(), vec![]);
        assert_eq!(
            parse_kwargs(Some("{'b': 1, 'a': [2]}")).unwrap(),
            vec![("b".to_string(), PyValue::Int(1)), ("a".to_string(), PyValue::List(vec![PyValue::Int(2)]))]
        );
        assert!(parse_kwargs(Some("[1]")).unwrap_err().reason.contains("must be a dict"));
        assert!(parse_kwargs(Some("{1: 2}")).unwrap_err().reason.contains("str keys"));
        let base = parse_kwargs(Some("{'a': 1, 'b': 2, 'c': 3}")).unwrap();
        let over = parse_kwargs(Some("{'d': 4, 'b': 'x'}")).unwrap();
        assert_eq!(kwargs_repr(&merge_kwargs(&base, &over)), "{'a': 1, 'b': 'x', 'c': 3, 'd': 4}");
    }

    #[test]
    fn repr_matches_python() {
        let cases = [
            ("{'a': 1}", "{'a': 1}"),
            ("(1,)", "(1,)"),
            ("[(), [], {}]", "[(), [], {}]"),
            ("\"it's\"", "\"it's\""),
            ("'both \\' and \"'", "'both \\' and \"'"),
            ("'\\x00\\x7f\\xa0\\xe9\\u200b\\n'", "'\\x00\\x7f\\xa0é\\u200b\\n'"),
            ("b'\\x00a\\'\"'", "b'\\x00a\\'\"'"),
            ("1e16", "1e+16"),
            ("1e15", "1000000000000000.0"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("1.5e-7", "1.5e-07"),
            ("-0.0", "-0.0"),
            ("123456789.125", "123456789.125"),
            ("0.1", "0.1"),
            ("1e300", "1e+300"),
            ("2**0", ""),
        ];
        for (text, want) in cases {
            match parse_literal(text) {
                Ok(v) => assert_eq!(v.to_python_repr(), want, "{text:?}"),
                Err(_) => assert_eq!(want, "", "{text:?} should parse"),
            }
        }
    }

    /// Compares our reading and repr with CPython's `ast.literal_eval` + `repr`.
    #[test]
    fn agrees_with_cpython() {
        let inputs = [
            "{'a': 1, 'b': [1, 2.5, None, True, False], 'c': {'d': (1,), 'e': ()}}",
            "{'uni': 'héllo wörld ✓ 😀', 'esc': 'tab\\tnl\\ncr\\r\\x01\\u00e9\\U0001F600'}",
            "{'big': 123456789012345678901234567890, 'neg': -98765432109876543210, 'min': -9223372036854775808}",
            "{'f': [0.1, 1e16, 1e-5, 1.5e300, -0.0, 3.141592653589793, 1e22, 123456789012345.6]}",
            "{'hex': 0xDEAD_BEEF, 'oct': 0o777, 'bin': 0b1_0, 'und': 1_000}",
            "{'raw': r'C:\\path\\n', 'cat': 'a' \"b\" '''c''', 'q': \"it's\", 'qq': 'say \"hi\"'}",
            "{'nested': [[[[{'x': [(1, (2, (3,)))]}]]]], 'empty': [{}, [], ()]}",
            "{1: 'a', True: 'b', 1.0: 'c', (1, 2): 'd', None: 'e', b'k': 'f'}",
            "{'bytes': b'\\x00\\xff\\'\"', 'mixed': ('x', b'y', 1, 2.0)}",
            "{\n  'multi': 'line',\n  'trailing': [1, 2,],\n}",
            "{'s': '\\\\', 't': '\\'', 'u': \"\\\"\", 'v': '\\a\\b\\f\\v\\0\\101'}",
            "{'nbsp': 'a\\xa0b', 'zw': 'a\\u200bb', 'shy': '\\xad', 'del': '\\x7f'}",
        ];
        let lines = python3_lines(
            "import ast, json, sys\nfor line in sys.stdin:\n    print(repr(ast.literal_eval(json.loads(line))))\n",
            inputs.iter().map(|i| serde_json::to_string(i).expect("json")),
        );
        assert_eq!(lines.len(), inputs.len());
        for (input, py) in inputs.iter().zip(lines) {
            assert_eq!(p(input).to_python_repr(), py, "input {input}");
        }
    }

    pub(crate) fn arb_hashable() -> impl Strategy<Value = PyValue> {
        let leaf = prop_oneof![
            Just(PyValue::None),
            any::<bool>().prop_map(PyValue::Bool),
            any::<i64>().prop_map(PyValue::Int),
            ".{0,12}".prop_map(PyValue::Str),
            proptest::collection::vec(any::<u8>(), 0..6).prop_map(PyValue::Bytes),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| proptest::collection::vec(inner, 0..3).prop_map(PyValue::Tuple))
    }

    /// Runs `python3 -c prog`, feeding it one input per line, and returns its output lines:
    /// the real CPython is the reference for literal reading and for unpickling.
    pub(crate) fn python3_lines(prog: &str, inputs: impl IntoIterator<Item = String>) -> Vec<String> {
        use std::io::Write;
        let mut child = std::process::Command::new("python3")
            .args(["-c", prog])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 must be installed to run this test");
        {
            let mut stdin = child.stdin.take().expect("piped stdin");
            for line in inputs {
                writeln!(stdin, "{line}").expect("write");
            }
        }
        let out = child.wait_with_output().expect("python3 output");
        assert!(out.status.success(), "python3 failed");
        String::from_utf8(out.stdout).expect("utf8").lines().map(str::to_string).collect()
    }

    /// Any value a literal can denote (dict keys hashable and distinct).
    pub(crate) fn arb_value() -> impl Strategy<Value = PyValue> {
        let float = prop_oneof![
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            Just(0.1),
            Just(1e16),
            Just(1e-5),
            Just(-0.0),
            (-1000i32..1000).prop_map(|i| f64::from(i) / 8.0),
        ];
        let big = (any::<bool>(), proptest::collection::vec(any::<u8>(), 9..40)).prop_map(|(neg, bytes)| {
            let b = BigInt::from_bytes_le(if neg { num_bigint::Sign::Minus } else { num_bigint::Sign::Plus }, &bytes);
            canonical_int(b)
        });
        let leaf = prop_oneof![
            Just(PyValue::None),
            any::<bool>().prop_map(PyValue::Bool),
            any::<i64>().prop_map(PyValue::Int),
            big,
            float.prop_map(PyValue::Float),
            any::<String>().prop_map(PyValue::Str),
            "[ -~]{0,10}".prop_map(PyValue::Str),
            proptest::collection::vec(any::<u8>(), 0..10).prop_map(PyValue::Bytes),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(PyValue::List),
                proptest::collection::vec(inner.clone(), 0..6).prop_map(PyValue::Tuple),
                proptest::collection::vec((arb_hashable(), inner), 0..6).prop_map(|pairs| {
                    let mut items: Vec<(PyValue, PyValue)> = Vec::new();
                    for (k, v) in pairs {
                        if !items.iter().any(|(k2, _)| k2.python_eq(&k)) {
                            items.push((k, v));
                        }
                    }
                    PyValue::Dict(items)
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn repr_round_trips(v in arb_value()) {
            let text = v.to_python_repr();
            let back = parse_literal(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(back, v);
        }

        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = parse_literal(&text);
        }

        #[test]
        fn never_panics_on_literal_like_text(text in "[\\[\\](){}:,'\"\\\\rbux0-9._eE+-]{0,30}") {
            let _ = parse_literal(&text);
        }
    }
}
