EXT. CLIFF - NIGHT
  shot 1 wide 1s
  > dissolve 2s
  shot 2 wide 5s
