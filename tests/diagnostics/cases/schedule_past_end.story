EXT. CLIFF - NIGHT
  shot 1 wide 3s
    at 4s "the door opens"
