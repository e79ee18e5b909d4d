//! Typed semantics of the operators on [`Value`]s.
//!
//! Every function returns a [`EvalError`] instead of panicking when the operand types do not fit;
//! the error says which types it found, and the caller turns it into a failed check. Ints and
//! floats mix in comparisons and arithmetic; durations only combine with durations (and scale by
//! numbers), as the checker also requires.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::ast::BinaryOp;
use crate::value::{SpanSet, Value};

use super::EvalError;

fn type_err(op: BinaryOp, a: &Value, b: &Value) -> EvalError {
    EvalError::Type(format!(
        "`{}` cannot combine {} and {} (found {} {} {})",
        op.symbol(),
        a.type_name(),
        b.type_name(),
        short(a),
        op.symbol(),
        short(b)
    ))
}

/// A value rendered for a message, cut to a readable length.
pub(crate) fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// Equality with numeric mixing ([`Value::equals`]); mismatched types other than `null` are a
/// type error (an attribute of the wrong runtime type must say what it found).
pub fn values_equal(a: &Value, b: &Value) -> Result<bool, EvalError> {
    a.equals(b).ok_or_else(|| type_err(BinaryOp::Eq, a, b))
}

/// Ordering for `< <= > >=`: numbers (mixed), durations, strings.
pub fn compare(op: BinaryOp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    use Value as V;
    let ord = match (a, b) {
        (V::Int(x), V::Int(y)) => x.cmp(y),
        (V::Int(_) | V::Float(_), V::Int(_) | V::Float(_)) => {
            let (x, y) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            match x.partial_cmp(&y) {
                Some(o) => o,
                None => return Ok(false), // NaN: every comparison is false
            }
        }
        (V::Duration(x), V::Duration(y)) => x.cmp(y),
        (V::Str(x), V::Str(y)) => x.cmp(y),
        _ => return Err(type_err(op, a, b)),
    };
    Ok(match op {
        BinaryOp::Lt => ord == Ordering::Less,
        BinaryOp::Le => ord != Ordering::Greater,
        BinaryOp::Gt => ord == Ordering::Greater,
        BinaryOp::Ge => ord != Ordering::Less,
        _ => return Err(type_err(op, a, b)),
    })
}

/// `a contains b`: substring, list element, object subset (recursive), span membership.
pub fn contains(a: &Value, b: &Value) -> Result<bool, EvalError> {
    use Value as V;
    Ok(match (a, b) {
        (V::Str(x), V::Str(y)) => x.contains(&**y),
        // A list contains an object when some element has (at least) its keys and values, so
        // `events contains { "name": "exception" }` works on events with attributes.
        (V::List(items), V::Object(_)) => items.iter().any(|i| subset(i, b, 0)),
        (V::List(items), _) => items.iter().any(|i| values_equal(i, b).unwrap_or(false)),
        (V::Object(_), V::Object(_)) => subset(a, b, 0),
        (V::Bytes(x), V::Bytes(y)) => y.is_empty() || x.windows(y.len()).any(|w| w == &y[..]),
        (V::Spans(x), V::Spans(y)) => y.indices().iter().all(|i| x.contains(*i)),
        _ => return Err(type_err(BinaryOp::Contains, a, b)),
    })
}

/// `b` is a subset of `a`: every key of `b` is in `a` with an equal value, or, for objects and
/// lists, recursively a subset.
fn subset(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > crate::value::MAX_VALUE_DEPTH {
        return false;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => y.iter().all(|(k, vb)| {
            x.iter()
                .any(|(ka, va)| ka == k && subset(va, vb, depth + 1))
        }),
        (Value::List(x), Value::List(y)) => y
            .iter()
            .all(|vb| x.iter().any(|va| subset(va, vb, depth + 1))),
        _ => values_equal(a, b).unwrap_or(false),
    }
}

/// `a in b`: the reverse of `contains`, plus `key in object`.
pub fn is_in(a: &Value, b: &Value) -> Result<bool, EvalError> {
    match (a, b) {
        (Value::Str(k), Value::Object(o)) => Ok(o.iter().any(|(key, _)| key == k)),
        (Value::Object(_), Value::Object(_)) => contains(b, a),
        (_, Value::List(_) | Value::Str(_) | Value::Bytes(_) | Value::Spans(_)) => contains(b, a),
        _ => Err(type_err(BinaryOp::In, a, b)),
    }
}

/// `+ - * /` with checked integer arithmetic.
pub fn arith(op: BinaryOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    use Value as V;
    let overflow = || {
        EvalError::Msg(format!(
            "integer overflow in `{} {} {}`",
            short(a),
            op.symbol(),
            short(b)
        ))
    };
    let div_zero = || EvalError::Msg(format!("division by zero in `{} / {}`", short(a), short(b)));
    Ok(match (op, a, b) {
        (_, V::Int(x), V::Int(y)) => V::Int(match op {
            BinaryOp::Add => x.checked_add(*y).ok_or_else(overflow)?,
            BinaryOp::Sub => x.checked_sub(*y).ok_or_else(overflow)?,
            BinaryOp::Mul => x.checked_mul(*y).ok_or_else(overflow)?,
            BinaryOp::Div => {
                if *y == 0 {
                    return Err(div_zero());
                }
                x.checked_div(*y).ok_or_else(overflow)?
            }
            _ => return Err(type_err(op, a, b)),
        }),
        (_, V::Int(_) | V::Float(_), V::Int(_) | V::Float(_)) => {
            let (x, y) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            V::Float(match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => {
                    if y == 0.0 {
                        return Err(div_zero());
                    }
                    x / y
                }
                _ => return Err(type_err(op, a, b)),
            })
        }
        (BinaryOp::Add, V::Duration(x), V::Duration(y)) => {
            V::Duration(x.checked_add(*y).ok_or_else(overflow)?)
        }
        (BinaryOp::Sub, V::Duration(x), V::Duration(y)) => V::Duration(x.saturating_sub(*y)),
        (BinaryOp::Div, V::Duration(x), V::Duration(y)) => {
            if *y == 0 {
                return Err(div_zero());
            }
            V::Float(*x as f64 / *y as f64)
        }
        (BinaryOp::Mul, V::Duration(d), V::Int(_) | V::Float(_))
        | (BinaryOp::Mul, V::Int(_) | V::Float(_), V::Duration(d)) => {
            let k = if let V::Duration(_) = a { b } else { a };
            let f = k.as_f64().unwrap_or(f64::NAN);
            let r = *d as f64 * f;
            if !(0.0..1.8e19).contains(&r) {
                return Err(overflow());
            }
            V::Duration(r as u64)
        }
        (BinaryOp::Div, V::Duration(d), V::Int(_) | V::Float(_)) => {
            let f = b.as_f64().unwrap_or(f64::NAN);
            if f == 0.0 {
                return Err(div_zero());
            }
            let r = *d as f64 / f;
            if !(0.0..1.8e19).contains(&r) {
                return Err(overflow());
            }
            V::Duration(r as u64)
        }
        (BinaryOp::Add, V::Str(x), V::Str(y)) => {
            let mut s = String::with_capacity(x.len() + y.len());
            s.push_str(x);
            s.push_str(y);
            V::Str(Arc::from(s))
        }
        (BinaryOp::Add, V::List(x), V::List(y)) => {
            V::List(x.iter().chain(y.iter()).cloned().collect())
        }
        _ => return Err(type_err(op, a, b)),
    })
}

/// `-x`.
pub fn negate(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Int(i) => i
            .checked_neg()
            .map(Value::Int)
            .ok_or_else(|| EvalError::Msg("integer overflow in negation".into())),
        Value::Float(f) => Ok(Value::Float(-f)),
        _ => Err(EvalError::Type(format!(
            "`-` needs a number, found {} {}",
            v.type_name(),
            short(v)
        ))),
    }
}

/// The bool inside, or a type error naming what was found.
pub fn truth(v: &Value, what: &str) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(EvalError::Type(format!(
            "{what} needs a bool, found {} {}",
            v.type_name(),
            short(v)
        ))),
    }
}

/// Union of two selections (both sorted).
pub fn union(a: &SpanSet, b: &SpanSet) -> SpanSet {
    let (x, y) = (a.indices(), b.indices());
    let mut out = Vec::with_capacity(x.len() + y.len());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            Ordering::Less => {
                out.push(x[i]);
                i += 1;
            }
            Ordering::Greater => {
                out.push(y[j]);
                j += 1;
            }
            Ordering::Equal => {
                out.push(x[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&x[i..]);
    out.extend_from_slice(&y[j..]);
    SpanSet::from_sorted(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ast::BinaryOp as B;

    fn s(x: &str) -> Value {
        Value::str(x)
    }
    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (Arc::from(*k), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn equality_mixes_numbers_and_rejects_other_types() {
        assert!(values_equal(&Value::Int(2), &Value::Float(2.0)).unwrap());
        assert!(!values_equal(&Value::Int(2), &Value::Float(2.5)).unwrap());
        assert!(!values_equal(&Value::Null, &Value::Int(1)).unwrap());
        let e = values_equal(&s("200"), &Value::Int(200)).unwrap_err();
        assert!(e.to_string().contains("string and int"), "{e}");
        assert!(values_equal(&Value::Duration(5), &Value::Duration(5)).unwrap());
        assert!(
            values_equal(
                &obj(&[("a", Value::Int(1)), ("b", s("x"))]),
                &obj(&[("b", s("x")), ("a", Value::Float(1.0))])
            )
            .unwrap()
        );
    }

    #[test]
    fn ordering_by_type() {
        assert!(compare(B::Lt, &Value::Int(1), &Value::Float(1.5)).unwrap());
        assert!(compare(B::Ge, &Value::Duration(300), &Value::Duration(300)).unwrap());
        assert!(compare(B::Gt, &s("b"), &s("a")).unwrap());
        assert!(!compare(B::Lt, &Value::Float(f64::NAN), &Value::Int(1)).unwrap());
        let e = compare(B::Lt, &Value::Duration(1), &Value::Int(1)).unwrap_err();
        assert!(e.to_string().contains("duration and int"), "{e}");
        assert!(compare(B::Le, &Value::Bool(true), &Value::Bool(true)).is_err());
    }

    #[test]
    fn contains_on_strings_lists_objects() {
        assert!(contains(&s("hello world"), &s("lo w")).unwrap());
        assert!(!contains(&s("hello"), &s("xyz")).unwrap());
        let list = Value::List(Arc::from(vec![Value::Int(1), s("a")]));
        assert!(contains(&list, &Value::Float(1.0)).unwrap());
        assert!(!contains(&list, &s("b")).unwrap());
        let big = obj(&[
            ("a", Value::Int(1)),
            ("n", obj(&[("x", Value::Bool(true)), ("y", Value::Null)])),
        ]);
        assert!(contains(&big, &obj(&[("n", obj(&[("x", Value::Bool(true))]))])).unwrap());
        assert!(!contains(&big, &obj(&[("n", obj(&[("x", Value::Bool(false))]))])).unwrap());
        assert!(!contains(&big, &obj(&[("zz", Value::Int(1))])).unwrap());
        assert!(contains(&Value::Int(1), &Value::Int(1)).is_err());
    }

    #[test]
    fn in_is_reverse_contains() {
        let list = Value::List(Arc::from(vec![s("GET"), s("POST")]));
        assert!(is_in(&s("GET"), &list).unwrap());
        assert!(!is_in(&s("PUT"), &list).unwrap());
        assert!(is_in(&s("a"), &obj(&[("a", Value::Null)])).unwrap());
        assert!(is_in(&s("ell"), &s("hello")).unwrap());
        assert!(is_in(&Value::Int(1), &Value::Int(1)).is_err());
    }

    #[test]
    fn arithmetic() {
        assert!(matches!(
            arith(B::Add, &Value::Int(2), &Value::Int(3)),
            Ok(Value::Int(5))
        ));
        assert!(
            matches!(arith(B::Mul, &Value::Int(2), &Value::Float(1.5)), Ok(Value::Float(f)) if f == 3.0)
        );
        assert!(arith(B::Div, &Value::Int(1), &Value::Int(0)).is_err());
        assert!(arith(B::Add, &Value::Int(i64::MAX), &Value::Int(1)).is_err());
        assert!(matches!(
            arith(B::Add, &Value::Duration(1), &Value::Duration(2)),
            Ok(Value::Duration(3))
        ));
        assert!(matches!(
            arith(B::Mul, &Value::Duration(10), &Value::Int(3)),
            Ok(Value::Duration(30))
        ));
        assert!(arith(B::Add, &Value::Duration(1), &Value::Int(2)).is_err());
        assert_eq!(
            arith(B::Add, &s("a"), &s("b")).unwrap().as_str(),
            Some("ab")
        );
        assert!(matches!(negate(&Value::Int(3)), Ok(Value::Int(-3))));
        assert!(negate(&s("x")).is_err());
    }

    #[test]
    fn union_merges() {
        let a = SpanSet::from_sorted(vec![1, 3, 5]);
        let b = SpanSet::from_sorted(vec![2, 3, 6]);
        assert_eq!(union(&a, &b).indices(), &[1, 2, 3, 5, 6]);
    }
}
