complete --keep-order --exclusive --command amcctl --arguments "(COMPLETE=fish amcctl -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
