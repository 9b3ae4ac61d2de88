//! Which detections run as one DataFusion plan. Detections with the same group-by keys and pane length share
//! a plan when one's filter is another's plus more conditions: the plan filters by the broader one, and the
//! narrower detection's values get its extra conditions as `FILTER (WHERE …)`. The filter, the grouping and
//! any value they have in common then run once per batch instead of once per detection.
//!
//! Filters are compared as sets of conjuncts (`a AND (b AND c)` is a, b, c) in the canonical text of
//! DataFusion's own SQL parser, so spacing and parentheses do not matter.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{visit_expressions_mut, BinaryOperator, Expr};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::definition::{Detection, Merge};
use super::engine::{parse_distinct, values};

/// One plan to be: the filter it runs and its members, each with the conditions it adds (none for a member
/// with exactly that filter).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PlanGroup {
    /// The plan's `WHERE`.
    pub filter: String,
    /// Detection indices with their extra conjuncts.
    pub members: Vec<(usize, Vec<String>)>,
}

impl PlanGroup {
    /// A plan of `d` alone.
    pub fn alone(d: usize, detections: &[Detection]) -> Self {
        Self {
            filter: detections[d].filter.clone(),
            members: vec![(d, Vec::new())],
        }
    }
}

/// A whole SQL expression as DataFusion's parser reads it; `None` if it does not parse or has text after it.
pub(super) fn parse(sql: &str) -> Option<Expr> {
    let mut parser = Parser::new(&GenericDialect {}).try_with_sql(sql).ok()?;
    let expr = parser.parse_expr().ok()?;
    (parser.peek_token().token == Token::EOF).then_some(expr)
}

/// `sql` parsed with its parentheses dropped. DataFusion plans expressions of one shape as one computation
/// (one aggregate serves both, however each was written), so a plan's values are told apart by shape, not
/// by text. `None` if it does not parse.
pub(super) fn shape(sql: &str) -> Option<Expr> {
    let mut expr = parse(sql)?;
    let _ = visit_expressions_mut(&mut expr, |e| {
        while let Expr::Nested(inner) = e {
            let inner = (**inner).clone();
            *e = inner;
        }
        ControlFlow::<()>::Continue(())
    });
    Some(expr)
}

/// The distinct conjuncts of a filter, canonical and sorted.
fn conjuncts(filter: &str) -> Option<Vec<String>> {
    fn split(e: Expr, out: &mut Vec<String>) {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                split(*left, out);
                split(*right, out);
            }
            Expr::Nested(inner) => match *inner {
                and @ Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                } => split(and, out),
                other => split(other, out),
            },
            other => out.push(other.to_string()),
        }
    }
    let mut out = Vec::new();
    split(parse(filter)?, &mut out);
    out.sort();
    out.dedup();
    Some(out)
}

/// `cond` as one SQL condition: the conjuncts, each parenthesized, joined by `AND`.
pub(super) fn all_of(cond: &[String]) -> String {
    cond.iter()
        .map(|c| format!("({c})"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `sql`, a single aggregate call, restricted to rows where `cond` holds as well (added to, or made, its
/// `FILTER`). `None` if `sql` is anything else, such as arithmetic over aggregates or a window function.
pub(super) fn restrict(sql: &str, cond: &str) -> Option<String> {
    let Expr::Function(mut f) = parse(sql)? else {
        return None;
    };
    if f.over.is_some() {
        return None;
    }
    let cond = parse(cond)?;
    f.filter = Some(Box::new(match f.filter.take() {
        None => cond,
        Some(own) => Expr::BinaryOp {
            left: Box::new(Expr::Nested(own)),
            op: BinaryOperator::And,
            right: Box::new(Expr::Nested(Box::new(cond))),
        },
    }));
    Some(Expr::Function(f).to_string())
}

/// Whether every value of `d` can take extra conditions: distinct sets and single aggregate calls can.
fn restrictable(d: &Detection) -> bool {
    values(d).all(|(_, sql, merge)| {
        (merge == Merge::Union && parse_distinct(sql).is_some()) || restrict(sql, "TRUE").is_some()
    })
}

/// Groups detections into plans. A detection joins a plan with the same keys and pane length whose filter
/// has the same conjuncts as its own, or (when its values can take extra conditions) a subset of them.
/// Broader filters are placed first, so they become the plans' filters. A filter that does not parse plans
/// alone, where DataFusion's error names it.
pub(super) fn plan_groups(detections: &[Detection]) -> Vec<PlanGroup> {
    let conj: Vec<Option<Vec<String>>> = detections.iter().map(|d| conjuncts(&d.filter)).collect();
    let mut order: Vec<usize> = (0..detections.len()).collect();
    order.sort_by_key(|&i| conj[i].as_ref().map_or(usize::MAX, Vec::len));
    let mut groups: Vec<(Option<Vec<String>>, PlanGroup)> = Vec::new();
    for i in order {
        let d = &detections[i];
        let joins = groups.iter_mut().find_map(|(base, g)| {
            let o = &detections[g.members[0].0];
            if o.group_by != d.group_by || o.window.size_slide_us().1 != d.window.size_slide_us().1
            {
                return None;
            }
            let (base, own) = (base.as_ref()?, conj[i].as_ref()?);
            let extra: Vec<String> = own.iter().filter(|c| !base.contains(c)).cloned().collect();
            let subset = base.iter().all(|c| own.contains(c));
            // The same filter needs nothing of the values; a narrower one restricts them.
            (subset && (extra.is_empty() || restrictable(d))).then_some((g, extra))
        });
        match joins {
            Some((g, extra)) => g.members.push((i, extra)),
            None => groups.push((conj[i].clone(), PlanGroup::alone(i, detections))),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::catalog;

    #[test]
    fn conjuncts_ignore_spacing_parentheses_and_order() {
        assert_eq!(
            conjuncts("a = 1 AND (b IS NOT NULL AND c IN ('x', 'y'))"),
            conjuncts("c IN ('x','y')  AND a=1 AND b IS NOT NULL"),
        );
        assert_eq!(conjuncts("a = 1 AND b = 2").unwrap().len(), 2);
        // An OR, or a BETWEEN's AND, is one condition.
        assert_eq!(conjuncts("a = 1 OR b = 2").unwrap().len(), 1);
        assert_eq!(conjuncts("a BETWEEN 1 AND 5 AND b = 2").unwrap().len(), 2);
        assert_eq!(conjuncts("a = 1 b"), None);
    }

    #[test]
    fn restricting_adds_to_the_filter_or_refuses() {
        assert_eq!(
            restrict("count(*)", "outcome = 'failure'").as_deref(),
            Some("count(*) FILTER (WHERE outcome = 'failure')")
        );
        assert_eq!(
            restrict(
                "min(timestamp) FILTER (WHERE outcome = 'success')",
                "(x = 1) AND (y = 2)"
            )
            .as_deref(),
            Some("min(timestamp) FILTER (WHERE (outcome = 'success') AND ((x = 1) AND (y = 2)))")
        );
        assert_eq!(restrict("count(*) * 2", "x = 1"), None);
        // Parentheses do not change what is computed, nor does layout; precedence does.
        assert_eq!(
            shape("count(*) FILTER (WHERE ((a = 1)))"),
            shape("count( * )  FILTER (WHERE a = 1)")
        );
        assert_ne!(
            shape("count(*) FILTER (WHERE (a OR b) AND c)"),
            shape("count(*) FILTER (WHERE a OR (b AND c))")
        );
        assert_eq!(restrict("count(*) OVER ()", "x = 1"), None);
    }

    #[test]
    fn the_catalog_shares_where_one_filter_narrows_another() {
        let detections = catalog::builtin();
        let groups = plan_groups(&detections);
        let name = |i: usize| detections[i].name.as_str();
        let ip = groups
            .iter()
            .find(|g| g.members.iter().any(|&(m, _)| name(m) == "ssh_brute_force"))
            .unwrap();
        assert_eq!(name(ip.members[0].0), "ssh_login_after_failures");
        assert!(ip.members[0].1.is_empty());
        let mut narrower: Vec<(&str, &[String])> = ip.members[1..]
            .iter()
            .map(|(m, extra)| (name(*m), extra.as_slice()))
            .collect();
        narrower.sort();
        let failure = ["outcome = 'failure'".to_owned()];
        assert_eq!(
            narrower,
            [
                ("ssh_brute_force", &failure[..]),
                ("ssh_password_spray", &failure[..])
            ]
        );
        // Every detection is in exactly one plan.
        let mut all: Vec<usize> = groups
            .iter()
            .flat_map(|g| g.members.iter().map(|m| m.0))
            .collect();
        all.sort();
        assert_eq!(all, (0..detections.len()).collect::<Vec<_>>());
    }
}
