//! Which controller serves an Ingress, as far as the Ingress itself says.
//!
//! An annotation is read only by the controller it is written for: ingress-nginx ignores
//! Traefik's `router.entrypoints`, Traefik ignores `nginx.ingress.kubernetes.io/ssl-redirect`,
//! and a GCE load balancer reads neither. A check that counted any controller's annotation on any
//! Ingress passed an Ingress whose annotation nothing reads. The controller is named by the
//! Ingress's class: `spec.ingressClassName`, or the `kubernetes.io/ingress.class` annotation that
//! came before it (the API server refuses an Ingress that sets both). The IngressClass object
//! (whose `spec.controller` is the authority) is not among the kinds audited, so the class name is
//! read as the controllers' installers name it: `nginx` (and names containing it, such as
//! `ingress-nginx` or `nginx-internal`), `traefik`, `gce` and `gce-internal`. A class this does not
//! know, and an Ingress with no class (the cluster's default IngressClass serves it), have no
//! known controller: a check says it cannot decide rather than count an annotation.

use serde_json::Value;

/// The controllers whose annotations the built-in checks read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    /// ingress-nginx (`nginx.ingress.kubernetes.io/*`).
    Nginx,
    /// Traefik (`traefik.ingress.kubernetes.io/*`).
    Traefik,
    /// GKE's load balancer (`kubernetes.io/ingress.allow-http`).
    Gce,
}

impl Controller {
    /// The name checks compare with (`ingressController(object)`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Traefik => "traefik",
            Self::Gce => "gce",
        }
    }
}

/// The Ingress's class name (`spec.ingressClassName`, else the legacy annotation), or `None`
/// when it names none.
pub fn class(ingress: &Value) -> Option<&str> {
    ingress
        .pointer("/spec/ingressClassName")
        .and_then(Value::as_str)
        .or_else(|| {
            ingress
                .pointer("/metadata/annotations")
                .and_then(|a| a.get("kubernetes.io/ingress.class"))
                .and_then(Value::as_str)
        })
        .filter(|c| !c.is_empty())
}

/// The controller the Ingress's class names, or `None` when it names none or one not known.
pub fn controller(ingress: &Value) -> Option<Controller> {
    let class = class(ingress)?;
    if class.contains("nginx") {
        Some(Controller::Nginx)
    } else if class.contains("traefik") {
        Some(Controller::Traefik)
    } else if matches!(class, "gce" | "gce-internal") {
        Some(Controller::Gce)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_class_field_or_the_legacy_annotation_names_the_controller() {
        let by_field = json!({"spec": {"ingressClassName": "nginx"}});
        assert_eq!(controller(&by_field), Some(Controller::Nginx));
        let by_annotation =
            json!({"metadata": {"annotations": {"kubernetes.io/ingress.class": "traefik"}}});
        assert_eq!(controller(&by_annotation), Some(Controller::Traefik));
        assert_eq!(
            controller(&json!({"spec": {"ingressClassName": "gce-internal"}})),
            Some(Controller::Gce)
        );
        assert_eq!(
            controller(&json!({"spec": {"ingressClassName": "nginx-internal"}})),
            Some(Controller::Nginx)
        );
    }

    #[test]
    fn no_class_or_an_unknown_one_names_no_controller() {
        assert_eq!(controller(&json!({"spec": {}})), None);
        assert_eq!(controller(&json!({"spec": {"ingressClassName": ""}})), None);
        assert_eq!(
            controller(&json!({"spec": {"ingressClassName": "alb"}})),
            None
        );
        assert_eq!(
            class(&json!({"spec": {"ingressClassName": "alb"}})),
            Some("alb")
        );
        // A Traefik-looking class is not GCE's, and `gce` inside a longer name is not GCE.
        assert_eq!(
            controller(&json!({"spec": {"ingressClassName": "my-gce"}})),
            None
        );
    }
}
