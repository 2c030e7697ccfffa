//! Serves a JSON list of objects as the test Kubernetes API server (for benchmarks and manual
//! runs): `kube-test-apiserver OBJECTS.json KUBECONFIG_OUT`. Writes a kubeconfig with the reader
//! token, prints the URL, and serves until killed.

use mlsdm_audit_testservers::kubeapi::{ApiConfig, start};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(objects), Some(kubeconfig)) = (args.next(), args.next()) else {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("usage: kube-test-apiserver OBJECTS.json KUBECONFIG_OUT");
        }
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&objects).expect("read objects");
    let list: serde_json::Value = serde_json::from_str(&text).expect("objects JSON");
    let items = list
        .get("items")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let server = start(ApiConfig::new(items)).await.expect("start");
    std::fs::write(
        &kubeconfig,
        server.kubeconfig(Some("reader-token"), "default"),
    )
    .expect("write kubeconfig");
    #[allow(clippy::print_stdout)]
    {
        println!("{}", server.url);
    }
    let _ = tokio::signal::ctrl_c().await;
}
