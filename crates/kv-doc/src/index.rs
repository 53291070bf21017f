//! Secondary-index entries. An index orders a table's documents by other fields: its entry key is
//! the index key fields followed by the primary key (so entries of documents that share index
//! values stay distinct), and its entry value is a projection (index fields, primary key and the
//! index's extra "abstract" fields). A dialect writes entries in the same transaction as the
//! document, deleting the entry derived from the old version and putting the one derived from the
//! new, so the index never disagrees with the table.

use bson::Document;
use serde::{Deserialize, Serialize};

use super::keycode::{encode_key, extract_fields, KeySchema};
use super::DocError;

/// One secondary index. A local index has the table's shard fields as its `shard_fields`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    pub shard_fields: Vec<String>,
    pub sort_fields: Vec<String>,
    /// Extra fields copied into each entry.
    pub abstract_fields: Vec<String>,
}

impl IndexDef {
    /// The fields an entry key is made of: index shard, index sort, then the primary key.
    pub fn entry_key_fields(&self, primary: &KeySchema) -> Vec<String> {
        self.shard_fields
            .iter()
            .chain(self.sort_fields.iter())
            .cloned()
            .chain(primary.fields())
            .collect()
    }

    /// The entry for `doc`: its key and its projected value. `None` when the document lacks an
    /// index field (indexes are sparse: such documents are simply not in the index).
    pub fn entry(
        &self,
        doc: &Document,
        primary: &KeySchema,
    ) -> Result<Option<(Vec<u8>, Document)>, DocError> {
        let index_fields: Vec<String> = self
            .shard_fields
            .iter()
            .chain(self.sort_fields.iter())
            .cloned()
            .collect();
        if index_fields.iter().any(|f| !doc.contains_key(f)) {
            return Ok(None);
        }
        let key = encode_key(doc, &self.entry_key_fields(primary))?;
        let projected_fields: Vec<String> = index_fields
            .into_iter()
            .chain(primary.fields())
            .chain(self.abstract_fields.iter().cloned())
            .collect();
        Ok(Some((key, extract_fields(doc, &projected_fields))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn entries_are_sparse_projected_and_ordered_by_index_fields() {
        let primary = KeySchema {
            shard_fields: vec!["owner".into()],
            sort_fields: vec!["file".into()],
        };
        let by_size = IndexDef {
            name: "by_size".into(),
            shard_fields: vec!["owner".into()],
            sort_fields: vec!["size".into()],
            abstract_fields: vec!["color".into()],
        };
        let a = doc! {"owner": "o", "file": "z", "size": 1, "color": "red", "other": true};
        let b = doc! {"owner": "o", "file": "a", "size": 2};
        let (ka, va) = by_size.entry(&a, &primary).unwrap().unwrap();
        let (kb, vb) = by_size.entry(&b, &primary).unwrap().unwrap();
        assert!(ka < kb, "size 1 sorts before size 2 whatever the file name");
        assert_eq!(
            va,
            doc! {"owner": "o", "size": 1, "file": "z", "color": "red"}
        );
        assert_eq!(vb, doc! {"owner": "o", "size": 2, "file": "a"});
        assert_eq!(
            by_size
                .entry(&doc! {"owner": "o", "file": "q"}, &primary)
                .unwrap(),
            None
        );
    }
}
