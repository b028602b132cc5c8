> dissolve 1s

EXT. CLIFF - NIGHT
  shot 1 wide 3s
  > wipe left 0.5s
