look "a silver braid"

EXT. CLIFF - NIGHT
  shot 1 wide 5s
    voice "en-us"
