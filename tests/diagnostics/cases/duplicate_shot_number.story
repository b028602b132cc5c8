EXT. CLIFF - NIGHT
  shot 1 wide 5s
  shot 1 close 2s
