character MARA
  look "a"

EXT. CLIFF - NIGHT
  shot 1 close on MRAA 3s
    MARA: Hello.
    TOM: Who are you?
