//! The host's command line, built with the tests so that they can run it as a process
//! (and kill it) exactly as a user would.
fn main() {
    dataflow_host::cli::main()
}
