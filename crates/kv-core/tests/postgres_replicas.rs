//! HA: a primary with two synchronous streaming replicas on loopback (scripts/postgres.sh
//! start-ha: `synchronous_standby_names = 'FIRST 2 (replica1, replica2)'`, `synchronous_commit =
//! remote_apply`). Every write the engine has acknowledged through the primary is already
//! readable on both replicas, with no wait: losing the primary loses no acknowledged write.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use kv_core::store::postgres::PostgresStore;
use kv_core::{Clock, ContainerKind, Engine, Limits, NewContainer, Precondition};

mod common;
use common::POSTGRES_SCRIPT as SCRIPT;

/// The three servers; stopped (by PID, through the script) when dropped, and by a watcher if
/// this process dies first.
struct Cluster {
    dir: PathBuf,
    primary: String,
    replicas: Vec<String>,
}

impl Cluster {
    fn start() -> Cluster {
        let (dir, urls) = common::start_postgres("start-ha", "kv-pg-ha");
        assert_eq!(urls.len(), 3, "{urls:?}");
        Cluster {
            dir,
            primary: urls[0].clone(),
            replicas: urls[1..].to_vec(),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(SCRIPT)
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_write_is_already_on_both_synchronous_replicas() {
    let cluster = Cluster::start();
    let primary = connect(&cluster.primary).await;
    // The replicas really are synchronous standbys of this primary.
    let rows = primary
        .query(
            "SELECT application_name, sync_state FROM pg_stat_replication ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let states: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        states,
        [
            ("replica1".to_string(), "sync".to_string()),
            ("replica2".to_string(), "sync".to_string())
        ]
    );
    let mut replicas = Vec::new();
    for url in &cluster.replicas {
        let replica = connect(url).await;
        let in_recovery: bool = replica
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .unwrap()
            .get(0);
        assert!(in_recovery, "{url} is a standby");
        replicas.push(replica);
    }

    let store = PostgresStore::open(&cluster.primary, 4).await.unwrap();
    let engine = Arc::new(Engine::new(Arc::new(store), Clock::new()));
    let c = engine
        .create_container(NewContainer {
            account: "a".into(),
            scope: "ha".into(),
            name: "c".into(),
            kind: ContainerKind::Flat,
            attrs: serde_json::json!({}),
            limits: Limits::default(),
        })
        .await
        .unwrap();
    for i in 0..50u32 {
        let value = format!("acknowledged {i}");
        let version = engine
            .put(
                &c,
                b"k",
                Bytes::from(value.clone()),
                None,
                Precondition::None,
            )
            .await
            .unwrap();
        // Straight after the acknowledgement, each replica already has this exact version.
        for (n, replica) in replicas.iter().enumerate() {
            let rows = replica
                .query(
                    "SELECT value FROM kv_records WHERE version = $1",
                    &[&i64::try_from(version).unwrap()],
                )
                .await
                .unwrap();
            assert_eq!(
                rows.len(),
                1,
                "write {i} (version {version}) missing on replica {n}"
            );
            // The stored value is the engine's stamp followed by the value written.
            let stored: Vec<u8> = rows[0].get(0);
            assert!(
                stored.ends_with(value.as_bytes()),
                "replica {n}: {stored:?}"
            );
        }
    }
    // And the replica holds the same value the engine reads back.
    let on_replica: i64 = replicas[1]
        .query_one("SELECT count(*) FROM kv_records", &[])
        .await
        .unwrap()
        .get(0);
    let on_primary: i64 = primary
        .query_one("SELECT count(*) FROM kv_records", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(on_replica, on_primary);
    let item = engine.get(&c, b"k").await.unwrap().unwrap();
    assert_eq!(item.value, Bytes::from("acknowledged 49"));
    // A standby refuses writes: kvmux must point at the primary.
    let refused = replicas[0]
        .execute("DELETE FROM kv_records", &[])
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION)
    );
    engine.close().await.unwrap();
    drop(cluster);
}
