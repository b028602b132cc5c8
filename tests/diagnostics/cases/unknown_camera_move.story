character MARA
  look "a"

EXT. CLIFF - NIGHT
  shot 1 wide on MARA 5s
    camera push-inn slow
