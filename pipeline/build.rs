//! Compiles every detection file in `detections/` into the engine's built-in catalog, so adding a built-in
//! detection is adding its file (and its case folder under `tests/data/detections/`).

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dir = manifest.join("../detections");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a readable folder entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut list = String::from("&[\n");
    for f in &files {
        let name = f.file_name().expect("a file").to_string_lossy();
        let path = f.canonicalize().expect("an existing file");
        writeln!(list, "    ({name:?}, include_str!({:?})),", path.display()).expect("writes");
    }
    list.push_str("]\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("builtin_detections.rs"), list).expect("OUT_DIR is writable");
}
