EXT. CLIFF - NIGHT
  shot 1 wide 3s
    camera pan left slwo
  shot 2 wide 3s
    camera orbit left 30%
