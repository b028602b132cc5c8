character MARA
  look "a"
  lora "mara.safetensors" 3.5

character TOM
  look "b"

EXT. CLIFF - NIGHT
  shot 1 close on MARA 1s
    narrate "Every night for forty years, Mara climbed the stairs to light the lamp."
