//! An order-preserving, prefix-free byte encoding of BSON values and composite keys.
//!
//! Storage engines order keys by bytes; documents must be ordered by value. `encode_value(a) <
//! encode_value(b)` (bytewise) exactly when `compare_values(a, b)` is `Less`, so range scans over
//! encoded keys visit documents in document order. Each encoding is self-delimiting, so the
//! concatenation of field encodings orders composite keys field by field.
//!
//! Type order (MongoDB's, which clients that sort BSON already expect):
//! `MinKey < Null/Undefined < numbers < String/Symbol < Document < Array < Binary < ObjectId <
//! Boolean < DateTime < Timestamp < Regex < MaxKey`.
//!
//! Numbers compare by value across int32, int64 and double: `9`, `9i64` and `9.0` encode to the
//! same bytes, so they address the same item. A number is encoded as the nearest f64 (which is
//! monotonic in the exact value) followed by the exact integer remainder `value - nearest`; the
//! remainder is non-zero only for int64 values beyond 2^53 and is < 2^11 in magnitude. NaN sorts
//! below every other number; -0.0 equals 0.0.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::DocError;

const RANK_MIN_KEY: u8 = 0x01;
const RANK_NULL: u8 = 0x05;
const RANK_NUMBER: u8 = 0x10;
const RANK_STRING: u8 = 0x20;
const RANK_DOCUMENT: u8 = 0x30;
const RANK_ARRAY: u8 = 0x40;
const RANK_BINARY: u8 = 0x50;
const RANK_OBJECT_ID: u8 = 0x60;
const RANK_BOOLEAN: u8 = 0x70;
const RANK_DATETIME: u8 = 0x80;
const RANK_TIMESTAMP: u8 = 0x90;
const RANK_REGEX: u8 = 0xA0;
const RANK_MAX_KEY: u8 = 0xF0;

/// Marks "another element follows" inside an encoded document or array; the end marker is 0x00,
/// so a shorter container sorts before a longer one that extends it.
const ELEMENT: u8 = 0x01;
const END: u8 = 0x00;

/// The type-order rank of a value, or `None` for types that have no place in a key
/// (Decimal128, JavaScript code, DBPointer): comparing those by value would need arithmetic we
/// do not have, and no SDK sends them as keys.
pub fn type_rank(value: &Bson) -> Option<u8> {
    Some(match value {
        Bson::MinKey => RANK_MIN_KEY,
        Bson::Null | Bson::Undefined => RANK_NULL,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => RANK_NUMBER,
        Bson::String(_) | Bson::Symbol(_) => RANK_STRING,
        Bson::Document(_) => RANK_DOCUMENT,
        Bson::Array(_) => RANK_ARRAY,
        Bson::Binary(_) => RANK_BINARY,
        Bson::ObjectId(_) => RANK_OBJECT_ID,
        Bson::Boolean(_) => RANK_BOOLEAN,
        Bson::DateTime(_) => RANK_DATETIME,
        Bson::Timestamp(_) => RANK_TIMESTAMP,
        Bson::RegularExpression(_) => RANK_REGEX,
        Bson::MaxKey => RANK_MAX_KEY,
        Bson::Decimal128(_)
        | Bson::JavaScriptCode(_)
        | Bson::JavaScriptCodeWithScope(_)
        | Bson::DbPointer(_) => return None,
    })
}

/// A number as (nearest f64, exact remainder). Two numbers are equal iff both parts are.
fn number_parts(value: &Bson) -> Option<(f64, i64)> {
    match value {
        Bson::Int32(i) => Some((f64::from(*i), 0)),
        Bson::Int64(i) => {
            let nearest = *i as f64;
            // `nearest` is integral and within [-2^63, 2^63]; the remainder is tiny.
            let remainder = i128::from(*i) - nearest as i128;
            Some((nearest, remainder as i64))
        }
        Bson::Double(d) => Some((if *d == 0.0 { 0.0 } else { *d }, 0)),
        _ => None,
    }
}

/// f64 bits rearranged so that unsigned byte order is numeric order; every NaN maps to zero,
/// below -inf.
fn ordered_f64(d: f64) -> [u8; 8] {
    if d.is_nan() {
        return [0; 8];
    }
    let bits = d.to_bits();
    let flipped = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    flipped.to_be_bytes()
}

fn ordered_i64(i: i64) -> [u8; 8] {
    ((i as u64) ^ (1 << 63)).to_be_bytes()
}

/// Bytes with 0x00 escaped as 0x00 0xFF and terminated by 0x00 0x00: prefix-free, and
/// bytewise order of the encodings equals bytewise order of the inputs.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.push(0);
    out.push(0);
}

/// Appends the order-preserving encoding of `value`.
pub fn encode_value(out: &mut Vec<u8>, value: &Bson) -> Result<(), DocError> {
    let rank = type_rank(value).ok_or_else(|| {
        DocError::InvalidKey(format!("{:?} values cannot be keys", value.element_type()))
    })?;
    out.push(rank);
    match value {
        Bson::MinKey | Bson::MaxKey | Bson::Null | Bson::Undefined => {}
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => {
            let (nearest, remainder) = number_parts(value).unwrap_or((f64::NAN, 0));
            out.extend_from_slice(&ordered_f64(nearest));
            // |remainder| < 2^11, so 16 bits with the sign flipped keep its order.
            let remainder = remainder.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
            out.extend_from_slice(&((remainder as u16) ^ 0x8000).to_be_bytes());
        }
        Bson::String(s) | Bson::Symbol(s) => push_escaped(out, s.as_bytes()),
        Bson::Document(d) => {
            for (k, v) in d {
                out.push(ELEMENT);
                push_escaped(out, k.as_bytes());
                encode_value(out, v)?;
            }
            out.push(END);
        }
        Bson::Array(a) => {
            for v in a {
                out.push(ELEMENT);
                encode_value(out, v)?;
            }
            out.push(END);
        }
        Bson::Binary(b) => {
            push_escaped(out, &b.bytes);
            out.push(u8::from(b.subtype));
        }
        Bson::ObjectId(o) => out.extend_from_slice(&o.bytes()),
        Bson::Boolean(b) => out.push(u8::from(*b)),
        Bson::DateTime(d) => out.extend_from_slice(&ordered_i64(d.timestamp_millis())),
        Bson::Timestamp(t) => {
            out.extend_from_slice(&t.time.to_be_bytes());
            out.extend_from_slice(&t.increment.to_be_bytes());
        }
        Bson::RegularExpression(r) => {
            push_escaped(out, r.pattern.as_str().as_bytes());
            push_escaped(out, r.options.as_str().as_bytes());
        }
        Bson::Decimal128(_)
        | Bson::JavaScriptCode(_)
        | Bson::JavaScriptCodeWithScope(_)
        | Bson::DbPointer(_) => {}
    }
    Ok(())
}

/// Reads one value that [`encode_value`] wrote from the front of `input`, advancing it: the
/// inverse of the encoding, for showing a stored key to a person (the dashboard). The encoding
/// keeps a number's value, not its BSON type, so a number comes back as Int32 when it is an
/// integer that fits, Int64 when it fits 64 bits, Double otherwise; a Symbol comes back as a
/// String and Undefined as Null. Re-encoding the result gives back the same bytes.
pub fn decode_value(input: &mut &[u8]) -> Result<Bson, DocError> {
    let rank = take(input, 1)?[0];
    Ok(match rank {
        RANK_MIN_KEY => Bson::MinKey,
        RANK_MAX_KEY => Bson::MaxKey,
        RANK_NULL => Bson::Null,
        RANK_NUMBER => {
            let nearest = unordered_f64(take_array(input)?);
            let remainder = (u16::from_be_bytes(take_array(input)?) ^ 0x8000) as i16;
            number_from_parts(nearest, i64::from(remainder))?
        }
        RANK_STRING => Bson::String(utf8(take_escaped(input)?)?),
        RANK_DOCUMENT => {
            let mut doc = Document::new();
            while take(input, 1)?[0] == ELEMENT {
                let key = utf8(take_escaped(input)?)?;
                let value = decode_value(input)?;
                doc.insert(key, value);
            }
            Bson::Document(doc)
        }
        RANK_ARRAY => {
            let mut items = Vec::new();
            while take(input, 1)?[0] == ELEMENT {
                items.push(decode_value(input)?);
            }
            Bson::Array(items)
        }
        RANK_BINARY => {
            let bytes = take_escaped(input)?;
            let subtype = bson::spec::BinarySubtype::from(take(input, 1)?[0]);
            Bson::Binary(bson::Binary { subtype, bytes })
        }
        RANK_OBJECT_ID => Bson::ObjectId(bson::oid::ObjectId::from_bytes(take_array(input)?)),
        RANK_BOOLEAN => Bson::Boolean(take(input, 1)?[0] != 0),
        RANK_DATETIME => Bson::DateTime(bson::DateTime::from_millis(unordered_i64(take_array(
            input,
        )?))),
        RANK_TIMESTAMP => Bson::Timestamp(bson::Timestamp {
            time: u32::from_be_bytes(take_array(input)?),
            increment: u32::from_be_bytes(take_array(input)?),
        }),
        RANK_REGEX => {
            let pattern = utf8(take_escaped(input)?)?;
            let options = utf8(take_escaped(input)?)?;
            let malformed = |e: bson::error::Error| DocError::Malformed(e.to_string());
            Bson::RegularExpression(bson::Regex {
                pattern: pattern.try_into().map_err(malformed)?,
                options: options.try_into().map_err(malformed)?,
            })
        }
        other => {
            return Err(DocError::Malformed(format!(
                "0x{other:02x} is not the type byte of an encoded key value"
            )))
        }
    })
}

/// Every value of an encoded composite key ([`encode_key`]), in order.
pub fn decode_key(mut input: &[u8]) -> Result<Vec<Bson>, DocError> {
    let mut values = Vec::new();
    while !input.is_empty() {
        values.push(decode_value(&mut input)?);
    }
    Ok(values)
}

fn truncated() -> DocError {
    DocError::Malformed("the encoded key ends early".into())
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], DocError> {
    if input.len() < n {
        return Err(truncated());
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn take_array<const N: usize>(input: &mut &[u8]) -> Result<[u8; N], DocError> {
    let mut out = [0; N];
    out.copy_from_slice(take(input, N)?);
    Ok(out)
}

/// The inverse of [`push_escaped`].
fn take_escaped(input: &mut &[u8]) -> Result<Vec<u8>, DocError> {
    let mut out = Vec::new();
    loop {
        let b = take(input, 1)?[0];
        if b != 0 {
            out.push(b);
            continue;
        }
        match take(input, 1)?[0] {
            0 => return Ok(out),
            0xFF => out.push(0),
            other => {
                return Err(DocError::Malformed(format!(
                    "0x00 0x{other:02x} is not an escape of an encoded key"
                )))
            }
        }
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String, DocError> {
    String::from_utf8(bytes).map_err(|_| DocError::Malformed("a key string is not UTF-8".into()))
}

/// The inverse of [`ordered_f64`] (all-zero bytes are NaN).
fn unordered_f64(bytes: [u8; 8]) -> f64 {
    let flipped = u64::from_be_bytes(bytes);
    if flipped == 0 {
        return f64::NAN;
    }
    let bits = if flipped >> 63 == 1 {
        flipped & !(1 << 63)
    } else {
        !flipped
    };
    f64::from_bits(bits)
}

fn unordered_i64(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// The number whose [`number_parts`] are (`nearest`, `remainder`).
fn number_from_parts(nearest: f64, remainder: i64) -> Result<Bson, DocError> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let integral = nearest.is_finite() && nearest.fract() == 0.0;
    if remainder != 0 {
        if !integral || nearest.abs() > TWO_63 {
            return Err(DocError::Malformed(
                "a number remainder on a value that is not a 64-bit integer".into(),
            ));
        }
        let exact = nearest as i128 + i128::from(remainder);
        return i64::try_from(exact)
            .map(Bson::Int64)
            .map_err(|_| DocError::Malformed("a number beyond 64 bits".into()));
    }
    if integral && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&nearest) {
        return Ok(Bson::Int32(nearest as i32));
    }
    if integral && (-TWO_63..TWO_63).contains(&nearest) {
        return Ok(Bson::Int64(nearest as i64));
    }
    Ok(Bson::Double(nearest))
}

/// The document order that [`encode_value`] preserves, written directly over values (it is the
/// reference the property tests hold the encoding to, and what conditions compare with).
/// Values without a rank sort after everything and compare equal to each other.
pub fn compare_values(a: &Bson, b: &Bson) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    match (ra, rb) {
        (None, None) => return Ordering::Equal,
        (None, Some(_)) => return Ordering::Greater,
        (Some(_), None) => return Ordering::Less,
        (Some(x), Some(y)) if x != y => return x.cmp(&y),
        _ => {}
    }
    match (a, b) {
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => {
            x.as_bytes().cmp(y.as_bytes())
        }
        (Bson::Document(x), Bson::Document(y)) => {
            let mut xs = x.iter();
            let mut ys = y.iter();
            loop {
                match (xs.next(), ys.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some((kx, vx)), Some((ky, vy))) => {
                        let o = kx
                            .as_bytes()
                            .cmp(ky.as_bytes())
                            .then_with(|| compare_values(vx, vy));
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                }
            }
        }
        (Bson::Array(x), Bson::Array(y)) => {
            for (vx, vy) in x.iter().zip(y.iter()) {
                let o = compare_values(vx, vy);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .cmp(&y.bytes)
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype))),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => {
            (x.pattern.as_str().as_bytes(), x.options.as_str().as_bytes())
                .cmp(&(y.pattern.as_str().as_bytes(), y.options.as_str().as_bytes()))
        }
        _ => match (number_parts(a), number_parts(b)) {
            (Some((fa, ra)), Some((fb, rb))) => match (fa.is_nan(), fb.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => fa
                    .partial_cmp(&fb)
                    .unwrap_or(Ordering::Equal)
                    .then(ra.cmp(&rb)),
            },
            // Same rank, no payload (MinKey, MaxKey, Null/Undefined).
            _ => Ordering::Equal,
        },
    }
}

/// The value at `path` in `doc`: a top-level field, or for a name that is not a top-level field,
/// a `/`-separated path into embedded documents (the vendors' nested-field notation).
pub fn field_value<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    if let Some(v) = doc.get(path) {
        return Some(v);
    }
    if !path.contains('/') {
        return None;
    }
    let mut parts = path.split('/');
    let mut current = doc.get(parts.next()?)?;
    for part in parts {
        current = match current {
            Bson::Document(d) => d.get(part)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Encodes the fields `fields` of `doc`, in that order, as one composite key. Every field must
/// be present.
pub fn encode_key(doc: &Document, fields: &[String]) -> Result<Vec<u8>, DocError> {
    let mut out = Vec::new();
    for f in fields {
        let v = doc
            .get(f)
            .ok_or_else(|| DocError::InvalidKey(format!("key field `{f}` is missing")))?;
        encode_value(&mut out, v)?;
    }
    Ok(out)
}

/// Encodes the longest leading run of `fields` present in `doc`: the bound of a range scan whose
/// caller gave only the first fields of a composite key. Missing trailing fields behave as
/// MinKey (shorter encodings sort first).
pub fn encode_key_prefix(doc: &Document, fields: &[String]) -> Result<Vec<u8>, DocError> {
    let mut out = Vec::new();
    for f in fields {
        match doc.get(f) {
            Some(v) => encode_value(&mut out, v)?,
            None => break,
        }
    }
    Ok(out)
}

/// The fields of a table's primary key (shard fields, then sort fields).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct KeySchema {
    pub shard_fields: Vec<String>,
    pub sort_fields: Vec<String>,
}

impl KeySchema {
    /// All key fields in key order.
    pub fn fields(&self) -> Vec<String> {
        self.shard_fields
            .iter()
            .chain(self.sort_fields.iter())
            .cloned()
            .collect()
    }

    /// The encoded primary key of `doc`.
    pub fn encode(&self, doc: &Document) -> Result<Vec<u8>, DocError> {
        encode_key(doc, &self.fields())
    }

    /// Just the key fields of `doc`, in key order (missing ones are skipped).
    pub fn extract(&self, doc: &Document) -> Document {
        extract_fields(doc, &self.fields())
    }

    /// Whether `field` is part of the key.
    pub fn is_key_field(&self, field: &str) -> bool {
        self.shard_fields.iter().any(|f| f == field) || self.sort_fields.iter().any(|f| f == field)
    }
}

/// A document of `fields` of `doc` in the given order, each at most once, missing ones skipped.
pub fn extract_fields(doc: &Document, fields: &[String]) -> Document {
    let mut out = Document::new();
    for f in fields {
        if out.contains_key(f) {
            continue;
        }
        if let Some(v) = doc.get(f) {
            out.insert(f.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, spec::BinarySubtype, Binary};
    use proptest::prelude::*;

    fn enc(v: &Bson) -> Vec<u8> {
        let mut out = Vec::new();
        encode_value(&mut out, v).unwrap();
        out
    }

    #[test]
    fn numbers_are_equal_across_types() {
        assert_eq!(enc(&Bson::Int32(9)), enc(&Bson::Int64(9)));
        assert_eq!(enc(&Bson::Int32(9)), enc(&Bson::Double(9.0)));
        assert_eq!(enc(&Bson::Double(-0.0)), enc(&Bson::Int32(0)));
        assert!(enc(&Bson::Int32(9)) < enc(&Bson::Double(9.5)));
        assert!(enc(&Bson::Double(9.5)) < enc(&Bson::Int64(10)));
        assert!(enc(&Bson::Double(f64::NAN)) < enc(&Bson::Double(f64::NEG_INFINITY)));
        // Beyond 2^53 the int64 remainder keeps neighbours apart.
        let big = 1i64 << 60;
        assert!(enc(&Bson::Int64(big)) < enc(&Bson::Int64(big + 1)));
        assert_eq!(enc(&Bson::Int64(big)), enc(&Bson::Double(big as f64)));
        assert!(enc(&Bson::Int64(i64::MAX - 1)) < enc(&Bson::Int64(i64::MAX)));
        assert!(enc(&Bson::Int64(i64::MIN)) < enc(&Bson::Int64(i64::MIN + 1)));
    }

    #[test]
    fn keys_decode_to_their_values() {
        let fields = vec!["owner".to_string(), "n".to_string()];
        let key = encode_key(&doc! {"owner": "a\0nn", "n": 7_i64}, &fields).unwrap();
        assert_eq!(
            decode_key(&key).unwrap(),
            vec![Bson::String("a\0nn".into()), Bson::Int32(7)]
        );
        assert_eq!(
            decode_key(&enc(&Bson::Double(1.5))).unwrap(),
            vec![Bson::Double(1.5)]
        );
        assert!(decode_key(&key[..key.len() - 1]).is_err());
        assert!(decode_key(b"\x00\x01ann").is_err());
    }

    #[test]
    fn type_order_is_fixed() {
        let ordered = [
            Bson::MinKey,
            Bson::Null,
            Bson::Int32(-5),
            Bson::String("".into()),
            Bson::Document(doc! {}),
            Bson::Array(vec![]),
            Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: vec![],
            }),
            Bson::Boolean(false),
            Bson::Boolean(true),
            Bson::MaxKey,
        ];
        for w in ordered.windows(2) {
            assert!(enc(&w[0]) < enc(&w[1]), "{:?} < {:?}", w[0], w[1]);
            assert_eq!(compare_values(&w[0], &w[1]), Ordering::Less);
        }
    }

    #[test]
    fn composite_keys_order_field_by_field() {
        let fields = vec!["a".to_string(), "b".to_string()];
        let k1 = encode_key(&doc! {"a": "x", "b": 2}, &fields).unwrap();
        let k2 = encode_key(&doc! {"b": 1, "a": "x\0"}, &fields).unwrap();
        let k3 = encode_key(&doc! {"a": "xa", "b": 0}, &fields).unwrap();
        assert!(k1 < k2 && k2 < k3);
        assert!(encode_key(&doc! {"a": 1}, &fields).is_err());
        let prefix = encode_key_prefix(&doc! {"a": "x"}, &fields).unwrap();
        assert!(k1.starts_with(&prefix));
    }

    #[test]
    fn nested_paths_resolve() {
        let d = doc! {"a": {"b": {"c": 3}}, "x/y": 1};
        assert_eq!(field_value(&d, "a/b/c"), Some(&Bson::Int32(3)));
        assert_eq!(field_value(&d, "x/y"), Some(&Bson::Int32(1)));
        assert_eq!(field_value(&d, "a/z"), None);
    }

    pub(crate) fn arb_scalar() -> impl Strategy<Value = Bson> {
        prop_oneof![
            Just(Bson::MinKey),
            Just(Bson::MaxKey),
            Just(Bson::Null),
            any::<i32>().prop_map(Bson::Int32),
            (-20i32..20).prop_map(Bson::Int32),
            any::<i64>().prop_map(Bson::Int64),
            (-20i64..20).prop_map(Bson::Int64),
            ((1i64 << 53) - 4..(1i64 << 53) + 4).prop_map(Bson::Int64),
            any::<f64>().prop_map(Bson::Double),
            (-40i32..40).prop_map(|i| Bson::Double(f64::from(i) / 2.0)),
            "[a-c\\x00]{0,4}".prop_map(Bson::String),
            any::<bool>().prop_map(Bson::Boolean),
            (proptest::collection::vec(0u8..3, 0..4), 0u8..2).prop_map(|(bytes, st)| {
                Bson::Binary(Binary {
                    subtype: BinarySubtype::from(st),
                    bytes,
                })
            }),
            any::<i64>().prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
        ]
    }

    pub(crate) fn arb_value() -> impl Strategy<Value = Bson> {
        arb_scalar().prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Bson::Array),
                proptest::collection::vec(("[ab]{0,2}", inner), 0..3).prop_map(|kvs| {
                    let mut d = Document::new();
                    for (k, v) in kvs {
                        d.insert(k, v);
                    }
                    Bson::Document(d)
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn decoding_gives_back_a_value_that_encodes_the_same(a in arb_value(), b in arb_scalar()) {
            let mut bytes = enc(&a);
            bytes.extend(enc(&b));
            let values = decode_key(&bytes).unwrap();
            prop_assert_eq!(values.len(), 2);
            prop_assert_eq!(compare_values(&values[0], &a), Ordering::Equal);
            let mut again = Vec::new();
            for v in &values {
                encode_value(&mut again, v).unwrap();
            }
            prop_assert_eq!(again, bytes);
        }

        #[test]
        fn decoded_integers_are_exact(x in any::<i64>(), y in any::<f64>()) {
            let back = decode_key(&enc(&Bson::Int64(x))).unwrap();
            prop_assert_eq!(back[0].as_i64().or(back[0].as_i32().map(i64::from)), Some(x));
            let back = decode_key(&enc(&Bson::Double(y))).unwrap();
            prop_assert_eq!(compare_values(&back[0], &Bson::Double(y)), Ordering::Equal);
        }

        #[test]
        fn encoding_order_equals_document_order(a in arb_value(), b in arb_value()) {
            prop_assert_eq!(enc(&a).cmp(&enc(&b)), compare_values(&a, &b), "{:?} vs {:?}", a, b);
        }

        #[test]
        fn composite_encoding_order_is_lexicographic(
            a in proptest::collection::vec(arb_scalar(), 2),
            b in proptest::collection::vec(arb_scalar(), 2),
        ) {
            let fields = vec!["f0".to_string(), "f1".to_string()];
            let da: Document = a.iter().enumerate().map(|(i, v)| (format!("f{i}"), v.clone())).collect();
            let db: Document = b.iter().enumerate().map(|(i, v)| (format!("f{i}"), v.clone())).collect();
            let expected = compare_values(&a[0], &b[0]).then_with(|| compare_values(&a[1], &b[1]));
            prop_assert_eq!(encode_key(&da, &fields).unwrap().cmp(&encode_key(&db, &fields).unwrap()), expected);
        }

        #[test]
        fn integers_and_doubles_agree_with_exact_arithmetic(x in any::<i64>(), y in any::<f64>()) {
            // Exact reference: compare i64 with f64 through i128 / f64 without rounding errors.
            let expected = if y.is_nan() {
                Ordering::Greater
            } else if y >= 9.3e18 {
                Ordering::Less
            } else if y <= -9.3e18 {
                Ordering::Greater
            } else {
                let floor = y.floor() as i128;
                let xi = i128::from(x);
                if xi < floor { Ordering::Less }
                else if xi > floor { Ordering::Greater }
                else if y.fract() == 0.0 { Ordering::Equal } else { Ordering::Less }
            };
            prop_assert_eq!(enc(&Bson::Int64(x)).cmp(&enc(&Bson::Double(y))), expected);
        }
    }
}
