//! The key-value backend's unit tests.

use super::*;

#[tokio::test]
async fn sqlite_store_operations_and_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let store = KeyValueStore::sqlite("default", &path).unwrap();
    let other_label = KeyValueStore::sqlite("other", &path).unwrap();
    assert_eq!(store.get("a".into()).await.unwrap(), None);
    store.set("a".into(), b"1".to_vec()).await.unwrap();
    other_label.set("a".into(), b"2".to_vec()).await.unwrap();
    assert_eq!(store.get("a".into()).await.unwrap(), Some(b"1".to_vec()));
    assert!(store.exists("a".into()).await.unwrap());
    assert_eq!(store.get_keys().await.unwrap(), ["a"]);
    assert_eq!(store.increment("n".into(), 5).await.unwrap(), 5);
    assert_eq!(store.increment("n".into(), -2).await.unwrap(), 3);
    assert!(store.increment("a".into(), 1).await.is_err());
    assert!(
        !store
            .compare_and_swap("a".into(), Some(b"0".to_vec()), b"x".to_vec())
            .await
            .unwrap()
    );
    assert!(
        store
            .compare_and_swap("a".into(), Some(b"1".to_vec()), b"x".to_vec())
            .await
            .unwrap()
    );
    assert!(
        store
            .compare_and_swap("new".into(), None, b"y".to_vec())
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_many(vec!["a".into(), "zz".into()], 1 << 20)
            .await
            .unwrap(),
        [
            ("a".to_owned(), Some(b"x".to_vec())),
            ("zz".to_owned(), None)
        ]
    );
    store
        .delete_many(vec!["a".into(), "new".into()])
        .await
        .unwrap();
    store.delete("missing".into()).await.unwrap();
    assert_eq!(store.get_keys().await.unwrap(), ["n"]);
    // Spin's layout: one table, a row per (store, key); a counter as 8 little-endian bytes.
    let connection = Connection::open(&path).unwrap();
    let rows: Vec<(String, String, Vec<u8>)> = connection
        .prepare("SELECT store, key, value FROM spin_key_value ORDER BY store, key")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            (
                "default".to_owned(),
                "n".to_owned(),
                3i64.to_le_bytes().to_vec()
            ),
            ("other".to_owned(), "a".to_owned(), b"2".to_vec())
        ]
    );
}

#[tokio::test]
async fn get_many_reads_a_repeated_key_once_and_stops_at_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyValueStore::sqlite("default", &dir.path().join("kv.db")).unwrap();
    store.set("big".into(), vec![7; 1 << 20]).await.unwrap();
    store.set("small".into(), b"s".to_vec()).await.unwrap();
    let keys = vec!["small".to_owned(), "none".to_owned(), "small".to_owned()];
    assert_eq!(
        store.get_many(keys, 1 << 20).await.unwrap(),
        [
            ("small".to_owned(), Some(b"s".to_vec())),
            ("none".to_owned(), None),
            ("small".to_owned(), Some(b"s".to_vec()))
        ]
    );
    // One megabyte listed 10,000 times is 10 GB for the guest: refused, not copied.
    let error = store
        .get_many(vec!["big".to_owned(); 10_000], 64 << 20)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("max_memory"), "{error}");
    let fits = store
        .get_many(vec!["big".to_owned(); 3], 64 << 20)
        .await
        .unwrap();
    assert_eq!(fits.len(), 3);
}
