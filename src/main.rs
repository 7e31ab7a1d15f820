//! The `codex-autoresearch` binary: a thin shell over the library's command line.

fn main() -> std::process::ExitCode {
    codex_autoresearch::cli::main()
}
