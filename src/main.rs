//! xone: carry a requirement from the first draft to a watched release.

mod adapters;
mod cli;
mod clock;
mod commands;
mod complete;
mod config;
mod domain;
mod interrupt;
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
    complete::remember_shell();
    clap_complete::CompleteEnv::with_factory(cli::Cli::command)
        .var(complete::VAR)
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
    interrupt::install();
    let g = cli.global.clone();
    let mut ui = ui::Ui::new(g.json, g.yes, g.verbose);
    if let Some(code) = &g.jq {
        match ui::jq::Jq::compile(code) {
            Ok(jq) => ui.set_jq(jq),
            Err(e) => {
                ui.print_error(&e);
                return ExitCode::from(e.exit_code());
            }
        }
    }
    let mut cx = commands::Ctx::new(ui, cli::Cli::command, cli::run_line);
    let result =
        cli::dispatch(&mut cx, cli).and_then(|()| cx.ui.flush()).map_err(store::name_the_file);
    cx.deliver_notices();
    if cx.queued() > 0 {
        cx.ui.warn(format!(
            "Jira could not be reached: {} change(s) are kept here and pushed by the next command that changes something (or `xone sync`); `xone sync --status` lists them",
            cx.queued()
        ));
    }
    // Ctrl-C during work that had to finish: it finished and was reported; now say so.
    let interrupted = |ui: &ui::Ui| {
        ui.status("interrupted: the work in hand was finished first, as reported above");
        ExitCode::from(ui::Kind::Interrupted as u8)
    };
    match result {
        Ok(()) if interrupt::requested() => interrupted(&cx.ui),
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is(ui::Tag::StdoutClosed) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = cx.ui.flush();
            cx.ui.print_error(&e);
            if interrupt::requested() && e.kind != ui::Kind::Interrupted {
                return interrupted(&cx.ui);
            }
            ExitCode::from(e.exit_code())
        }
    }
}
