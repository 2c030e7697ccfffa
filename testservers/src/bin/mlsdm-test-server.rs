//! Runs the MLSDM stand-in: `mlsdm-test-server 127.0.0.1:18001 errors`. Prints its URL, then
//! serves until killed. scripts/test.sh starts these for the Prometheus it runs.

use mlsdm_audit_testservers::mlsdm::{Config, start};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let mode = args.next().unwrap_or_else(|| "healthy".into());
    let Some(config) = Config::mode(&mode) else {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "unknown mode {mode}: healthy, not-ready, no-headers, errors, slow, empty-metrics, hanging, open, error-jump, latency-jump, leak (see Config::mode)"
            );
        }
        std::process::exit(2);
    };
    let server = match start(&addr, config).await {
        Ok(s) => s,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("cannot listen on {addr}: {e}");
            }
            std::process::exit(1);
        }
    };
    #[allow(clippy::print_stdout)]
    {
        println!("{} {mode}", server.url);
    }
    let _ = tokio::signal::ctrl_c().await;
}
