EXT. CLIFF - NIGHT
  shot 1 wide 5s
    acton "the beam sweeps"
