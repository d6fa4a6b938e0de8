//! The values an operation carries (paper Fig. 7, `VAL`).
//!
//! Only primitives and the *empty* map and list travel in an operation; a nested
//! `serde_json::Value` is expanded into a sequence of operations by the transaction
//! (`Transaction::set`, `Transaction::insert`). Keeping values flat means no recursion on the
//! wire, so a hostile peer cannot send a deeply nested value to exhaust the stack.

use serde::{Deserialize, Serialize};

use super::error::DocError;

/// Longest string value accepted in one operation, in bytes.
///
/// Large enough for any paste a user makes into one field; small enough that one op cannot
/// make a replica allocate without bound. Longer text belongs in a list of characters.
pub const MAX_STRING_LEN: usize = 1 << 20;

/// A value carried by an assign or insert operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Value {
    /// JSON `null`.
    Null,
    /// JSON `true` / `false`.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A finite 64-bit float (NaN and infinities are rejected: JSON cannot carry them and they
    /// would break equality between replicas).
    Float(f64),
    /// A UTF-8 string of at most [`MAX_STRING_LEN`] bytes.
    Str(String),
    /// The empty map `{}`: creates (or merges into) the map at the key.
    EmptyMap,
    /// The empty list `[]`: creates (or merges into) the list at the key.
    EmptyList,
}

impl Value {
    /// Checks the invariants that serde cannot express: finite floats, bounded strings.
    ///
    /// # Errors
    ///
    /// [`DocError::InvalidValue`] naming what is wrong.
    pub fn validate(&self) -> Result<(), DocError> {
        match self {
            Value::Float(f) if !f.is_finite() => Err(DocError::InvalidValue("non-finite float")),
            Value::Str(s) if s.len() > MAX_STRING_LEN => {
                Err(DocError::InvalidValue("string longer than MAX_STRING_LEN"))
            }
            _ => Ok(()),
        }
    }

    /// True for `{}` and `[]`.
    pub fn is_container(&self) -> bool {
        matches!(self, Value::EmptyMap | Value::EmptyList)
    }

    /// The primitive as JSON; `{}` and `[]` as empty containers.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::EmptyMap => serde_json::Value::Object(serde_json::Map::new()),
            Value::EmptyList => serde_json::Value::Array(Vec::new()),
        }
    }

    /// The flat value for a JSON value: a primitive, or `{}` / `[]` for a container (whose
    /// contents the caller expands into further ops).
    ///
    /// # Errors
    ///
    /// [`DocError::InvalidValue`] for a number that is neither an `i64` nor a finite `f64`
    /// (for example a `u64` above `i64::MAX`).
    pub fn from_json_shallow(v: &serde_json::Value) -> Result<Self, DocError> {
        let out = match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if n.is_u64() {
                    return Err(DocError::InvalidValue("integer above i64::MAX"));
                } else {
                    Value::Float(n.as_f64().ok_or(DocError::InvalidValue("bad number"))?)
                }
            }
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(_) => Value::EmptyList,
            serde_json::Value::Object(_) => Value::EmptyMap,
        };
        out.validate()?;
        Ok(out)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i64::from(i))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<char> for Value {
    fn from(c: char) -> Self {
        Value::Str(c.to_string())
    }
}
