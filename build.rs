//! Embeds every `checks/*.yaml` into the binary, so it works with no files beside it.
use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=checks");
    // Read at run time: a build script compiled for another checkout must not embed its checks.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&manifest_dir).join("checks");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("checks/ directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "yaml")
        })
        .collect();
    names.sort();
    let mut out = String::from("&[\n");
    for n in names {
        let path = dir.join(&n);
        writeln!(
            out,
            "    ({n:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push(']');
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("builtin_checks.rs");
    std::fs::write(dest, out).unwrap();
}
