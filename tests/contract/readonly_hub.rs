//! The hub source of the read-only contract: the suite's frames written as a ColabFit-shaped
//! dataset repo (a card, two Parquet part files with row groups of 3), served by the mock
//! Hub of `asebytes_tests::hub_server` and opened as `colabfit://mock/src`, streamed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int32Builder, ListBuilder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use asebytes_daemon::backend::{OpenOptions, Options};
use asebytes_protocol::OptionValue;
use asebytes_tests::Failed;
use asebytes_tests::hub_server::MockHub;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::readonly::{N, energy, natoms};

/// The repo's Parquet files hold these frames each.
const PARTS: [std::ops::Range<usize>; 2] = [0..4, 4..N];

fn part(rows: std::ops::Range<usize>) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut positions = ListBuilder::new(ListBuilder::new(Float64Builder::new()));
    let mut numbers = ListBuilder::new(Int32Builder::new());
    for i in rows.clone() {
        for a in 0..natoms(i) {
            positions
                .values()
                .values()
                .append_slice(&[a as f64, 0.0, 0.0]);
            positions.values().append(true);
            numbers.values().append_value(1);
        }
        positions.append(true);
        numbers.append(true);
    }
    let energies: Float64Array = rows.clone().map(energy).collect();
    let steps: Int64Array = rows.map(|i| i as i64).collect();
    RecordBatch::try_from_iter([
        ("positions", Arc::new(positions.finish()) as ArrayRef),
        ("atomic_numbers", Arc::new(numbers.finish()) as ArrayRef),
        ("energy", Arc::new(energies) as ArrayRef),
        ("step", Arc::new(steps) as ArrayRef),
    ])
}

/// Writes the repo under `dir/repo/`; returns its first Parquet file.
pub fn write_hub(dir: &Path) -> PathBuf {
    let root = dir.join("repo");
    std::fs::create_dir_all(root.join("main")).expect("repo directory");
    std::fs::write(
        root.join("README.md"),
        "---\nconfigs:\n- config_name: default\n  data_files: \"main/*.parquet\"\n---\n",
    )
    .expect("write card");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(3))
        .build();
    for (k, rows) in PARTS.into_iter().enumerate() {
        let batch = part(rows).expect("batch");
        let file = File::create(root.join(format!("main/part-{k:05}.parquet"))).expect("create");
        let mut w =
            ArrowWriter::try_new(file, batch.schema(), Some(props.clone())).expect("writer");
        w.write(&batch).expect("write parquet");
        w.close().expect("close parquet");
    }
    root.join("main/part-00000.parquet")
}

/// Starts the mock Hub over the repo of `path` (what [`write_hub`] returned) and the
/// options that open it; the server lives as long as the returned box.
pub fn locate_hub(path: &Path) -> Result<(OpenOptions, Box<dyn Send + Sync>), Failed> {
    let root = path
        .parent()
        .and_then(Path::parent)
        .ok_or("no repo directory")?;
    let hub = MockHub::start(root, "mock/src").map_err(|e| format!("mock hub: {e}"))?;
    let cache = root.parent().ok_or("no temp directory")?.join("hf-cache");
    let options = Options::default()
        .with("endpoint", OptionValue::Str(hub.url.clone()))
        .with(
            "cache_dir",
            OptionValue::Str(cache.to_string_lossy().into_owned()),
        );
    let opts = OpenOptions {
        path: "colabfit://mock/src".into(),
        group: "default".into(),
        options,
        ..Default::default()
    };
    Ok((opts, Box::new(hub)))
}
