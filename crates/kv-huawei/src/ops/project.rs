//! `projection_fields`: one rule for every read that returns documents (get-kv, scan-kv,
//! scan-skey-kv, batch-get-kv). Before this lived in one place, get-kv walked `/`-separated
//! paths while the scans looked names up only at the top level, so `sub/deep` returned nothing
//! from a scan and the same document read differently depending on the operation.

use bson::Document;

/// Keeps only the fields named in `paths`. A path is `/`-separated and reaches into embedded
/// documents; each value lands under its full path name (`"sub/deep": …`), which is how the
/// service answers. Missing paths are left out; a repeated path is returned once. An empty list
/// means no projection: the whole document.
pub fn project(doc: Document, paths: &[String]) -> Document {
    if paths.is_empty() {
        return doc;
    }
    let mut out = Document::new();
    for path in paths {
        if out.contains_key(path) {
            continue;
        }
        if let Some(v) = kv_doc::field_value(&doc, path) {
            out.insert(path.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn nested_paths_top_level_and_missing() {
        let d = doc! {"id": "a", "n": 3, "sub": {"deep": 7, "other": 1}};
        let paths = vec![
            "sub/deep".to_string(),
            "n".to_string(),
            "sub/none".to_string(),
            "n".to_string(),
        ];
        assert_eq!(project(d.clone(), &paths), doc! {"sub/deep": 7, "n": 3});
        assert_eq!(project(d.clone(), &[]), d);
        // A path through a non-document is missing, not an error.
        assert_eq!(project(d, &["n/x".to_string()]), doc! {});
    }
}
