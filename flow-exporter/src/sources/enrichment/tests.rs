use std::time::Duration;

use super::*;
use crate::defaults;

/// Puts `contents` in place of `path` as the agent does (a new file
/// renamed over it), dated `secs` ahead so its time surely differs.
pub(crate) fn replace(path: &Path, contents: &[u8], secs: u64) {
    let tmp = path.with_file_name(".new");
    std::fs::write(&tmp, contents).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(later)
        .unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

const STARWARS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../parser/testdata/starwars-enrichment.yaml"
);

#[test]
fn enrichment_file_is_reloaded_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enrichment.yaml");
    std::fs::copy(STARWARS, &path).unwrap();
    let file = EnrichmentFile::open(&path).unwrap();
    let mut r = EnrichmentReload::new(Arc::clone(&file));
    let past = Instant::now() - defaults::ENRICHMENT_RELOAD * 2;
    r.last_check = past;
    assert!(
        r.poll(defaults::ENRICHMENT_RELOAD).is_none(),
        "unchanged file: nothing to reload"
    );
    // A newer file (the agent renames a new one into place).
    replace(&path, &std::fs::read(STARWARS).unwrap(), 5);
    r.last_check = past;
    assert!(
        r.poll(defaults::ENRICHMENT_RELOAD).is_some(),
        "changed file is reloaded"
    );
    // A broken file keeps the previous enrichment.
    replace(&path, b"endpoints: [", 10);
    r.last_check = past;
    assert!(r.poll(defaults::ENRICHMENT_RELOAD).is_none());
    assert!(!file.current().spec().endpoints.is_empty());
    // What another looker loaded is taken up without looking again.
    replace(&path, b"node_name: other\n", 15);
    assert!(file.check());
    r.last_check = Instant::now();
    let e = r.poll(defaults::ENRICHMENT_RELOAD);
    assert!(e.is_some(), "published content taken up");
    assert_eq!(file.current().node_name(), "other");
}

#[test]
fn the_node_list_is_published_only_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enrichment.json");
    std::fs::write(&path, r#"{"cluster": "prod"}"#).unwrap();
    let file = EnrichmentFile::open(&path).unwrap();
    let mut nodes = file.nodes();
    assert_eq!(nodes.borrow().cluster, "prod");
    assert!(nodes.borrow().nodes.is_empty());
    let two = r#"{"cluster": "prod", "nodes": [
        {"name": "a", "address": "10.0.0.1:4244"},
        {"name": "b", "address": "10.0.0.2:4244"}]}"#;
    replace(&path, two.as_bytes(), 5);
    assert!(file.check());
    assert!(nodes.has_changed().unwrap());
    assert_eq!(nodes.borrow_and_update().nodes.len(), 2);
    // Endpoints change, nodes do not: no news for the peer streams.
    let more = two.replace(
        r#""cluster": "prod","#,
        r#""cluster": "prod", "endpoints": [{"id": 1, "ips": ["10.1.0.1"]}],"#,
    );
    replace(&path, more.as_bytes(), 10);
    assert!(file.check());
    assert!(!nodes.has_changed().unwrap());
    assert_eq!(file.current().spec().endpoints.len(), 1);
}

#[test]
fn an_invalid_file_fails_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enrichment.json");
    std::fs::write(&path, r#"{"nodes": [{"name": "a", "address": ""}]}"#).unwrap();
    let e = EnrichmentFile::open(&path).unwrap_err();
    assert!(e.to_string().contains("node a has an empty address"), "{e}");
}

#[tokio::test]
async fn the_periodic_look_publishes_changes_without_any_flow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enrichment.json");
    std::fs::write(&path, "{}").unwrap();
    let file = EnrichmentFile::open(&path).unwrap();
    let mut nodes = file.nodes();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(Arc::clone(&file).run(Duration::from_millis(20), async {
        let _ = stop_rx.await;
    }));
    replace(
        &path,
        br#"{"nodes": [{"name": "a", "address": "10.0.0.1:4244"}]}"#,
        5,
    );
    tokio::time::timeout(Duration::from_secs(5), nodes.changed())
        .await
        .expect("published within 5 s")
        .unwrap();
    assert_eq!(nodes.borrow().nodes[0].name, "a");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .unwrap();
}
