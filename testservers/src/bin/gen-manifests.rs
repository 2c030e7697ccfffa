//! Writes a synthetic release for benchmarks (see `synthetic`): `gen-manifests DIR OBJECTS`.
//! Prints the number of files written.

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(objects)) = (args.next(), args.next().and_then(|n| n.parse().ok())) else {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("usage: gen-manifests DIR OBJECTS");
        }
        std::process::exit(2);
    };
    let files =
        mlsdm_audit_testservers::synthetic::write_manifests(std::path::Path::new(&dir), objects)
            .expect("write manifests");
    #[allow(clippy::print_stdout)]
    {
        println!("{files}");
    }
}
