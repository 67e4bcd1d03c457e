//! Reading a pickle back into a [`PyValue`], for `btu show-job`: the opcode subset our own
//! encoder writes (`docs/rq.md` W4) plus what Python's protocols 2–5 use for the same plain
//! values (frames, short strings, small tuples, the memo), so jobs Frappe's own `enqueue` wrote
//! decode too. Anything else — a pickled function or class, `REDUCE`, persistent ids — is an
//! error naming the opcode, never a guess. Bounded: no recursion, every length checked.

use num_bigint::BigInt;

use super::value::PyValue;

/// Why a pickle was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpickleError {
    #[error("pickle ends early (at byte {0})")]
    Truncated(usize),
    #[error("pickle opcode 0x{op:02x} at byte {at} is not one of the plain-value opcodes this reader knows")]
    Unsupported { op: u8, at: usize },
    #[error("malformed pickle at byte {at}: {what}")]
    Malformed { at: usize, what: &'static str },
}

enum Item {
    Value(PyValue),
    Mark,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], UnpickleError> {
        let end =
            self.pos.checked_add(n).filter(|e| *e <= self.data.len()).ok_or(UnpickleError::Truncated(self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn byte(&mut self) -> Result<u8, UnpickleError> {
        Ok(self.take(1)?[0])
    }
    fn le(&mut self, n: usize) -> Result<u64, UnpickleError> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
    fn len(&mut self, n: usize) -> Result<usize, UnpickleError> {
        let at = self.pos;
        usize::try_from(self.le(n)?).map_err(|_| UnpickleError::Malformed { at, what: "length too large" })
    }
}

/// The value a pickle holds.
pub fn unpickle(data: &[u8]) -> Result<PyValue, UnpickleError> {
    let mut r = Reader { data, pos: 0 };
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: Vec<Option<PyValue>> = Vec::new();
    loop {
        let at = r.pos;
        let bad = |what| UnpickleError::Malformed { at, what };
        let op = r.byte()?;
        let value = match op {
            0x80 => {
                r.byte()?;
                continue;
            }
            0x95 => {
                r.take(8)?;
                continue;
            }
            b'.' => {
                return match (stack.pop(), stack.is_empty()) {
                    (Some(Item::Value(v)), true) => Ok(v),
                    _ => Err(bad("STOP without exactly one value")),
                };
            }
            b'(' => {
                stack.push(Item::Mark);
                continue;
            }
            b'N' => PyValue::None,
            0x88 => PyValue::Bool(true),
            0x89 => PyValue::Bool(false),
            b'K' => PyValue::Int(i64::from(r.byte()?)),
            b'M' => PyValue::Int(r.le(2)? as i64),
            b'J' => PyValue::Int(i64::from(r.le(4)? as u32 as i32)),
            0x8a | 0x8b => {
                let n = if op == 0x8a { r.len(1)? } else { r.len(4)? };
                let v = BigInt::from_signed_bytes_le(r.take(n)?);
                PyValue::from_bigint(v)
            }
            b'G' => {
                let b = r.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                PyValue::Float(f64::from_be_bytes(a))
            }
            0x8c | b'X' | 0x8d => {
                let n = match op {
                    0x8c => r.len(1)?,
                    b'X' => r.len(4)?,
                    _ => r.len(8)?,
                };
                let s = std::str::from_utf8(r.take(n)?).map_err(|_| bad("string is not UTF-8"))?;
                PyValue::Str(s.to_string())
            }
            b'C' | b'B' | 0x8e => {
                let n = match op {
                    b'C' => r.len(1)?,
                    b'B' => r.len(4)?,
                    _ => r.len(8)?,
                };
                PyValue::Bytes(r.take(n)?.to_vec())
            }
            b')' => PyValue::Tuple(Vec::new()),
            b']' => PyValue::List(Vec::new()),
            b'}' => PyValue::Dict(Vec::new()),
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if stack.len() < n {
                    return Err(bad("tuple of missing values"));
                }
                let items = values(stack.split_off(stack.len() - n)).ok_or_else(|| bad("mark inside a tuple"))?;
                PyValue::Tuple(items)
            }
            b't' | b'e' | b'a' | b'u' | b's' => {
                let items = match op {
                    b'a' | b's' => {
                        let n = if op == b'a' { 1 } else { 2 };
                        if stack.len() < n + 1 {
                            return Err(bad("append to nothing"));
                        }
                        values(stack.split_off(stack.len() - n)).ok_or_else(|| bad("mark in an append"))?
                    }
                    _ => {
                        let mark = stack.iter().rposition(|i| matches!(i, Item::Mark)).ok_or_else(|| bad("no mark"))?;
                        let items = values(stack.split_off(mark + 1)).ok_or_else(|| bad("mark"))?;
                        stack.pop();
                        items
                    }
                };
                if op == b't' {
                    PyValue::Tuple(items)
                } else {
                    match stack.last_mut() {
                        Some(Item::Value(PyValue::List(list))) if op == b'e' || op == b'a' => {
                            list.extend(items);
                            continue;
                        }
                        Some(Item::Value(PyValue::Dict(dict))) if op == b'u' || op == b's' => {
                            if items.len() % 2 != 0 {
                                return Err(bad("odd number of dict items"));
                            }
                            let mut it = items.into_iter();
                            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                                match dict.iter_mut().find(|(dk, _)| *dk == k) {
                                    Some(slot) => slot.1 = v,
                                    None => dict.push((k, v)),
                                }
                            }
                            continue;
                        }
                        _ => return Err(bad("items for something that is not a list or dict")),
                    }
                }
            }
            0x94 | b'q' | b'r' => {
                let idx = match op {
                    0x94 => memo.len(),
                    b'q' => r.len(1)?,
                    _ => r.len(4)?,
                };
                let Some(Item::Value(v)) = stack.last() else { return Err(bad("memoize without a value")) };
                if idx > memo.len() + 1_000_000 {
                    return Err(bad("memo index too large"));
                }
                if memo.len() <= idx {
                    memo.resize(idx + 1, None);
                }
                // Python memoizes a list or dict while still empty and fills it afterwards, so
                // a copy taken now would be wrong if it were fetched again: those are refused
                // when fetched (a value shared twice), everything else is complete here.
                memo[idx] = match v {
                    PyValue::List(_) | PyValue::Dict(_) => None,
                    other => Some(other.clone()),
                };
                continue;
            }
            b'h' | b'j' => {
                let idx = if op == b'h' { r.len(1)? } else { r.len(4)? };
                memo.get(idx).cloned().flatten().ok_or_else(|| bad("memo index not set, or a list or dict shared"))?
            }
            _ => return Err(UnpickleError::Unsupported { op, at }),
        };
        stack.push(Item::Value(value));
    }
}

fn values(items: Vec<Item>) -> Option<Vec<PyValue>> {
    items
        .into_iter()
        .map(|i| match i {
            Item::Value(v) => Some(v),
            Item::Mark => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyvalue::{parse_kwargs, pickle_call};

    #[test]
    fn reads_back_what_we_write() {
        let kwargs = parse_kwargs(Some(
            "{'a': 1, 'b': [1, 2.5, None, True, False], 'c': {'d': (1,), 'e': ()}, 'big': -123456789012345678901234567890, \
             'u': 'héllo ✓', 'by': b'\\x00\\xff', 'n': [-1, 255, 256, 65536, -2147483648]}",
        ))
        .expect("kwargs");
        let args = vec![PyValue::Str("pos".into()), PyValue::Tuple(vec![PyValue::Int(7)])];
        let data = pickle_call("m.f", &args, &kwargs).expect("pickle");
        let got = unpickle(&data).expect("unpickle");
        let dict = PyValue::Dict(kwargs.into_iter().map(|(k, v)| (PyValue::Str(k), v)).collect());
        assert_eq!(got, PyValue::Tuple(vec![PyValue::Str("m.f".into()), PyValue::None, PyValue::Tuple(args), dict]));
    }

    /// Python's own protocol-2/4/5 pickles of plain values (frames, memo, short strings, TUPLE2).
    /// (Python pickles bytes under protocol 2 as a `_codecs.encode` call: not a plain value.)
    #[test]
    fn reads_what_python_writes() {
        let lines = crate::pyvalue::tests::python3_lines(
            "import pickle, sys\nfor line in sys.stdin:\n    v = eval(line)\n    for p in (2, 4, 5):\n        print(pickle.dumps(v, protocol=p).hex())\n",
            vec![
                "('frappe.utils.background_jobs.execute_job', None, (), {'site': 'a.local', 'kwargs': {'x': [1, 2], 'y': (1, 2, 3)}, 'is_async': True})".into(),
                "[{'k': 'v'}, {'k': 'v'}, 1.5, 'é' * 300, 2 ** 70]".into(),
            ],
        );
        let want = [
            "('frappe.utils.background_jobs.execute_job', None, (), {'site': 'a.local', 'kwargs': {'x': [1, 2], 'y': (1, 2, 3)}, 'is_async': True})",
            &format!("[{{'k': 'v'}}, {{'k': 'v'}}, 1.5, '{}', 1180591620717411303424]", "é".repeat(300)),
        ];
        assert_eq!(lines.len(), 6);
        for (n, hex) in lines.iter().enumerate() {
            let bytes: Vec<u8> =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
            let v = unpickle(&bytes).unwrap_or_else(|e| panic!("{hex}: {e}"));
            assert_eq!(v.to_python_repr(), want[n / 3], "protocol line {n}");
        }
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert_eq!(unpickle(b"\x80\x02cos\nsystem\n."), Err(UnpickleError::Unsupported { op: b'c', at: 2 }));
        assert_eq!(unpickle(b"\x80\x02X\x05\x00\x00\x00ab"), Err(UnpickleError::Truncated(7)));
        assert!(matches!(unpickle(b"N N."), Err(UnpickleError::Unsupported { .. })));
        assert!(matches!(unpickle(b"NN."), Err(UnpickleError::Malformed { .. })));
        assert!(matches!(unpickle(b"e."), Err(UnpickleError::Malformed { .. })));
        assert!(matches!(unpickle(b""), Err(UnpickleError::Truncated(0))));
    }
}
