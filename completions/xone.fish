complete --keep-order --exclusive --command xone --arguments "(COMPLETE=fish xone -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
