//! Property tests of the selector algebra on random span trees.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeSet;

use crate::support::*;
use proptest::prelude::*;
use tbt_compiler::ast::{self, BinaryOp as B};
use tbt_compiler::eval::{EmptyScope, Expectation, PureHost, evaluate_step, select};
use tbt_compiler::trace::{Trace, TraceId};

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// Random forests: each span's parent is an earlier span, none (a root) or a missing span (an
/// orphan); names and a `tier` attribute from small sets so selections overlap.
fn forest() -> impl Strategy<Value = Vec<S>> {
    proptest::collection::vec((0usize..100, 0usize..4, 0i64..3, 0u64..50, 0u64..20), 1..60)
        .prop_map(|rows| {
            rows.iter()
                .enumerate()
                .map(|(i, &(parent_pick, name, tier, start, len))| {
                    let id = i as u64 + 1;
                    let parent = match parent_pick {
                        0..=9 => 0,
                        10..=14 => 1000 + id, // never arrives
                        _ if i == 0 => 0,
                        p => (p as u64 % i as u64) + 1,
                    };
                    let svc = if tier == 0 { "front" } else { "back" };
                    s(id, parent, NAMES[name], svc, start, start + len).attr("tier", any_int(tier))
                })
                .collect()
        })
}

fn set(t: &Trace, e: &ast::Expr) -> BTreeSet<u32> {
    select(e, t, &EmptyScope, &PureHost)
        .unwrap()
        .indices()
        .iter()
        .copied()
        .collect()
}

fn by_name(n: usize) -> ast::Expr {
    named(NAMES[n])
}

fn tier_is(k: i64) -> ast::Expr {
    eq(p("tier"), int(k))
}

fn naive_ancestors(t: &Trace, mut i: u32) -> Vec<u32> {
    let mut out = Vec::new();
    while let Some(p) = t.parent(i) {
        out.push(p);
        i = p;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::tier::cases(200), ..ProptestConfig::default() })]

    #[test]
    fn children_within_descendants_within_all(spans in forest(), x in 0usize..4, y in 0usize..4) {
        let t = trace(&spans);
        let all_set = set(&t, &all());
        prop_assert_eq!(all_set.len(), t.len());
        let child = set(&t, &bin(B::Gt, by_name(x), by_name(y)));
        let desc = set(&t, &bin(B::Descendant, by_name(x), by_name(y)));
        prop_assert!(child.is_subset(&desc));
        prop_assert!(desc.is_subset(&set(&t, &by_name(y))));
        prop_assert!(set(&t, &bin(B::Gt, all(), all())).is_subset(&set(&t, &bin(B::Descendant, all(), all()))));
        // the pre-order index agrees with walking up the parents
        let xs = set(&t, &by_name(x));
        let naive: BTreeSet<u32> = set(&t, &by_name(y))
            .into_iter()
            .filter(|&b| naive_ancestors(&t, b).iter().any(|a| xs.contains(a)))
            .collect();
        prop_assert_eq!(desc, naive);
        let naive_child: BTreeSet<u32> = set(&t, &by_name(y)).into_iter().filter(|&b| t.parent(b).is_some_and(|p| xs.contains(&p))).collect();
        prop_assert_eq!(child, naive_child);
    }

    #[test]
    fn not_and_filter_partition(spans in forest(), x in 0usize..4, k in 0i64..3) {
        let t = trace(&spans);
        let xs = set(&t, &by_name(x));
        let kept = set(&t, &filter(by_name(x), vec![tier_is(k)]));
        let rest = set(&t, &pseudo(by_name(x), "not", Some(filter(all(), vec![tier_is(k)]))));
        prop_assert!(kept.is_disjoint(&rest));
        prop_assert_eq!(kept.union(&rest).copied().collect::<BTreeSet<u32>>(), xs);
    }

    #[test]
    fn has_and_union_agree_with_definitions(spans in forest(), x in 0usize..4, y in 0usize..4) {
        let t = trace(&spans);
        let has = set(&t, &pseudo(by_name(x), "has", Some(by_name(y))));
        let ys = set(&t, &by_name(y));
        let naive: BTreeSet<u32> = set(&t, &by_name(x))
            .into_iter()
            .filter(|&a| ys.iter().any(|&b| naive_ancestors(&t, b).contains(&a)))
            .collect();
        prop_assert_eq!(has, naive);
        let u = set(&t, &bin(B::Union, by_name(x), by_name(y)));
        prop_assert_eq!(u, set(&t, &by_name(x)).union(&ys).copied().collect::<BTreeSet<u32>>());
        // first/last/nth pick from the deterministic order
        let xs: Vec<u32> = set(&t, &by_name(x)).into_iter().collect();
        prop_assert_eq!(set(&t, &pseudo(by_name(x), "first", None)), xs.first().copied().into_iter().collect::<BTreeSet<u32>>());
        prop_assert_eq!(set(&t, &pseudo(by_name(x), "last", None)), xs.last().copied().into_iter().collect::<BTreeSet<u32>>());
    }

    #[test]
    fn by_groups_partition_the_selection(spans in forest(), x in 0usize..4) {
        let t = trace(&spans);
        let e = expect_by(bin(B::Union, by_name(x), by_name((x + 1) % 4)), p("tier"), vec![pred(bin(B::Ge, p("count"), int(1)))]);
        let exps = [Expectation { span: sp(), expect: &e }];
        let out = evaluate_step(&exps, &t, None, &EmptyScope, &PureHost, true);
        let r = &out.results[0];
        if r.selected > 0 {
            prop_assert_eq!(r.groups.iter().map(|g| g.spans).sum::<usize>(), r.selected);
            let keys: BTreeSet<String> = r.groups.iter().map(|g| g.key.to_string()).collect();
            prop_assert_eq!(keys.len(), r.groups.len(), "keys are distinct");
            prop_assert!(r.passed);
        }
    }

    #[test]
    fn order_is_deterministic_and_independent_of_arrival(spans in forest(), seed in 0usize..1000) {
        let t1 = trace(&spans);
        let mut shuffled = spans.clone();
        let n = shuffled.len();
        for i in 0..n {
            shuffled.swap(i, (i * 7 + seed) % n);
        }
        // arrive in two batches, in another order
        let (a, b) = shuffled.split_at(n / 2);
        let mut t2 = Trace::from_resource_spans(&build(a), Some(TraceId(TRACE_ID)));
        t2.extend(&build(b));
        let key = |t: &Trace| t.spans().iter().map(|s| (s.start, s.span_id)).collect::<Vec<_>>();
        prop_assert_eq!(key(&t1), key(&t2));
        let k1 = key(&t1);
        prop_assert!(k1.windows(2).all(|w| w[0] < w[1]));
        prop_assert_eq!(set(&t1, &bin(B::Descendant, by_name(0), all())), set(&t2, &bin(B::Descendant, by_name(0), all())));
    }
}
