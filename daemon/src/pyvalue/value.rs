//! [`PyValue`]: the Python values task arguments can hold, with Python's equality between
//! them (so dict keys collapse the way Python's do) and the kwargs merge BTU applies.

use num_bigint::BigInt;

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

/// The task's arguments overridden by the schedule's: a key present in both
/// takes the schedule's value at the task's position; keys only in
/// `overrides` follow in their own order.
pub fn merge_kwargs(base: &Kwargs, overrides: &Kwargs) -> Kwargs {
    // Sized exactly: the plan keeps each schedule's merged kwargs, and growing by doubling
    // would cost a reallocation per row (then one more to shrink it).
    let added = overrides.iter().filter(|(k, _)| !base.iter().any(|(bk, _)| bk == k)).count();
    let mut out = Kwargs::with_capacity(base.len() + added);
    out.extend_from_slice(base);
    for (k, v) in overrides {
        match out.iter_mut().find(|(bk, _)| bk == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

impl PyValue {
    /// An integer in canonical form: [`PyValue::Int`] when it fits `i64`, else
    /// [`PyValue::BigInt`].
    pub fn from_bigint(v: BigInt) -> PyValue {
        match i64::try_from(&v) {
            Ok(i) => PyValue::Int(i),
            Err(_) => PyValue::BigInt(v),
        }
    }

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

/// The canonical form of an integer: [`PyValue::Int`] when it fits in `i64`, else
/// [`PyValue::BigInt`].
pub(crate) fn canonical_int(b: BigInt) -> PyValue {
    match i64::try_from(&b) {
        Ok(i) => PyValue::Int(i),
        Err(_) => PyValue::BigInt(b),
    }
}
