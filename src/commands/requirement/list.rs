//! `xone requirement list`.

use clap::Args;
use clap_complete::ArgValueCandidates;

use super::super::Ctx;
use crate::complete;
use crate::domain::{ProjectKey, Status};
use crate::store;
use crate::ui::{safe, table, Result};

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this project's (default: the one whose repository this directory is in)
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
    /// Only these statuses (repeat, or separate with commas: draft,submitted)
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<Status>,
    /// Only requirements the acting user is assigned to
    #[arg(long)]
    pub mine: bool,
    /// Every row, not one page
    #[arg(long, conflicts_with = "page")]
    pub all: bool,
    /// Which page (from 1)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub page: u32,
    /// Rows per page (default: the terminal's height, or ui.page_size)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

pub fn run(cx: &mut Ctx, a: ListArgs) -> Result<()> {
    let fallback = cx.config()?.int("ui.page_size").unwrap_or(50).max(1) as usize;
    let user = if a.mine { Some(cx.actor()?) } else { None };
    let store = cx.store()?;
    let project = cx.project_or_here(&store, a.project.as_ref())?;
    if let Some(p) = &project {
        store::project(store.conn(), p)?;
    }
    let filter = store::ListFilter { project, status: a.status.clone(), user };
    let per_page = a.limit.map(|l| l as usize).unwrap_or_else(|| cx.ui.page_rows(fallback));
    let (limit, offset) =
        if a.all { (None, 0) } else { (Some(per_page), (a.page as usize - 1) * per_page) };
    let (rows, total) = store::list_requirements(store.conn(), &filter, limit, offset)?;
    if cx.ui.json {
        cx.ui.print_json(&rows)?;
    } else if !rows.is_empty() {
        let mut t = vec![vec!["KEY".to_string(), "STATUS".into(), "END".into(), "TITLE".into()]];
        for r in &rows {
            t.push(vec![
                r.key.clone(),
                r.status.to_string(),
                r.end.clone().unwrap_or_default(),
                safe(&r.title).into_owned(),
            ]);
        }
        // On a terminal a long title is cut to what is left of the line, not wrapped.
        if let Some(width) = cx.ui.width() {
            let used: usize = (0..3)
                .map(|i| {
                    t.iter().map(|r| console::measure_text_width(&r[i])).max().unwrap_or(0) + 2
                })
                .sum();
            let room = width.saturating_sub(used).max(10);
            for row in t.iter_mut().skip(1) {
                row[3] = console::truncate_str(&row[3], room, "…").into_owned();
            }
        }
        let mut text = table(&t);
        if cx.ui.stdout_tty {
            if let Some((head, rest)) = text.split_once('\n') {
                text = format!("{}\n{rest}", cx.ui.bold(head));
            }
        }
        cx.ui.out().write_all(text.as_bytes())?;
    }
    if total == 0 {
        cx.ui.status("no requirements match");
    } else if rows.len() < total {
        let last = offset + rows.len();
        if rows.is_empty() {
            cx.ui.status(format!("page {} is past the end: {total} requirements match", a.page));
        } else {
            let more =
                if last < total { format!("; next: --page {}", a.page + 1) } else { String::new() };
            cx.ui.status(format!("{}-{last} of {total}{more}; --all for every row", offset + 1));
        }
    }
    Ok(())
}
