character MARA
  look "a"

EXT. CLIFF - NIGHT
  shot 1 close on MARA 3s
    MARA Not tonight.
