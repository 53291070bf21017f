//! The on-disk record: header, inline value or side-file reference, and its decoding.

use std::ops::Bound;

use bytes::Bytes;

use super::*;
use crate::error::{Error, Result};
use crate::store::{Key, Record};

/// Bytes of the record header: version, then expiry (0 = never), both u64 BE. The version's top
/// bit marks a record whose value is a side file: then the header is followed by the value's
/// length (u64 BE) and the blob id (u128 BE) instead of the value.
pub(super) const RECORD_HEADER: usize = 16;
pub(super) const BLOB_FLAG: u64 = 1 << 63;
pub(super) const BLOB_RECORD: usize = RECORD_HEADER + 8 + 16;

/// Writes a record straight into the space redb reserved for it: a value is copied once, into the
/// page, not first into an intermediate buffer.
pub(super) fn write_record(out: &mut [u8], value: &[u8], expires_at: Option<u64>, version: u64) {
    out[..8].copy_from_slice(&version.to_be_bytes());
    out[8..RECORD_HEADER].copy_from_slice(&expires_at.unwrap_or(0).to_be_bytes());
    out[RECORD_HEADER..].copy_from_slice(value);
}

pub(super) fn blob_record(
    blob: StagedBlob,
    expires_at: Option<u64>,
    version: u64,
) -> [u8; BLOB_RECORD] {
    let mut out = [0u8; BLOB_RECORD];
    out[..8].copy_from_slice(&(version | BLOB_FLAG).to_be_bytes());
    out[8..RECORD_HEADER].copy_from_slice(&expires_at.unwrap_or(0).to_be_bytes());
    out[RECORD_HEADER..RECORD_HEADER + 8].copy_from_slice(&blob.len.to_be_bytes());
    out[RECORD_HEADER + 8..].copy_from_slice(&blob.id.to_be_bytes());
    out
}

/// Where a record's value is.
pub(super) enum Body<'a> {
    Inline(&'a [u8]),
    Blob { id: u128, len: u64 },
}

impl Body<'_> {
    pub(super) fn len(&self) -> u64 {
        match self {
            Body::Inline(v) => v.len() as u64,
            Body::Blob { len, .. } => *len,
        }
    }

    pub(super) fn blob(&self) -> Option<u128> {
        match self {
            Body::Blob { id, .. } => Some(*id),
            Body::Inline(_) => None,
        }
    }
}

pub(super) fn corrupt() -> Error {
    Error::Internal("corrupt record header".into())
}

pub(super) fn be_u64(raw: &[u8]) -> Result<u64> {
    raw.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt())
}

/// Splits a stored record into version, expiry and where its value is.
pub(super) fn decode(raw: &[u8]) -> Result<(u64, Option<u64>, Body<'_>)> {
    if raw.len() < RECORD_HEADER {
        return Err(corrupt());
    }
    let tagged = be_u64(&raw[..8])?;
    let expires = be_u64(&raw[8..RECORD_HEADER])?;
    let expires_at = (expires != 0).then_some(expires);
    if tagged & BLOB_FLAG == 0 {
        return Ok((tagged, expires_at, Body::Inline(&raw[RECORD_HEADER..])));
    }
    if raw.len() != BLOB_RECORD {
        return Err(corrupt());
    }
    let len = be_u64(&raw[RECORD_HEADER..RECORD_HEADER + 8])?;
    let id = raw[RECORD_HEADER + 8..]
        .try_into()
        .map(u128::from_be_bytes)
        .map_err(|_| corrupt())?;
    Ok((tagged & !BLOB_FLAG, expires_at, Body::Blob { id, len }))
}

pub(super) fn decode_header(raw: &[u8]) -> Result<(u64, Option<u64>)> {
    decode(raw).map(|(version, expires_at, _)| (version, expires_at))
}

/// A record whose side file was not there when its snapshot was read.
pub(super) struct MissingBlob {
    pub(super) key: Vec<u8>,
    pub(super) id: u128,
}

/// The record, reading a side file when the value is one; `Err(MissingBlob)` when that file is
/// not there (usually deleted by a commit later than the caller's snapshot: the caller reads again).
pub(super) fn decode_record(
    key: &[u8],
    raw: &[u8],
    blobs: &BlobDir,
) -> Result<std::result::Result<Record, MissingBlob>> {
    let (version, expires_at, body) = decode(raw)?;
    let value = match body {
        Body::Inline(v) => Bytes::copy_from_slice(v),
        Body::Blob { id, .. } => match blobs.read(id)? {
            Some(v) => v,
            None => {
                return Ok(Err(MissingBlob {
                    key: key.to_vec(),
                    id,
                }))
            }
        },
    };
    Ok(Ok(Record {
        value,
        expires_at,
        version,
    }))
}

/// How an error names a store key: the item and its container for item keys, escaped bytes
/// otherwise.
pub(super) fn describe_key(key: &[u8]) -> String {
    match crate::keys::split_item(key) {
        Some((container, item)) => format!(
            "item \"{}\" of container {container:016x}",
            item.escape_ascii()
        ),
        None => format!("record \"{}\"", key.escape_ascii()),
    }
}

pub(super) fn expiry_key(expires_at: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&expires_at.to_be_bytes());
    k.extend_from_slice(key);
    k
}

pub(super) fn bound_ref(b: &Bound<Key>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// One entry of a redb range iterator over the records table.
pub(super) type RangeEntry<'a> = std::result::Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;
