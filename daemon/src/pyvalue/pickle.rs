//! Pickle of a [`PyValue`] and of an RQ call tuple `(func_name, None, args, kwargs)`.
//!
//! Why our own encoder rather than `serde-pickle` (which we checked first):
//! - its `Value::Dict` is a `BTreeMap`, so dicts come out sorted, not in the
//!   insertion order `ast.literal_eval` and Python's `**kwargs` keep — the
//!   worker's function would see other key orders than the BTU text has;
//! - its serde `Serializer` path keeps order but has no way to write an
//!   integer wider than 64 bits (no `i128`/`BigInt` in serde's data model),
//!   while literals may hold arbitrary-size ints.
//!
//! So this writes exactly the opcode subset that `docs/rq.md` (W4)
//! lists as verified on every rq release (protocol 2 header, no memo
//! opcodes, `BINUNICODE` strings, real tuples, `LONG1`/`LONG4` big ints,
//! protocol-3 bytes opcodes, which Python accepts after a protocol-2 header).
//! Tests decode the output with `serde-pickle`'s decoder here, and with real `python3`
//! in `rq::data` (the zlib'd job payload).

use super::value::{Kwargs, MAX_DEPTH, PyValue};

/// Nesting accepted in a payload: the literal limit plus the payload's own
/// tuple and kwargs dict. Deeper values are refused instead of recursing
/// without bound.
const MAX_PICKLE_DEPTH: usize = MAX_DEPTH + 2;

/// Why a payload could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    #[error("value nested deeper than {MAX_PICKLE_DEPTH} levels")]
    TooDeep,
    #[error("{what} of {len} bytes is too long for a pickle")]
    TooLong { what: &'static str, len: usize },
}

const PROTO: u8 = 0x80;
const STOP: u8 = b'.';
const NONE: u8 = b'N';
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const BININT: u8 = b'J';
const LONG1: u8 = 0x8a;
const LONG4: u8 = 0x8b;
const BINFLOAT: u8 = b'G';
const BINUNICODE: u8 = b'X';
const SHORT_BINBYTES: u8 = b'C';
const BINBYTES: u8 = b'B';
const MARK: u8 = b'(';
const EMPTY_TUPLE: u8 = b')';
const TUPLE: u8 = b't';
const EMPTY_LIST: u8 = b']';
const APPENDS: u8 = b'e';
const EMPTY_DICT: u8 = b'}';
const SETITEMS: u8 = b'u';

/// Pickle of `(func, None, tuple(args), dict(kwargs))`, uncompressed.
pub fn pickle_call(func: &str, args: &[PyValue], kwargs: &Kwargs) -> Result<Vec<u8>, PickleError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[PROTO, 2]);
    out.push(MARK);
    write_str(&mut out, func)?;
    out.push(NONE);
    write_tuple(&mut out, args, 1)?;
    out.push(EMPTY_DICT);
    if !kwargs.is_empty() {
        out.push(MARK);
        for (k, v) in kwargs {
            write_str(&mut out, k)?;
            write_value(&mut out, v, 2)?;
        }
        out.push(SETITEMS);
    }
    out.push(TUPLE);
    out.push(STOP);
    Ok(out)
}

/// Pickle of one value (the tests check single values byte by byte).
#[cfg(test)]
fn pickle_value(value: &PyValue) -> Result<Vec<u8>, PickleError> {
    let mut out = vec![PROTO, 2];
    write_value(&mut out, value, 0)?;
    out.push(STOP);
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, v: &PyValue, depth: usize) -> Result<(), PickleError> {
    if depth > MAX_PICKLE_DEPTH {
        return Err(PickleError::TooDeep);
    }
    match v {
        PyValue::None => out.push(NONE),
        PyValue::Bool(b) => out.push(if *b { NEWTRUE } else { NEWFALSE }),
        PyValue::Int(i) => write_int(out, *i),
        PyValue::BigInt(b) => write_long(out, &b.to_signed_bytes_le())?,
        PyValue::Float(f) => {
            out.push(BINFLOAT);
            out.extend_from_slice(&f.to_be_bytes());
        }
        PyValue::Str(s) => write_str(out, s)?,
        PyValue::Bytes(b) => {
            if let Ok(n) = u8::try_from(b.len()) {
                out.push(SHORT_BINBYTES);
                out.push(n);
            } else {
                out.push(BINBYTES);
                out.extend_from_slice(&len_u32("bytes", b.len())?.to_le_bytes());
            }
            out.extend_from_slice(b);
        }
        PyValue::Tuple(items) => write_tuple(out, items, depth + 1)?,
        PyValue::List(items) => {
            out.push(EMPTY_LIST);
            if !items.is_empty() {
                out.push(MARK);
                for item in items {
                    write_value(out, item, depth + 1)?;
                }
                out.push(APPENDS);
            }
        }
        PyValue::Dict(items) => {
            out.push(EMPTY_DICT);
            if !items.is_empty() {
                out.push(MARK);
                for (k, v) in items {
                    write_value(out, k, depth + 1)?;
                    write_value(out, v, depth + 1)?;
                }
                out.push(SETITEMS);
            }
        }
    }
    Ok(())
}

fn write_tuple(out: &mut Vec<u8>, items: &[PyValue], depth: usize) -> Result<(), PickleError> {
    if items.is_empty() {
        out.push(EMPTY_TUPLE);
        return Ok(());
    }
    out.push(MARK);
    for item in items {
        write_value(out, item, depth)?;
    }
    out.push(TUPLE);
    Ok(())
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    if let Ok(b) = u8::try_from(i) {
        out.push(BININT1);
        out.push(b);
    } else if let Ok(w) = u16::try_from(i) {
        out.push(BININT2);
        out.extend_from_slice(&w.to_le_bytes());
    } else if let Ok(d) = i32::try_from(i) {
        out.push(BININT);
        out.extend_from_slice(&d.to_le_bytes());
    } else {
        // Minimal two's-complement little-endian, as Python writes LONG1.
        let bytes = i.to_le_bytes();
        let mut n = bytes.len();
        while n > 1 {
            let top = bytes[n - 1];
            let next_sign = bytes[n - 2] & 0x80;
            if (top == 0x00 && next_sign == 0) || (top == 0xff && next_sign != 0) {
                n -= 1;
            } else {
                break;
            }
        }
        out.push(LONG1);
        out.push(n as u8); // n <= 8
        out.extend_from_slice(&bytes[..n]);
    }
}

fn write_long(out: &mut Vec<u8>, le: &[u8]) -> Result<(), PickleError> {
    if let Ok(n) = u8::try_from(le.len()) {
        out.push(LONG1);
        out.push(n);
    } else {
        out.push(LONG4);
        out.extend_from_slice(&len_u32("int", le.len())?.to_le_bytes());
    }
    out.extend_from_slice(le);
    Ok(())
}

fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), PickleError> {
    out.push(BINUNICODE);
    out.extend_from_slice(&len_u32("str", s.len())?.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn len_u32(what: &'static str, len: usize) -> Result<u32, PickleError> {
    u32::try_from(len).map_err(|_| PickleError::TooLong { what, len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyvalue::parse_literal;
    use proptest::prelude::*;
    use serde_pickle::{HashableValue, Value};

    #[test]
    fn exact_bytes_for_small_values() {
        let p = |s: &str| pickle_value(&parse_literal(s).expect("literal")).expect("pickle");
        assert_eq!(p("None"), b"\x80\x02N.");
        assert_eq!(p("True"), b"\x80\x02\x88.");
        assert_eq!(p("255"), b"\x80\x02K\xff.");
        assert_eq!(p("256"), b"\x80\x02M\x00\x01.");
        assert_eq!(p("-1"), b"\x80\x02J\xff\xff\xff\xff.");
        assert_eq!(p("2147483648"), b"\x80\x02\x8a\x05\x00\x00\x00\x80\x00.");
        assert_eq!(p("-2147483649"), b"\x80\x02\x8a\x05\xff\xff\xff\x7f\xff.");
        assert_eq!(p("18446744073709551616"), b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.");
        assert_eq!(p("'é'"), b"\x80\x02X\x02\x00\x00\x00\xc3\xa9.");
        assert_eq!(p("()"), b"\x80\x02).");
        assert_eq!(p("(1,)"), b"\x80\x02(K\x01t.");
        assert_eq!(p("[]"), b"\x80\x02].");
        assert_eq!(p("{}"), b"\x80\x02}.");
        assert_eq!(p("{'a': [1]}"), b"\x80\x02}(X\x01\x00\x00\x00a](K\x01eu.");
        assert_eq!(p("b'ab'"), b"\x80\x02C\x02ab.");
        assert_eq!(p("1.5"), b"\x80\x02G\x3f\xf8\x00\x00\x00\x00\x00\x00.");
    }

    #[test]
    fn too_deep_is_an_error_not_a_crash() {
        let mut v = PyValue::None;
        for _ in 0..10_000 {
            v = PyValue::List(vec![v]);
        }
        assert_eq!(pickle_value(&v), Err(PickleError::TooDeep));
        // Dropping a 10k-deep value recurses too; unwrap it iteratively.
        while let PyValue::List(mut items) = v {
            v = items.pop().unwrap_or(PyValue::None);
        }
    }

    /// What serde-pickle's decoder should return for our value.
    fn to_serde(v: &PyValue) -> Value {
        match v {
            PyValue::None => Value::None,
            PyValue::Bool(b) => Value::Bool(*b),
            PyValue::Int(i) => Value::I64(*i),
            PyValue::BigInt(b) => Value::Int(b.clone()),
            PyValue::Float(f) => Value::F64(*f),
            PyValue::Str(s) => Value::String(s.clone()),
            PyValue::Bytes(b) => Value::Bytes(b.clone()),
            PyValue::List(items) => Value::List(items.iter().map(to_serde).collect()),
            PyValue::Tuple(items) => Value::Tuple(items.iter().map(to_serde).collect()),
            PyValue::Dict(items) => Value::Dict(
                items
                    .iter()
                    .map(|(k, v)| {
                        let k: HashableValue = to_serde(k).into_hashable().expect("hashable key");
                        (k, to_serde(v))
                    })
                    .collect(),
            ),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// An independent decoder reads back what we wrote.
        #[test]
        fn serde_pickle_decodes_it(v in crate::pyvalue::tests::arb_value()) {
            let bytes = pickle_value(&v).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = serde_pickle::value_from_slice(&bytes, serde_pickle::DeOptions::new())
                .map_err(|e| TestCaseError::fail(format!("{e}: {v:?}")))?;
            prop_assert_eq!(back, to_serde(&v));
        }
    }
}
