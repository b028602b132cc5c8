// A shared character bible and style sheet, included by other films.
style "storybook gouache, soft grain, warm palette"
negative "photo, 3d render, text"

character MARA
  look "woman in her sixties, silver braid, yellow raincoat"
  negative "young, modern clothes"
  lora "mara_v2.safetensors" 0.8 0.6
  seed 1234
  voice "en-us+f3" rate 150 pitch 40
  reference "assets/mara_reference.png" 0.7

character OLD TOM
  look "lighthouse inspector, grey moustache, peaked cap"
  seed 99
  voice "en-gb+m3" rate 140 pitch 25
