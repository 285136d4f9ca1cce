//! xone: carry a requirement from the first draft to a watched release.

mod adapters;
mod cli;
mod clock;
mod commands;
mod config;
mod domain;
mod ops;
mod store;
mod ui;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        ui::report_panic(info);
        std::process::exit(1);
    }));

    // A completion request (COMPLETE=SHELL xone -- WORDS) answers and exits here, before
    // anything else is read.
    commands::complete::remember_shell();
    clap_complete::CompleteEnv::with_factory(cli::Cli::command)
        .var(commands::complete::VAR)
        .bin("xone")
        .completer("xone")
        .complete();

    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let g = cli.global.clone();
    let ui = ui::Ui::new(g.json, g.yes, g.verbose);
    let mut cx = commands::Ctx::new(ui, cli::Cli::command, cli::run_line);
    let result =
        cli::dispatch(&mut cx, cli).and_then(|()| cx.ui.flush()).map_err(store::name_the_file);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is(ui::Tag::StdoutClosed) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = cx.ui.flush();
            cx.ui.print_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
