//! The KQL that people type first, with Kusto's semantics: a table, then `where` (`and`,
//! `or`, comparisons, `between`, `in`, `contains`/`has`/`startswith`/`endswith` and their
//! `!`/`_cs` forms), `project`, `extend` with arithmetic, `summarize` with `count()`,
//! `countif()`, `sum()`, `avg()`, `min()`, `max()`, `dcount()`, `take_any()` by columns
//! and `bin()`, `top N by`, `distinct`, `take`, `count`, `order by`, and `render timechart`
//! as a hint to a viewer. Functions: `ago`, `now`, `bin`/`floor`, `isnull`, `isnotnull`,
//! `isempty`, `isnotempty`, `strlen`, `tostring`, `tolong`, `toint`, `todouble`/`toreal`,
//! `todatetime`, `tolower`, `toupper`, `strcat`, `iif`/`iff`, `not`, `abs`, `round`,
//! `ingestion_time`.
//!
//! A query is parsed once and type-checked against the table before any row is read;
//! anything outside the subset is an error that names what is supported, never a
//! different answer.

mod lexer;
mod syntax;
mod value;

use std::collections::HashMap;

use serde_json::Value;

use kusto_model::schema::{Column, KustoType};

use syntax::{BinaryOp, Expr, Named, Operator, SortKey, TextOp};
use value::{compare, group_key, Scalar};

use super::KustoFailure;

/// Columns and rows: what a query gives, before a response shape (v1 or v2) is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// The visualization `render` asked for (`timechart`, `linechart`, `table`).
    pub visualization: Option<String>,
}

/// A table as a query reads it.
pub struct Source<'a> {
    pub columns: &'a [Column],
    pub rows: &'a [Vec<Value>],
    /// Unix nanoseconds per row: `ingestion_time()`.
    pub ingested_at: &'a [u64],
}

const FUNCTIONS: &str = "ago, now, bin, floor, isnull, isnotnull, isempty, isnotempty, strlen, tostring, tolong, toint, todouble, toreal, todatetime, tolower, toupper, strcat, iif, iff, not, abs, round, ingestion_time";
const AGGREGATES: &str = "count, countif, sum, avg, min, max, dcount, take_any";
/// Ticks from 0001-01-01 to 1970-01-01: `bin` rounds datetimes as Kusto does, from year 1.
const TICKS_BEFORE_UNIX: i64 = 621_355_968_000_000_000;

struct Row {
    cells: Vec<Scalar>,
    /// Ticks since the Unix epoch, while rows are still the table's own.
    ingested: Option<i64>,
}

struct Frame {
    columns: Vec<Column>,
    rows: Vec<Row>,
}

/// Parses `text` and runs it over the table `table_of` finds by name.
pub fn run<'a>(
    text: &str,
    table_of: impl Fn(&str) -> Option<Source<'a>>,
) -> Result<QueryResult, KustoFailure> {
    let query = syntax::parse(text).map_err(|e| {
        KustoFailure::bad_request("BadRequest_SyntaxError", format!("Syntax error: {e}"))
    })?;
    let source = table_of(&query.table).ok_or_else(|| {
        semantic(format!(
            "Failed to resolve table or column expression named '{}'",
            query.table
        ))
    })?;
    let now = (crate::now_nanos() / 100) as i64;
    let mut frame = Frame {
        columns: source.columns.to_vec(),
        rows: source
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| Row {
                cells: row
                    .iter()
                    .zip(source.columns)
                    .map(|(cell, column)| Scalar::from_cell(cell, column.kusto_type))
                    .collect(),
                ingested: source.ingested_at.get(i).map(|n| (*n / 100) as i64),
            })
            .collect(),
    };
    let mut visualization = None;
    let context = Context { now };
    for (word, operator) in &query.operators {
        frame = apply(frame, operator, &context, &mut visualization)
            .map_err(|e| semantic(format!("'{word}' operator: {e}")))?;
    }
    let columns = frame.columns;
    let rows = frame
        .rows
        .into_iter()
        .map(|row| {
            row.cells
                .into_iter()
                .zip(&columns)
                .map(|(cell, column)| cell.into_cell(column.kusto_type))
                .collect()
        })
        .collect();
    Ok(QueryResult {
        columns,
        rows,
        visualization,
    })
}

fn semantic(message: String) -> KustoFailure {
    KustoFailure::bad_request("General_BadRequest", format!("Semantic error: {message}"))
}

/// What every expression of a query sees alike: `now()` is one instant per query.
struct Context {
    now: i64,
}

fn apply(
    mut frame: Frame,
    operator: &Operator,
    context: &Context,
    visualization: &mut Option<String>,
) -> Result<Frame, String> {
    match operator {
        Operator::Where(predicate) => {
            let ty = type_of(predicate, &frame.columns)?;
            if ty != KustoType::Bool {
                return Err(format!("the predicate is of type {}, not bool", ty.name()));
            }
            frame
                .rows
                .retain(|row| eval(predicate, row, &frame.columns, context) == Scalar::Bool(true));
            Ok(frame)
        }
        Operator::Project(items) | Operator::Extend(items) => {
            let extend = matches!(operator, Operator::Extend(_));
            let mut columns = if extend {
                frame.columns.clone()
            } else {
                Vec::new()
            };
            // Where each item's value goes: replacing a column, or a new one at the end.
            let mut targets = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let ty = type_of(&item.expr, &frame.columns)?;
                let name = output_name(item, i, &columns);
                let column = Column {
                    name: name.clone(),
                    kusto_type: ty,
                };
                match columns.iter().position(|c| c.name == name) {
                    Some(at) if extend => {
                        columns[at] = column;
                        targets.push(at);
                    }
                    Some(_) => return Err(format!("the column '{name}' is projected twice")),
                    None => {
                        columns.push(column);
                        targets.push(columns.len() - 1);
                    }
                }
            }
            let rows = frame
                .rows
                .into_iter()
                .map(|row| {
                    let values: Vec<Scalar> = items
                        .iter()
                        .map(|item| eval(&item.expr, &row, &frame.columns, context))
                        .collect();
                    let mut cells = if extend {
                        row.cells
                    } else {
                        vec![Scalar::Null; columns.len()]
                    };
                    cells.resize(columns.len(), Scalar::Null);
                    for (value, &at) in values.into_iter().zip(&targets) {
                        cells[at] = value;
                    }
                    Row {
                        cells,
                        ingested: row.ingested,
                    }
                })
                .collect();
            Ok(Frame { columns, rows })
        }
        Operator::Summarize { aggregates, by } => summarize(frame, aggregates, by, context),
        Operator::Distinct(items) => {
            let items: Vec<Named> = if items.is_empty() {
                frame
                    .columns
                    .iter()
                    .map(|c| Named {
                        name: None,
                        expr: Expr::Column(c.name.clone()),
                    })
                    .collect()
            } else {
                items.clone()
            };
            summarize(frame, &[], &items, context)
        }
        Operator::Take(n) => {
            frame.rows.truncate(*n);
            Ok(frame)
        }
        Operator::Count => Ok(Frame {
            columns: vec![column("Count", KustoType::Long)],
            rows: vec![Row {
                cells: vec![Scalar::Long(frame.rows.len() as i64)],
                ingested: None,
            }],
        }),
        Operator::Sort(keys) => sort(frame, keys, context),
        Operator::Top { count, key } => {
            let mut frame = sort(frame, std::slice::from_ref(key), context)?;
            frame.rows.truncate(*count);
            Ok(frame)
        }
        Operator::Render(kind) => {
            *visualization = Some(kind.clone());
            Ok(frame)
        }
    }
}

fn column(name: &str, kusto_type: KustoType) -> Column {
    Column {
        name: name.to_string(),
        kusto_type,
    }
}

/// A column's name: as given, the column's own, the column a function reads first
/// (`bin(Timestamp, 1m)` is `Timestamp`), or `Column1`, `Column2`, … as Kusto numbers them.
fn output_name(item: &Named, index: usize, taken: &[Column]) -> String {
    if let Some(name) = &item.name {
        return name.clone();
    }
    match &item.expr {
        Expr::Column(name) => name.clone(),
        Expr::Call(f, args) if matches!(f.as_str(), "bin" | "floor") => match args.first() {
            Some(Expr::Column(name)) => name.clone(),
            _ => numbered(index, taken),
        },
        _ => numbered(index, taken),
    }
}

fn numbered(index: usize, taken: &[Column]) -> String {
    (index + 1..)
        .map(|n| format!("Column{n}"))
        .find(|name| !taken.iter().any(|c| &c.name == name))
        .expect("a free name")
}

fn sort(mut frame: Frame, keys: &[SortKey], context: &Context) -> Result<Frame, String> {
    for key in keys {
        type_of(&key.expr, &frame.columns)?;
    }
    let columns = &frame.columns;
    let mut keyed: Vec<(Vec<Scalar>, Row)> = frame
        .rows
        .drain(..)
        .map(|row| {
            let values = keys
                .iter()
                .map(|k| eval(&k.expr, &row, columns, context))
                .collect();
            (values, row)
        })
        .collect();
    keyed.sort_by(|(a, _), (b, _)| {
        for (key, (x, y)) in keys.iter().zip(a.iter().zip(b)) {
            let order = match (x.is_null(), y.is_null()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) if key.nulls_first => std::cmp::Ordering::Less,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) if key.nulls_first => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                (false, false) if key.descending => compare(y, x),
                (false, false) => compare(x, y),
            };
            if order != std::cmp::Ordering::Equal {
                return order;
            }
        }
        std::cmp::Ordering::Equal
    });
    frame.rows = keyed.into_iter().map(|(_, row)| row).collect();
    Ok(frame)
}

#[derive(Clone, Copy, PartialEq)]
enum Aggregate {
    Count,
    CountIf,
    Sum,
    Avg,
    Min,
    Max,
    DCount,
    TakeAny,
}

struct AggregateSpec<'a> {
    kind: Aggregate,
    arg: Option<&'a Expr>,
    ty: KustoType,
}

fn aggregate_of<'a>(expr: &'a Expr, columns: &[Column]) -> Result<AggregateSpec<'a>, String> {
    let Expr::Call(name, args) = expr else {
        return Err(format!("an aggregation is expected ({AGGREGATES})"));
    };
    let kind = match name.as_str() {
        "count" => Aggregate::Count,
        "countif" => Aggregate::CountIf,
        "sum" => Aggregate::Sum,
        "avg" => Aggregate::Avg,
        "min" => Aggregate::Min,
        "max" => Aggregate::Max,
        "dcount" => Aggregate::DCount,
        "take_any" | "any" => Aggregate::TakeAny,
        other => {
            return Err(format!(
                "{other}() is not an aggregation function here ({AGGREGATES})"
            ))
        }
    };
    let expected = if kind == Aggregate::Count { 0 } else { 1 };
    if args.len() != expected {
        return Err(format!(
            "{name}() takes {expected} argument(s), found {}",
            args.len()
        ));
    }
    let arg = args.first();
    let arg_ty = arg.map(|a| type_of(a, columns)).transpose()?;
    let ty = match (kind, arg_ty) {
        (Aggregate::Count | Aggregate::DCount, _) => KustoType::Long,
        (Aggregate::CountIf, Some(KustoType::Bool)) => KustoType::Long,
        (Aggregate::CountIf, Some(other)) => {
            return Err(format!(
                "countif() needs a bool predicate, found {}",
                other.name()
            ))
        }
        (Aggregate::Sum, Some(KustoType::Int | KustoType::Long)) => KustoType::Long,
        (
            Aggregate::Sum | Aggregate::Avg,
            Some(KustoType::Real | KustoType::Decimal | KustoType::Int | KustoType::Long),
        ) => KustoType::Real,
        (Aggregate::Sum, Some(KustoType::TimeSpan)) => KustoType::TimeSpan,
        (Aggregate::Sum | Aggregate::Avg, Some(other)) => {
            return Err(format!("{name}() needs a number, found {}", other.name()))
        }
        (Aggregate::Min | Aggregate::Max | Aggregate::TakeAny, Some(ty)) => ty,
        _ => unreachable!("arguments were counted"),
    };
    Ok(AggregateSpec { kind, arg, ty })
}

fn aggregate_name(item: &Named, spec: &AggregateSpec) -> String {
    if let Some(name) = &item.name {
        return name.clone();
    }
    let prefix = match spec.kind {
        Aggregate::Count => return "count_".into(),
        Aggregate::CountIf => return "countif_".into(),
        Aggregate::Sum => "sum_",
        Aggregate::Avg => "avg_",
        Aggregate::Min => "min_",
        Aggregate::Max => "max_",
        Aggregate::DCount => "dcount_",
        Aggregate::TakeAny => "take_any_",
    };
    match spec.arg {
        Some(Expr::Column(c)) => format!("{prefix}{c}"),
        _ => prefix.to_string(),
    }
}

#[derive(Default)]
struct Accumulator {
    count: i64,
    sum_long: i64,
    sum_real: f64,
    numbers: i64,
    best: Option<Scalar>,
    distinct: std::collections::HashSet<String>,
}

fn summarize(
    frame: Frame,
    aggregates: &[Named],
    by: &[Named],
    context: &Context,
) -> Result<Frame, String> {
    let specs = aggregates
        .iter()
        .map(|a| aggregate_of(&a.expr, &frame.columns))
        .collect::<Result<Vec<_>, _>>()?;
    let mut columns = Vec::new();
    for (i, key) in by.iter().enumerate() {
        if let Expr::Call(name, _) = &key.expr {
            if aggregate_of(&key.expr, &frame.columns).is_ok()
                && !matches!(name.as_str(), "min" | "max")
            {
                return Err(format!(
                    "{name}() is an aggregation and cannot be a `by` key"
                ));
            }
        }
        let ty = type_of(&key.expr, &frame.columns)?;
        let name = output_name(key, i, &columns);
        if columns.iter().any(|c: &Column| c.name == name) {
            return Err(format!("the column '{name}' is a key twice"));
        }
        columns.push(column(&name, ty));
    }
    for (item, spec) in aggregates.iter().zip(&specs) {
        let mut name = aggregate_name(item, spec);
        if columns.iter().any(|c| c.name == name) {
            name = numbered(columns.len(), &columns);
        }
        columns.push(column(&name, spec.ty));
    }
    let mut order: Vec<(Vec<Scalar>, Vec<Accumulator>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in &frame.rows {
        let keys: Vec<Scalar> = by
            .iter()
            .map(|k| eval(&k.expr, row, &frame.columns, context))
            .collect();
        let id: String = keys.iter().map(group_key).collect::<Vec<_>>().join("\u{1}");
        let slot = *index.entry(id).or_insert_with(|| {
            order.push((keys, specs.iter().map(|_| Accumulator::default()).collect()));
            order.len() - 1
        });
        for (spec, acc) in specs.iter().zip(order[slot].1.iter_mut()) {
            let value = spec
                .arg
                .map(|a| eval(a, row, &frame.columns, context))
                .unwrap_or(Scalar::Null);
            accumulate(spec, acc, value);
        }
    }
    // Kusto: summarize without `by` over no rows gives one row (count 0).
    if by.is_empty() && order.is_empty() {
        order.push((
            Vec::new(),
            specs.iter().map(|_| Accumulator::default()).collect(),
        ));
    }
    let rows = order
        .into_iter()
        .map(|(mut keys, accs)| {
            keys.extend(specs.iter().zip(accs).map(|(spec, acc)| finish(spec, acc)));
            Row {
                cells: keys,
                ingested: None,
            }
        })
        .collect();
    Ok(Frame { columns, rows })
}

fn accumulate(spec: &AggregateSpec, acc: &mut Accumulator, value: Scalar) {
    match spec.kind {
        Aggregate::Count => acc.count += 1,
        Aggregate::CountIf => acc.count += i64::from(value == Scalar::Bool(true)),
        Aggregate::Sum | Aggregate::Avg => match value {
            Scalar::Long(v) => {
                acc.sum_long = acc.sum_long.wrapping_add(v);
                acc.sum_real += v as f64;
                acc.numbers += 1;
            }
            Scalar::Real(v) => {
                acc.sum_real += v;
                acc.numbers += 1;
            }
            Scalar::TimeSpan(v) => {
                acc.sum_long += v;
                acc.numbers += 1;
            }
            _ => {}
        },
        Aggregate::Min | Aggregate::Max => {
            if value.is_null() {
                return;
            }
            let better = match &acc.best {
                None => true,
                Some(best) => {
                    let order = compare(&value, best);
                    if spec.kind == Aggregate::Min {
                        order.is_lt()
                    } else {
                        order.is_gt()
                    }
                }
            };
            if better {
                acc.best = Some(value);
            }
        }
        Aggregate::DCount => {
            if !value.is_null() {
                acc.distinct.insert(group_key(&value));
            }
        }
        Aggregate::TakeAny => {
            if acc.best.is_none() && !value.is_null() {
                acc.best = Some(value);
            }
        }
    }
}

fn finish(spec: &AggregateSpec, acc: Accumulator) -> Scalar {
    match spec.kind {
        Aggregate::Count | Aggregate::CountIf => Scalar::Long(acc.count),
        Aggregate::DCount => Scalar::Long(acc.distinct.len() as i64),
        Aggregate::Sum if acc.numbers == 0 => Scalar::Null,
        Aggregate::Sum => match spec.ty {
            KustoType::Long => Scalar::Long(acc.sum_long),
            KustoType::TimeSpan => Scalar::TimeSpan(acc.sum_long),
            _ => Scalar::Real(acc.sum_real),
        },
        Aggregate::Avg if acc.numbers == 0 => Scalar::Null,
        Aggregate::Avg => Scalar::Real(acc.sum_real / acc.numbers as f64),
        Aggregate::Min | Aggregate::Max | Aggregate::TakeAny => acc.best.unwrap_or(Scalar::Null),
    }
}

fn is_number(ty: KustoType) -> bool {
    matches!(
        ty,
        KustoType::Int | KustoType::Long | KustoType::Real | KustoType::Decimal
    )
}

fn comparable(a: KustoType, b: KustoType) -> bool {
    a == b
        || (is_number(a) && is_number(b))
        || a == KustoType::Dynamic
        || b == KustoType::Dynamic
        || (matches!(a, KustoType::String | KustoType::Guid)
            && matches!(b, KustoType::String | KustoType::Guid))
}

/// The type of `expr` over `columns`, or what is wrong with it.
fn type_of(expr: &Expr, columns: &[Column]) -> Result<KustoType, String> {
    Ok(match expr {
        Expr::Column(name) => {
            columns
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(|| format!("Failed to resolve scalar expression named '{name}'"))?
                .kusto_type
        }
        Expr::Literal(value) => match value {
            Scalar::Null | Scalar::Dynamic(_) => KustoType::Dynamic,
            Scalar::Bool(_) => KustoType::Bool,
            Scalar::Long(_) => KustoType::Long,
            Scalar::Real(_) => KustoType::Real,
            Scalar::Str(_) => KustoType::String,
            Scalar::DateTime(_) => KustoType::DateTime,
            Scalar::TimeSpan(_) => KustoType::TimeSpan,
        },
        Expr::Negate(inner) => match type_of(inner, columns)? {
            ty if is_number(ty) || ty == KustoType::TimeSpan => ty,
            other => return Err(format!("unary '-' cannot be applied to {}", other.name())),
        },
        Expr::Binary(op, left, right) => {
            let (l, r) = (type_of(left, columns)?, type_of(right, columns)?);
            binary_type(*op, l, r)?
        }
        Expr::Between {
            value, low, high, ..
        } => {
            let ty = type_of(value, columns)?;
            for bound in [low, high] {
                let bound_ty = type_of(bound, columns)?;
                if !comparable(ty, bound_ty) {
                    return Err(cannot_compare(ty, bound_ty));
                }
            }
            KustoType::Bool
        }
        Expr::In { value, list, .. } => {
            let ty = type_of(value, columns)?;
            for item in list {
                let item_ty = type_of(item, columns)?;
                if !comparable(ty, item_ty) {
                    return Err(cannot_compare(ty, item_ty));
                }
            }
            KustoType::Bool
        }
        Expr::Call(name, args) => call_type(name, args, columns)?,
    })
}

fn cannot_compare(a: KustoType, b: KustoType) -> String {
    format!(
        "Cannot compare values of types {} and {}. Try adding explicit casts",
        a.name(),
        b.name()
    )
}

fn binary_type(op: BinaryOp, l: KustoType, r: KustoType) -> Result<KustoType, String> {
    use KustoType::*;
    let refuse = || {
        Err(format!(
            "the operator '{}' cannot be applied to {} and {}",
            op.symbol(),
            l.name(),
            r.name()
        ))
    };
    match op {
        BinaryOp::Or | BinaryOp::And => {
            if matches!((l, r), (Bool | Dynamic, Bool | Dynamic)) {
                Ok(Bool)
            } else {
                refuse()
            }
        }
        BinaryOp::Equal
        | BinaryOp::NotEqual
        | BinaryOp::Less
        | BinaryOp::LessOrEqual
        | BinaryOp::Greater
        | BinaryOp::GreaterOrEqual => {
            if comparable(l, r) {
                Ok(Bool)
            } else {
                Err(cannot_compare(l, r))
            }
        }
        BinaryOp::EqualIgnoreCase | BinaryOp::NotEqualIgnoreCase | BinaryOp::Text(..) => Ok(Bool),
        BinaryOp::Add
        | BinaryOp::Subtract
        | BinaryOp::Multiply
        | BinaryOp::Divide
        | BinaryOp::Modulo => match (op, l, r) {
            (_, Int | Long, Int | Long) => Ok(Long),
            (BinaryOp::Modulo, _, _) if is_number(l) && is_number(r) => Ok(Real),
            (_, _, _) if is_number(l) && is_number(r) => Ok(Real),
            (BinaryOp::Subtract, DateTime, DateTime) => Ok(TimeSpan),
            (BinaryOp::Add | BinaryOp::Subtract, DateTime, TimeSpan) => Ok(DateTime),
            (BinaryOp::Add, TimeSpan, DateTime) => Ok(DateTime),
            (BinaryOp::Add | BinaryOp::Subtract, TimeSpan, TimeSpan) => Ok(TimeSpan),
            (BinaryOp::Divide, TimeSpan, TimeSpan) => Ok(Real),
            (BinaryOp::Multiply | BinaryOp::Divide, TimeSpan, _) if is_number(r) => Ok(TimeSpan),
            (BinaryOp::Multiply, _, TimeSpan) if is_number(l) => Ok(TimeSpan),
            _ => refuse(),
        },
    }
}

fn call_type(name: &str, args: &[Expr], columns: &[Column]) -> Result<KustoType, String> {
    use KustoType::*;
    let types = args
        .iter()
        .map(|a| type_of(a, columns))
        .collect::<Result<Vec<_>, _>>()?;
    let arity = |n: usize| {
        if types.len() == n {
            Ok(())
        } else {
            Err(format!(
                "{name}() takes {n} argument(s), found {}",
                types.len()
            ))
        }
    };
    Ok(match name {
        "now" | "ingestion_time" => {
            arity(0)?;
            DateTime
        }
        "ago" => {
            arity(1)?;
            if types[0] != TimeSpan {
                return Err(format!("ago() needs a timespan, found {}", types[0].name()));
            }
            DateTime
        }
        "bin" | "floor" => {
            arity(2)?;
            match (types[0], types[1]) {
                (DateTime, TimeSpan) => DateTime,
                (TimeSpan, TimeSpan) => TimeSpan,
                (Int | Long, Int | Long) => Long,
                (a, b) if is_number(a) && is_number(b) => Real,
                (a, b) => {
                    return Err(format!(
                        "{name}() cannot round {} to a bin of {}",
                        a.name(),
                        b.name()
                    ))
                }
            }
        }
        "isnull" | "isnotnull" | "isempty" | "isnotempty" => {
            arity(1)?;
            Bool
        }
        "not" => {
            arity(1)?;
            if !matches!(types[0], Bool | Dynamic) {
                return Err(format!("not() needs a bool, found {}", types[0].name()));
            }
            Bool
        }
        "strlen" => {
            arity(1)?;
            Long
        }
        "tostring" | "tolower" | "toupper" => {
            arity(1)?;
            String
        }
        "strcat" => {
            if types.is_empty() {
                return Err("strcat() needs at least one argument".into());
            }
            String
        }
        "tolong" => {
            arity(1)?;
            Long
        }
        "toint" => {
            arity(1)?;
            Int
        }
        "todouble" | "toreal" => {
            arity(1)?;
            Real
        }
        "todatetime" => {
            arity(1)?;
            DateTime
        }
        "iif" | "iff" => {
            arity(3)?;
            if !matches!(types[0], Bool | Dynamic) {
                return Err(format!(
                    "{name}() needs a bool condition, found {}",
                    types[0].name()
                ));
            }
            if types[1] != types[2]
                && !(is_number(types[1]) && is_number(types[2]))
                && types[2] != Dynamic
                && types[1] != Dynamic
            {
                return Err(format!(
                    "{name}(): the two results are of types {} and {}",
                    types[1].name(),
                    types[2].name()
                ));
            }
            if types[1] == Dynamic {
                types[2]
            } else {
                types[1]
            }
        }
        "abs" => {
            arity(1)?;
            if !is_number(types[0]) && types[0] != TimeSpan {
                return Err(format!("abs() needs a number, found {}", types[0].name()));
            }
            types[0]
        }
        "round" => {
            if !(1..=2).contains(&types.len()) || !is_number(types[0]) {
                return Err("round() takes a number and optionally a precision".into());
            }
            types[0]
        }
        other if AGGREGATES.split(", ").any(|a| a == other) => {
            return Err(format!("{other}() is an aggregation: use it in summarize"))
        }
        other => {
            return Err(format!(
                "Unknown function: '{other}' (supported: {FUNCTIONS})"
            ))
        }
    })
}

fn eval(expr: &Expr, row: &Row, columns: &[Column], context: &Context) -> Scalar {
    let value = |e: &Expr| eval(e, row, columns, context);
    match expr {
        Expr::Column(name) => columns
            .iter()
            .position(|c| &c.name == name)
            .map_or(Scalar::Null, |i| row.cells[i].clone()),
        Expr::Literal(v) => v.clone(),
        Expr::Negate(inner) => match value(inner) {
            Scalar::Long(v) => Scalar::Long(-v),
            Scalar::Real(v) => Scalar::Real(-v),
            Scalar::TimeSpan(v) => Scalar::TimeSpan(-v),
            _ => Scalar::Null,
        },
        Expr::Binary(op, left, right) => binary(*op, value(left), value(right)),
        Expr::Between {
            value: v,
            low,
            high,
            negated,
        } => {
            let (v, low, high) = (value(v), value(low), value(high));
            if v.is_null() || low.is_null() || high.is_null() {
                return Scalar::Null;
            }
            let inside = compare(&v, &low).is_ge() && compare(&v, &high).is_le();
            Scalar::Bool(inside != *negated)
        }
        Expr::In {
            value: v,
            list,
            negated,
            ignore_case,
        } => {
            let v = value(v);
            let found = list.iter().any(|item| {
                let item = value(item);
                if *ignore_case {
                    v.to_text().to_lowercase() == item.to_text().to_lowercase()
                } else {
                    equal(&v, &item)
                }
            });
            Scalar::Bool(found != *negated)
        }
        Expr::Call(name, args) => {
            let values: Vec<Scalar> = args.iter().map(value).collect();
            call(name, values, row, context)
        }
    }
}

fn equal(a: &Scalar, b: &Scalar) -> bool {
    !a.is_null() && !b.is_null() && compare(a, b).is_eq()
}

fn truth(value: &Scalar) -> Option<bool> {
    match value {
        Scalar::Bool(b) => Some(*b),
        Scalar::Dynamic(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn binary(op: BinaryOp, l: Scalar, r: Scalar) -> Scalar {
    match op {
        BinaryOp::And => match (truth(&l), truth(&r)) {
            (Some(false), _) | (_, Some(false)) => Scalar::Bool(false),
            (Some(true), Some(true)) => Scalar::Bool(true),
            _ => Scalar::Null,
        },
        BinaryOp::Or => match (truth(&l), truth(&r)) {
            (Some(true), _) | (_, Some(true)) => Scalar::Bool(true),
            (Some(false), Some(false)) => Scalar::Bool(false),
            _ => Scalar::Null,
        },
        // The null-values page: == of two nulls is null, of a null and a value false;
        // != of two nulls is null, of a null and a value true.
        BinaryOp::Equal | BinaryOp::NotEqual => {
            let want = op == BinaryOp::Equal;
            match (l.is_null(), r.is_null()) {
                (true, true) => Scalar::Null,
                (true, false) | (false, true) => Scalar::Bool(!want),
                _ => Scalar::Bool(compare(&l, &r).is_eq() == want),
            }
        }
        BinaryOp::Less | BinaryOp::LessOrEqual | BinaryOp::Greater | BinaryOp::GreaterOrEqual => {
            if l.is_null() || r.is_null() {
                return Scalar::Null;
            }
            if let (Scalar::Real(x), _) | (_, Scalar::Real(x)) = (&l, &r) {
                if x.is_nan() {
                    return Scalar::Bool(false);
                }
            }
            let order = compare(&l, &r);
            Scalar::Bool(match op {
                BinaryOp::Less => order.is_lt(),
                BinaryOp::LessOrEqual => order.is_le(),
                BinaryOp::Greater => order.is_gt(),
                _ => order.is_ge(),
            })
        }
        BinaryOp::EqualIgnoreCase | BinaryOp::NotEqualIgnoreCase => {
            let same = l.to_text().to_lowercase() == r.to_text().to_lowercase();
            Scalar::Bool(same == (op == BinaryOp::EqualIgnoreCase))
        }
        BinaryOp::Text(text_op, negated, case_sensitive) => {
            let (mut hay, mut needle) = (l.to_text(), r.to_text());
            if !case_sensitive {
                hay = hay.to_lowercase();
                needle = needle.to_lowercase();
            }
            let found = match text_op {
                TextOp::Contains => hay.contains(&needle),
                TextOp::StartsWith => hay.starts_with(&needle),
                TextOp::EndsWith => hay.ends_with(&needle),
                TextOp::Has => has_term(&hay, &needle),
            };
            Scalar::Bool(found != negated)
        }
        _ => arithmetic(op, l, r),
    }
}

/// `has`: the needle appears as whole terms (runs of letters and digits) of the text.
fn has_term(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let is_term = |c: char| c.is_alphanumeric();
    hay.match_indices(needle).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        let starts = !needle.starts_with(is_term) || before.is_none_or(|c| !is_term(c));
        let ends = !needle.ends_with(is_term) || after.is_none_or(|c| !is_term(c));
        starts && ends
    })
}

fn arithmetic(op: BinaryOp, l: Scalar, r: Scalar) -> Scalar {
    use Scalar::*;
    match (op, l, r) {
        (_, Null, _) | (_, _, Null) => Null,
        (BinaryOp::Add, Long(a), Long(b)) => a.checked_add(b).map_or(Null, Long),
        (BinaryOp::Subtract, Long(a), Long(b)) => a.checked_sub(b).map_or(Null, Long),
        (BinaryOp::Multiply, Long(a), Long(b)) => a.checked_mul(b).map_or(Null, Long),
        (BinaryOp::Divide, Long(a), Long(b)) => a.checked_div(b).map_or(Null, Long),
        (BinaryOp::Modulo, Long(a), Long(b)) => a.checked_rem(b).map_or(Null, Long),
        (BinaryOp::Subtract, DateTime(a), DateTime(b)) => TimeSpan(a - b),
        (BinaryOp::Add, DateTime(a), TimeSpan(b)) | (BinaryOp::Add, TimeSpan(b), DateTime(a)) => {
            DateTime(a + b)
        }
        (BinaryOp::Subtract, DateTime(a), TimeSpan(b)) => DateTime(a - b),
        (BinaryOp::Add, TimeSpan(a), TimeSpan(b)) => TimeSpan(a + b),
        (BinaryOp::Subtract, TimeSpan(a), TimeSpan(b)) => TimeSpan(a - b),
        (BinaryOp::Divide, TimeSpan(a), TimeSpan(b)) if b != 0 => Real(a as f64 / b as f64),
        (BinaryOp::Multiply, TimeSpan(a), n) | (BinaryOp::Multiply, n, TimeSpan(a)) => n
            .as_f64()
            .map_or(Null, |n| TimeSpan((a as f64 * n).round() as i64)),
        (BinaryOp::Divide, TimeSpan(a), n) => match n.as_f64() {
            Some(n) if n != 0.0 => TimeSpan((a as f64 / n).round() as i64),
            _ => Null,
        },
        (op, a, b) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => Real(match op {
                BinaryOp::Add => x + y,
                BinaryOp::Subtract => x - y,
                BinaryOp::Multiply => x * y,
                BinaryOp::Divide => x / y,
                _ => x % y,
            }),
            _ => Null,
        },
    }
}

fn call(name: &str, mut args: Vec<Scalar>, row: &Row, context: &Context) -> Scalar {
    let first = args.first().cloned().unwrap_or(Scalar::Null);
    match name {
        "now" => Scalar::DateTime(context.now),
        "ingestion_time" => row.ingested.map_or(Scalar::Null, Scalar::DateTime),
        "ago" => match first {
            Scalar::TimeSpan(t) => Scalar::DateTime(context.now - t),
            _ => Scalar::Null,
        },
        "bin" | "floor" => bin(first, args.swap_remove(1)),
        "isnull" => Scalar::Bool(first.is_null()),
        "isnotnull" => Scalar::Bool(!first.is_null()),
        "isempty" => Scalar::Bool(first.is_null() || first.to_text().is_empty()),
        "isnotempty" => Scalar::Bool(!(first.is_null() || first.to_text().is_empty())),
        "not" => truth(&first).map_or(Scalar::Null, |b| Scalar::Bool(!b)),
        "strlen" => Scalar::Long(first.to_text().chars().count() as i64),
        "tostring" => Scalar::Str(first.to_text()),
        "tolower" => Scalar::Str(first.to_text().to_lowercase()),
        "toupper" => Scalar::Str(first.to_text().to_uppercase()),
        "strcat" => Scalar::Str(args.iter().map(Scalar::to_text).collect()),
        "tolong" | "toint" => match first {
            Scalar::Long(v) => Scalar::Long(v),
            Scalar::Real(v) if v.is_finite() => Scalar::Long(v.trunc() as i64),
            Scalar::Bool(b) => Scalar::Long(b as i64),
            other => other
                .to_text()
                .trim()
                .parse()
                .map_or(Scalar::Null, Scalar::Long),
        },
        "todouble" | "toreal" => match first {
            Scalar::Long(v) => Scalar::Real(v as f64),
            Scalar::Real(v) => Scalar::Real(v),
            other => other
                .to_text()
                .trim()
                .parse()
                .map_or(Scalar::Null, Scalar::Real),
        },
        "todatetime" => match first {
            Scalar::DateTime(t) => Scalar::DateTime(t),
            other => kusto_model::datetime::DateTime::parse(other.to_text().trim())
                .map_or(Scalar::Null, |dt| Scalar::DateTime(dt.unix_ticks())),
        },
        "iif" | "iff" => {
            if truth(&first) == Some(true) {
                args.swap_remove(1)
            } else {
                args.swap_remove(2)
            }
        }
        "abs" => match first {
            Scalar::Long(v) => Scalar::Long(v.abs()),
            Scalar::Real(v) => Scalar::Real(v.abs()),
            Scalar::TimeSpan(v) => Scalar::TimeSpan(v.abs()),
            _ => Scalar::Null,
        },
        "round" => {
            let digits = args.get(1).and_then(Scalar::as_f64).unwrap_or(0.0) as i32;
            match first {
                Scalar::Long(v) => Scalar::Long(v),
                Scalar::Real(v) => {
                    let scale = 10f64.powi(digits);
                    Scalar::Real((v * scale).round() / scale)
                }
                _ => Scalar::Null,
            }
        }
        _ => Scalar::Null,
    }
}

/// `bin(value, size)`: down to a whole multiple of `size` (datetimes counted from year 1).
fn bin(value: Scalar, size: Scalar) -> Scalar {
    match (value, size) {
        (Scalar::DateTime(t), Scalar::TimeSpan(s)) if s > 0 => {
            let from_year_one = t + TICKS_BEFORE_UNIX;
            Scalar::DateTime(from_year_one.div_euclid(s) * s - TICKS_BEFORE_UNIX)
        }
        (Scalar::TimeSpan(t), Scalar::TimeSpan(s)) if s > 0 => {
            Scalar::TimeSpan(t.div_euclid(s) * s)
        }
        (Scalar::Long(v), Scalar::Long(s)) if s > 0 => Scalar::Long(v.div_euclid(s) * s),
        (v, s) => match (v.as_f64(), s.as_f64()) {
            (Some(v), Some(s)) if s > 0.0 => Scalar::Real((v / s).floor() * s),
            _ => Scalar::Null,
        },
    }
}

#[cfg(test)]
mod tests;
