//! Reads Kubernetes objects from manifest files, directories and stdin, keeping the file and line
//! of every object so findings point at the YAML a user edits. Multi-document YAML, JSON and
//! `kind: List` are accepted, which covers `helm template` and `kustomize build` output.
//!
//! One file: about 440 lines of code (one reader, from path to objects), the rest its tests.

use super::kubectl_yaml;
use crate::k8s::At as _;
use crate::k8s::kinds::Serving;
use crate::k8s::{Location, Object};
use crate::report::{Note, NoteKind};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A manifest that cannot be read or parsed, at its place (line 0: the file as a whole).
pub type ManifestError = crate::diag::Diagnostic;

/// What a load produced: the objects, and what was skipped or replaced on the way.
#[derive(Debug, Default)]
pub struct Loaded {
    pub objects: Vec<Object>,
    pub notes: Vec<Note>,
    /// The inputs (as named on the command line, or the renderer's name) that gave no
    /// Kubernetes object: a `--kustomize` overlay that renders nothing next to a base that
    /// renders the release was audited as the base alone.
    pub empty_inputs: Vec<String>,
    /// Each input and the files read under it, in reading order: [`Loaded::digest`].
    pub read: Vec<crate::report::InputDigest>,
}

impl Loaded {
    /// What the run read, as the report records it: a signed pass is bound to these bytes
    /// (`verify --manifests` reads the release's files through this same loader and compares).
    pub fn digest(&self) -> crate::report::ManifestsDigest {
        crate::report::ManifestsDigest {
            sha256: combined_digest(&self.read),
            inputs: self.read.clone(),
        }
    }
}

/// [`crate::report::ManifestsDigest::sha256`] of `inputs`: what decides how `check` reads them
/// (kinds, paths, bytes, links), names left out. Serialised as JSON, whose strings are quoted
/// and escaped: no path can stand for two entries, as one with a tab and a newline did in lines.
pub fn combined_digest(inputs: &[crate::report::InputDigest]) -> String {
    use sha2::Digest as _;
    type File<'a> = (&'a str, &'a str, Option<&'a str>);
    let shape: Vec<(crate::report::InputKind, &str, Vec<File<'_>>)> = inputs
        .iter()
        .map(|i| {
            let files = i
                .files
                .iter()
                .map(|f| (f.path.as_str(), f.sha256.as_str(), f.link.as_deref()))
                .collect();
            (i.kind.as_read(), i.path.as_str(), files)
        })
        .collect();
    let json = serde_json::to_vec(&shape).unwrap_or_default();
    hex(&sha2::Sha256::digest(&json).into())
}

/// One file or text read: `name` for messages, `path` relative to its input.
fn file_digest(
    name: &str,
    path: String,
    text: &str,
    link: Option<String>,
) -> crate::report::FileDigest {
    use sha2::Digest as _;
    crate::report::FileDigest {
        name: name.to_string(),
        path,
        sha256: hex(&sha2::Sha256::digest(text.as_bytes()).into()),
        link,
    }
}

/// A text not from a file (stdin, a render): one input of one text, its path `-`.
fn text_input(
    kind: crate::report::InputKind,
    name: &str,
    text: &str,
) -> crate::report::InputDigest {
    crate::report::InputDigest {
        kind,
        name: name.to_string(),
        path: "-".to_string(),
        files: vec![file_digest(name, "-".to_string(), text, None)],
    }
}

/// `path` relative to `base`, `/`-separated (`` for `base` itself); absolute when outside it.
fn relative_to(path: &Path, base: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rel) => rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        Err(_) => path.display().to_string(),
    }
}

/// The deepest directory holding every path input (symlinks resolved; a file's directory for a
/// file): input paths are recorded relative to it, so where the release's checkout lies does
/// not matter and where its parts lie to each other does.
fn inputs_base(inputs: &[Input]) -> PathBuf {
    let mut base: Option<PathBuf> = None;
    for input in inputs {
        let Input::Path(p) = input else { continue };
        if p.as_os_str() == "-" {
            continue;
        }
        let c = canonical(p);
        let root = if c.is_dir() {
            c
        } else {
            c.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        base = Some(match base {
            None => root,
            Some(b) => b
                .components()
                .zip(root.components())
                .take_while(|(x, y)| x == y)
                .map(|(x, _)| x)
                .collect(),
        });
    }
    base.unwrap_or_default()
}

/// A walked file's record: its path under its input's root, and where it points if a symlink.
fn walked_file(file: &Path, root: &Path, base: &Path, text: &str) -> crate::report::FileDigest {
    use sha2::Digest as _;
    walked_record(
        file,
        root,
        base,
        hex(&sha2::Sha256::digest(text.as_bytes()).into()),
    )
}

/// A file the walk skips but kubectl reads ([`collect`]'s `unread`), recorded as a walked file
/// is, hashed as it is on disk without being held in memory (it is not parsed). Within the input
/// cap, as every file the run reads: past it, or unreadable, or not a regular file, the run
/// stops as it does for a manifest (kubectl fails on it too). A dangling link (an editor's lock
/// beside a file being edited) is recorded by where it points.
fn unread_file(
    file: &Path,
    root: &Path,
    base: &Path,
) -> Result<crate::report::FileDigest, ManifestError> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let name = file.display().to_string();
    let fail = |message: String| ManifestError::file(name.clone(), message);
    if std::fs::metadata(file).is_err()
        && std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink())
    {
        return Ok(walked_record(file, root, base, "(dangling link)".into()));
    }
    // A regular file only (links followed), asked before opening: opening a FIFO waits for a
    // writer, and reading a device may never end.
    let meta = std::fs::metadata(file).map_err(|e| fail(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(fail(
            "not a regular file (a FIFO, socket or device); name it on the command line to read it"
                .into(),
        ));
    }
    let cap = crate::input::cap();
    let too_large = || {
        fail(format!(
            "larger than the {} input cap (--max-input-size raises it)",
            crate::input::human(cap)
        ))
    };
    if meta.len() > cap {
        return Err(too_large());
    }
    let mut hasher = sha2::Sha256::new();
    let read = std::fs::File::open(file)
        .and_then(|f| std::io::copy(&mut f.take(cap.saturating_add(1)), &mut hasher))
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if read > cap {
        return Err(too_large());
    }
    Ok(walked_record(
        file,
        root,
        base,
        hex(&hasher.finalize().into()),
    ))
}

/// [`walked_file`]'s record of `file` with its `sha256`.
fn walked_record(
    file: &Path,
    root: &Path,
    base: &Path,
    sha256: String,
) -> crate::report::FileDigest {
    // A target outside the inputs is recorded as such, not by its path: another checkout's
    // absolute path to the same bytes is the same release (review finding).
    let link = std::fs::symlink_metadata(file)
        .is_ok_and(|m| m.file_type().is_symlink())
        .then(|| {
            let target = canonical(file);
            if target.starts_with(base) {
                relative_to(&target, base)
            } else {
                "(outside the inputs)".to_string()
            }
        });
    crate::report::FileDigest {
        name: file.display().to_string(),
        path: relative_to(file, root),
        sha256,
        link,
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Files a parsing thread needs to be worth starting ([`crate::parallel::threads_for`]): a few
/// manifest files parse in less time than a second thread costs (see the evaluation's
/// `OBJECTS_PER_THREAD`).
const FILES_PER_THREAD: usize = 8;

/// One input of a run: a path (`-` is stdin) or the output of a renderer (`kustomize build`,
/// `helm template`) named after what it rendered.
#[derive(Debug, Clone)]
pub enum Input {
    Path(PathBuf),
    Rendered { name: String, text: String },
}

/// Loads every object from the given paths (`-` is stdin), in a stable order; an object defined
/// twice keeps its last definition.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Object>, ManifestError> {
    let inputs: Vec<Input> = paths.iter().cloned().map(Input::Path).collect();
    load_inputs(&inputs).map(|l| l.objects)
}

/// Loads every input. Files found by walking a directory that hold no Kubernetes object
/// (`kustomization.yaml`, a Helm chart, other YAML) are skipped with a note; a file named
/// explicitly, stdin or rendered output that is not Kubernetes is an error. An object defined
/// twice (same API group, kind, namespace and name) keeps its last definition, as
/// `kubectl apply` would leave it, with a note naming both places.
pub fn load_inputs(inputs: &[Input]) -> Result<Loaded, ManifestError> {
    let mut loaded = Loaded::default();
    let mut walked = Vec::new();
    let base = inputs_base(inputs);
    for input in inputs {
        let before = loaded.objects.len();
        match input {
            Input::Rendered { name, text } => {
                // Text not from a file is `-`, as stdin: the bytes are what was audited, and
                // `verify` holds a render piped to `-f -` to it.
                loaded
                    .read
                    .push(text_input(crate::report::InputKind::Render, name, text));
                parse_file(name, text, false, &mut loaded)?;
            }
            Input::Path(path) if path.as_os_str() == "-" => {
                let text = crate::input::read_capped(std::io::stdin().lock())
                    .map_err(|message| ManifestError::file("<stdin>", message))?;
                loaded.read.push(text_input(
                    crate::report::InputKind::Stdin,
                    "<stdin>",
                    &text,
                ));
                parse_file("<stdin>", &text, false, &mut loaded)?;
            }
            Input::Path(path) => {
                let mut files = Vec::new();
                let mut unread = Vec::new();
                collect(path, &mut files, &mut unread, true, &mut loaded.notes)?;
                // Files are recorded relative to the input's directory (a file's own, for one
                // named on its own), the input relative to `base`.
                let is_dir = path.is_dir();
                let root: &Path = if is_dir {
                    path
                } else {
                    path.parent().unwrap_or_else(|| Path::new(""))
                };
                let mut record = crate::report::InputDigest {
                    kind: if is_dir {
                        crate::report::InputKind::Directory
                    } else {
                        crate::report::InputKind::File
                    },
                    name: path.display().to_string(),
                    path: relative_to(&canonical(path), &base),
                    files: Vec::new(),
                };
                let patches = kustomize_patches(&files);
                let notes_at = loaded.notes.len();
                // Files are read and parsed on every core (when there are enough of them to
                // pay for a thread); what each gives (objects, notes, or the first error) is
                // taken in file order, as a serial read would.
                let parsed = crate::parallel::map_in_order(
                    &files,
                    FILES_PER_THREAD,
                    |(file, explicit)| {
                        let mut one = Loaded::default();
                        let name = file.display().to_string();
                        let record = |text: &str| walked_file(file, root, &base, text);
                        if let Some(kustomization) =
                            patches.get(&canonical(file)).filter(|_| !explicit)
                        {
                            // Not audited, but part of the release kustomize renders: bound by
                            // the digest all the same.
                            let text = crate::input::read_file(file)
                                .map_err(|message| ManifestError::file(name.clone(), message))?;
                            let dir = kustomization
                                .parent()
                                .map_or_else(|| ".".into(), |d| d.display().to_string());
                            one.notes.push(Note {
                            kind: NoteKind::SkippedFile,
                            message: format!(
                                "skipped {name}: a patch {} applies, not a whole object (audit what it renders with --kustomize {dir})",
                                kustomization.display()
                            ),
                        });
                            return Ok((one, record(&text)));
                        }
                        let text = crate::input::read_file(file)
                            .map_err(|message| ManifestError::file(name.clone(), message))?;
                        parse_file(&name, &text, !explicit, &mut one)?;
                        Ok::<_, ManifestError>((one, record(&text)))
                    },
                );
                for one in parsed {
                    let (one, file) = one?;
                    loaded.objects.extend(one.objects);
                    loaded.notes.extend(one.notes);
                    record.files.push(file);
                }
                // The kustomizations the walk does not read as files (`Kustomization`, one
                // beside a file named on its own) decide notes that fail the gate: bound too.
                // A set, not a scan of `files` per file: that made a walk of 10,000 files take
                // 100 million path comparisons (issue 12's growth table caught it).
                let read: std::collections::HashSet<&Path> =
                    files.iter().map(|(f, _)| f.as_path()).collect();
                for file in kustomization_files(&files) {
                    if read.contains(file.as_path()) {
                        continue;
                    }
                    let name = file.display().to_string();
                    let text = crate::input::read_file(&file)
                        .map_err(|message| ManifestError::file(name.clone(), message))?;
                    record.files.push(walked_file(&file, root, &base, &text));
                }
                // What the walk skips and `kubectl apply -R` reads all the same (a hidden
                // directory's manifests, a Helm chart's files): not audited, which a note says,
                // but part of what the directory deploys. Bound too: a manifest added there
                // after the sign-off verified as the release the report audited (review finding).
                for file in &unread {
                    record.files.push(unread_file(file, root, &base)?);
                }
                loaded.read.push(record);
                // A file that gave no object (a dashboard's JSON, a team's check file) is no
                // object audited that kustomize does not deploy.
                let with_objects: std::collections::HashSet<String> = loaded.objects[before..]
                    .iter()
                    .filter_map(|o| o.location.as_ref().map(|l| l.file.clone()))
                    .collect();
                let unrendered = unrendered_kustomizations(&files, &with_objects);
                loaded.notes.splice(notes_at..notes_at, unrendered);
                let notes = namespace_overrides(&files, &loaded.objects[before..]);
                loaded.notes.extend(notes);
                walked.extend(files);
            }
        }
        if loaded.objects.len() == before {
            loaded.empty_inputs.push(match input {
                Input::Rendered { name, .. } => name.clone(),
                Input::Path(p) if p.as_os_str() == "-" => "<stdin>".to_string(),
                Input::Path(p) => p.display().to_string(),
            });
        }
    }
    loaded.notes.extend(unread_bases(&walked));
    dedupe(&mut loaded);
    Ok(loaded)
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A kustomization file's name and documents; `None` for another file, or one that does not
/// read (the walk's own parse reports it).
fn kustomization_docs(file: &Path) -> Option<(String, Vec<(u64, Value)>)> {
    let name = file.display().to_string();
    if !is_kustomization_file(&name) {
        return None;
    }
    let text = crate::input::read_file(file).ok()?;
    let mut docs = documents(&name, &text).ok()?;
    for (_, doc) in &mut docs {
        canonical_keys(doc);
    }
    Some((name, docs))
}

/// Every field of a kustomization (kustomize v5's `types.Kustomization`), as kustomize spells it.
const KUSTOMIZATION_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "openapi",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "vars",
    "sortOptions",
    "resources",
    "components",
    "crds",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "helmGlobals",
    "helmCharts",
    "helmChartInflationGenerator",
    "generatorOptions",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
];

/// A kustomization's top-level keys as kustomize spells them: it reads them through Go's JSON
/// decoding, which matches a field's name whatever its case, so `Images:` and `Patches:`
/// change what is deployed as `images:` and `patches:` do (the walk, reading them exactly,
/// audited such a set as written and passed it).
fn canonical_keys(doc: &mut Value) {
    let Some(map) = doc.as_object_mut() else {
        return;
    };
    let misspelt: Vec<(String, &str)> = map
        .keys()
        .filter_map(|k| {
            KUSTOMIZATION_FIELDS
                .iter()
                .find(|f| f.eq_ignore_ascii_case(k) && **f != k)
                .map(|f| (k.clone(), *f))
        })
        .collect();
    // Where the exact key is there too, kustomize reads it and not the other spelling.
    for (key, field) in misspelt {
        if let Some(v) = map.remove(&key)
            && !map.contains_key(field)
        {
            map.insert(field.to_string(), v);
        }
    }
}

/// The patch files the walked kustomizations name (`patchesStrategicMerge`, `patches[].path`,
/// `patchesJson6902[].path`), each with its kustomization: a strategic-merge patch looks like an
/// object but is a fragment, and read as one it would replace the whole object it patches.
fn kustomize_patches(files: &[(PathBuf, bool)]) -> std::collections::HashMap<PathBuf, PathBuf> {
    let mut out = std::collections::HashMap::new();
    for (file, _) in files {
        let Some((_, docs)) = kustomization_docs(file) else {
            continue;
        };
        let dir = file.parent().unwrap_or_else(|| Path::new("."));
        for (_, doc) in docs {
            let mut paths: Vec<&str> = Vec::new();
            if let Some(list) = doc.get("patchesStrategicMerge").and_then(Value::as_array) {
                paths.extend(list.iter().filter_map(Value::as_str));
            }
            for key in ["patches", "patchesJson6902"] {
                if let Some(list) = doc.get(key).and_then(Value::as_array) {
                    paths.extend(
                        list.iter()
                            .filter_map(|p| p.get("path").and_then(Value::as_str)),
                    );
                }
            }
            for p in paths {
                out.insert(canonical(&dir.join(p)), file.clone());
            }
        }
    }
    out
}

/// What a kustomization does besides listing files: nothing else but its identity, where kustomize
/// finds schemas (`crds`, `openapi`) and the order it prints in. Every other field changes what
/// it lists or adds to it (patches, images, `imageTags`, replicas, generators, Helm charts,
/// `buildMetadata` labels...): an allow-list, so a field kustomize adds later counts too.
/// `namespace` is judged apart, once the files are read ([`namespace_overrides`]): it changes
/// something only where a file says another.
const KUSTOMIZE_INERT: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "bases",
    "crds",
    "openapi",
    "sortOptions",
    "namespace",
];

/// A note for each walked kustomization that changes what it lists (patches, images, replicas,
/// generators...): its files were read as written, and what the cluster gets is what kustomize
/// renders. Walked, a kustomization whose patch set `replicas: 1`, `:latest` and `privileged`
/// left its base files passing. The note makes the gate an error (`Report::undecided`); the fix
/// is `--kustomize DIR`.
fn unrendered_kustomizations(
    files: &[(PathBuf, bool)],
    with_objects: &std::collections::HashSet<String>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    let found = walked_kustomizations(files);
    let kustomized: Vec<PathBuf> = found
        .iter()
        .filter_map(|k| k.file.parent().map(Path::to_path_buf))
        .collect();
    // Each file under its nearest kustomization, found once for all of them: looked up per
    // kustomization, a repository of 2,000 kustomized apps and 10,000 files took billions of
    // path comparisons (issue 12).
    let nearest = nearest_kustomizations(files, &kustomized);
    for Kustomization {
        file,
        name,
        docs,
        walked,
    } in found
    {
        let mut used: Vec<&str> = docs
            .iter()
            .filter_map(|(_, d)| d.as_object())
            .flat_map(|m| m.iter())
            .filter(|(k, v)| !v.is_null() && !KUSTOMIZE_INERT.contains(&k.as_str()))
            .map(|(k, _)| k.as_str())
            .collect();
        used.sort_unstable();
        used.dedup();
        let dir_path = file.parent().unwrap_or_else(|| Path::new("."));
        let unlisted = if walked {
            unlisted_files(
                dir_path,
                &docs,
                nearest.get(dir_path).map_or(&[][..], Vec::as_slice),
            )
            .into_iter()
            .filter(|f| with_objects.contains(f))
            .collect()
        } else {
            Vec::new()
        };
        let dir = dir_path.display().to_string();
        if !unlisted.is_empty() {
            // The walk audits every file of the directory; kustomize deploys what `resources`
            // lists. An object in an unlisted file (a NetworkPolicy left out of the render)
            // satisfied checks for a release that will not have it.
            notes.push(Note {
                kind: NoteKind::Unrendered,
                message: format!(
                    "{name} does not list {} in its resources: the walk audited what kustomize does not deploy; audit with --kustomize {dir}",
                    unlisted.join(", ")
                ),
            });
        }
        if used.is_empty() {
            continue;
        }
        notes.push(Note {
            kind: NoteKind::Unrendered,
            message: format!(
                "{name} changes what it lists ({}): the files were audited as written, not as kustomize renders them for the cluster; audit with --kustomize {dir}",
                used.join(", ")
            ),
        });
    }
    notes
}

/// A file's documents, each with its line.
type Documents = Vec<(u64, Value)>;

/// The kustomizations among the walked files, with their names and documents, and those of the
/// directories of files given one by one. The walk collects YAML and JSON files; kustomize also
/// reads a file named `Kustomization` in each directory, which the walk never sees.
fn walked_kustomizations(files: &[(PathBuf, bool)]) -> Vec<Kustomization> {
    // The directories the walk read files in (not those of files given one by one), once.
    let walked_dirs: std::collections::HashSet<&Path> = files
        .iter()
        .filter(|(_, explicit)| !explicit)
        .filter_map(|(f, _)| f.parent())
        .collect();
    kustomization_files(files)
        .into_iter()
        .filter_map(|file| {
            let (name, docs) = kustomization_docs(&file)?;
            let dir = file.parent().unwrap_or_else(|| Path::new("."));
            let walked = walked_dirs.contains(dir);
            Some(Kustomization {
                file,
                name,
                docs,
                walked,
            })
        })
        .collect()
}

/// The walked files, then the kustomization files in their directories the walk did not collect
/// (`Kustomization`; one beside files given one by one, `-f dir/deploy.yaml`: kustomize applies
/// the directory's kustomization to them all the same); only kustomizations are read from it.
fn kustomization_files(files: &[(PathBuf, bool)]) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = files.iter().map(|(f, _)| f.clone()).collect();
    let mut seen: std::collections::HashSet<PathBuf> = all.iter().cloned().collect();
    let dirs: std::collections::BTreeSet<PathBuf> = files
        .iter()
        .filter_map(|(f, _)| f.parent().map(Path::to_path_buf))
        .collect();
    for d in dirs {
        for name in ["kustomization.yaml", "kustomization.yml", "Kustomization"] {
            let k = d.join(name);
            if k.is_file() && seen.insert(k.clone()) {
                all.push(k);
            }
        }
    }
    all
}

/// A kustomization the walk found.
struct Kustomization {
    file: PathBuf,
    name: String,
    docs: Documents,
    /// Its directory was walked. One found beside files given one by one says how kustomize
    /// changes them, but what it lists and the run was not given is that run's choice (a hook
    /// auditing the files a commit changed), not a release audited without it.
    walked: bool,
}

/// A note for each walked kustomization whose `namespace:` differs from what a file under it
/// says: kustomize sets it on every namespaced object it lists, over the file's own (`kubectl
/// kustomize` moves a Deployment written for `mlsdm` to `default`), so the walk audited objects
/// in a namespace the cluster will not see them in. Walked, such a set passed
/// `namespace-defined`. Files that already say the same namespace change nothing: no note.
fn namespace_overrides(files: &[(PathBuf, bool)], objects: &[Object]) -> Vec<Note> {
    let mut notes = Vec::new();
    // Each file's real path, resolved once for all the kustomizations (one `realpath` per object
    // per kustomization was minutes in a repository of 2,000 kustomized apps; issue 12).
    let mut real: std::collections::HashMap<&str, PathBuf> = std::collections::HashMap::new();
    for Kustomization {
        file, name, docs, ..
    } in walked_kustomizations(files)
    {
        let Some(namespace) = docs
            .iter()
            .find_map(|(_, d)| d.get("namespace").and_then(Value::as_str))
        else {
            continue;
        };
        let dir = file.parent().unwrap_or_else(|| Path::new("."));
        // What it lists (a file, or a directory's files): an object elsewhere under the
        // directory is not its to move. An object that names no namespace fails on its own
        // (and its kind may be cluster-scoped); one that names another is moved.
        let resources: Vec<PathBuf> = docs
            .iter()
            .flat_map(|(_, d)| listed(d, RESOURCES))
            .map(|r| canonical(&dir.join(r)))
            .collect();
        let mut differing: Vec<String> = Vec::new();
        for o in objects {
            let (Some(at), Some(theirs)) = (&o.location, o.namespace.as_deref()) else {
                continue;
            };
            if crate::k8s::is_cluster_scoped(&o.kind) || theirs == namespace {
                continue;
            }
            let path = real
                .entry(at.file.as_str())
                .or_insert_with(|| canonical(Path::new(&at.file)));
            if !resources.iter().any(|r| *path == *r || path.starts_with(r)) {
                continue;
            }
            let says = format!("{} ({theirs})", at.file);
            if !differing.contains(&says) {
                differing.push(says);
            }
        }
        if differing.is_empty() {
            continue;
        }
        let shown = differing.len().min(3);
        let more = differing.len() - shown;
        notes.push(Note {
            kind: NoteKind::Unrendered,
            message: format!(
                "{name} sets namespace {namespace} on what it lists, over {}{}: the files were audited as written, not as kustomize renders them for the cluster; audit with --kustomize {}",
                differing[..shown].join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() },
                dir.display()
            ),
        });
    }
    notes
}

/// A note for each walked kustomization that lists what no walk of the run read (`../base`, a
/// remote base): kustomize deploys it, the walk audited the release without it. A defective
/// base beside a compliant overlay passed. `files` are every input's walked files: a base
/// given as another input was read.
fn unread_bases(files: &[(PathBuf, bool)]) -> Vec<Note> {
    let found: Vec<Kustomization> = walked_kustomizations(files)
        .into_iter()
        .filter(|k| k.walked)
        .collect();
    if found.is_empty() {
        return Vec::new();
    }
    // Every walked file's real path and the directories above it, resolved once for all the
    // kustomizations (a `realpath` per file per kustomization was minutes in a repository of
    // 2,000 kustomized apps; issue 12).
    let mut read: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    for (f, _) in files {
        for a in canonical(f).ancestors() {
            if !read.insert(a.to_path_buf()) {
                break;
            }
        }
    }
    found
        .into_iter()
        .filter_map(|Kustomization { file, name, docs, .. }| {
            let dir = file.parent().unwrap_or_else(|| Path::new("."));
            let unread = unread_resources(dir, &docs, &read);
            (!unread.is_empty()).then(|| Note {
                kind: NoteKind::Unrendered,
                message: format!(
                    "{name} lists {} outside what the walk read: kustomize deploys it, the walk did not audit it; audit with --kustomize {}",
                    unread.join(", "),
                    dir.display()
                ),
            })
        })
        .collect()
}

/// The `resources` and `components` of a kustomization that the walk read nothing of: a remote
/// base, or a path none of whose files were walked (outside the walked tree). `read`: the real
/// path of every walked file and of every directory above one.
fn unread_resources(
    dir: &Path,
    docs: &[(u64, Value)],
    read: &std::collections::HashSet<PathBuf>,
) -> Vec<String> {
    docs.iter()
        .flat_map(|(_, doc)| listed(doc, &["resources", "bases", "components"]))
        .filter(|r| {
            let remote = r.contains("://") || r.starts_with("github.com/") || r.contains("?ref=");
            // A walked file, or a directory holding one (`starts_with` is by whole components).
            remote || !read.contains(&canonical(&dir.join(r)))
        })
        .map(str::to_string)
        .collect()
}

/// What a kustomization deploys from other files: `resources`, and `bases`, its deprecated name
/// for directories, which kustomize still reads (a base listed there went unnoticed by the walk).
const RESOURCES: &[&str] = &["resources", "bases"];

/// The strings a kustomization lists under `keys`.
fn listed<'a>(doc: &'a Value, keys: &'a [&str]) -> impl Iterator<Item = &'a str> {
    keys.iter().flat_map(move |key| {
        doc.get(*key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    })
}

/// The walked files by the directory of the kustomization nearest above them (in its
/// directory, or in a subdirectory with no kustomization of its own nearer); files under none
/// are left out. `kustomized`: every walked kustomization's directory.
fn nearest_kustomizations<'a>(
    files: &'a [(PathBuf, bool)],
    kustomized: &'a [PathBuf],
) -> std::collections::HashMap<&'a Path, Vec<&'a Path>> {
    let dirs: std::collections::HashSet<&Path> = kustomized.iter().map(PathBuf::as_path).collect();
    let mut under: std::collections::HashMap<&Path, Vec<&Path>> = std::collections::HashMap::new();
    for (f, _) in files {
        if let Some(dir) = f.ancestors().skip(1).find(|a| dirs.contains(a)) {
            under.entry(dir).or_default().push(f);
        }
    }
    under
}

/// The walked YAML/JSON files under a kustomization (`under`: those it is the nearest
/// kustomization of, see [`nearest_kustomizations`]) that its `resources`, `components` and
/// patches do not name, directly or through a listed directory. Only its own directory was
/// looked at: a NetworkPolicy moved to an unlisted `extra/` folder was audited, and passed the
/// release, that kustomize deploys without it.
fn unlisted_files(dir: &Path, docs: &[(u64, Value)], under: &[&Path]) -> Vec<String> {
    let mut names: Vec<PathBuf> = Vec::new();
    for (_, doc) in docs {
        let keys = [
            "resources",
            "bases",
            "components",
            "patchesStrategicMerge",
            "crds",
            "configurations",
        ];
        names.extend(listed(doc, &keys).map(|r| canonical(&dir.join(r))));
        for key in ["patches", "patchesJson6902"] {
            for p in doc
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("path").and_then(Value::as_str))
            {
                names.push(canonical(&dir.join(p)));
            }
        }
    }
    under
        .iter()
        .filter(|f| !is_kustomization_file(&f.display().to_string()))
        .filter(|f| {
            let c = canonical(f);
            !names
                .iter()
                .any(|l| c == *l || c.starts_with(l) && l.is_dir())
        })
        .map(|f| f.display().to_string())
        .collect()
}

/// Parses one file; `lenient` (found by a directory walk) skips, with a note, a file none of
/// whose documents is a Kubernetes object.
fn parse_file(
    name: &str,
    text: &str,
    lenient: bool,
    loaded: &mut Loaded,
) -> Result<(), ManifestError> {
    let documents = match read_documents(name, text) {
        // A Helm template outside its chart (`{{ }}` is not YAML until rendered): only under a
        // `templates/` folder, where Helm keeps them. Elsewhere a YAML error stays an error, even
        // in a file with `{{ $labels }}` in it (a PrometheusRule), so a typo never drops objects.
        Err(_)
            if lenient
                && text.contains("{{")
                && Path::new(name)
                    .components()
                    .any(|c| c.as_os_str() == "templates") =>
        {
            loaded.notes.push(Note {
                kind: NoteKind::SkippedFile,
                message: format!(
                    "skipped {name}: a template ({{{{ }}}}), not YAML until rendered (audit what its chart renders with --helm-chart DIR)"
                ),
            });
            return Ok(());
        }
        other => other?,
    };
    // A document with a kind or a metadata block but no apiVersion is a broken object, not
    // foreign YAML: it stays an error, so a typo never drops an object from the audit.
    let foreign: Vec<&'static str> = documents
        .docs
        .iter()
        .filter(|(_, v)| !v.is_null())
        .filter(|(_, v)| !looks_like_an_object(v))
        .filter_map(|(_, v)| not_kubernetes(v))
        .collect();
    let real = documents.docs.iter().filter(|(_, v)| !v.is_null()).count();
    if lenient && real > 0 && foreign.len() == real {
        let dir = Path::new(name)
            .parent()
            .map_or_else(|| ".".to_string(), |d| d.display().to_string());
        let dir = if dir.is_empty() { ".".to_string() } else { dir };
        let message = if foreign.contains(&KUSTOMIZATION) || is_kustomization_file(name) {
            format!(
                "skipped {name}: a kustomization, not a Kubernetes object (audit what it renders with --kustomize {dir})"
            )
        } else {
            format!(
                "skipped {name}: not a Kubernetes object, no apiVersion and kind (if it is kustomize or Helm input, audit what it renders with --kustomize DIR or --helm-chart DIR)"
            )
        };
        loaded.notes.push(Note {
            kind: NoteKind::SkippedFile,
            message,
        });
        return Ok(());
    }
    for (line, value) in documents.into_kubectl(name)? {
        add_document(name, line, value, &mut loaded.objects)?;
    }
    Ok(())
}

const KUSTOMIZATION: &str = "a kustomization (kustomize.config.k8s.io), not a Kubernetes object: render it with --kustomize DIR";

fn is_kustomization_file(name: &str) -> bool {
    Path::new(name)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| ["kustomization.yaml", "kustomization.yml", "Kustomization"].contains(&n))
}

/// A mapping with `kind` or `metadata` that is not a kustomization: meant as an object.
fn looks_like_an_object(value: &Value) -> bool {
    let kustomize = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("kustomize.config.k8s.io/"));
    !kustomize && (value.get("kind").is_some() || value.get("metadata").is_some())
}

/// Why a document is not a Kubernetes object, or None when it is one.
fn not_kubernetes(value: &Value) -> Option<&'static str> {
    let Value::Object(map) = value else {
        return Some("expected a Kubernetes object (a mapping with apiVersion and kind)");
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.is_empty() || api_version.is_empty() {
        return Some("not a Kubernetes object: apiVersion and kind are required");
    }
    // kustomize's own files (Kustomization, Component) are build input, never applied.
    if api_version.starts_with("kustomize.config.k8s.io/") {
        return Some(KUSTOMIZATION);
    }
    None
}

/// The identity `kubectl apply` gives an object: API group (not version), kind, namespace, name.
fn identity(o: &Object) -> (String, String, Option<String>, String) {
    let group = o
        .api_version
        .rsplit_once('/')
        .map_or("", |(g, _)| g)
        .to_string();
    (group, o.kind.clone(), o.namespace.clone(), o.name.clone())
}

fn place(o: &Object) -> String {
    o.location
        .as_ref()
        .map_or_else(|| "?".into(), |l| format!("{}:{}", l.file, l.line))
}

/// Keeps the last definition of each object (in its place), noting every replacement.
fn dedupe(loaded: &mut Loaded) {
    let mut last: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    for (i, o) in loaded.objects.iter().enumerate() {
        if let Some(prev) = last.insert(identity(o), i) {
            let old = &loaded.objects[prev];
            loaded.notes.push(Note {
                kind: NoteKind::Replaced,
                message: format!(
                    "{} is defined twice: {} replaces {} (the last definition wins, as with kubectl apply)",
                    o.reference(),
                    place(o),
                    place(old)
                ),
            });
        }
    }
    let keep: std::collections::HashSet<usize> = last.into_values().collect();
    let mut i = 0;
    loaded.objects.retain(|_| {
        let k = keep.contains(&i);
        i += 1;
        k
    });
}

/// The files under `path` the run reads, in walk order, into `out` (with whether each was named
/// on the command line); the files the walk skips that `kubectl apply -R` reads (a hidden
/// directory's, a Helm chart's) into `unread`, to be bound by the digest.
fn collect(
    path: &Path,
    out: &mut Vec<(PathBuf, bool)>,
    unread: &mut Vec<PathBuf>,
    explicit: bool,
    notes: &mut Vec<Note>,
) -> Result<(), ManifestError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        // A walked link kubectl would not read, by its name, that points nowhere (`README ->
        // ../notes` in another checkout): kubectl ignores it, and it stopped the walk (review
        // finding). One named as a manifest stays an error: kubectl fails on it too.
        Err(_)
            if !explicit
                && !is_manifest_name(path)
                && path
                    .symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink()) =>
        {
            return Ok(());
        }
        Err(e) => {
            return Err(ManifestError::file(
                path.display().to_string(),
                format!("cannot read: {e}"),
            ));
        }
    };
    if meta.is_dir() {
        // A Helm chart's templates are not YAML until rendered, and values.yaml is not an object.
        if path.join("Chart.yaml").is_file() {
            unread.extend(manifest_files_under(path)?);
            notes.push(Note {
                kind: NoteKind::SkippedFile,
                message: format!(
                    "skipped {}: a Helm chart, not Kubernetes objects (audit what it renders with --helm-chart {})",
                    path.display(),
                    path.display()
                ),
            });
            return Ok(());
        }
        let unreadable = |e: std::io::Error| {
            ManifestError::file(
                path.display().to_string(),
                format!("cannot read directory: {e}"),
            )
        };
        // An entry that cannot be read is an error, not a file skipped: a manifest left out
        // silently would be a release audited without it.
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(unreadable)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(unreadable)?;
        entries.sort();
        for e in entries {
            // kubectl applies a hidden file (`.canary.yaml`) like any other, and so it is read:
            // skipped silently, its objects were never audited. A hidden directory (`.git`,
            // `.github`) holds tooling, not the release: skipped, and said when it holds
            // something that could be a manifest.
            let name = e.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            // An editor's lock (`.#x.yaml`, a dangling link) or macOS's resource fork
            // (`._x.yaml`, binary) is no manifest, and reading it would stop the walk. Only
            // those: a readable text file of that name is read as any other, since kubectl
            // applies it (an allow-all NetworkPolicy in `._allow-all.yaml` passed unseen;
            // review finding).
            // A UTF-16 file (with its byte-order mark) is no fork: kubectl decodes and applies
            // it, so it is read, and refused as not UTF-8 (review finding: `._allow.yaml` in
            // UTF-16 was skipped here, applied by kubectl, never audited).
            if (name.starts_with(".#") || name.starts_with("._"))
                && !is_text_file(&e)
                && !has_utf16_bom(&e)
            {
                notes.push(Note {
                    kind: NoteKind::SkippedFile,
                    message: format!(
                        "skipped {}: an editor lock or macOS resource file",
                        e.display()
                    ),
                });
                // Not audited, but kubectl reads a file so named all the same: bound.
                if is_manifest_name(&e) {
                    unread.push(e.clone());
                }
                continue;
            }
            // kubectl apply -R does not follow a link to a directory (Go's filepath.Walk reads
            // links as links): its objects are not deployed, and were audited as if they were.
            if e.is_symlink() && e.is_dir() {
                notes.push(Note {
                    kind: NoteKind::SkippedFile,
                    message: format!(
                        "skipped {}: a link to a directory, which kubectl apply -R does not follow (name it on the command line to audit it)",
                        e.display()
                    ),
                });
                continue;
            }
            if name.starts_with('.') && e.is_dir() {
                let files = if name == ".git" {
                    Vec::new()
                } else {
                    manifest_files_under(&e)?
                };
                if !files.is_empty() {
                    unread.extend(files);
                    notes.push(Note {
                        kind: NoteKind::SkippedFile,
                        message: format!(
                            "skipped {}: a hidden directory (name it on the command line to audit it)",
                            e.display()
                        ),
                    });
                }
                continue;
            }
            collect(&e, out, unread, false, notes)?;
        }
    } else if explicit {
        // Named on the command line: a FIFO (`-f <(helm template ...)`) is read as asked.
        out.push((path.to_path_buf(), true));
    } else if is_manifest_name(path) {
        // Found by walking a directory: a FIFO or device would block or never end.
        if !meta.is_file() {
            return Err(ManifestError::file(
                path.display().to_string(),
                "not a regular file (a FIFO, socket or device); name it on the command line to read it",
            ));
        }
        out.push((path.to_path_buf(), false));
    }
    Ok(())
}

/// A regular file (links followed) that starts with a UTF-16 byte-order mark, which kubectl
/// decodes (cli-runtime's visitor reads files through `unicode.BOMOverride`).
fn has_utf16_bom(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; 2];
    path.is_file()
        && std::fs::File::open(path).is_ok_and(|mut f| f.read_exact(&mut head).is_ok())
        && matches!(head, [0xFF, 0xFE] | [0xFE, 0xFF])
}

/// A regular file (links followed) whose bytes are UTF-8 text without NUL: what an editor's
/// lock (a dangling link) and a macOS resource fork (binary) are not.
fn is_text_file(path: &Path) -> bool {
    // One past `--max-input-size` is not judged a lock or fork: it is read, and refused as too
    // large like any other manifest (skipped as "not text", it was applied by kubectl and never
    // audited; review finding).
    path.is_file()
        && (path.metadata().is_ok_and(|m| m.len() > crate::input::cap())
            || crate::input::read_file(path).is_ok_and(|text| !text.contains('\0')))
}

/// The `.yaml`, `.yml` and `.json` files under a directory (at any depth), in walk order: what
/// a hidden directory being skipped is worth saying for, and what the digest binds of it. Every
/// entry so named that is not a directory (a FIFO, a dangling link too: [`unread_file`] says
/// what it is). A directory that cannot be read stops the run, as in the walk itself: a manifest
/// behind it would be neither audited nor bound, and kubectl, run by another user, may read it.
fn manifest_files_under(dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    // At any depth, as `kubectl apply -R` walks it: a manifest one level down (`.x/sub/np.yaml`)
    // was skipped without a word (review finding), and one 64 levels down was left out of the
    // digest. Links to directories are not followed, as kubectl does not: no walk loops, and
    // a path's length bounds the depth.
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ManifestError> {
        let unreadable = |e: std::io::Error| {
            ManifestError::file(
                dir.display().to_string(),
                format!("cannot read directory: {e}"),
            )
        };
        let mut entries: Vec<(PathBuf, std::fs::FileType)> = std::fs::read_dir(dir)
            .map_err(unreadable)?
            .map(|e| {
                let e = e?;
                Ok((e.path(), e.file_type()?))
            })
            .collect::<Result<_, std::io::Error>>()
            .map_err(unreadable)?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (p, kind) in entries {
            if kind.is_dir() {
                walk(&p, out)?;
            } else if is_manifest_name(&p) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    Ok(out)
}

/// Whether a walk reads the file: its name ends in `.yaml`, `.yml` or `.json`, as kubectl
/// decides by Go's `filepath.Ext`, which takes the last dot of the name, a leading one too: a
/// file named `.yaml` is applied by `kubectl apply -R`, and Rust's `Path::extension` (`None`
/// for it) left it unread without a note, its Deployment never audited (review finding).
fn is_manifest_name(path: &Path) -> bool {
    // By bytes: a name that is not UTF-8 is still read when it ends so.
    path.file_name().is_some_and(|n| {
        let name = n.as_encoded_bytes();
        name.iter()
            .rposition(|&c| c == b'.')
            .is_some_and(|dot| matches!(&name[dot + 1..], b"yaml" | b"yml" | b"json"))
    })
}

/// Parses one file's text (YAML, possibly multi-document, or JSON).
pub fn parse_text(file: &str, text: &str, out: &mut Vec<Object>) -> Result<(), ManifestError> {
    for (line, value) in read_documents(file, text)?.into_kubectl(file)? {
        add_document(file, line, value, out)?;
    }
    Ok(())
}

/// The documents of one file's text with the line each starts on.
fn documents(file: &str, text: &str) -> Result<Vec<(u64, Value)>, ManifestError> {
    read_documents(file, text).map(|read| read.docs)
}

/// A file's documents, and where kubectl would read them otherwise (see [`kubectl_yaml`]): a
/// refusal only for a file that holds Kubernetes objects (a walk skips other YAML, a GitHub
/// workflow's `on:` included, with a note).
struct Read {
    docs: Vec<(u64, Value)>,
    otherwise: Option<(u64, String)>,
}

impl Read {
    /// The documents, or the error of a file kubectl reads otherwise.
    fn into_kubectl(self, file: &str) -> Result<Vec<(u64, Value)>, ManifestError> {
        match self.otherwise {
            Some((line, message)) => Err(ManifestError::new(file, line, 1, message)),
            None => Ok(self.docs),
        }
    }
}

fn read_documents(file: &str, text: &str) -> Result<Read, ManifestError> {
    let is_json = Path::new(file).extension().is_some_and(|e| e == "json")
        || text.trim_start().starts_with('{');
    if is_json {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ManifestError::json(file, "invalid JSON", &e))?;
        return Ok(Read {
            docs: vec![(1, value)],
            otherwise: None,
        });
    }
    let separators = kubectl_yaml::separators(text);
    let budget = yaml_budget();
    // The shape manifests have, read fast; anything else, and every error, by serde-saphyr. The
    // fast path takes no text kubectl reads otherwise (a merge key, a plain scalar YAML 1.1
    // reads differently): those are looked for on the others only.
    let mut otherwise = None;
    let docs = if let Some(docs) = super::manifest_yaml::documents(text, &budget) {
        docs
    } else {
        let docs = reference_yaml(text, budget).map_err(|e| {
            let d = ManifestError::yaml(file, &e);
            d.with_message(format!("invalid YAML: {}", d.message))
        })?;
        otherwise = kubectl_yaml::read_otherwise(text);
        docs
    };
    let otherwise = match separators {
        Err(refused) => Some(refused),
        Ok(separators) => kubectl_yaml::unicode_line_break(text)
            .or(otherwise)
            .or_else(|| kubectl_yaml::unapplied_document(text, &separators, &docs)),
    };
    Ok(Read { docs, otherwise })
}

/// The documents of a YAML text as serde-saphyr reads them: the reference the fast path
/// (`manifest_yaml`) is held to, and what reads every text the fast path leaves.
fn reference_yaml(
    text: &str,
    budget: serde_saphyr::Budget,
) -> Result<Vec<(u64, Value)>, serde_saphyr::Error> {
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    // kubectl reads manifests with YAML 1.1's integers (go-yaml's `ParseInt(s, 0, 64)`): a
    // leading zero is octal, so `runAsUser: 01000` is UID 512 on the cluster. Read as decimal,
    // a value the cluster never runs with was judged.
    options.legacy_octal_numbers = true;
    let docs =
        serde_saphyr::from_multiple_with_options::<serde_saphyr::Spanned<Value>>(text, options)?;
    Ok(docs
        .into_iter()
        .map(|doc| (doc.referenced.line().max(1), doc.value))
        .collect())
}

/// [`reference_yaml`] with the manifests' budget, its error as text: for the fast path's tests
/// and its fuzz target.
pub(crate) fn reference_documents(text: &str) -> Result<Vec<(u64, Value)>, String> {
    reference_yaml(text, yaml_budget()).map_err(|e| e.to_string())
}

/// The YAML parser's budgets, raised from its defaults (1,024 documents, 250,000 nodes) to what
/// real cluster dumps hold. The input cap bounds the work; the alias limits, which are what keep
/// a "billion laughs" out, stay as they are.
pub(crate) fn yaml_budget() -> serde_saphyr::Budget {
    let cap = usize::try_from(crate::input::cap()).unwrap_or(usize::MAX);
    let mut budget = serde_saphyr::Budget::default();
    budget.max_reader_input_bytes = Some(cap);
    budget.max_documents = 1_000_000;
    budget.max_nodes = 100_000_000;
    budget.max_events = 200_000_000;
    budget.max_total_scalar_bytes = cap;
    budget
}

/// Removes the fields whose value is null (`ingress: null`, `matchExpressions:` left empty, as
/// Helm's `toYaml` writes them), at every depth: the API server decodes a null field to its
/// unset value and stores none, which is what a live object shows and what the checks read
/// (`has()` false). Kept, they made `size()` and `in` fail on a valid manifest, or a check read
/// an empty selector as a malformed one. Null list elements stay: the API server refuses them.
///
/// A map of strings is not a struct: there a null value is the empty string the API server
/// stores (labels, annotations, a Service's selector, `matchLabels`, `nodeSelector`, a
/// ConfigMap's or Secret's data). A Service selector `{app: x, track: null}` selects
/// `track=""`, which no pod without the label matches; dropped, it passed as `{app: x}`.
fn drop_null_fields(value: &mut Value) {
    normalise_nulls(value, false);
}

/// The keys whose value is a map of strings, whatever object holds them. `selector` is one
/// only when it is no LabelSelector (a Service's, not a PDB's or a Deployment's).
fn holds_strings(key: &str, value: &Value) -> bool {
    match key {
        "labels" | "annotations" | "matchLabels" | "nodeSelector" | "data" | "stringData"
        | "binaryData" => true,
        "selector" => value
            .as_object()
            .is_some_and(|m| !m.contains_key("matchLabels") && !m.contains_key("matchExpressions")),
        _ => false,
    }
}

fn normalise_nulls(value: &mut Value, strings: bool) {
    match value {
        Value::Object(map) if strings => {
            for v in map.values_mut() {
                if v.is_null() {
                    *v = Value::String(String::new());
                }
            }
        }
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            for (k, v) in map.iter_mut() {
                let strings = holds_strings(k, v);
                normalise_nulls(v, strings);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| normalise_nulls(v, false)),
        _ => {}
    }
}

fn add_document(
    file: &str,
    line: u64,
    value: Value,
    out: &mut Vec<Object>,
) -> Result<(), ManifestError> {
    let err = |message: String| ManifestError::new(file.to_string(), line, 1, message);
    if value.is_null() {
        return Ok(());
    }
    let mut value = value;
    drop_null_fields(&mut value);
    if let Some(why) = not_kubernetes(&value) {
        return Err(err(why.into()));
    }
    let Value::Object(map) = &value else {
        return Ok(());
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // kubectl reads any object with an `items` array as a list (apimachinery's
    // `Unstructured::IsList`): it applies the items and drops the object. A PDB with `items: []`
    // was audited while kubectl created no PDB (review finding): outside a `...List` kind, refused.
    if map.get("items").is_some_and(Value::is_array) {
        if !kind.ends_with("List") {
            return Err(err(format!(
                "{kind} has a top-level `items` list: kubectl reads it as a list and applies only its items, not the {kind} itself; remove `items`"
            )));
        }
        for item in map["items"].as_array().into_iter().flatten() {
            add_document(file, line, item.clone(), out)?;
        }
        return Ok(());
    }
    let name = value
        .at("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("{kind} has no metadata.name")))?
        .to_string();
    // Another API's kind of a listed kind's name is named as kubectl names it, `Kind.group`: no
    // check or relation of the Kubernetes kind takes it for one.
    let kind = match crate::k8s::kinds::serving(kind, api_version) {
        Serving::Served => kind.to_string(),
        Serving::Refused(why) => return Err(err(format!("{kind} {name}: {why}"))),
        Serving::Foreign => format!(
            "{kind}.{}",
            api_version.rsplit_once('/').map_or(api_version, |(g, _)| g)
        ),
    };
    let namespace = value
        .at("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    out.push(Object::new(
        api_version.to_string(),
        kind,
        namespace,
        name,
        value,
        Some(Location {
            file: file.to_string(),
            line,
        }),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest a signed pass is bound to: the same files read from another directory are the
    /// same release; the same bytes under another name (a patch renamed `kustomization.yaml`,
    /// a file moved under an overlay) are not.
    #[test]
    fn the_digest_holds_paths_relative_to_each_input() {
        let base = std::env::temp_dir().join(format!("mlsdm-digest-{}", std::process::id()));
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
        let digest = |dir: &str, name: &str| {
            let d = base.join(dir);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name), cm).unwrap();
            let loaded = load_inputs(&[Input::Path(d)]).unwrap();
            loaded.digest()
        };
        let here = digest("one", "cm.yaml");
        assert_eq!(here.inputs.len(), 1);
        assert_eq!(here.inputs[0].files[0].path, "cm.yaml");
        assert_eq!(here.sha256, digest("two", "cm.yaml").sha256);
        assert_ne!(here.sha256, digest("three", "other.yaml").sha256);
        // A render piped to `verify -f -` is the text the audit rendered.
        let text = |kind| vec![text_input(kind, "x", cm)];
        assert_eq!(
            combined_digest(&text(crate::report::InputKind::Render)),
            combined_digest(&text(crate::report::InputKind::Stdin))
        );
        // Two names of one file are not two files (which one a kustomization lists decides).
        #[cfg(unix)]
        {
            let copies = base.join("four");
            digest("four", "cm.yaml");
            std::fs::write(copies.join("b.yaml"), cm).unwrap();
            let links = base.join("five");
            digest("five", "cm.yaml");
            std::os::unix::fs::symlink("cm.yaml", links.join("b.yaml")).unwrap();
            let of = |d: PathBuf| load_inputs(&[Input::Path(d)]).unwrap().digest();
            let (copies, links) = (of(copies), of(links));
            assert_eq!(links.inputs[0].files[0].path, "b.yaml");
            assert_eq!(links.inputs[0].files[0].link.as_deref(), Some("cm.yaml"));
            assert_eq!(copies.inputs[0].files[0].link, None);
            assert_ne!(copies.sha256, links.sha256);
        }
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn multi_document_lines_and_lists() {
        let text = "# header\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: b\n";
        let mut out = Vec::new();
        parse_text("x.yaml", text, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].location.as_ref().unwrap().line, 3);
        assert_eq!(out[1].kind, "ConfigMap");
        assert_eq!(out[1].location.as_ref().unwrap().line, 8);
    }

    /// Review findings: documents kubectl never applies were audited. kubectl cuts a file at
    /// lines starting with `---` (refusing one followed by anything but a comment) and decodes
    /// the first document of each part: a PDB after a `...` end marker, or after the first
    /// document of a file whose lines end in a bare CR, passed the PDB checks.
    #[test]
    fn documents_kubectl_would_not_apply_are_refused() {
        let cm =
            |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
        let load = |text: &str| {
            let mut out = Vec::new();
            parse_text("x.yaml", text, &mut out).map(|()| out.len())
        };
        // What kubectl applies: separators with comments or spaces after them, empty parts.
        assert_eq!(
            load(&format!(
                "---\n{}--- # two\n{}---   \n---\n",
                cm("a"),
                cm("b")
            )),
            Ok(2)
        );
        assert_eq!(
            load(&format!("{}---\n{}", cm("a"), cm("b")).replace('\n', "\r\n")),
            Ok(2)
        );
        assert_eq!(load(&cm("a").replace('\n', "\r")), Ok(1));
        // Inside a quoted scalar every reader keeps U+2028 as a character.
        assert_eq!(
            load(&format!(
                "{}data:\n  a: \"x\u{2028}y\"\n  b: 'z\u{2028}'\n",
                cm("a")
            )),
            Ok(1)
        );
        for (text, line, says) in [
            (
                format!("{}...\n{}", cm("a"), cm("b")),
                6,
                "after a `...` end marker",
            ),
            (
                format!("{}---\n{}", cm("a"), cm("b")).replace('\n', "\r"),
                6,
                "bare CR",
            ),
            (
                format!("{}--- !!map\n{}", cm("a"), cm("b")),
                5,
                "invalid Yaml document separator",
            ),
            // Review findings: kubectl (YAML 1.1) breaks the line at U+2028 and dropped the
            // Deployment's rest this reader audited; it refuses a file with a directive; it
            // applies the items of any object with an `items` list, not the object.
            (
                format!("{}# pinned\u{2028}---\n  b: c\n", cm("a")),
                5,
                "U+2028",
            ),
            (format!("{}data:\n  a: b\u{2029}c\n", cm("a")), 6, "U+2029"),
            (format!("%YAML 1.1\n---\n{}", cm("a")), 1, "YAML directive"),
            (
                format!("{}items: []\n", cm("a")),
                1,
                "top-level `items` list",
            ),
            (
                // Not YAML either: the YAML error says so first.
                format!("{}----\n{}", cm("a"), cm("b")),
                5,
                "invalid YAML",
            ),
            (
                // Review finding: the refusal quoted the line, here a Secret's value.
                "--- {apiVersion: v1, kind: Secret, metadata: {name: s}, stringData: {password: Sup3rS3cretValue1}}\n".to_string(),
                1,
                "separator followed by content on the same line",
            ),
        ] {
            let e = load(&text).unwrap_err();
            assert_eq!(
                (e.line, e.message.contains(says)),
                (line, true),
                "{text:?}: {e}"
            );
            assert!(!e.to_string().contains("Sup3rS3cret"), "{e}");
        }
    }

    /// Review finding: `privileged: false` then `<<: {privileged: true}` passed the hardening
    /// check while kubectl (go-yaml v2) lets the merge override the key before it.
    #[test]
    fn a_merge_after_explicit_keys_is_refused() {
        let doc = |spec: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n{spec}")
        };
        let load = |text: &str| {
            parse_text("x.yaml", text, &mut Vec::new()).map_err(|e| (e.line, e.message))
        };
        // First in its mapping, or in another mapping: one meaning for every reader.
        assert!(load(&doc("  <<: {a: '1'}\n  b: '2'\n")).is_ok());
        assert!(
            load("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: &b {a: '1'}\ndata:\n  <<: *b\n  c: '3'\n")
                .is_ok()
        );
        assert!(load(&doc("  a: '<<'\n  '<<': '2'\n")).is_ok());
        for spec in ["  a: '1'\n  <<: {a: '2'}\n", "  a: '1'\n  <<: [{b: '2'}]\n"] {
            let (line, message) = load(&doc(spec)).unwrap_err();
            assert_eq!(line, 7, "{spec}");
            assert!(message.contains("put <<: first"), "{message}");
        }
    }

    /// Review finding: objects sent as an apiVersion that does not serve their kind passed the
    /// checks of the kind; another API's kind of the same name is kept under `Kind.group`.
    #[test]
    fn kinds_are_read_with_the_versions_that_serve_them() {
        let mut out = Vec::new();
        let e = parse_text(
            "x.yaml",
            "apiVersion: v1\nkind: NetworkPolicy\nmetadata: {name: deny}\n",
            &mut out,
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("apiVersion v1 does not serve NetworkPolicy"),
            "{e}"
        );
        parse_text("x.yaml", "apiVersion: crd.projectcalico.org/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: k8s}\n", &mut out).unwrap();
        let kinds: Vec<&str> = out.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["NetworkPolicy.crd.projectcalico.org", "NetworkPolicy"]
        );
    }

    /// Review finding: `runAsUser: 01000` was read as 1000 while kubectl (go-yaml, YAML 1.1)
    /// sends 512; the checks judged a value the cluster never runs with. Numbers are read as
    /// kubectl reads them: a leading zero is octal, `08`/`09` (not octal) a decimal float.
    #[test]
    fn numbers_with_a_leading_zero_are_read_as_kubectl_reads_them() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nspec:\n  octal: 01000\n  negative: -010\n  underscored: 0_10\n  nine: 089\n  plain: 1000\n  hex: 0x10\n  zero: 0\n  quoted: \"0100\"\n";
        let mut out = Vec::new();
        parse_text("x.yaml", text, &mut out).unwrap();
        let spec = &out[0].json["spec"];
        assert_eq!(spec["octal"], 512, "{spec}");
        assert_eq!(spec["negative"], -8, "{spec}");
        assert_eq!(spec["underscored"], 8, "{spec}");
        assert_eq!(spec["nine"].as_f64(), Some(89.0), "{spec}");
        assert_eq!(spec["plain"], 1000, "{spec}");
        assert_eq!(spec["hex"], 16, "{spec}");
        assert_eq!(spec["zero"], 0, "{spec}");
        assert_eq!(spec["quoted"], "0100", "{spec}");
    }

    fn rendered(name: &str, text: &str) -> Input {
        Input::Rendered {
            name: name.into(),
            text: text.into(),
        }
    }

    #[test]
    fn the_last_definition_wins_per_group_kind_namespace_and_name() {
        let a = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: d\n  namespace: ns\n  labels: {v: old}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: ns\n";
        let b = "apiVersion: example.com/v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: ns\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: other\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: d\n  namespace: ns\n  labels: {v: new}\n";
        let l = load_inputs(&[rendered("a", a), rendered("b", b)]).unwrap();
        // Another API group or namespace is another object; autoscaling/v1 and v2 are one.
        assert_eq!(l.objects.len(), 4);
        let d: Vec<&Object> = l
            .objects
            .iter()
            .filter(|o| o.kind == "HorizontalPodAutoscaler")
            .collect();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].json["metadata"]["labels"]["v"], "new");
        assert_eq!(
            l.notes,
            vec![Note {
                kind: NoteKind::Replaced,
                message: "HorizontalPodAutoscaler/ns/d is defined twice: b:13 replaces a:1 (the last definition wins, as with kubectl apply)".into()
            }]
        );
    }

    /// A walked file of foreign YAML is skipped; an object with a typo in it is not.
    #[test]
    fn only_foreign_yaml_is_skipped_in_a_walk() {
        let mut l = Loaded::default();
        parse_file("d/ci.yaml", "stages: [a]\n", true, &mut l).unwrap();
        parse_file("d/Chart.yaml", "apiVersion: v2\nname: x\n", true, &mut l).unwrap();
        assert_eq!(l.notes.len(), 2);
        for broken in [
            "kind: ConfigMap\nmetadata:\n  name: c\n",
            "apiVersion: v1\nmetadata:\n  name: c\ndata: {}\n",
            "apiVersion: v1\nkind: ConfigMap\n",
        ] {
            assert!(
                parse_file("d/cm.yaml", broken, true, &mut l).is_err(),
                "{broken}"
            );
        }
        // A kustomization with a metadata block is still a kustomization.
        parse_file(
            "d/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nmetadata:\n  name: k\n",
            true,
            &mut l,
        )
        .unwrap();
        assert_eq!(l.notes.len(), 3);
        assert!(l.objects.is_empty());
    }

    /// Review finding: a hidden file in a walked directory (`.canary.yaml`, which kubectl
    /// applies) was skipped silently, and the release passed without its objects. It is read;
    /// a hidden directory holding manifest files is skipped with a note.
    #[test]
    fn hidden_files_are_read_and_hidden_directories_said() {
        let dir = std::env::temp_dir().join(format!("mlsdm-hidden-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(".staging")).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        let cm = |name: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: n}}\n")
        };
        std::fs::write(dir.join("release.yaml"), cm("release")).unwrap();
        std::fs::write(dir.join(".canary.yaml"), cm("canary")).unwrap();
        std::fs::write(dir.join(".staging/x.yaml"), cm("staging")).unwrap();
        std::fs::write(dir.join(".git/config.yaml"), cm("git")).unwrap();
        std::fs::write(dir.join("._release.yaml"), [0u8, 5, 22, 7, 0xff]).unwrap();
        // A text file of such a name is applied by kubectl, and read (review finding: an
        // allow-all policy in `._allow-all.yaml` passed unseen).
        std::fs::write(dir.join("._allow-all.yaml"), cm("allow-all")).unwrap();
        // Review findings: a file named `.yaml` (kubectl applies it: Go's extension of the
        // name is `.yaml`) was never read, without a note; and a hidden directory holding
        // manifests only below its first level was skipped without one.
        std::fs::create_dir_all(dir.join("zz")).unwrap();
        std::fs::write(dir.join("zz/.yaml"), cm("dot-yaml")).unwrap();
        std::fs::create_dir_all(dir.join(".hotfix/sub")).unwrap();
        std::fs::write(dir.join(".hotfix/sub/np.yaml"), cm("hotfix")).unwrap();
        std::fs::write(dir.join("notes.yaml.txt"), cm("not-read")).unwrap();
        // A dangling link kubectl does not read, by its name, does not stop the walk.
        std::os::unix::fs::symlink("/nonexistent/notes", dir.join("README")).unwrap();
        let l = load_inputs(&[Input::Path(dir.clone())]).unwrap();
        let mut names: Vec<&str> = l.objects.iter().map(|o| o.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["allow-all", "canary", "dot-yaml", "release"]);
        assert_eq!(l.notes.len(), 3, "{:?}", l.notes);
        for says in [
            ".hotfix: a hidden directory",
            ".staging: a hidden directory",
            "._release.yaml: an editor lock or macOS",
        ] {
            assert!(
                l.notes.iter().any(|n| n.message.contains(says)),
                "{says}: {:?}",
                l.notes
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// What the walk skips and kubectl reads is bound by the digest (review findings): a hidden
    /// directory's manifests at any depth (64 levels down were left out), a macOS resource
    /// file's bytes; a UTF-16 file of a resource file's name is read (and refused), not skipped;
    /// a hidden directory that cannot be read, or a file past the cap, stops the run.
    #[cfg(unix)]
    #[test]
    fn what_a_walk_skips_and_kubectl_reads_is_bound() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("mlsdm-unread-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("release.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\n",
        )
        .unwrap();
        let deep: PathBuf = std::iter::once(".x".to_string())
            .chain((0..70).map(|_| "d".to_string()))
            .collect();
        std::fs::create_dir_all(dir.join(&deep)).unwrap();
        std::fs::write(dir.join(&deep).join("np.yaml"), "kind: NetworkPolicy\n").unwrap();
        std::fs::write(dir.join("._fork.yaml"), [0u8, 5, 22, 7, 0xff]).unwrap();
        let digest =
            |dir: &Path| load_inputs(&[Input::Path(dir.to_path_buf())]).map(|l| l.digest());
        let bound = digest(&dir).unwrap();
        let paths: Vec<&str> = bound.inputs[0]
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        let deep_path = format!("{}/np.yaml", deep.display());
        assert_eq!(paths, ["release.yaml", "._fork.yaml", &deep_path]);
        // Each bound file's bytes decide.
        std::fs::write(
            dir.join(&deep).join("np.yaml"),
            "kind: NetworkPolicy\nspec: {}\n",
        )
        .unwrap();
        assert_ne!(digest(&dir).unwrap().sha256, bound.sha256);
        std::fs::write(dir.join("._fork.yaml"), [0u8, 5, 22, 7, 0xfe]).unwrap();
        let changed = digest(&dir).unwrap();
        // A UTF-16 file is no resource fork: read as a manifest, and refused as not UTF-8.
        std::fs::write(dir.join("._utf16.yaml"), [0xFFu8, 0xFE, b'k', 0]).unwrap();
        let e = digest(&dir).unwrap_err();
        assert!(
            e.to_string().contains("._utf16.yaml") && e.to_string().contains("not UTF-8"),
            "{e}"
        );
        std::fs::remove_file(dir.join("._utf16.yaml")).unwrap();
        // Past the input cap, as any file the run reads.
        let big = dir.join(".x/big.json");
        std::fs::write(
            &big,
            vec![b' '; usize::try_from(crate::input::cap()).unwrap() + 1],
        )
        .unwrap();
        let e = digest(&dir).unwrap_err();
        assert!(
            e.to_string().contains("big.json") && e.to_string().contains("input cap"),
            "{e}"
        );
        std::fs::remove_file(&big).unwrap();
        assert_eq!(digest(&dir).unwrap(), changed);
        // A hidden directory that cannot be read (root reads it all the same).
        let locked = dir.join(".x/d");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let readable = std::fs::read_dir(&locked).is_ok();
        let outcome = digest(&dir);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        if !readable {
            let e = outcome.unwrap_err();
            assert!(e.to_string().contains("cannot read directory"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Review finding: the kubectl-reading rules refused a walked GitHub workflow (`on:`) and a
    /// compose file (`<<:` after keys), which a walk skips as not Kubernetes: they apply to files
    /// of Kubernetes objects only.
    #[test]
    fn kubectl_reading_rules_judge_kubernetes_files_only() {
        let dir = std::env::temp_dir().join(format!("mlsdm-kubectl-rules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ci")).unwrap();
        std::fs::write(
            dir.join("release.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("ci/deploy.yml"),
            "on:\n  push:\n    branches: [main]\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("ci/compose.yaml"),
            "x: &d {image: a}\nservices:\n  web:\n    image: b\n    <<: *d\n",
        )
        .unwrap();
        let l = load_inputs(&[Input::Path(dir.clone())]).unwrap();
        assert_eq!(l.objects.len(), 1);
        assert_eq!(l.notes.len(), 2, "{:?}", l.notes);
        // A Kubernetes file with the same keys is refused.
        std::fs::write(
            dir.join("ci/deploy.yml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: n}\ndata:\n  on: x\n",
        )
        .unwrap();
        let e = load_inputs(&[Input::Path(dir.clone())]).unwrap_err();
        assert!(
            e.to_string().contains("deploy.yml:5:1: the plain key `on`"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Review finding: a link to a directory was followed, and its Service passed the checks,
    /// while `kubectl apply -R` does not follow it (the Service is never deployed). A link to a
    /// file is read, as kubectl reads it, and a linked directory named on the command line too.
    #[cfg(unix)]
    #[test]
    fn links_to_directories_are_not_followed_in_a_walk() {
        let dir = std::env::temp_dir().join(format!("mlsdm-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("prod")).unwrap();
        std::fs::create_dir_all(dir.join("shared")).unwrap();
        let cm = |name: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: n}}\n")
        };
        std::fs::write(dir.join("prod/release.yaml"), cm("release")).unwrap();
        std::fs::write(dir.join("shared/service.yaml"), cm("shared")).unwrap();
        std::fs::write(dir.join("one.yaml"), cm("linked-file")).unwrap();
        std::os::unix::fs::symlink("../shared", dir.join("prod/common")).unwrap();
        std::os::unix::fs::symlink("../one.yaml", dir.join("prod/one.yaml")).unwrap();
        let l = load_inputs(&[Input::Path(dir.join("prod"))]).unwrap();
        let names: Vec<&str> = l.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["linked-file", "release"]);
        assert!(
            l.notes
                .iter()
                .any(|n| n.message.contains("common: a link to a directory")),
            "{:?}",
            l.notes
        );
        let l = load_inputs(&[Input::Path(dir.join("prod/common"))]).unwrap();
        assert_eq!(l.objects.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rendered_output_that_is_not_kubernetes_is_an_error() {
        let e = load_inputs(&[rendered("kustomize:x", "a: b\n")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "kustomize:x:1:1: not a Kubernetes object: apiVersion and kind are required"
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let mut out = Vec::new();
        let e = parse_text(
            "bad.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: [a\n",
            &mut out,
        )
        .unwrap_err();
        assert_eq!(e.file, "bad.yaml");
        assert_eq!(e.line, 4);
        let e = parse_text(
            "bad.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\nfoo: bar\n",
            &mut out,
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (
                6,
                "not a Kubernetes object: apiVersion and kind are required"
            )
        );
        let e = parse_text("bad.json", "{\"kind\": \n", &mut out).unwrap_err();
        assert!(e.message.starts_with("invalid JSON"));
    }
}
