//! Python values without Python: what BTU's task arguments hold, and everything the daemon
//! does with them. Pure code, no I/O, never a panic on the text it reads.
//!
//! | file         | one job                                                                 |
//! |--------------|-------------------------------------------------------------------------|
//! | `value.rs`   | [`PyValue`] and [`Kwargs`], Python's `==` between values, the kwargs merge |
//! | `literal/`   | read Python literal text as `ast.literal_eval` does ([`parse_literal`], [`parse_kwargs`]) |
//! | `repr.rs`    | Python's `repr()` of a value ([`PyValue::to_python_repr`], [`kwargs_repr`]) |
//! | `pickle.rs`  | pickle a value or an RQ call tuple ([`pickle_call`])                     |
//! | `unpickle.rs`| read a pickle of plain values back ([`unpickle`]), for `btu show-job`    |

mod literal;
mod pickle;
mod repr;
mod unpickle;
mod value;

pub use literal::{LiteralError, parse_kwargs, parse_literal};
pub use pickle::{PickleError, pickle_call};
pub use repr::{kwargs_repr, write_kwargs_repr};
pub use unpickle::{UnpickleError, unpickle};
pub use value::{Kwargs, MAX_DEPTH, PyValue, merge_kwargs};

#[cfg(test)]
pub(crate) mod tests;
