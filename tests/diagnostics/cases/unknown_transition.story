EXT. CLIFF - NIGHT
  shot 1 wide 3s
  > disolve 0.5s
  shot 2 wide 3s
