EXT. CLIFF - NIGHT
    shot 1 wide 5s
  shot 2 wide 5s
