//! Partial updates of a stored document: set, add (numeric), rmv (remove fields), insert
//! (append to an array) and delete (remove an element from an array). Key fields are immutable:
//! changing them would move the document to another key, which an update by key must not do.

use bson::{Bson, Document};

use super::keycode::compare_values;
use super::DocError;

/// One update request, applied in the order set, add, rmv, insert, delete.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateSpec {
    pub set: Document,
    pub add: Document,
    pub rmv: Vec<String>,
    pub insert: Document,
    pub delete: Document,
}

impl UpdateSpec {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.add.is_empty()
            && self.rmv.is_empty()
            && self.insert.is_empty()
            && self.delete.is_empty()
    }

    /// Applies the update to `doc`. Fails without partial effect (the input is not modified) when
    /// a key field would change, `add` meets a non-number, or an array operation meets a
    /// non-array or an absent element.
    pub fn apply(&self, doc: &Document, key_fields: &[String]) -> Result<Document, DocError> {
        let is_key = |f: &str| key_fields.iter().any(|k| k == f);
        let mut out = doc.clone();
        for (field, value) in &self.set {
            if is_key(field) {
                if out.get(field).is_some_and(|cur| {
                    compare_values(cur, value) == std::cmp::Ordering::Equal
                        && cur.element_type() == value.element_type()
                }) {
                    continue;
                }
                return Err(DocError::InvalidUpdate(format!(
                    "key field `{field}` cannot be changed"
                )));
            }
            out.insert(field.clone(), value.clone());
        }
        for (field, delta) in &self.add {
            if is_key(field) {
                return Err(DocError::InvalidUpdate(format!(
                    "key field `{field}` cannot be changed"
                )));
            }
            let current = out.get(field).cloned().unwrap_or(Bson::Int32(0));
            let sum = add_numbers(&current, delta).ok_or_else(|| {
                DocError::InvalidUpdate(format!(
                    "add needs numbers; `{field}` is {:?} and the operand {:?}",
                    current.element_type(),
                    delta.element_type()
                ))
            })?;
            out.insert(field.clone(), sum);
        }
        for field in &self.rmv {
            if is_key(field) {
                return Err(DocError::InvalidUpdate(format!(
                    "key field `{field}` cannot be removed"
                )));
            }
            out.remove(field);
        }
        for (field, element) in &self.insert {
            match out.get_mut(field) {
                Some(Bson::Array(items)) => items.push(element.clone()),
                Some(other) => {
                    return Err(DocError::InvalidUpdate(format!(
                        "insert into `{field}`, which is {:?}, not an array",
                        other.element_type()
                    )))
                }
                None => {
                    return Err(DocError::InvalidUpdate(format!(
                        "insert into `{field}`, which does not exist"
                    )))
                }
            }
        }
        for (field, element) in &self.delete {
            match out.get_mut(field) {
                Some(Bson::Array(items)) => {
                    let before = items.len();
                    items.retain(|v| {
                        !(compare_values(v, element) == std::cmp::Ordering::Equal
                            && super::keycode::type_rank(v) == super::keycode::type_rank(element))
                    });
                    if items.len() == before {
                        return Err(DocError::InvalidUpdate(format!(
                            "delete from `{field}`: the element is not in the array"
                        )));
                    }
                }
                Some(other) => {
                    return Err(DocError::InvalidUpdate(format!(
                        "delete from `{field}`, which is {:?}, not an array",
                        other.element_type()
                    )))
                }
                None => {
                    return Err(DocError::InvalidUpdate(format!(
                        "delete from `{field}`, which does not exist"
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// `a + b` for numbers: int32 stays int32 while it fits, else int64; any double makes a double;
/// int64 overflow falls back to double rather than wrapping.
fn add_numbers(a: &Bson, b: &Bson) -> Option<Bson> {
    let as_i64 = |v: &Bson| match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        _ => None,
    };
    let as_f64 = |v: &Bson| match v {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    };
    match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => Some(match x.checked_add(*y) {
            Some(s) => Bson::Int32(s),
            None => Bson::Int64(i64::from(*x) + i64::from(*y)),
        }),
        _ => match (as_i64(a), as_i64(b)) {
            (Some(x), Some(y)) => Some(match x.checked_add(y) {
                Some(s) => Bson::Int64(s),
                None => Bson::Double(x as f64 + y as f64),
            }),
            _ => Some(Bson::Double(as_f64(a)? + as_f64(b)?)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn keys() -> Vec<String> {
        vec!["owner".into(), "name".into()]
    }

    #[test]
    fn set_add_rmv_insert_delete() {
        let d = doc! {"owner": "a", "name": "n", "size": 1, "tags": ["x", "y"], "gone": 1};
        let spec = UpdateSpec {
            set: doc! {"color": "red"},
            add: doc! {"size": 2i64, "fresh": 1.5},
            rmv: vec!["gone".into()],
            insert: doc! {"tags": "z"},
            delete: doc! {"tags": "x"},
        };
        let out = spec.apply(&d, &keys()).unwrap();
        assert_eq!(
            out,
            doc! {"owner": "a", "name": "n", "size": 3i64, "tags": ["y", "z"], "color": "red", "fresh": 1.5}
        );
    }

    #[test]
    fn refusals() {
        let d = doc! {"owner": "a", "name": "n", "s": "str", "tags": [1]};
        let k = keys();
        let cases = [
            UpdateSpec {
                set: doc! {"name": "other"},
                ..Default::default()
            },
            UpdateSpec {
                rmv: vec!["owner".into()],
                ..Default::default()
            },
            UpdateSpec {
                add: doc! {"s": 1},
                ..Default::default()
            },
            UpdateSpec {
                add: doc! {"n": "x"},
                ..Default::default()
            },
            UpdateSpec {
                insert: doc! {"s": 1},
                ..Default::default()
            },
            UpdateSpec {
                insert: doc! {"missing": 1},
                ..Default::default()
            },
            UpdateSpec {
                delete: doc! {"tags": 2},
                ..Default::default()
            },
            UpdateSpec {
                delete: doc! {"s": "str"},
                ..Default::default()
            },
        ];
        for spec in cases {
            assert!(
                matches!(spec.apply(&d, &k), Err(DocError::InvalidUpdate(_))),
                "{spec:?}"
            );
        }
        // Setting a key field to its current value is not a change.
        let same = UpdateSpec {
            set: doc! {"name": "n"},
            ..Default::default()
        };
        assert_eq!(same.apply(&d, &k).unwrap(), d);
    }

    #[test]
    fn add_widens_instead_of_overflowing() {
        assert_eq!(
            add_numbers(&Bson::Int32(i32::MAX), &Bson::Int32(1)),
            Some(Bson::Int64(i64::from(i32::MAX) + 1))
        );
        assert_eq!(
            add_numbers(&Bson::Int64(i64::MAX), &Bson::Int32(1)),
            Some(Bson::Double(i64::MAX as f64 + 1.0))
        );
        assert_eq!(
            add_numbers(&Bson::Int32(1), &Bson::Double(0.5)),
            Some(Bson::Double(1.5))
        );
        assert_eq!(add_numbers(&Bson::Boolean(true), &Bson::Int32(1)), None);
    }
}
