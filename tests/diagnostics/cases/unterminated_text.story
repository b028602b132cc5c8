EXT. CLIFF - NIGHT
  shot 1 wide 5s
    action "the beam sweeps
