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

mod number;
mod string;

use super::value::{Kwargs, MAX_DEPTH, PyValue};

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
            b'+' | b'-' => self.signed_number(),
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
}
