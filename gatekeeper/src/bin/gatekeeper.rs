fn main() -> std::process::ExitCode {
    gatekeeper::main()
}
