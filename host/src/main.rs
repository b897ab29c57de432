fn main() {
    dataflow_host::cli::main()
}
