//! The admin endpoints a test suite isolates its tests with: scoped reset, named checkpoints,
//! import while running, and key pairs added and removed at runtime. All of them sit behind
//! [`super::authorize`] like every admin path.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use kv_core::store::CheckpointError;
use kv_core::{ContainerSelector, ScopeMatch};
use kv_dialect::{Credential, CredentialError, Dialect};
use serde::Deserialize;
use serde_json::json;

use super::{error, json_response};
use crate::server::Gateway;

/// The dialect names a scope or a credential may name.
const DIALECTS: &str = "tencent, aliyun, huawei";

/// `POST /_kvmux/reset`'s optional body: every field narrows the reset.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    account: Option<String>,
    dialect: Option<String>,
    container: Option<String>,
}

fn dialect<'a>(gw: &'a Gateway, name: &str) -> Result<&'a Arc<dyn Dialect>, String> {
    if !DIALECTS.split(", ").any(|d| d == name) {
        return Err(format!(
            "unknown dialect {name:?}: the dialects are {DIALECTS}"
        ));
    }
    gw.dialects
        .iter()
        .find(|d| d.name() == name)
        .ok_or_else(|| format!("the {name} dialect is not enabled on this gateway ([dialects])"))
}

/// `POST /_kvmux/reset`: no body (or `{}`) drops everything, as before; `account`, `dialect` and
/// `container` narrow it to the containers they name, which the dialects translate into engine
/// scopes ([`Dialect::reset_selectors`]) so this file never builds a scope string.
pub(super) async fn reset(gw: &Gateway, body: &[u8]) -> Response<Bytes> {
    let scope: ResetBody = if body.iter().all(u8::is_ascii_whitespace) {
        ResetBody::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(scope) => scope,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "a reset body is {{\"account\", \"dialect\": \"{}\", \"container\"}}, \
                         every field optional: {e}",
                        DIALECTS.replace(", ", "|")
                    ),
                )
            }
        }
    };
    // `{"account": null}` is most likely an unset variable in a test harness, and read as
    // absent it would turn a scoped reset into a reset of everything: refused.
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body) {
        if let Some((name, _)) = fields.iter().find(|(_, v)| v.is_null()) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{name} is null; leave it out to reset every one"),
            );
        }
    }
    if let Some(empty) = [("account", &scope.account), ("container", &scope.container)]
        .into_iter()
        .find(|(_, v)| v.as_deref() == Some(""))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{} is empty; leave it out to reset every one", empty.0),
        );
    }
    if scope.account.is_none() && scope.dialect.is_none() && scope.container.is_none() {
        return match gw.engine.reset().await {
            Ok(()) => json_response(StatusCode::OK, json!({"status": "ok"})),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    let dialects: Vec<&Arc<dyn Dialect>> = match scope.dialect.as_deref() {
        Some(name) => match dialect(gw, name) {
            Ok(d) => vec![d],
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        },
        None => gw.dialects.iter().collect(),
    };
    let selectors: Vec<ContainerSelector> = if scope.dialect.is_none() && scope.container.is_none()
    {
        // A whole account: every container it has, whatever dialect made it.
        vec![ContainerSelector::all(ScopeMatch::Prefix(String::new()))]
    } else {
        let mut all = Vec::new();
        for d in &dialects {
            match d.reset_selectors(scope.container.as_deref()) {
                Ok(s) => all.extend(s),
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            }
        }
        all
    };
    match gw
        .engine
        .reset_scope(scope.account.as_deref(), &selectors)
        .await
    {
        Ok(removed) => json_response(
            StatusCode::OK,
            json!({
                "status": "ok",
                "scope": {
                    "account": scope.account,
                    "dialect": scope.dialect,
                    "container": scope.container,
                },
                "removed": removed,
            }),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A checkpoint name: 1 to 64 of `A-Z a-z 0-9 _ . -` (it may become a directory name).
fn checkpoint_name(name: &str) -> Result<&str, String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok && name != "." && name != ".." {
        Ok(name)
    } else {
        Err(format!(
            "{name:?} is not a checkpoint name: 1 to 64 of A-Z a-z 0-9 _ . -"
        ))
    }
}

fn checkpoint_error(e: CheckpointError) -> Response<Bytes> {
    match &e {
        CheckpointError::Unsupported(why) => error(
            StatusCode::NOT_IMPLEMENTED,
            format!("checkpoints are not supported by this storage: {why}"),
        ),
        CheckpointError::NotFound(name) => error(
            StatusCode::NOT_FOUND,
            format!("no checkpoint named {name:?}"),
        ),
        CheckpointError::TooMany(_) => error(StatusCode::CONFLICT, e.to_string()),
        CheckpointError::Store(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The names of the checkpoints held (none when they cannot be listed).
async fn checkpoint_names(gw: &Gateway) -> Vec<String> {
    match gw.engine.list_checkpoints().await {
        Ok(list) => list.into_iter().map(|c| c.name).collect(),
        Err(_) => Vec::new(),
    }
}

/// `/_kvmux/checkpoints[/NAME[/restore]]`; `None` when the path is not one of them.
pub(super) async fn checkpoints(
    gw: &Gateway,
    method: &Method,
    path: &str,
) -> Option<Response<Bytes>> {
    let rest = path.strip_prefix("/_kvmux/checkpoints")?;
    if rest.is_empty() {
        return Some(match *method {
            Method::GET => match gw.engine.list_checkpoints().await {
                Ok(list) => json_response(StatusCode::OK, json!({ "checkpoints": list })),
                Err(e) => checkpoint_error(e),
            },
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path}"),
            ),
        });
    }
    let rest = rest.strip_prefix('/')?;
    let (name, restore) = match rest.strip_suffix("/restore") {
        Some(name) => (name, true),
        None => (rest, false),
    };
    let name = match checkpoint_name(name) {
        Ok(name) => name,
        Err(e) => return Some(error(StatusCode::BAD_REQUEST, e)),
    };
    Some(match (method, restore) {
        (&Method::PUT, false) => match gw.engine.checkpoint(name).await {
            Ok(info) => json_response(StatusCode::CREATED, json!(info)),
            Err(e) => checkpoint_error(e),
        },
        (&Method::DELETE, false) => match gw.engine.drop_checkpoint(name).await {
            Ok(()) => json_response(StatusCode::OK, json!({"dropped": name})),
            Err(e) => checkpoint_error(e),
        },
        (&Method::POST, true) => {
            let held_before = checkpoint_names(gw).await;
            match gw.engine.restore_checkpoint(name).await {
                Ok(info) => {
                    // redb's savepoints are a line: restoring one drops those taken after it.
                    let held_after = checkpoint_names(gw).await;
                    let dropped: Vec<&String> = held_before
                        .iter()
                        .filter(|n| !held_after.contains(n))
                        .collect();
                    json_response(
                        StatusCode::OK,
                        json!({"restored": info, "now": gw.engine.now(), "dropped": dropped}),
                    )
                }
                Err(e) => checkpoint_error(e),
            }
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        ),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    #[serde(default)]
    replace: bool,
}

/// The largest `POST /_kvmux/snapshot` body: a dump is far larger than any other admin call
/// (which get [`super::ADMIN_BODY_LIMIT`]), and it is read within the gateway's body budget.
pub const IMPORT_BODY_LIMIT: u64 = 256 << 20;

/// `POST /_kvmux/snapshot[?replace=true]`: reads the JSON Lines that `GET /_kvmux/snapshot` and
/// `kvmux export` write, with the import loop `kvmux import` uses (items overwrite what is
/// there); `replace=true` drops everything first. An error names the line; what was imported
/// before it stays (as with `kvmux import`).
pub(super) async fn import(gw: &Gateway, query: &str, body: &[u8]) -> Response<Bytes> {
    let query: ImportQuery = match super::parse_query(query) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if query.replace {
        if let Err(e) = gw.engine.reset().await {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    }
    let mut input = body;
    match crate::snapshot::import(
        &gw.engine,
        &mut input,
        crate::snapshot::Mode::Overwrite,
        &crate::snapshot::Silent,
    )
    .await
    {
        Ok(counts) => json_response(
            StatusCode::OK,
            json!({"status": "ok", "replaced": query.replace, "imported": counts}),
        ),
        Err(crate::snapshot::SnapshotError::Line { line, message }) => json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("line {line}: {message}"), "line": line}),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCredential {
    dialect: String,
    id: String,
    secret: String,
    account: String,
}

/// `/_kvmux/credentials[/DIALECT/ID]`; `None` when the path is not one of them.
pub(super) fn credentials(
    gw: &Gateway,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Option<Response<Bytes>> {
    let rest = path.strip_prefix("/_kvmux/credentials")?;
    if rest.is_empty() {
        return Some(match *method {
            Method::GET => {
                let mut listed = Vec::new();
                let mut auto = Vec::new();
                for d in &gw.dialects {
                    let Some(set) = d.credentials() else { continue };
                    if set.auto_accounts() {
                        auto.push(d.name());
                    }
                    listed.extend(
                        set.list().into_iter().map(
                            |c| json!({"dialect": d.name(), "id": c.id, "account": c.account}),
                        ),
                    );
                }
                json_response(
                    StatusCode::OK,
                    json!({"credentials": listed, "auto_accounts": auto}),
                )
            }
            Method::POST => add_credential(gw, body),
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path}"),
            ),
        });
    }
    let rest = rest.strip_prefix('/')?;
    Some(match (method, rest.split_once('/')) {
        (&Method::DELETE, Some((name, id))) if !id.is_empty() => match dialect(gw, name) {
            Ok(d) => match d.credentials() {
                Some(set) if set.remove(id) => json_response(
                    StatusCode::OK,
                    json!({"removed": {"dialect": name, "id": id}}),
                ),
                _ => error(
                    StatusCode::NOT_FOUND,
                    format!("the {name} dialect has no key id {id:?}"),
                ),
            },
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        (&Method::DELETE, _) => error(
            StatusCode::NOT_FOUND,
            format!("{path}: remove a key pair with DELETE /_kvmux/credentials/DIALECT/ID"),
        ),
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        ),
    })
}

fn add_credential(gw: &Gateway, body: &[u8]) -> Response<Bytes> {
    let new: NewCredential = match serde_json::from_slice(body) {
        Ok(n) => n,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "a key pair is {{\"dialect\": \"{}\", \"id\", \"secret\", \"account\"}}: {e}",
                    DIALECTS.replace(", ", "|")
                ),
            )
        }
    };
    let d = match dialect(gw, &new.dialect) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(set) = d.credentials() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("the {} dialect takes no key pairs", new.dialect),
        );
    };
    let shown = json!({"dialect": new.dialect, "id": new.id, "account": new.account});
    match set.add(Credential {
        id: new.id.clone(),
        secret: new.secret,
        account: new.account,
    }) {
        Ok(()) => json_response(StatusCode::CREATED, shown),
        Err(CredentialError::Exists) => error(
            StatusCode::CONFLICT,
            format!(
                "the {} dialect has a key id {:?} already; DELETE it first",
                new.dialect, new.id
            ),
        ),
        Err(CredentialError::Invalid(why)) => error(StatusCode::BAD_REQUEST, why),
    }
}
