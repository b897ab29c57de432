//! Evaluation of a parsed expression over a rule's input values.

use crate::expr::{BinaryOp, Expr, UnaryOp};
use crate::functions::{loosely_equal, Function};
use crate::value::{to_text, Value};

/// Evaluates `expr` with `inputs` as `$1..$n`. The error says what failed, with the values.
pub fn evaluate(expr: &Expr, inputs: &[Value]) -> Result<Value, String> {
    Ok(match expr {
        Expr::Int(i) => Value::Int(*i),
        Expr::Float(f) => Value::Float(*f),
        Expr::Str(s) => Value::Str(s.clone()),
        Expr::Bool(b) => Value::Bool(*b),
        Expr::Empty => Value::Empty,
        Expr::Input(n) => inputs[*n].clone(),
        Expr::Tuple(items) => Value::Tuple(
            items
                .iter()
                .map(|e| evaluate(e, inputs))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Unary(op, inner) => {
            let v = evaluate(inner, inputs)?;
            match (op, v) {
                (UnaryOp::Not, Value::Bool(b)) => Value::Bool(!b),
                (UnaryOp::Negate, Value::Int(i)) => Value::Int(
                    i.checked_neg()
                        .ok_or("`-`: the result is larger than a 64-bit integer")?,
                ),
                (UnaryOp::Negate, Value::Float(f)) => Value::Float(-f),
                (UnaryOp::Not, other) => return Err(format!("`!` needs a boolean, not {other}")),
                (UnaryOp::Negate, other) => return Err(format!("`-` needs a number, not {other}")),
            }
        }
        Expr::Binary(BinaryOp::And, l, r) => match evaluate(l, inputs)? {
            Value::Bool(false) => Value::Bool(false),
            Value::Bool(true) => Value::Bool(boolean("&&", evaluate(r, inputs)?)?),
            other => return Err(format!("`&&` needs booleans, not {other}")),
        },
        Expr::Binary(BinaryOp::Or, l, r) => match evaluate(l, inputs)? {
            Value::Bool(true) => Value::Bool(true),
            Value::Bool(false) => Value::Bool(boolean("||", evaluate(r, inputs)?)?),
            other => return Err(format!("`||` needs booleans, not {other}")),
        },
        Expr::Binary(op, l, r) => binary(*op, evaluate(l, inputs)?, evaluate(r, inputs)?)?,
        Expr::Call(Function::If, args) => match evaluate(&args[0], inputs)? {
            Value::Bool(true) => evaluate(&args[1], inputs)?,
            Value::Bool(false) => evaluate(&args[2], inputs)?,
            other => return Err(format!("`if` needs a boolean condition, not {other}")),
        },
        Expr::Call(function, args) => {
            let values = args
                .iter()
                .map(|e| evaluate(e, inputs))
                .collect::<Result<Vec<_>, _>>()?;
            function.call(values)?
        }
    })
}

fn boolean(op: &str, v: Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(format!("`{op}` needs booleans, not {other}")),
    }
}

fn binary(op: BinaryOp, l: Value, r: Value) -> Result<Value, String> {
    use BinaryOp::*;
    let symbol = op.symbol();
    match op {
        Eq => return Ok(Value::Bool(loosely_equal(&l, &r))),
        Ne => return Ok(Value::Bool(!loosely_equal(&l, &r))),
        Lt | Gt | Le | Ge => {
            let ordering = match (&l, &r) {
                (Value::Str(a), Value::Str(b)) => a.cmp(b),
                (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
                _ => {
                    let (a, b) = numbers(symbol, &l, &r)?;
                    a.partial_cmp(&b)
                        .ok_or_else(|| format!("`{symbol}`: {l} and {r} do not compare"))?
                }
            };
            return Ok(Value::Bool(match op {
                Lt => ordering.is_lt(),
                Gt => ordering.is_gt(),
                Le => ordering.is_le(),
                _ => ordering.is_ge(),
            }));
        }
        Add if matches!(l, Value::Str(_)) || matches!(r, Value::Str(_)) => {
            if matches!(l, Value::Empty | Value::Json(_))
                || matches!(r, Value::Empty | Value::Json(_))
            {
                return Err(format!(
                    "`+` joins a string with {}",
                    if matches!(l, Value::Str(_)) { &r } else { &l }
                ));
            }
            return Ok(Value::Str(to_text(&l) + &to_text(&r)));
        }
        _ => {}
    }
    if let (Value::Int(a), Value::Int(b)) = (&l, &r) {
        let (a, b) = (*a, *b);
        let overflow = || format!("`{symbol}`: {a} {symbol} {b} is larger than a 64-bit integer");
        return Ok(Value::Int(match op {
            Add => a.checked_add(b).ok_or_else(overflow)?,
            Sub => a.checked_sub(b).ok_or_else(overflow)?,
            Mul => a.checked_mul(b).ok_or_else(overflow)?,
            // "Result is an integer if both arguments are integers" (concept-dataflow-conversions).
            Div | Rem if b == 0 => return Err(format!("`{symbol}`: division of {a} by zero")),
            Div => a.checked_div(b).ok_or_else(overflow)?,
            Rem => a.checked_rem(b).ok_or_else(overflow)?,
            Pow if b >= 0 => {
                let exponent = u32::try_from(b).map_err(|_| overflow())?;
                a.checked_pow(exponent).ok_or_else(overflow)?
            }
            Pow => return Ok(Value::Float((a as f64).powf(b as f64))),
            _ => unreachable!("handled above"),
        }));
    }
    let (a, b) = numbers(symbol, &l, &r)?;
    let v = match op {
        Add => a + b,
        Sub => a - b,
        Mul => a * b,
        Div if b == 0.0 => return Err(format!("`/`: division of {l} by zero")),
        Div => a / b,
        Rem if b == 0.0 => return Err(format!("`%`: division of {l} by zero")),
        Rem => a % b,
        Pow => a.powf(b),
        _ => unreachable!("handled above"),
    };
    Ok(Value::Float(v))
}

fn numbers(symbol: &str, l: &Value, r: &Value) -> Result<(f64, f64), String> {
    let number = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    match (number(l), number(r)) {
        (Some(a), Some(b)) => Ok((a, b)),
        (None, _) => Err(format!("`{symbol}` needs a number, not {l}")),
        (_, None) => Err(format!("`{symbol}` needs a number, not {r}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse;

    fn eval(text: &str, inputs: &[Value]) -> Result<Value, String> {
        evaluate(&parse(text, inputs.len()).unwrap(), inputs)
    }

    /// The function table of concept-dataflow-conversions, its examples as printed.
    #[test]
    fn documented_function_examples() {
        let none: &[Value] = &[];
        assert_eq!(eval("min(2, 3, 1)", none), Ok(Value::Int(1)));
        assert_eq!(eval("max(2, 3, 1)", none), Ok(Value::Int(3)));
        assert_eq!(eval("len(\"Azure\")", none), Ok(Value::Int(5)));
        assert_eq!(eval("len(1, 2, 3)", none), Ok(Value::Int(3)));
        assert_eq!(eval("floor(2.9)", none), Ok(Value::Int(2)));
        assert_eq!(eval("round(2.5)", none), Ok(Value::Int(3)));
        assert_eq!(eval("ceil(2.1)", none), Ok(Value::Int(3)));
        assert_eq!(
            eval("scale(5, 0, 10, 0, 100)", none),
            Ok(Value::Float(50.0))
        );
        assert_eq!(
            eval("if($1 > 10, 'High', 'Low')", &[Value::Int(11)]),
            Ok(Value::Str("High".into()))
        );
        assert_eq!(
            eval("if($1 > 10, 'High', 'Low')", &[Value::Int(10)]),
            Ok(Value::Str("Low".into()))
        );
        assert_eq!(
            eval("cToF($1)", &[Value::Int(100)]),
            Ok(Value::Float(212.0))
        );
        assert_eq!(
            eval("fToC($1)", &[Value::Int(212)]),
            Ok(Value::Float(100.0))
        );
        assert_eq!(eval("$1 * 2 ^ 3", &[Value::Int(2)]), Ok(Value::Int(16)));
        assert_eq!(eval("$1 / 25", &[Value::Int(60)]), Ok(Value::Int(2)));
        assert_eq!(
            eval("$1 / 25", &[Value::Float(50.0)]),
            Ok(Value::Float(2.0))
        );
        assert_eq!(
            eval(
                "$1 + \", \" + $2",
                &[Value::Str("Analyst".into()), Value::Str("Kent, WA".into())]
            ),
            Ok(Value::Str("Analyst, Kent, WA".into()))
        );
        assert_eq!(
            eval("if($1 == (), $2, $1)", &[Value::Empty, Value::Int(70000)]),
            Ok(Value::Int(70000))
        );
        assert_eq!(
            eval(
                "min($1)",
                &[Value::Tuple(vec![
                    Value::Float(2.34),
                    Value::Float(12.3),
                    Value::Float(32.4)
                ])]
            ),
            Ok(Value::Float(2.34))
        );
        assert_eq!(
            eval("typeof($1)", &[Value::Empty]),
            Ok(Value::Str("empty".into()))
        );
        assert_eq!(
            eval("str::substring(\"thermostat\", 0, 5)", none),
            Ok(Value::Str("therm".into()))
        );
        assert_eq!(
            eval("contains((1, 2, 3), 2.0)", none),
            Ok(Value::Bool(true))
        );
        assert_eq!(eval("round_n(2.71828, 2)", none), Ok(Value::Float(2.72)));
    }

    #[test]
    fn type_errors_say_which_value() {
        let e = eval("cToF($1)", &[Value::Str("warm".into())]).unwrap_err();
        assert!(e.contains("number") && e.contains("\"warm\""), "{e}");
        let e = eval("$1 * $2 < 100000", &[Value::Empty, Value::Int(3)]).unwrap_err();
        assert!(e.contains("()"), "{e}");
        assert!(eval("$1 / 0", &[Value::Int(1)])
            .unwrap_err()
            .contains("zero"));
        assert!(eval("$1 * 2", &[Value::Int(i64::MAX)])
            .unwrap_err()
            .contains("64-bit"));
        assert!(eval("$1 && true", &[Value::Int(1)]).is_err());
        // Short-circuit: the right side is not evaluated.
        assert_eq!(
            eval("false && $1 > 1", &[Value::Str("x".into())]),
            Ok(Value::Bool(false))
        );
    }
}
