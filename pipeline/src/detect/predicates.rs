//! Text equality over interned twins. In a detection's filter, or an aggregate's `FILTER`, `col = 'literal'`
//! and `col IN ('a', 'b')` on a text column become comparisons of the column's `UInt32` twin (see
//! [`table`](super::table)) with the literals' numbers, which the engine's interner keeps fixed for its
//! lifetime ([`Interner::pin`]). Plans then compare integers instead of strings, row by row.
//!
//! Only comparisons reached from the condition's root through `AND`, `OR` and parentheses are rewritten: there
//! a row counts only if the condition is true, and a null value (number [`NONE`](super::state::NONE)) is
//! false either way. Under `NOT`, `CASE` or `IS TRUE` a null comparison and a false one differ, so those are
//! left as written.

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Value};
use sentra_schemas::events_schema;

use super::sharing::parse;
use super::state::Interner;
use super::table::sym_column;

/// Whether `name` is a text column of the events.
fn is_text_column(name: &str) -> bool {
    events_schema()
        .field_with_name(name)
        .is_ok_and(|f| f.data_type() == &arrow::datatypes::DataType::Utf8View)
}

/// A text column compared with text literals: `col = 'x'`, `'x' = col` or `col IN ('x', …)`.
fn comparison(e: &Expr) -> Option<(&str, Vec<&str>)> {
    fn column(e: &Expr) -> Option<&str> {
        match e {
            Expr::Identifier(id) if is_text_column(&id.value) => Some(id.value.as_str()),
            _ => None,
        }
    }
    fn text(e: &Expr) -> Option<&str> {
        match e {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => Some(s.as_str()),
                _ => None,
            },
            _ => None,
        }
    }
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => match (column(left), text(right), text(left), column(right)) {
            (Some(c), Some(t), _, _) | (_, _, Some(t), Some(c)) => Some((c, vec![t])),
            _ => None,
        },
        Expr::InList {
            expr,
            list,
            negated: false,
        } => Some((column(expr)?, list.iter().map(text).collect::<Option<_>>()?)),
        _ => None,
    }
}

/// Calls `f` on every comparison reached from a condition's root through `AND`, `OR` and parentheses.
fn visit_condition(e: &mut Expr, f: &mut impl FnMut(&mut Expr)) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And | BinaryOperator::Or,
            right,
        } => {
            visit_condition(left, f);
            visit_condition(right, f);
        }
        Expr::Nested(inner) => visit_condition(inner, f),
        other => f(other),
    }
}

/// Calls `f` on the comparisons of `e`'s conditions: `e` itself when it is a condition (a filter), or its
/// `FILTER` when it is an aggregate call.
fn visit(e: &mut Expr, f: &mut impl FnMut(&mut Expr)) {
    match e {
        Expr::Function(call) => {
            if let Some(filter) = call.filter.as_deref_mut() {
                visit_condition(filter, f);
            }
        }
        other => visit_condition(other, f),
    }
}

/// The text columns `sql`'s conditions compare with literals (their twins are what the rewrite reads).
pub(super) fn compared_columns(sql: &str) -> Vec<String> {
    let mut columns = Vec::new();
    if let Some(mut e) = parse(sql) {
        visit(&mut e, &mut |c| {
            if let Some((col, _)) = comparison(c) {
                columns.push(col.to_owned());
            }
        });
    }
    columns
}

/// `sql` with its text comparisons rewritten over the twins, the literals pinned in `strings`; `sql` in
/// canonical form if it has none, or as written if it does not parse.
pub(super) fn over_twins(sql: &str, strings: &mut Interner) -> String {
    let Some(mut e) = parse(sql) else {
        return sql.trim().to_owned();
    };
    visit(&mut e, &mut |c| {
        let Some((col, literals)) = comparison(c) else {
            return;
        };
        let numbers: Vec<String> = literals
            .iter()
            .map(|l| format!("CAST({} AS INT UNSIGNED)", strings.pin(l)))
            .collect();
        let twin = sym_column(col);
        let text = match numbers.as_slice() {
            [one] => format!("{twin} = {one}"),
            many => format!("{twin} IN ({})", many.join(", ")),
        };
        *c = parse(&text).expect("a comparison of a twin parses");
    });
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_comparisons_under_and_or_become_twin_comparisons() {
        let mut strings = Interner::default();
        let sql = "action IN ('ssh_login', 'ssh_invalid_user_login') AND (outcome = 'failure' OR 'root' = user_name) AND source_ip IS NOT NULL";
        let out = over_twins(sql, &mut strings);
        let n = |s: &str| strings.lookup(s).unwrap();
        assert_eq!(
            out,
            format!(
                "__sym_action IN (CAST({} AS INT UNSIGNED), CAST({} AS INT UNSIGNED)) AND (__sym_outcome = CAST({} AS INT UNSIGNED) OR __sym_user_name = CAST({} AS INT UNSIGNED)) AND source_ip IS NOT NULL",
                n("ssh_login"),
                n("ssh_invalid_user_login"),
                n("failure"),
                n("root")
            )
        );
        assert_eq!(compared_columns(sql), ["action", "outcome", "user_name"]);
    }

    #[test]
    fn negations_other_operators_and_non_text_stay_as_written() {
        let mut strings = Interner::default();
        for sql in [
            "NOT (action = 'ssh_login')",
            "action <> 'ssh_login'",
            "action NOT IN ('a', 'b')",
            "action LIKE 'ssh%'",
            "(action = 'a') IS TRUE",
            "source_port = '22'",
            "action IN ('a', upper('b'))",
            "action = user_name",
        ] {
            assert_eq!(
                over_twins(sql, &mut strings),
                parse(sql).unwrap().to_string(),
                "{sql}"
            );
            assert!(compared_columns(sql).is_empty(), "{sql}");
        }
        assert_eq!(strings.len(), 0);
    }

    #[test]
    fn an_aggregate_filter_is_rewritten_not_its_arguments() {
        let mut strings = Interner::default();
        let out = over_twins("count(*) FILTER (WHERE outcome = 'success')", &mut strings);
        let n = strings.lookup("success").unwrap();
        assert_eq!(
            out,
            format!("count(*) FILTER (WHERE __sym_outcome = CAST({n} AS INT UNSIGNED))")
        );
    }
}
