//! scan-kv and scan-skey-kv over the primary key or a secondary index (`hint_index_name`).
//!
//! Ranges are byte ranges over the order-preserving key encoding: `start` inclusive, `end`
//! exclusive, a partial key standing for "all of its extensions" at the start and "none of
//! them" at the end. The returned cursor is the key of the next unreturned document (an
//! inclusive resume point) and is omitted when the range is exhausted.

use std::ops::Bound;

use bson::{doc, Bson, Document};
use kv_core::{Container, ScanOptions};
use kv_doc::{encode_key, encode_key_prefix, extract_fields, Condition};

use super::kv::decode_stored;
use super::table::{load_table, Table};
use super::Ctx;
use crate::error::KvsError;
use crate::wire;

/// Documents read per engine page.
const PAGE: usize = 128;
/// After this many consecutive filtered-out documents with nothing returned, a page ends with a
/// cursor and no items (the service does the same, so clients already loop on the cursor).
const MAX_FILTERED_WITHOUT_MATCH: usize = 500;
/// Most document bytes one scan page returns: the service's page is "100 docs or 1 MB", read as
/// 1,000,000 bytes (the smaller meaning of "1 MB") of stored documents, so that the whole reply,
/// with its per-item wrappers, stays under 1 MiB. A page stops before the document that would
/// pass it and returns that document's key as the cursor, so the client resumes there; a page
/// always holds at least one document (one is at most 512 KB).
pub const MAX_PAGE_BYTES: usize = 1_000_000;
/// Upper bound on documents visited by a count-only scan or a segment sample.
const MAX_VISIT: usize = 1_000_000;

struct Range<'a> {
    container: &'a Container,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    /// The fields whose values form the returned cursor.
    cursor_fields: Vec<String>,
}

struct Outcome {
    items: Vec<Document>,
    filtered: usize,
    cursor: Option<Document>,
    /// With `return_count_only`, the number of matches in the whole range.
    total: Option<usize>,
}

fn after(key: &[u8]) -> Bound<Vec<u8>> {
    Bound::Excluded(key.to_vec())
}

async fn run(
    ctx: &Ctx<'_>,
    range: Range<'_>,
    limit: usize,
    filter: Option<&Condition>,
    count_only: bool,
) -> Result<Outcome, KvsError> {
    let mut out = Outcome {
        items: Vec::new(),
        filtered: 0,
        cursor: None,
        total: None,
    };
    let mut start = range.start.clone();
    let mut matched = 0usize;
    let mut visited = 0usize;
    let mut bytes = 0usize;
    // A count-only scan whose matches pass the byte cap returns only the count.
    let mut over_cap = false;
    loop {
        let page = next_page(ctx, &range, &start).await?;
        for item in &page.items {
            let doc = decode_stored(item)?;
            visited += 1;
            let size = item.value.len();
            if !count_only {
                if out.items.len() == limit
                    || (out.items.is_empty() && out.filtered >= MAX_FILTERED_WITHOUT_MATCH)
                    || (!out.items.is_empty() && bytes.saturating_add(size) > MAX_PAGE_BYTES)
                {
                    out.cursor = Some(extract_fields(&doc, &range.cursor_fields));
                    return Ok(out);
                }
            } else if visited > MAX_VISIT {
                return Err(KvsError::bad_request("the range is too large to count"));
            }
            if filter.is_none_or(|f| f.evaluate(Some(&doc))) {
                matched += 1;
                if out.items.len() < limit && !over_cap {
                    if count_only && bytes.saturating_add(size) > MAX_PAGE_BYTES {
                        over_cap = true;
                        out.items.clear();
                    } else {
                        bytes += size;
                        out.items.push(doc);
                    }
                }
            } else {
                out.filtered += 1;
            }
        }
        match (page.more, page.items.last()) {
            (true, Some(last)) => start = after(&last.key),
            _ => break,
        }
    }
    if count_only {
        out.total = Some(matched);
        if matched >= limit || over_cap {
            out.items.clear();
        }
    }
    Ok(out)
}

/// The index named by `hint_index_name`, or the table itself.
fn target<'t>(
    table: &'t Table,
    request: &Document,
) -> Result<(Option<&'t kv_doc::IndexDef>, &'t Container), KvsError> {
    match wire::opt_str(request, "hint_index_name")?.filter(|n| !n.is_empty()) {
        None => Ok((None, &table.container)),
        Some(name) => table
            .index(&name)
            .map(|(d, c)| (Some(d), c))
            .ok_or_else(|| {
                KvsError::bad_request(format!("no index `{name}` on table `{}`", table.name))
            }),
    }
}

fn projection(request: &Document, items: Vec<Document>) -> Result<Vec<Document>, KvsError> {
    let fields = wire::str_array(request, "projection_fields")?;
    Ok(items
        .into_iter()
        .map(|d| super::project::project(d, &fields))
        .collect())
}

fn kv_items(items: Vec<Document>) -> Bson {
    Bson::Array(
        items
            .into_iter()
            .map(|d| Bson::Document(doc! {"kv_doc": d}))
            .collect(),
    )
}

fn reply(out: Outcome, cursor_name: &str, items: Vec<Document>) -> Document {
    let returned = out.total.unwrap_or(items.len());
    let mut r = doc! {
        "returned_count": wire::count(returned),
        "filtered_count": wire::count(out.filtered),
    };
    if let Some(c) = out.cursor.filter(|c| !c.is_empty()) {
        r.insert(cursor_name, c);
    }
    r.insert("returned_kv_items", kv_items(items));
    r
}

fn bound_start(
    doc: Option<&Document>,
    prefix: &[u8],
    fields: &[String],
) -> Result<Bound<Vec<u8>>, KvsError> {
    let mut key = prefix.to_vec();
    if let Some(d) = doc {
        key.extend(encode_key_prefix(d, fields)?);
    }
    Ok(if key.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(key)
    })
}

fn bound_end(
    doc: Option<&Document>,
    prefix: &[u8],
    fields: &[String],
) -> Result<Bound<Vec<u8>>, KvsError> {
    let tail = match doc {
        Some(d) => encode_key_prefix(d, fields)?,
        None => Vec::new(),
    };
    if !tail.is_empty() {
        let mut key = prefix.to_vec();
        key.extend(tail);
        return Ok(Bound::Excluded(key));
    }
    if prefix.is_empty() {
        return Ok(Bound::Unbounded);
    }
    Ok(match kv_core::store::prefix_end(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    })
}

pub async fn scan_kv(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let table = load_table(ctx, &wire::req_str(request, "table_name")?).await?;
    let limit = wire::scan_limit(request)?;
    let (index, container) = target(&table, request)?;
    let fields = match index {
        Some(def) => def.entry_key_fields(&table.schema),
        None => table.schema.fields(),
    };
    let start_key = wire::opt_doc(request, "start_key")?;
    let end_key = wire::opt_doc(request, "end_key")?;
    let range = Range {
        container,
        start: bound_start(start_key, &[], &fields)?,
        end: bound_end(end_key, &[], &fields)?,
        cursor_fields: fields.clone(),
    };
    if let Some(n) = wire::opt_int(request, "sample_segments_count")? {
        if !(1..=10_000).contains(&n) {
            return Err(KvsError::bad_request(
                "`sample_segments_count` must be 1..10000",
            ));
        }
        if index.is_some() {
            return Err(KvsError::bad_request(
                "`sample_segments_count` works on the primary key only",
            ));
        }
        return sample(ctx, range, n as usize).await;
    }
    let filter = wire::condition(request, "filter_expression")?;
    let count_only = wire::opt_bool(request, "return_count_only")?.unwrap_or(false);
    let out = run(ctx, range, limit, filter.as_ref(), count_only).await?;
    let items = projection(request, out.items.clone())?;
    Ok(reply(out, "cursor_key", items))
}

pub async fn scan_skey_kv(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let table = load_table(ctx, &wire::req_str(request, "table_name")?).await?;
    let limit = wire::scan_limit(request)?;
    let (index, container) = target(&table, request)?;
    let (shard_fields, sort_fields) = match index {
        Some(def) => (
            def.shard_fields.clone(),
            def.sort_fields
                .iter()
                .cloned()
                .chain(table.schema.fields())
                .collect::<Vec<_>>(),
        ),
        None => (
            table.schema.shard_fields.clone(),
            table.schema.sort_fields.clone(),
        ),
    };
    let shard_key = wire::req_doc(request, "shard_key")?;
    let prefix = encode_key(shard_key, &shard_fields)?;
    let range = Range {
        container,
        start: bound_start(
            wire::opt_doc(request, "start_sort_key")?,
            &prefix,
            &sort_fields,
        )?,
        end: bound_end(
            wire::opt_doc(request, "end_sort_key")?,
            &prefix,
            &sort_fields,
        )?,
        cursor_fields: sort_fields,
    };
    let filter = wire::condition(request, "filter_expression")?;
    let count_only = wire::opt_bool(request, "return_count_only")?.unwrap_or(false);
    let out = run(ctx, range, limit, filter.as_ref(), count_only).await?;
    let items = projection(request, out.items.clone())?;
    Ok(reply(out, "cursor_sort_key", items))
}

/// One page of the range from `start` on (scans and samples both walk a range this way).
async fn next_page(
    ctx: &Ctx<'_>,
    range: &Range<'_>,
    start: &Bound<Vec<u8>>,
) -> Result<kv_core::ScanPage, KvsError> {
    Ok(ctx
        .engine
        .scan(
            range.container,
            ScanOptions {
                start: start.clone(),
                end: range.end.clone(),
                limit: PAGE,
                reverse: false,
            },
        )
        .await?)
}

/// `sample_segments_count`: about N contiguous segments `[MinKey,K1) [K1,K2) … [Kn,MaxKey)`
/// covering the range, split at evenly spaced documents.
async fn sample(ctx: &Ctx<'_>, range: Range<'_>, segments: usize) -> Result<Document, KvsError> {
    let mut keys: Vec<Document> = Vec::new();
    let mut start = range.start.clone();
    loop {
        let page = next_page(ctx, &range, &start).await?;
        for item in &page.items {
            let d = decode_stored(item)?;
            keys.push(extract_fields(&d, &range.cursor_fields));
            if keys.len() > MAX_VISIT {
                return Err(KvsError::bad_request("the range is too large to sample"));
            }
        }
        match (page.more, page.items.last()) {
            (true, Some(last)) => start = after(&last.key),
            _ => break,
        }
    }
    let bound = |v: Bson| -> Document {
        range
            .cursor_fields
            .iter()
            .map(|f| (f.clone(), v.clone()))
            .collect()
    };
    let segments = segments.min(keys.len().max(1));
    let step = keys.len().div_ceil(segments).max(1);
    let mut cuts: Vec<Document> = vec![bound(Bson::MinKey)];
    cuts.extend(keys.iter().skip(step).step_by(step).cloned());
    cuts.push(bound(Bson::MaxKey));
    let items: Vec<Bson> = cuts
        .windows(2)
        .map(|w| {
            Bson::Document(doc! {"segment_min_key": w[0].clone(), "segment_max_key": w[1].clone()})
        })
        .collect();
    Ok(doc! {
        "returned_count": 0,
        "filtered_count": 0,
        "returned_kv_items": [],
        "returned_segment_items": items,
    })
}
