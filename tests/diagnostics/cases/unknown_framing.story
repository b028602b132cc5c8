EXT. CLIFF - NIGHT
  shot 1 wdie 5s
