//! Condition expressions over a stored document: field tests (`$gt $lt $gte $lte $eq $ne
//! $prefix $exists $in $nin`) combined with `$and`, `$or` and `$nor`. Used as preconditions on
//! writes and as scan filters. Comparisons use [`compare_values`], so `9`, `9i64` and `9.0` are
//! equal, and ordering tests only match values of the same type class (a string is never
//! "greater than" a number), as in MongoDB.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::keycode::{compare_values, field_value, type_rank};
use super::DocError;

/// One test on one field.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldTest {
    Gt(Bson),
    Lt(Bson),
    Gte(Bson),
    Lte(Bson),
    Eq(Bson),
    Ne(Bson),
    /// The string or binary value starts with the operand (of the same type).
    Prefix(Bson),
    /// `true`: the field is present; `false`: it is absent.
    Exists(bool),
    In(Vec<Bson>),
    Nin(Vec<Bson>),
}

impl FieldTest {
    /// Builds a test from an operator name such as `$gt`. `operand` is the single comparison
    /// value; `operands` the list for `$in`/`$nin`.
    pub fn from_operator(
        op: &str,
        operand: Option<Bson>,
        operands: Option<Vec<Bson>>,
    ) -> Result<Self, DocError> {
        let need = |o: Option<Bson>| {
            o.ok_or_else(|| DocError::InvalidCondition(format!("{op} needs a value")))
        };
        let need_list = |o: Option<Vec<Bson>>| {
            o.ok_or_else(|| DocError::InvalidCondition(format!("{op} needs a value array")))
        };
        Ok(match op {
            "$gt" => FieldTest::Gt(need(operand)?),
            "$lt" => FieldTest::Lt(need(operand)?),
            "$gte" => FieldTest::Gte(need(operand)?),
            "$lte" => FieldTest::Lte(need(operand)?),
            "$eq" => FieldTest::Eq(need(operand)?),
            "$ne" => FieldTest::Ne(need(operand)?),
            "$prefix" => match need(operand)? {
                v @ (Bson::String(_) | Bson::Binary(_)) => FieldTest::Prefix(v),
                other => {
                    return Err(DocError::InvalidCondition(format!(
                        "$prefix takes a string or binary value, not {:?}",
                        other.element_type()
                    )))
                }
            },
            "$exists" => match need(operand)? {
                Bson::Boolean(b) => FieldTest::Exists(b),
                Bson::Int32(i) => FieldTest::Exists(i != 0),
                Bson::Int64(i) => FieldTest::Exists(i != 0),
                other => {
                    return Err(DocError::InvalidCondition(format!(
                        "$exists takes a boolean, not {:?}",
                        other.element_type()
                    )))
                }
            },
            "$in" => FieldTest::In(need_list(operands)?),
            "$nin" => FieldTest::Nin(need_list(operands)?),
            other => {
                return Err(DocError::InvalidCondition(format!(
                    "unknown operator `{other}`"
                )))
            }
        })
    }

    /// Whether `value` (None = field absent) passes.
    pub fn matches(&self, value: Option<&Bson>) -> bool {
        let same_class = |v: &Bson, operand: &Bson| type_rank(v) == type_rank(operand);
        let ordered = |operand: &Bson, accept: fn(Ordering) -> bool| {
            value.is_some_and(|v| same_class(v, operand) && accept(compare_values(v, operand)))
        };
        let equal = |v: &Bson, operand: &Bson| compare_values(v, operand) == Ordering::Equal;
        match self {
            FieldTest::Gt(o) => ordered(o, |c| c == Ordering::Greater),
            FieldTest::Lt(o) => ordered(o, |c| c == Ordering::Less),
            FieldTest::Gte(o) => ordered(o, |c| c != Ordering::Less),
            FieldTest::Lte(o) => ordered(o, |c| c != Ordering::Greater),
            FieldTest::Eq(o) => value.is_some_and(|v| equal(v, o)),
            FieldTest::Ne(o) => !value.is_some_and(|v| equal(v, o)),
            FieldTest::Prefix(o) => match (value, o) {
                (Some(Bson::String(v)), Bson::String(p)) => v.starts_with(p.as_str()),
                (Some(Bson::Binary(v)), Bson::Binary(p)) => v.bytes.starts_with(&p.bytes),
                _ => false,
            },
            FieldTest::Exists(want) => value.is_some() == *want,
            FieldTest::In(list) => value.is_some_and(|v| list.iter().any(|o| equal(v, o))),
            FieldTest::Nin(list) => !value.is_some_and(|v| list.iter().any(|o| equal(v, o))),
        }
    }
}

/// A condition tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    Field {
        path: String,
        test: FieldTest,
    },
    /// True when every child is (true when empty).
    And(Vec<Condition>),
    /// True when some child is.
    Or(Vec<Condition>),
    /// True when no child is.
    Nor(Vec<Condition>),
    /// Whether the document exists at all.
    Exists(bool),
}

/// Deepest condition tree accepted: evaluation recurses.
pub const MAX_CONDITION_DEPTH: usize = 32;

impl Condition {
    /// Combines children under a logic operator name (`$and`, `$or`, `$nor`; absent = `$and`).
    pub fn combine(logic: Option<&str>, children: Vec<Condition>) -> Result<Self, DocError> {
        match logic.unwrap_or("$and") {
            "$and" => Ok(Condition::And(children)),
            "$or" => Ok(Condition::Or(children)),
            "$nor" => Ok(Condition::Nor(children)),
            other => Err(DocError::InvalidCondition(format!(
                "unknown logic operator `{other}`"
            ))),
        }
    }

    /// Evaluates against a document, or against "no document" (`None`): field tests then see
    /// every field as absent.
    pub fn evaluate(&self, doc: Option<&Document>) -> bool {
        match self {
            Condition::Field { path, test } => test.matches(doc.and_then(|d| field_value(d, path))),
            Condition::And(c) => c.iter().all(|c| c.evaluate(doc)),
            Condition::Or(c) => c.iter().any(|c| c.evaluate(doc)),
            Condition::Nor(c) => !c.iter().any(|c| c.evaluate(doc)),
            Condition::Exists(want) => doc.is_some() == *want,
        }
    }

    /// The field paths this condition reads.
    pub fn paths(&self) -> Vec<&str> {
        match self {
            Condition::Field { path, .. } => vec![path.as_str()],
            Condition::And(c) | Condition::Or(c) | Condition::Nor(c) => {
                c.iter().flat_map(|c| c.paths()).collect()
            }
            Condition::Exists(_) => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    use proptest::prelude::*;

    fn field(path: &str, test: FieldTest) -> Condition {
        Condition::Field {
            path: path.into(),
            test,
        }
    }

    #[test]
    fn operators_on_a_document() {
        let d = doc! {"n": 5, "s": "hello", "b": true, "big": 7i64, "x": 2.5};
        let yes = [
            field("n", FieldTest::Gt(Bson::Double(4.5))),
            field("n", FieldTest::Eq(Bson::Int64(5))),
            field("n", FieldTest::Lte(Bson::Double(5.0))),
            field("s", FieldTest::Prefix(Bson::String("he".into()))),
            field("missing", FieldTest::Exists(false)),
            field("s", FieldTest::Exists(true)),
            field(
                "big",
                FieldTest::In(vec![Bson::Int32(1), Bson::Double(7.0)]),
            ),
            field("big", FieldTest::Nin(vec![Bson::Int32(1)])),
            field("missing", FieldTest::Ne(Bson::Int32(1))),
            field("x", FieldTest::Lt(Bson::Int32(3))),
        ];
        for c in &yes {
            assert!(c.evaluate(Some(&d)), "{c:?}");
        }
        let no = [
            field("s", FieldTest::Gt(Bson::Int32(0))),
            field("n", FieldTest::Gte(Bson::String("a".into()))),
            field("missing", FieldTest::Eq(Bson::Null)),
            field("n", FieldTest::Prefix(Bson::String("5".into()))),
            field("b", FieldTest::Ne(Bson::Boolean(true))),
        ];
        for c in &no {
            assert!(!c.evaluate(Some(&d)), "{c:?}");
        }
        let all = Condition::And(yes.to_vec());
        assert!(all.evaluate(Some(&d)));
        assert!(!Condition::Or(no.to_vec()).evaluate(Some(&d)));
        assert!(Condition::Nor(no.to_vec()).evaluate(Some(&d)));
        assert!(!Condition::Exists(true).evaluate(None));
    }

    #[test]
    fn operator_parsing() {
        assert!(FieldTest::from_operator("$between", Some(Bson::Int32(1)), None).is_err());
        assert!(FieldTest::from_operator("$gt", None, None).is_err());
        assert!(FieldTest::from_operator("$prefix", Some(Bson::Int32(1)), None).is_err());
        assert!(FieldTest::from_operator("$in", Some(Bson::Int32(1)), None).is_err());
        assert_eq!(
            FieldTest::from_operator("$exists", Some(Bson::Boolean(true)), None).unwrap(),
            FieldTest::Exists(true)
        );
        assert!(Condition::combine(Some("$xor"), vec![]).is_err());
    }

    /// A deliberately naive reference: numbers as f64 (exact for the small values generated),
    /// strings as strings, nothing else.
    fn reference(test: &FieldTest, value: Option<&Bson>) -> bool {
        fn num(v: &Bson) -> Option<f64> {
            match v {
                Bson::Int32(i) => Some(f64::from(*i)),
                Bson::Int64(i) => Some(*i as f64),
                Bson::Double(d) => Some(*d),
                _ => None,
            }
        }
        fn eq(a: &Bson, b: &Bson) -> bool {
            match (num(a), num(b)) {
                (Some(x), Some(y)) => x == y,
                (None, None) => a == b,
                _ => false,
            }
        }
        fn cmp(a: &Bson, b: &Bson) -> Option<Ordering> {
            match (num(a), num(b), a, b) {
                (Some(x), Some(y), _, _) => x.partial_cmp(&y),
                (_, _, Bson::String(x), Bson::String(y)) => Some(x.cmp(y)),
                (_, _, Bson::Boolean(x), Bson::Boolean(y)) => Some(x.cmp(y)),
                _ => None,
            }
        }
        match test {
            FieldTest::Gt(o) => value.and_then(|v| cmp(v, o)) == Some(Ordering::Greater),
            FieldTest::Lt(o) => value.and_then(|v| cmp(v, o)) == Some(Ordering::Less),
            FieldTest::Gte(o) => matches!(
                value.and_then(|v| cmp(v, o)),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            FieldTest::Lte(o) => matches!(
                value.and_then(|v| cmp(v, o)),
                Some(Ordering::Less | Ordering::Equal)
            ),
            FieldTest::Eq(o) => value.is_some_and(|v| eq(v, o)),
            FieldTest::Ne(o) => !value.is_some_and(|v| eq(v, o)),
            FieldTest::Prefix(o) => match (value, o) {
                (Some(Bson::String(v)), Bson::String(p)) => v.starts_with(p.as_str()),
                _ => false,
            },
            FieldTest::Exists(b) => value.is_some() == *b,
            FieldTest::In(l) => value.is_some_and(|v| l.iter().any(|o| eq(v, o))),
            FieldTest::Nin(l) => !value.is_some_and(|v| l.iter().any(|o| eq(v, o))),
        }
    }

    fn reference_eval(c: &Condition, d: &Document) -> bool {
        match c {
            Condition::Field { path, test } => reference(test, d.get(path)),
            Condition::And(cs) => cs.iter().all(|c| reference_eval(c, d)),
            Condition::Or(cs) => cs.iter().any(|c| reference_eval(c, d)),
            Condition::Nor(cs) => !cs.iter().any(|c| reference_eval(c, d)),
            Condition::Exists(b) => *b,
        }
    }

    fn arb_small() -> impl Strategy<Value = Bson> {
        prop_oneof![
            (-3i32..3).prop_map(Bson::Int32),
            (-3i64..3).prop_map(Bson::Int64),
            (-6i32..6).prop_map(|i| Bson::Double(f64::from(i) / 2.0)),
            "[ab]{0,2}".prop_map(Bson::String),
            any::<bool>().prop_map(Bson::Boolean),
        ]
    }

    fn arb_test() -> impl Strategy<Value = FieldTest> {
        prop_oneof![
            arb_small().prop_map(FieldTest::Gt),
            arb_small().prop_map(FieldTest::Lt),
            arb_small().prop_map(FieldTest::Gte),
            arb_small().prop_map(FieldTest::Lte),
            arb_small().prop_map(FieldTest::Eq),
            arb_small().prop_map(FieldTest::Ne),
            "[ab]{0,2}".prop_map(|s| FieldTest::Prefix(Bson::String(s))),
            any::<bool>().prop_map(FieldTest::Exists),
            proptest::collection::vec(arb_small(), 0..3).prop_map(FieldTest::In),
            proptest::collection::vec(arb_small(), 0..3).prop_map(FieldTest::Nin),
        ]
    }

    fn arb_condition() -> impl Strategy<Value = Condition> {
        let leaf = ("[fg]", arb_test()).prop_map(|(path, test)| Condition::Field { path, test });
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Condition::And),
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Condition::Or),
                proptest::collection::vec(inner, 0..3).prop_map(Condition::Nor),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn evaluation_matches_the_reference(
            c in arb_condition(),
            f in proptest::option::of(arb_small()),
            g in proptest::option::of(arb_small()),
        ) {
            let mut d = Document::new();
            if let Some(f) = f { d.insert("f", f); }
            if let Some(g) = g { d.insert("g", g); }
            prop_assert_eq!(c.evaluate(Some(&d)), reference_eval(&c, &d), "{:?} on {:?}", c, d);
        }
    }
}
