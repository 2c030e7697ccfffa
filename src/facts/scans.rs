//! Which of trivy-operator's VulnerabilityReports scanned the image a container runs
//! (`related.imageScans`): a report is evidence about one image, so a check of the running
//! images judges each container by the reports of its own image, never by whichever reports the
//! namespace holds (a clean report of another image, or of the image the release replaces, had
//! passed `vulnerability-scan-clean`: review finding).
//!
//! Image references are compared as the container runtime resolves them (Docker's
//! normalisation: no registry is `docker.io`, a one-part name there is `library/NAME`, no tag
//! is `latest`); trivy-operator writes the same parts apart, as `report.registry.server`,
//! `report.artifact.repository`, `.tag` and `.digest`. Kept here rather than taken from a crate:
//! the rules are these few lines, and what matters is applying the same ones to both sides.

use crate::k8s::At as _;
use crate::k8s::Object;
use serde_json::Value;

/// An image reference in its parts, normalised.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// `registry/repository`, the key reports are indexed by.
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn registry(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        other => other,
    }
}

fn full_name(host: &str, repository: &str) -> String {
    let host = registry(host);
    if host == "docker.io" && !repository.contains('/') {
        format!("{host}/library/{repository}")
    } else {
        format!("{host}/{repository}")
    }
}

/// A container's `image`, as the runtime reads it.
pub fn parse_image(image: &str) -> ImageRef {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest.to_string())),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
        None => (rest, None),
    };
    let (host, repository) = match path.split_once('/') {
        Some((first, repo))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, repo)
        }
        _ => ("docker.io", path),
    };
    let tag = tag.or_else(|| digest.is_none().then(|| "latest".to_string()));
    ImageRef {
        name: full_name(host, repository),
        tag,
        digest,
    }
}

/// The image a VulnerabilityReport scanned, if it says.
pub fn scanned_image(report: &Object) -> Option<ImageRef> {
    let text = |p: &str| {
        report
            .json
            .at(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let repository = text("/report/artifact/repository")?;
    let host = text("/report/registry/server").unwrap_or("docker.io");
    Some(ImageRef {
        name: full_name(host, repository),
        tag: text("/report/artifact/tag").map(str::to_string),
        digest: text("/report/artifact/digest").map(str::to_string),
    })
}

/// Whether `report` scanned what container `container` runs (`image`, parsed): the same image
/// (by digest when both give one, else by tag), and, when the report names its container
/// (trivy-operator's `trivy-operator.container.name` label), that container.
pub fn scans(report: &Object, container: &str, image: &ImageRef) -> bool {
    let Some(scanned) = scanned_image(report) else {
        return false;
    };
    let same_container = report
        .json
        .at("/metadata/labels")
        .and_then(|l| l.get("trivy-operator.container.name"))
        .and_then(Value::as_str)
        .is_none_or(|c| c == container);
    let same_image = match (&scanned.digest, &image.digest) {
        (Some(a), Some(b)) => a == b,
        _ => scanned.tag.is_some() && scanned.tag == image.tag,
    };
    same_container && scanned.name == image.name && same_image
}

/// The containers of a pod spec (init containers included: they run the same way), as
/// (name, image).
pub fn containers(pod_spec: Option<&Value>) -> Vec<(&str, &str)> {
    let Some(spec) = pod_spec else {
        return Vec::new();
    };
    ["containers", "initContainers"]
        .into_iter()
        .filter_map(|list| spec.get(list).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| {
            Some((
                c.get("name").and_then(Value::as_str)?,
                c.get("image").and_then(Value::as_str)?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{ImageRef, parse_image};

    fn image(name: &str, tag: Option<&str>, digest: Option<&str>) -> ImageRef {
        ImageRef {
            name: name.into(),
            tag: tag.map(Into::into),
            digest: digest.map(Into::into),
        }
    }

    #[test]
    fn images_read_as_the_runtime_reads_them() {
        for (text, want) in [
            (
                "nginx",
                image("docker.io/library/nginx", Some("latest"), None),
            ),
            (
                "nginx:1.27",
                image("docker.io/library/nginx", Some("1.27"), None),
            ),
            (
                "bitnami/redis:7",
                image("docker.io/bitnami/redis", Some("7"), None),
            ),
            (
                "index.docker.io/library/nginx:1",
                image("docker.io/library/nginx", Some("1"), None),
            ),
            (
                "ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0@sha256:4f2a",
                image(
                    "ghcr.io/neuron7x/mlsdm-neuro-engine",
                    Some("1.2.0"),
                    Some("sha256:4f2a"),
                ),
            ),
            (
                "registry.local:5000/team/app@sha256:aa",
                image("registry.local:5000/team/app", None, Some("sha256:aa")),
            ),
            (
                "localhost/app:dev",
                image("localhost/app", Some("dev"), None),
            ),
        ] {
            assert_eq!(parse_image(text), want, "{text}");
        }
    }
}
